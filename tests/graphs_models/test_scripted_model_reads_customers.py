"""The scripted model turns a customer's plain message into the tool calls an LLM would make."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import tool

from graphs.scripted_model import PHRASES, CustomerServiceModel

from .conftest import ALL_TOOLS, cancel_order, get_order

Call = tuple[str, dict[str, Any]]

DRAFT_BODY = ("Hello,\n\nThank you for contacting us about {}. We are looking into it and will get back to you "
              "shortly.\n\nBest regards,\nCustomer Service")

# (message, expected calls in order); each row's id is the message.
CASES: list[tuple[str, list[Call]]] = [
    ("I'm jane@example.com", [("verify_customer", {"email": "jane@example.com"})]),
    ("my email is jane@example.com", [("verify_customer", {"email": "jane@example.com"})]),
    ("MY EMAIL IS jane@example.com.", [("verify_customer", {"email": "jane@example.com"})]),
    ("Jane Doe, 94107", [("verify_customer", {"name": "Jane Doe", "zip": "94107"})]),
    ("name Jane Doe zip 94107", [("verify_customer", {"name": "Jane Doe", "zip": "94107"})]),
    ("my name is Jane Doe and my zip code is 94107", [("verify_customer", {"name": "Jane Doe", "zip": "94107"})]),
    ("where is order 1001", [("get_order", {"order_id": 1001})]),
    ("check order 1001", [("get_order", {"order_id": 1001})]),
    ("status of order 1001", [("get_order", {"order_id": 1001})]),
    ("status of order #1001?", [("get_order", {"order_id": 1001})]),
    ("Where Is My Order 1001", [("get_order", {"order_id": 1001})]),
    ("how do I return an item?", [("search_help", {"query": "how do I return an item?"})]),
    ("help with shipping", [("search_help", {"query": "help with shipping"})]),
    ("refund $80 on order 1001", [("issue_refund", {"order_id": 1001, "amount": 80.0,
                                                    "reason": "refund $80 on order 1001"})]),
    ("refund 80 for 1001", [("issue_refund", {"order_id": 1001, "amount": 80.0, "reason": "refund 80 for 1001"})]),
    ("I want $2,400 back for order 1003", [("issue_refund", {"order_id": 1003, "amount": 2400.0,
                                                             "reason": "I want $2,400 back for order 1003"})]),
    ("REFUND $12.50 ON ORDER 1001", [("issue_refund", {"order_id": 1001, "amount": 12.5,
                                                       "reason": "REFUND $12.50 ON ORDER 1001"})]),
    ("10% discount on 1002", [("apply_discount", {"order_id": 1002, "percent": 10.0,
                                                  "reason": "10% discount on 1002"})]),
    ("cancel order 1002", [("cancel_order", {"order_id": 1002, "reason": "cancel order 1002"})]),
    ("cancel 1002", [("cancel_order", {"order_id": 1002, "reason": "cancel 1002"})]),
    ("change the address of 1002 to 1 Main St, Springfield, 12345",
     [("change_address", {"order_id": 1002, "line1": "1 Main St", "city": "Springfield", "zip": "12345"})]),
    ("what do you recommend for 1001",
     [("recommend_resolution", {"order_id": 1001, "note": "what do you recommend for 1001",
                                "resolution": "Offer a refund or a replacement, whichever the customer prefers."})]),
    ("recommend something for 1001, it arrived broken",
     [("recommend_resolution", {"order_id": 1001, "note": "recommend something for 1001, it arrived broken",
                                "resolution": "Send a replacement at no cost, or refund the item in full if the "
                                              "customer prefers."})]),
    ("draft a reply about the late delivery",
     [("draft_reply", {"subject": "The late delivery", "body": DRAFT_BODY.format("the late delivery")})]),
    ("write me an email about the return label",
     [("draft_reply", {"subject": "The return label", "body": DRAFT_BODY.format("the return label")})]),
    ("open a ticket about a broken zipper",
     [("create_ticket", {"subject": "A broken zipper", "body": "open a ticket about a broken zipper",
                         "priority": "normal"})]),
    ("report a problem with the checkout page",
     [("create_ticket", {"subject": "The checkout page", "body": "report a problem with the checkout page",
                         "priority": "normal"})]),
    ("this is ridiculous, open a ticket about the app",
     [("create_ticket", {"subject": "The app", "body": "this is ridiculous, open a ticket about the app",
                         "priority": "high"})]),
    ("stop emails", [("update_preferences", {"email_opt_in": False})]),
    ("no sms", [("update_preferences", {"sms_opt_in": False})]),
    ("email me offers", [("update_preferences", {"email_opt_in": True})]),
    ("language es", [("update_preferences", {"language": "es"})]),
    ("stop emails and no sms", [("update_preferences", {"email_opt_in": False, "sms_opt_in": False})]),
    ("please reply in spanish", [("update_preferences", {"language": "es"})]),
    ("I want a human", [("request_human", {"reason": "I want a human"})]),
    ("let me talk to a manager", [("request_human", {"reason": "let me talk to a manager"})]),
    ("can I speak to a real person", [("request_human", {"reason": "can I speak to a real person"})]),
    ("dispute the charge on 1001", [("dispute_payment", {"order_id": 1001, "reason": "dispute the charge on 1001"})]),
    ("chargeback on order 1001", [("dispute_payment", {"order_id": 1001, "reason": "chargeback on order 1001"})]),
    ("refund $20 on 1001 and $30 on 1001",
     [("issue_refund", {"order_id": 1001, "amount": 20.0, "reason": "refund $20 on 1001 and $30 on 1001"}),
      ("issue_refund", {"order_id": 1001, "amount": 30.0, "reason": "refund $20 on 1001 and $30 on 1001"})]),
    ("refund $20 and $30 on 1001",
     [("issue_refund", {"order_id": 1001, "amount": 20.0, "reason": "refund $20 and $30 on 1001"}),
      ("issue_refund", {"order_id": 1001, "amount": 30.0, "reason": "refund $20 and $30 on 1001"})]),
    ("cancel 1002 and 1003",
     [("cancel_order", {"order_id": 1002, "reason": "cancel 1002 and 1003"}),
      ("cancel_order", {"order_id": 1003, "reason": "cancel 1002 and 1003"})]),
    ("refund $80 on order 1001 and cancel 1002",
     [("issue_refund", {"order_id": 1001, "amount": 80.0, "reason": "refund $80 on order 1001 and cancel 1002"}),
      ("cancel_order", {"order_id": 1002, "reason": "refund $80 on order 1001 and cancel 1002"})]),
    ("Hi, I'm jane@example.com and I want a refund of $80 on order 1001",
     [("verify_customer", {"email": "jane@example.com"}),
      ("issue_refund", {"order_id": 1001, "amount": 80.0,
                        "reason": "Hi, I'm jane@example.com and I want a refund of $80 on order 1001"})]),
    ("open a ticket about the broken zipper and the torn strap",
     [("create_ticket", {"subject": "The broken zipper and the torn strap",
                         "body": "open a ticket about the broken zipper and the torn strap", "priority": "normal"})]),
]


def _calls(message: AIMessage) -> list[Call]:
    return [(c["name"], c["args"]) for c in message.tool_calls]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_customer_message_becomes_tool_calls(model: Runnable[Any, AIMessage], text: str,
                                             expected: list[Call]) -> None:
    reply = model.invoke([HumanMessage(text)])
    assert _calls(reply) == expected


def test_every_documented_phrase_is_in_the_table_with_its_tool() -> None:
    table = {text: [name for name, _ in calls] for text, calls in CASES}
    for phrase, tool_name in PHRASES:
        assert phrase in table, phrase
        assert set(table[phrase]) == {tool_name}, phrase


def test_every_documented_phrase_is_in_the_class_docstring() -> None:
    doc = CustomerServiceModel.__doc__ or ""
    for _, tool_name in PHRASES:
        assert tool_name in doc


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("cancel my order", "Which order would you like to cancel?"),
        ("refund order 1001", "How much would you like refunded on order 1001?"),
        ("I want a refund", "How much would you like refunded, and on which order?"),
        ("dispute a charge", "Which order's payment would you like to dispute?"),
    ],
    ids=["cancel-without-order", "refund-without-amount", "refund-without-anything", "dispute-without-order"],
)
def test_request_missing_a_detail_gets_a_question_not_a_call(model: Runnable[Any, AIMessage], text: str,
                                                             question: str) -> None:
    reply = model.invoke([HumanMessage(text)])
    assert reply.tool_calls == []
    assert reply.content == question


def test_unrecognised_message_lists_what_the_model_can_do(model: Runnable[Any, AIMessage]) -> None:
    reply = model.invoke([HumanMessage("the weather is nice")])
    assert reply.tool_calls == []
    assert "refund $80 on order 1001" in reply.content
    assert "I want a human" in reply.content


def test_system_message_last_gets_a_plain_reply(model: Runnable[Any, AIMessage]) -> None:
    reply = model.invoke([SystemMessage("You are a customer-service agent."), HumanMessage("cancel 1002"),
                          SystemMessage("Be brief.")])
    assert reply.tool_calls == []
    assert "What would you like to do?" in reply.content


def test_only_bound_tools_are_called() -> None:
    bound = CustomerServiceModel().bind_tools([get_order])
    reply = bound.invoke([HumanMessage("where is order 1001 and cancel 1002")])
    assert _calls(reply) == [("get_order", {"order_id": 1001})]
    assert "I can't cancel order 1002 here." in reply.content


def test_unbound_model_never_calls_a_tool(bare_model: CustomerServiceModel) -> None:
    reply = bare_model.invoke([HumanMessage("cancel order 1002")])
    assert reply.tool_calls == []
    assert "I can't cancel order 1002 here." in reply.content


def test_request_for_an_unbound_tool_only_is_refused_with_the_capabilities() -> None:
    reply = CustomerServiceModel().bind_tools([get_order]).invoke([HumanMessage("cancel order 1002")])
    assert reply.tool_calls == []
    assert reply.content.startswith("I can't cancel order 1002 here.")
    assert "where is order 1001" in reply.content
    assert "refund" not in reply.content


def test_bind_tools_carries_the_schemas_and_ignores_tool_choice() -> None:
    bound = CustomerServiceModel().bind_tools([get_order, cancel_order], tool_choice="any")
    names = [t["function"]["name"] for t in bound.kwargs["tools"]]  # type: ignore[attr-defined]
    assert names == ["get_order", "cancel_order"]
    assert bound.invoke([HumanMessage("hello")]).tool_calls == []


def test_openai_tool_dicts_can_be_bound_and_order_id_follows_their_declared_type() -> None:
    as_string = {"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}
    reply = CustomerServiceModel().bind_tools([as_string]).invoke([HumanMessage("where is order 1001")])
    assert _calls(reply) == [("get_order", {"order_id": "1001"})]


def test_percent_follows_an_integer_schema() -> None:
    @tool
    def apply_discount(order_id: int, percent: int, reason: str) -> str:
        """Apply a discount."""
        return ""

    reply = CustomerServiceModel().bind_tools([apply_discount]).invoke([HumanMessage("10% discount on 1002")])
    assert reply.tool_calls[0]["args"]["percent"] == 10
    assert isinstance(reply.tool_calls[0]["args"]["percent"], int)


def test_same_conversation_gives_the_same_message_and_ids(model: Runnable[Any, AIMessage]) -> None:
    conversation = [HumanMessage("refund $20 on 1001 and $30 on 1001")]
    first, second = model.invoke(conversation), CustomerServiceModel().bind_tools(ALL_TOOLS).invoke(conversation)
    assert first.content == second.content
    assert first.tool_calls == second.tool_calls


def test_tool_call_ids_are_unique_within_a_message_and_across_turns(model: Runnable[Any, AIMessage]) -> None:
    first = model.invoke([HumanMessage("refund $20 on 1001 and $30 on 1001")])
    ids = [c["id"] for c in first.tool_calls]
    assert len(set(ids)) == 2
    later = model.invoke([HumanMessage("refund $20 on 1001 and $30 on 1001"), first,
                          AIMessage("ok"), HumanMessage("refund $20 on 1001 and $30 on 1001")])
    assert not set(ids) & {c["id"] for c in later.tool_calls}
    assert all(i.startswith("call_") for i in ids)


def test_reply_with_tool_calls_says_so_in_its_metadata(model: Runnable[Any, AIMessage]) -> None:
    reply = model.invoke([HumanMessage("cancel 1002")])
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert model.invoke([HumanMessage("hello")]).response_metadata["finish_reason"] == "stop"


async def test_async_invoke_gives_the_same_calls(model: Runnable[Any, AIMessage]) -> None:
    conversation = [HumanMessage("cancel 1002")]
    assert (await model.ainvoke(conversation)).tool_calls == model.invoke(conversation).tool_calls


def test_llm_type_names_the_scripted_model(bare_model: CustomerServiceModel) -> None:
    assert bare_model._llm_type == "customer-service-scripted"
