"""After tools ran, the scripted model tells the customer what happened, and never loops into a new call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable

VERIFY_ASK = ("Before I can do that, I need to confirm who you are: please send the email address on your "
              "account with your full name or zip code, or your full name and zip code.")


def _after(model: Runnable[Any, AIMessage], text: str, *contents: str | dict[str, Any],
           status: str = "success") -> tuple[list[BaseMessage], AIMessage]:
    """Run one customer message, answer each call with ``contents`` in order, and return the reply."""
    human = HumanMessage(text)
    asked = model.invoke([human])
    assert len(asked.tool_calls) == len(contents), asked.tool_calls
    results = [ToolMessage(content=c if isinstance(c, str) else json.dumps(c), tool_call_id=call["id"],
                           status=status)  # type: ignore[arg-type]
               for c, call in zip(contents, asked.tool_calls, strict=True)]
    conversation: list[BaseMessage] = [human, asked, *results]
    return conversation, model.invoke(conversation)


# (customer message, tool results, expected reply); the reply is never a tool call.
CASES: list[tuple[str, str, list[str | dict[str, Any]], str]] = [
    ("refund-done", "refund $80 on order 1001",
     [{"status": "executed", "refund_id": "R-7", "amount": 80.0, "order_id": 1001}],
     "I've refunded $80.00 on order 1001 (reference R-7)."),
    ("refund-plain-text", "refund $80 on order 1001", ["Refund issued."],
     "I've refunded $80.00 on order 1001."),
    ("refund-denied", "refund $80 on order 1001",
     [{"status": "denied", "reason": "refunds over $50 need a supervisor", "rule": "refund_limit"}],
     'I couldn\'t refund $80.00 on order 1001: "refunds over $50 need a supervisor".'),
    ("cancel-rejected", "cancel order 1002", [{"status": "rejected", "reason": "order 1002 has shipped"}],
     'I couldn\'t cancel order 1002: "order 1002 has shipped".'),
    ("cancel-error-text", "cancel order 1002", ["Error: order 1002 not found"],
     'I couldn\'t cancel order 1002: "order 1002 not found".'),
    ("cancel-done", "cancel order 1002", [{"order_id": 1002, "status": "cancelled"}], "Order 1002 is cancelled."),
    ("needs-verification-json", "refund $80 on order 1001", [{"status": "verification_required"}], VERIFY_ASK),
    ("needs-verification-text", "cancel order 1002", ["The customer must verify their identity first."], VERIFY_ASK),
    ("escalated", "refund $2,400 on order 1003", [{"status": "escalated", "reason": "amount over limit"}],
     "I've passed your request to refund $2,400.00 on order 1003 to our team; a person will follow up with you."),
    ("pending-approval", "10% discount on 1002", [{"status": "pending_approval"}],
     "Your request to apply a 10% discount to order 1002 needs a team member's approval; a person will follow "
     "up with you."),
    ("recommendation-recorded", "what do you recommend for 1001", [{"status": "recommended"}],
     "I've recorded my recommendation for order 1001; a member of our team will review it."),
    ("draft-recorded", "draft a reply about the delay", [{"status": "drafted", "draft_id": 3}],
     "I've prepared a draft reply; a member of our team will review it before it is sent."),
    ("human", "I want a human", [{"status": "escalated"}],
     "I've asked a member of our team to take over; a person will follow up with you."),
    ("order-found", "where is order 1001",
     [{"order_id": 1001, "status": "shipped", "total": 120.5, "carrier": "Parcel Co", "tracking": "PC123"}],
     "Order 1001, status: shipped, total: $120.50, carrier: Parcel Co, tracking: PC123."),
    ("help-found", "how do I return an item?",
     [{"results": [{"title": "Returns", "snippet": "Return within 30 days."}]}],
     "Here's what I found: Returns: Return within 30 days."),
    ("help-plain-text", "how do I return an item?", ["You cannot return opened items."],
     "Here's what I found: You cannot return opened items."),
    ("verified", "I'm jane@example.com", [{"verified": True, "name": "Jane Doe"}],
     "Thank you, Jane Doe: you're verified."),
    ("not-verified", "I'm jane@example.com", [{"verified": False, "reason": "no customer with that email"}],
     'I couldn\'t verify your identity with those details: "no customer with that email". Please check them '
     "and send the email address on your account, or your full name and zip code."),
    ("ticket-opened", "open a ticket about a broken zipper", [{"ticket_id": "T-9"}],
     "I've opened a ticket (reference T-9): A broken zipper."),
    ("two-results", "refund $80 on order 1001 and cancel 1002",
     [{"status": "executed", "refund_id": "R-1"}, {"status": "denied", "reason": "order 1002 has shipped"}],
     'I\'ve refunded $80.00 on order 1001 (reference R-1). I couldn\'t cancel order 1002: "order 1002 has shipped".'),
    ("one-needs-verification-of-two", "refund $20 on 1001 and $30 on 1001",
     [{"status": "verification_required"}, {"status": "verification_required"}], VERIFY_ASK),
]


@pytest.mark.parametrize(("text", "contents", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tool_results_are_summarised_for_the_customer(model: Runnable[Any, AIMessage], text: str,
                                                      contents: list[str | dict[str, Any]], expected: str) -> None:
    _, reply = _after(model, text, *contents)
    assert reply.tool_calls == []
    assert reply.content == expected


def test_tool_message_with_error_status_is_reported_as_not_done(model: Runnable[Any, AIMessage]) -> None:
    _, reply = _after(model, "cancel order 1002", "order is locked", status="error")
    assert reply.content == 'I couldn\'t cancel order 1002: "order is locked".'


def test_tool_message_with_content_blocks_is_read(model: Runnable[Any, AIMessage]) -> None:
    human = HumanMessage("cancel order 1002")
    asked = model.invoke([human])
    result = ToolMessage(content=[{"type": "text", "text": json.dumps({"status": "denied", "reason": "too late"})}],
                         tool_call_id=asked.tool_calls[0]["id"])
    assert model.invoke([human, asked, result]).content == 'I couldn\'t cancel order 1002: "too late".'


@pytest.mark.parametrize("content", ["", "null", "[1, 2]", "{not json", json.dumps({"x": {"y": None}})],
                         ids=["empty", "json-null", "json-list", "broken-json", "odd-dict"])
def test_odd_tool_contents_still_get_a_plain_reply(model: Runnable[Any, AIMessage], content: str) -> None:
    _, reply = _after(model, "check order 1001", content)
    assert reply.tool_calls == []
    assert isinstance(reply.content, str) and reply.content


def test_a_request_refused_for_verification_proceeds_once_the_customer_is_verified(
        model: Runnable[Any, AIMessage]) -> None:
    conversation, ask = _after(model, "refund $80 on order 1001", {"status": "verification_required"})
    assert ask.content == VERIFY_ASK
    conversation += [ask, HumanMessage("I'm jane@example.com")]
    verify = model.invoke(conversation)
    assert [c["name"] for c in verify.tool_calls] == ["verify_customer"]
    conversation += [verify, ToolMessage(content=json.dumps({"verified": True}), tool_call_id=verify.tool_calls[0]["id"])]
    follow_up = model.invoke(conversation)
    assert follow_up.content == "Thank you: you're verified."
    assert [(c["name"], c["args"]) for c in follow_up.tool_calls] == [
        ("issue_refund", {"order_id": 1001, "amount": 80.0, "reason": "refund $80 on order 1001"})]
    assert follow_up.tool_calls[0]["id"] not in {c["id"] for m in conversation if isinstance(m, AIMessage)
                                                 for c in m.tool_calls}
    # The repeated call's result gets a plain reply: no loop.
    conversation += [follow_up, ToolMessage(content=json.dumps({"status": "verification_required"}),
                                            tool_call_id=follow_up.tool_calls[0]["id"])]
    assert model.invoke(conversation).tool_calls == []


def test_verification_alone_does_not_repeat_anything(model: Runnable[Any, AIMessage]) -> None:
    _, reply = _after(model, "I'm jane@example.com", {"verified": True})
    assert reply.tool_calls == []


def test_failed_verification_does_not_repeat_the_refused_call(model: Runnable[Any, AIMessage]) -> None:
    conversation, ask = _after(model, "refund $80 on order 1001", {"status": "verification_required"})
    conversation += [ask, HumanMessage("I'm jane@example.com")]
    verify = model.invoke(conversation)
    conversation += [verify, ToolMessage(content=json.dumps({"verified": False}),
                                         tool_call_id=verify.tool_calls[0]["id"])]
    assert model.invoke(conversation).tool_calls == []


# The texts agent_kit's permission layer and the reference tools put in tool messages.
GRAPH_CASES: list[tuple[str, str, str | dict[str, Any], str, str]] = [
    ("policy-denied", "refund $80 on order 1001", "Denied: refunds over $50 need a supervisor", "error",
     'I couldn\'t refund $80.00 on order 1001: "refunds over $50 need a supervisor".'),
    ("staff-rejected", "cancel order 1002", "Rejected by lead (supervisor): the order has shipped", "error",
     'I couldn\'t cancel order 1002: "Rejected by lead (supervisor): the order has shipped".'),
    ("tool-needs-verified-customer", "where is order 1001",
     "Error: no verified customer for this conversation: verify the customer (verify_customer) first", "error",
     VERIFY_ASK),
    ("escalation-handed-back", "dispute the charge on 1001",
     "Not run: escalated. A person (lead) reviewed the case and handed it back: please ask for the card's last 4",
     "error", 'A member of our team reviewed your request to open a dispute on order 1001: '
              '"please ask for the card\'s last 4".'),
    ("too-many-strikes", "cancel order 1002",
     "Not run: the run reached 3 denials, rejections or tool errors (limit 3); a person takes over", "error",
     "I've passed your request to cancel order 1002 to our team; a person will follow up with you."),
    ("ticket-not-escalated", "open a ticket about a broken zipper",
     {"ticket_id": 4, "subject": "A broken zipper", "priority": "normal", "status": "open", "escalated": False},
     "success", "I've opened a ticket (reference 4): A broken zipper."),
    ("order-view", "where is order 1001",
     {"order_id": 1001, "status": "delivered", "items": [{"sku": "HP-200", "name": "Wireless headphones"}],
      "total": 120.0, "payment": {"brand": "visa", "last4": "4242"}}, "success",
     "Order 1001, status: delivered, total: $120.00, items: Wireless headphones."),
    ("preferences", "stop emails and no sms",
     {"customer_id": "c1", "preferences": {"email_opt_in": False, "sms_opt_in": False}}, "success",
     "Your preferences are updated: marketing email off, text messages off."),
]


@pytest.mark.parametrize(("text", "content", "status", "expected"), [c[1:] for c in GRAPH_CASES],
                         ids=[c[0] for c in GRAPH_CASES])
def test_permission_layer_messages_are_explained(model: Runnable[Any, AIMessage], text: str,
                                                 content: str | dict[str, Any], status: str, expected: str) -> None:
    _, reply = _after(model, text, content, status=status)
    assert reply.tool_calls == []
    assert reply.content == expected


def test_a_tool_refused_for_want_of_verification_is_retried_after_it(model: Runnable[Any, AIMessage]) -> None:
    conversation, ask = _after(model, "where is order 1001", "Error: no verified customer for this conversation: "
                               "verify the customer (verify_customer) first", status="error")
    conversation += [ask, HumanMessage("Jane Doe, 94107")]
    verify = model.invoke(conversation)
    conversation += [verify, ToolMessage(content=json.dumps({"verified": True, "name": "Jane Doe"}),
                                         tool_call_id=verify.tool_calls[0]["id"])]
    assert [(c["name"], c["args"]) for c in model.invoke(conversation).tool_calls] == [("get_order", {"order_id": 1001})]
