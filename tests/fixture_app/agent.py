"""The fixture app's tools, its phrase-driven offline model and its graph."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolArg, tool

from agent_kit import Compensation, Mode, ToolSpec, create_permissioned_agent, register
from agent_kit.testing import ScriptedChatModel, tool_call

from .records import Records, identity_details

POLICY = Path(__file__).resolve().parent / "policy.yaml"

Key = Annotated[str | None, InjectedToolArg]
Customer = Annotated[str | None, InjectedToolArg]


def identity(customer: Mapping[str, Any]) -> dict[str, Any]:
    """The trusted context of a verified customer."""
    return {"customer_verified": True, "customer_id": customer["id"], "customer_name": customer["name"]}


def specs(records: Records) -> list[ToolSpec]:
    """Every tool, registered with its mode ceiling and reach."""

    @tool
    def verify_customer(email: str | None = None, name: str | None = None, zip: str | None = None) -> dict[str, Any]:
        """Check who the customer is (two of email, full name, zip code)."""
        found = records.find_customer(email=email, name=name, zip=zip)
        return {"verified": True, "name": found["name"], "customer_id": found["id"]} if found else {"verified": False}

    @tool
    def get_order(order_id: int) -> dict[str, Any]:
        """Look up an order."""
        o = records.order(order_id)
        if o is None:
            raise ValueError(f"no order {order_id}")
        return {"order_id": o["id"], "status": o["status"], "total": o["total"], "address": o["address"],
                "customer_id": o["customer_id"]}

    @tool
    def issue_refund(order_id: int, amount: float, reason: str = "", idempotency_key: Key = None) -> dict[str, Any]:
        """Refund an amount on an order."""
        def change(db: Any) -> dict[str, Any]:
            cur = db.execute("insert into refunds (order_id, amount) values (?, ?)", (order_id, amount))
            return {"refund_id": cur.lastrowid, "order_id": order_id, "amount": amount}
        return dict(records.write("issue_refund", idempotency_key, change))

    @tool
    def reverse_refund(refund_id: int, idempotency_key: Key = None) -> dict[str, Any]:
        """Reverse a refund."""
        def change(db: Any) -> dict[str, Any]:
            db.execute("update refunds set status = 'reversed' where id = ?", (refund_id,))
            return {"refund_id": refund_id, "status": "reversed"}
        return dict(records.write("reverse_refund", idempotency_key, change))

    @tool
    def apply_discount(order_id: int, percent: float, idempotency_key: Key = None) -> dict[str, Any]:
        """Take a percentage off an order."""
        def change(db: Any) -> dict[str, Any]:
            db.execute("insert into discounts (order_id, percent) values (?, ?)", (order_id, percent))
            return {"order_id": order_id, "percent": percent}
        return dict(records.write("apply_discount", idempotency_key, change))

    def _order_update(operation: str, order_id: int, column: str, value: str, key: str | None) -> dict[str, Any]:
        def change(db: Any) -> dict[str, Any]:
            db.execute(f"update orders set {column} = ? where id = ?", (value, order_id))
            return {"order_id": order_id, column: value}
        return dict(records.write(operation, key, change))

    @tool
    def change_address(order_id: int, address: str, idempotency_key: Key = None) -> dict[str, Any]:
        """Ship an order to another address."""
        return _order_update("change_address", order_id, "address", address, idempotency_key)

    @tool
    def cancel_order(order_id: int, idempotency_key: Key = None) -> dict[str, Any]:
        """Cancel an order."""
        return _order_update("cancel_order", order_id, "status", "cancelled", idempotency_key)

    @tool
    def update_preferences(email_opt_in: bool, customer_id: Customer = None, idempotency_key: Key = None) -> dict[str, Any]:
        """Turn the customer's marketing email on or off."""
        def change(db: Any) -> dict[str, Any]:
            db.execute("update customers set emails = ? where id = ?", (int(email_opt_in), customer_id))
            return {"email_opt_in": email_opt_in}
        return dict(records.write("update_preferences", idempotency_key, change))

    @tool
    def create_ticket(subject: str, customer_id: Customer = None, idempotency_key: Key = None) -> dict[str, Any]:
        """Open a support ticket."""
        def change(db: Any) -> dict[str, Any]:
            cur = db.execute("insert into tickets (customer_id, subject) values (?, ?)", (customer_id, subject))
            return {"ticket_id": cur.lastrowid}
        return dict(records.write("create_ticket", idempotency_key, change))

    @tool
    def request_human(summary: str) -> str:
        """Hand the conversation to a person."""
        return summary

    @tool
    def recommend_resolution(order_id: int, resolution: str) -> str:
        """Recommend what staff should do about an order."""
        return resolution

    @tool
    def draft_reply(text: str, idempotency_key: Key = None) -> dict[str, Any]:
        """Save a reply as a draft for a person to send."""
        def change(db: Any) -> dict[str, Any]:
            return {"draft_id": db.execute("insert into drafts (text) values (?)", (text,)).lastrowid}
        return dict(records.write("draft_reply", idempotency_key, change))

    def verified(result: Any) -> Mapping[str, Any]:
        ok = isinstance(result, Mapping) and result.get("verified")
        return identity({"id": result["customer_id"], "name": result["name"]}) if ok else {}

    writes = {"changes": ("records",)}
    customer = {"inject": {"customer_id": "customer_id"}}
    return [
        register(verify_customer, Mode.READ_ONLY, reads=("customers",), on_result=verified),
        register(get_order, Mode.READ_ONLY, reads=("orders",)),
        register(issue_refund, Mode.EXECUTE_LIMITED, **writes,
                 compensation=Compensation("reverse_refund", lambda a, r: {"refund_id": r["refund_id"]}, "reverse it")),
        register(reverse_refund, Mode.EXECUTE_LIMITED, **writes, irreversible=True),
        register(apply_discount, Mode.EXECUTE_LIMITED, **writes, irreversible=True),
        register(change_address, Mode.EXECUTE_LIMITED, **writes, irreversible=True),
        register(cancel_order, Mode.EXECUTE_LIMITED, **writes, irreversible=True),
        register(update_preferences, Mode.EXECUTE_LIMITED, **writes, **customer, irreversible=True),
        register(create_ticket, Mode.EXECUTE_LIMITED, **writes, **customer, irreversible=True),
        register(request_human, Mode.ESCALATE),
        register(recommend_resolution, Mode.RECOMMEND_ONLY),
        register(draft_reply, Mode.DRAFT_ONLY, **writes, irreversible=True,
                 draft=lambda **kw: draft_reply.invoke(kw)),
    ]


_MONEY = r"\$?(\d+(?:\.\d+)?)"
PHRASES: list[tuple[str, str, Any]] = [
    # (pattern, tool, arguments from the match); every match of every pattern is one call
    (rf"refund {_MONEY} on order (\d+)", "issue_refund", lambda m: {"order_id": int(m[2]), "amount": float(m[1])}),
    (r"(\d+)% discount on (\d+)", "apply_discount", lambda m: {"order_id": int(m[2]), "percent": float(m[1])}),
    (r"cancel order (\d+)", "cancel_order", lambda m: {"order_id": int(m[1])}),
    (r"change the address of (\d+) to (.+)", "change_address", lambda m: {"order_id": int(m[1]), "address": m[2]}),
    (r"stop emails", "update_preferences", lambda m: {"email_opt_in": False}),
    (r"open a ticket about (.+)", "create_ticket", lambda m: {"subject": m[1]}),
    (r"draft a reply about (.+)", "draft_reply", lambda m: {"text": m[1]}),
    (r"recommend for (\d+)", "recommend_resolution", lambda m: {"order_id": int(m[1]), "resolution": "refund"}),
    (r"a human|dispute", "request_human", lambda m: {"summary": "the customer asked for a person"}),
    (r"order (\d+)", "get_order", lambda m: {"order_id": int(m[1])}),
]


def answer(messages: Sequence[BaseMessage]) -> Any:
    """The offline model: the tools the customer's last message asks for, or a reply saying
    what the tools answered."""
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        said = []
        for m in reversed(messages):
            if not isinstance(m, ToolMessage):
                break
            said.append(f"{m.name}: {m.content}")
        return "Done. " + " | ".join(reversed(said))
    text = str(last.content) if isinstance(last, HumanMessage) else ""
    for pattern, name, args in PHRASES:
        calls = [tool_call(name, args(m)) for m in re.finditer(pattern, text, re.IGNORECASE)]
        if calls:
            return calls
    details = identity_details(text)
    if details:
        return tool_call("verify_customer", details)
    return "How can I help?"


def offline_model() -> BaseChatModel:
    return ScriptedChatModel(steps=[answer], cycle=True)


def model_from_env() -> BaseChatModel:
    """The offline model, or ``AGENT_KIT_MODEL=openai:<name>`` on ``OPENAI_BASE_URL``."""
    spec = os.environ.get("AGENT_KIT_MODEL", "")
    if not spec.startswith("openai:"):
        return offline_model()
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=spec.removeprefix("openai:"), temperature=0, base_url=os.environ.get("OPENAI_BASE_URL"),
                      api_key=os.environ.get("OPENAI_API_KEY") or "test",  # type: ignore[arg-type]
                      use_responses_api=False)


def build_graph(*, home: str | Path | None = None, store: Any = None, model: BaseChatModel | None = None,
                policy: str | Path | None = None, checkpointer: Any = None) -> Any:
    records = Records.at_home(home if home is not None else os.environ.get("AGENT_KIT_HOME") or ".agent_kit")

    def verify(reply: str) -> Mapping[str, Any] | None:
        found = records.find_customer(**identity_details(reply))
        return identity(found) if found else None

    return create_permissioned_agent(model or model_from_env(), specs(records), policy or POLICY, store=store,
                                     checkpointer=checkpointer, identity_verifier=verify, name="fixture_app")
