"""The reference application's tools: what a customer-service agent may call on the shop.

:func:`build_tools` returns LangChain tools bound to one :class:`~tools.shop.Shop`. Two arguments
are never chosen by the model: ``customer_id`` (the customer verified in this conversation) and
``idempotency_key`` (the execution ledger's key for this exact action). Both are annotated with
``InjectedToolArg``, so they are absent from the schema the model sees and are filled in by the
graph. A broken back-office rule raises :class:`~tools.shop.ShopError`; the tools let it
propagate so the caller can turn it into a tool message for the model.

:func:`order_facts` and :func:`build_compensations` are pure helpers for the policy layer: the
facts a rule may look at, and how to reverse each executed action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool, InjectedToolArg, tool

from tools.shop import Shop, ShopError

__all__ = ["HELP_ARTICLES", "build_compensations", "build_tools", "order_facts", "search_help_articles"]

CustomerId = Annotated[str | None, InjectedToolArg]
"""The verified customer of the conversation; injected by the graph, hidden from the model."""

IdempotencyKey = Annotated[str | None, InjectedToolArg]
"""The execution ledger's key for this action; injected by the graph, hidden from the model."""

CompensationArgs = Callable[[dict[str, Any], Any], dict[str, Any]]

HELP_ARTICLES: tuple[dict[str, Any], ...] = (
    {
        "title": "Returns",
        "keywords": {"return", "returns", "send", "back", "exchange", "wrong", "damaged", "broken", "label"},
        "answer": "Delivered items can be returned within 30 days. We email a prepaid return label; once the "
                  "parcel is scanned, the refund goes back to the original payment method within 5 business days.",
    },
    {
        "title": "Shipping times",
        "keywords": {"shipping", "ship", "shipped", "delivery", "deliver", "late", "track", "tracking", "where",
                     "arrive", "parcel"},
        "answer": "Orders are processed within 1 business day and delivered in 3-5 business days. Tracking "
                  "appears on the order once it ships.",
    },
    {
        "title": "Refunds",
        "keywords": {"refund", "refunds", "money", "back", "charge", "charged", "reimburse", "credit"},
        "answer": "Refunds are issued for processed or delivered orders, up to the amount paid, to the original "
                  "payment method. Large refunds are reviewed by a supervisor before they are issued.",
    },
    {
        "title": "Cancelling an order",
        "keywords": {"cancel", "cancellation", "cancelled", "stop", "mistake", "order"},
        "answer": "An order can be cancelled while it is pending or processed and has not shipped. After it "
                  "ships, return it instead once it arrives.",
    },
    {
        "title": "Changing the shipping address",
        "keywords": {"address", "change", "move", "moved", "redirect", "zip", "street", "wrong"},
        "answer": "The shipping address of an order can be changed until the order ships. Give the street, "
                  "city and ZIP code of the new address.",
    },
    {
        "title": "Payments and cards",
        "keywords": {"payment", "pay", "card", "visa", "mastercard", "charge", "charged", "twice", "dispute",
                     "billing", "declined"},
        "answer": "We accept major cards. A charge you do not recognise, or a double charge, is handled by the "
                  "payments team: ask for a person and they will review the dispute.",
    },
)
"""The built-in help corpus searched by ``search_help``."""


def _words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    # Plural and singular should find the same article.
    return words | {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}


def search_help_articles(query: str, limit: int = 3) -> list[dict[str, str]]:
    """The help articles that best match ``query``, best first (at most ``limit``; none if nothing matches)."""
    wanted = _words(query)
    scored = []
    for index, article in enumerate(HELP_ARTICLES):
        # A word of the title counts twice: it names what the article is about.
        score = len(wanted & article["keywords"]) + 2 * len(wanted & _words(article["title"]))
        if score:
            scored.append((-score, index, article))
    return [{"title": a["title"], "answer": a["answer"]} for _, _, a in sorted(scored)[:limit]]


def build_tools(shop: Shop) -> list[BaseTool]:
    """The customer-service tools, bound to ``shop``, in a stable order.

    Args:
        shop: The system of record the tools read and change.

    Returns:
        Reads (verify_customer, get_order, search_help), the recommendation and draft tools, the
        writes (update_preferences, create_ticket, issue_refund, apply_discount, change_address,
        cancel_order), the escalations (request_human, dispute_payment) and the compensations
        (reverse_refund, remove_discount, restore_address, reinstate_order).
    """

    @tool(parse_docstring=True)
    def verify_customer(email: str | None = None, name: str | None = None, zip: str | None = None) -> dict[str, Any]:
        """Check who the customer is before looking at or changing their account.

        Give the account email the customer stated, or their full name and
        the ZIP code on file. Returns whether they match, and the customer's id when they do.

        Args:
            email: The account email the customer gave.
            name: The full name the customer gave.
            zip: The ZIP code the customer gave.
        """
        return shop.verify_customer(email=email, name=name, zip=zip)

    @tool(parse_docstring=True)
    def get_order(order_id: int, customer_id: CustomerId = None) -> dict[str, Any]:
        """Look up one of the verified customer's orders.

        Returns status, items, total, payment card, shipping address, amount refunded so far and
        active discounts. Fails if the order belongs to someone else.

        Args:
            order_id: The order number, such as 1001.
        """
        return shop.get_order(order_id, customer_id=customer_id)

    @tool(parse_docstring=True)
    def search_help(query: str) -> dict[str, Any]:
        """Search the help center for the store's policies on returns, shipping, refunds, cancellations, address changes and payments.

        Args:
            query: A few words describing the question, such as "cancel order".
        """
        return {"articles": search_help_articles(query)}

    @tool(parse_docstring=True)
    def recommend_resolution(
        order_id: int, resolution: str, note: str = "",
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Recommend a resolution for a person to act on. Nothing is changed on the order.

        Args:
            order_id: The order the recommendation is about.
            resolution: What should be done, such as "refund 20.00" or "replace item".
            note: Why, in a sentence or two.
        """
        return shop.recommend_resolution(order_id, resolution, note, customer_id=customer_id,
                                         idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def draft_reply(
        subject: str, body: str, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Save a reply to the customer as a draft. A person reviews drafts; nothing is sent.

        Args:
            subject: The subject line.
            body: The full text of the reply.
        """
        return shop.draft_reply(subject, body, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def update_preferences(
        email_opt_in: bool | None = None, sms_opt_in: bool | None = None, language: str | None = None,
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Change the verified customer's contact preferences. Give only what changes.

        Returns the new preferences and the previous ones.

        Args:
            email_opt_in: Whether the customer wants marketing email.
            sms_opt_in: Whether the customer wants text messages.
            language: Preferred language as a code, such as "en" or "es".
        """
        return shop.update_preferences(email_opt_in=email_opt_in, sms_opt_in=sms_opt_in, language=language,
                                       customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def create_ticket(
        subject: str, body: str, priority: Literal["low", "normal", "high"] = "normal",
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Open a support ticket for the team to follow up on.

        Args:
            subject: One line saying what the ticket is about.
            body: The details a person needs to act on it.
            priority: low, normal or high.
        """
        return shop.create_ticket(subject, body, priority, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def issue_refund(
        order_id: int, amount: float, reason: str,
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Refund money on a processed or delivered order to the card it was paid with.

        The amount must be above 0 and, with earlier refunds, no more than was paid.

        Args:
            order_id: The order to refund.
            amount: Dollars to refund, such as 20.00.
            reason: Why the refund is given.
        """
        return shop.issue_refund(order_id, amount, reason, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def apply_discount(
        order_id: int, percent: float, reason: str,
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Take a percentage off an order that is not cancelled, as a goodwill gesture.

        Args:
            order_id: The order to discount.
            percent: The percentage off, above 0 and at most 100, such as 10.
            reason: Why the discount is given.
        """
        return shop.apply_discount(order_id, percent, reason, customer_id=customer_id,
                                   idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def change_address(
        order_id: int, line1: str, city: str, zip: str,
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Change the shipping address of an order that has not shipped yet.

        Returns the new address and the previous one.

        Args:
            order_id: The order to redirect.
            line1: Street and number, such as "1 Main St".
            city: The city.
            zip: The 5-digit ZIP code.
        """
        return shop.change_address(order_id, line1, city, zip, customer_id=customer_id,
                                   idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def cancel_order(
        order_id: int, reason: str, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Cancel a pending or processed order that has not shipped.

        Args:
            order_id: The order to cancel.
            reason: Why the customer wants it cancelled.
        """
        return shop.cancel_order(order_id, reason, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def request_human(
        reason: str, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Hand the conversation to a person, when the customer asks for one or the case is beyond these tools.

        Args:
            reason: What the person taking over needs to know.
        """
        return shop.escalate(reason, topic="request_human", customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def dispute_payment(
        order_id: int, reason: str, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Send a disputed or unrecognised charge on an order to the payments team.

        Args:
            order_id: The order whose payment is disputed.
            reason: What the customer says is wrong with the charge.
        """
        return shop.escalate(reason, topic="dispute_payment", order_id=order_id, customer_id=customer_id,
                             idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def reverse_refund(
        refund_id: int, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Reverse a refund that was issued by mistake (the compensation of issue_refund).

        Args:
            refund_id: The refund to reverse.
        """
        return shop.reverse_refund(refund_id, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def remove_discount(
        discount_id: int, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Remove a discount that was applied by mistake (the compensation of apply_discount).

        Args:
            discount_id: The discount to remove.
        """
        return shop.remove_discount(discount_id, customer_id=customer_id, idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def restore_address(
        order_id: int, line1: str, city: str, zip: str,
        customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Put back an order's previous shipping address (the compensation of change_address).

        Args:
            order_id: The order whose address changed.
            line1: The previous street and number.
            city: The previous city.
            zip: The previous ZIP code.
        """
        return shop.restore_address(order_id, line1, city, zip, customer_id=customer_id,
                                    idempotency_key=idempotency_key)

    @tool(parse_docstring=True)
    def reinstate_order(
        order_id: int, customer_id: CustomerId = None, idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Undo a cancellation: the order returns to its previous status, if it has not shipped (the compensation of cancel_order).

        Args:
            order_id: The cancelled order.
        """
        return shop.reinstate_order(order_id, customer_id=customer_id, idempotency_key=idempotency_key)

    return [
        verify_customer, get_order, search_help, recommend_resolution, draft_reply, update_preferences,
        create_ticket, issue_refund, apply_discount, change_address, cancel_order, request_human,
        dispute_payment, reverse_refund, remove_discount, restore_address, reinstate_order,
    ]


def order_facts(shop: Shop, order_id: Any) -> dict[str, Any]:
    """The facts about an order that policy rules may test; ``{}`` if there is no such order.

    Pure read, not scoped to a customer (the policy compares ``order_customer_id`` itself).

    Returns:
        ``order_total`` and ``order_refunded`` in dollars, ``order_status``, ``order_customer_id``.
    """
    try:
        order = shop.order(order_id)
    except ShopError:
        return {}
    if order is None:
        return {}
    return {
        "order_total": order["total"],
        "order_status": order["status"],
        "order_customer_id": order["customer_id"],
        "order_refunded": order["refunded_total"],
    }


def _as_dict(result: Any) -> dict[str, Any]:
    """A tool result as a dict, whether it arrives as a dict, its JSON text or a tool message."""
    content = getattr(result, "content", result)
    if isinstance(content, str):
        content = json.loads(content)
    if not isinstance(content, dict):
        raise ShopError(f"tool result {result!r} is not an object; a compensation needs the original result")
    return content


def build_compensations() -> dict[str, tuple[str, CompensationArgs]]:
    """How to reverse each executed write: tool name -> (compensation tool, args from (args, result)).

    The compensation's ``customer_id`` and ``idempotency_key`` are injected like any other call's,
    so the functions return only the arguments the compensation tool's schema shows.
    """

    def refund(args: dict[str, Any], result: Any) -> dict[str, Any]:
        return {"refund_id": _as_dict(result)["refund_id"]}

    def discount(args: dict[str, Any], result: Any) -> dict[str, Any]:
        return {"discount_id": _as_dict(result)["discount_id"]}

    def address(args: dict[str, Any], result: Any) -> dict[str, Any]:
        done = _as_dict(result)
        previous = done["previous"]
        return {"order_id": done["order_id"], "line1": previous["line1"], "city": previous["city"],
                "zip": previous["zip"]}

    def cancellation(args: dict[str, Any], result: Any) -> dict[str, Any]:
        return {"order_id": _as_dict(result)["order_id"]}

    return {
        "issue_refund": ("reverse_refund", refund),
        "apply_discount": ("remove_discount", discount),
        "change_address": ("restore_address", address),
        "cancel_order": ("reinstate_order", cancellation),
    }
