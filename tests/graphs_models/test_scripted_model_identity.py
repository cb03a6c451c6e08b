"""The scripted model passes on the identity details the customer gives, across messages when needed."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable

CASES: list[tuple[str, dict[str, str]]] = [
    ("I'm jane@example.com", {"email": "jane@example.com"}),
    ("Jane Doe, 94107", {"name": "Jane Doe", "zip": "94107"}),
    ("jane@example.com, Jane Doe", {"email": "jane@example.com", "name": "Jane Doe"}),
    ("I'm jane@example.com and my zip is 94107", {"email": "jane@example.com", "zip": "94107"}),
    ("my email is jane@example.com, name Jane Doe zip 94107",
     {"email": "jane@example.com", "name": "Jane Doe", "zip": "94107"}),
    ("zip 94107", {"zip": "94107"}),
    ("94107", {"zip": "94107"}),
    ("my name is Jane Doe", {"name": "Jane Doe"}),
]


@pytest.mark.parametrize(("text", "args"), CASES, ids=[c[0] for c in CASES])
def test_identity_details_in_one_message(model: Runnable[Any, AIMessage], text: str, args: dict[str, str]) -> None:
    reply = model.invoke([HumanMessage(text)])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("verify_customer", args)]


@pytest.mark.parametrize("text", ["jane@example.com thank you", "I'm very upset", "hi there, 941"],
                         ids=["thanks-is-not-a-name", "mood-is-not-a-name", "short-number-is-not-a-zip"])
def test_things_that_are_not_identity_details(model: Runnable[Any, AIMessage], text: str) -> None:
    reply = model.invoke([HumanMessage(text)])
    assert all(c["args"].get("name") is None and c["args"].get("zip") is None for c in reply.tool_calls)


def test_a_name_is_completed_by_a_zip_from_an_earlier_message(model: Runnable[Any, AIMessage]) -> None:
    conversation: list[BaseMessage] = [HumanMessage("My name is Jane Doe"), AIMessage("And your zip code?")]
    reply = model.invoke([*conversation, HumanMessage("zip 94107")])
    assert reply.tool_calls[0]["args"] == {"zip": "94107", "name": "Jane Doe"}


def test_two_new_details_replace_earlier_ones(model: Runnable[Any, AIMessage]) -> None:
    conversation: list[BaseMessage] = [HumanMessage("I'm wrong@example.com"), AIMessage("That did not match.")]
    reply = model.invoke([*conversation, HumanMessage("Jane Doe, 94107")])
    assert reply.tool_calls[0]["args"] == {"name": "Jane Doe", "zip": "94107"}


def test_a_draft_to_an_address_is_not_an_identity(model: Runnable[Any, AIMessage]) -> None:
    reply = model.invoke([HumanMessage("draft a reply to sam@example.com about the delay")])
    assert [c["name"] for c in reply.tool_calls] == ["draft_reply"]
