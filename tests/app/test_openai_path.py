"""The reference graph end to end on the OpenAI-compatible path, against a local Chat Completions stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reference_app import App, make_app
from tests.openai_stub import OpenAIStub, text_response, tool_call_response

SCRIPT = [
    tool_call_response("verify_customer", {"name": "Jane Doe", "zip": "94107"}, call_id="call_verify"),
    text_response("Thanks, Jane, you're verified."),
    tool_call_response("issue_refund", {"order_id": 1001, "amount": 80, "reason": "item arrived damaged"},
                       call_id="call_refund"),
    text_response("I've refunded $80.00 on order 1001."),
]


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(SCRIPT) as s:
        yield s


@pytest.fixture
def openai_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stub: OpenAIStub) -> Iterator[App]:
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("AGENT_KIT_MODEL", "openai:test-model")
    a = make_app(tmp_path)  # no model given: build_graph reads AGENT_KIT_MODEL
    try:
        yield a
    finally:
        a.store.close()


def _functions(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in request.get("tools", [])}


def test_openai_refund_pauses_for_approval_and_runs_once_after(openai_app: App, stub: OpenAIStub) -> None:
    rt = openai_app.runtime
    assert type(openai_app.runtime.layer.model.chat).__name__ == "ChatOpenAI"

    first = rt.send("t", "Hi, I am Jane Doe, 94107")
    assert first.status == "replied"
    assert first.reply == "Thanks, Jane, you're verified."

    paused = rt.send("t", "Refund $80 on order 1001, it arrived damaged")
    assert paused.status == "paused"
    (pending,) = paused.pending
    assert pending["action"] == {"name": "issue_refund",
                                 "args": {"order_id": 1001, "amount": 80.0, "reason": "item arrived damaged"}}
    assert pending["rule"] == "refund_over_50"
    assert openai_app.shop.refunds(1001) == []
    calls_before_approval = len(stub.requests)

    done = rt.approve(rt.pending("t", kind="approval")[0], approver="lee")

    assert done.status == "replied"
    assert done.reply == "I've refunded $80.00 on order 1001."
    (refund,) = openai_app.shop.refunds(1001)
    assert (refund["amount"], refund["customer_id"], refund["status"]) == (80.0, "cus_jane", "issued")
    assert len(stub.requests) == calls_before_approval + 1 == len(SCRIPT)
    assert set(stub.paths) == {"/v1/chat/completions"}
    assert [(e.kind, e.tool) for e in rt.store.audit.entries("t") if e.kind in ("approved", "executed")] == [
        ("approved", "issue_refund"), ("executed", "issue_refund")]
    assert rt.store.audit.verify().ok


def test_openai_stub_gets_tool_schemas_without_injected_arguments(openai_app: App, stub: OpenAIStub) -> None:
    openai_app.runtime.send("t", "Hi, I am Jane Doe, 94107")

    request = stub.requests[0]
    assert request["model"] == "test-model"
    functions = _functions(request)
    assert {"verify_customer", "get_order", "issue_refund"} <= set(functions)
    # compensations run only through rollback; the model is never offered them
    assert not {"reverse_refund", "remove_discount", "restore_address", "reinstate_order"} & set(functions)
    refund = functions["issue_refund"]["parameters"]
    assert set(refund["properties"]) == {"order_id", "amount", "reason"}
    for name, fn in functions.items():
        props = set(fn["parameters"].get("properties", {}))
        assert not props & {"customer_id", "idempotency_key"}, f"{name} exposes injected args: {props}"


def test_openai_tool_results_reach_the_model_as_tool_messages(openai_app: App, stub: OpenAIStub) -> None:
    openai_app.runtime.send("t", "Hi, I am Jane Doe, 94107")

    tool_msgs = [m for m in stub.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_verify"]
    content = json.loads(tool_msgs[0]["content"])
    assert content["verified"] is True
    assert "customer_id" not in content  # hidden by the policy's visible_fields
