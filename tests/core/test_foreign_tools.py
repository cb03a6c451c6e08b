"""Tools from elsewhere: wrapped from a third party's JSON schema, reporting failure in their result,
or written for LangGraph's own injection."""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest
from langchain_core.tools import StructuredTool, tool
from langgraph.prebuilt import InjectedState, InjectedStore, ToolRuntime

from agent_kit import Mode, error_in_result, register
from agent_kit.errors import RegistrationError
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY

# A retail back office's "update the delivery address" tool, as its vendor publishes it.
ADDRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string", "description": "the account, filled in by the platform"},
        "order_id": {"type": "string", "pattern": "^#W[0-9]{7}$"},
        "zip": {"type": "string", "minLength": 5, "maxLength": 5},
        "country": {"type": "string", "enum": ["USA", "Canada"]},
        "floor": {"type": "integer", "minimum": 0},
        "tip": {"type": "number", "minimum": 0},
    },
    "required": ["user_id", "order_id", "zip", "country"],
}

FOREIGN_POLICY: dict[str, Any] = {
    **POLICY,
    "tools": {**POLICY["tools"],
              "modify_address": {"mode": "execute_limited", "rules": [{"id": "always_ask", "approval": {"role": "lead"}}]},
              "flaky_refund": {"mode": "execute_limited"},
              "flaky_lookup": {"mode": "read_only"},
              "verify": {"mode": "read_only"}},
}


def address_tool(calls: list[dict[str, Any]]) -> StructuredTool:
    def modify_address(**kw: Any) -> dict[str, Any]:
        calls.append(kw)
        return {"ok": True, **kw}

    return StructuredTool(name="modify_address", description="Change an order's delivery address.",
                          args_schema=ADDRESS_SCHEMA, func=modify_address)


GOOD = {"order_id": "#W1234567", "zip": "94107", "country": "USA"}
BAD_ARGS = [
    pytest.param({**GOOD, "floor": "3"}, "floor", id="wrong-type"),
    pytest.param({**GOOD, "floor": True}, "floor", id="bool-for-integer"),
    pytest.param({**GOOD, "floor": 2.5}, "floor", id="float-for-integer"),
    pytest.param({**GOOD, "country": "Mars"}, "country", id="not-in-enum"),
    pytest.param({k: v for k, v in GOOD.items() if k != "zip"}, "zip", id="missing-required"),
    pytest.param({**GOOD, "coupon": "FREE"}, "coupon", id="extra-key"),
    pytest.param({**GOOD, "tip": math.nan}, "finite", id="nan"),
    pytest.param({**GOOD, "tip": math.inf}, "finite", id="infinity"),
    pytest.param({**GOOD, "tip": -1}, "tip", id="below-minimum"),
    pytest.param({**GOOD, "order_id": "1234567"}, "order_id", id="pattern"),
    pytest.param({**GOOD, "user_id": "someone-else"}, "user_id", id="model-sets-the-injected-arg"),
]


@pytest.mark.parametrize(("args", "named"), BAD_ARGS)
def test_bad_arguments_to_a_json_schema_tool_reach_neither_approver_nor_tool(kit_factory, args, named):
    calls: list[dict[str, Any]] = []
    spec = register(address_tool(calls), Mode.EXECUTE_LIMITED, inject={"user_id": "customer_id"})
    kit = kit_factory([tool_call("modify_address", args), "sorry"], FOREIGN_POLICY, tools=[spec])
    r = kit.runtime.send("t", "move my order")
    assert r.pending == [] and kit.store.inbox.list() == []  # no approver was asked
    assert calls == []
    (denied,) = kit.store.audit.entries("t", kind="denied")
    assert denied.data["rule"] == "validation" and named in denied.data["reason"]
    tool_msg = kit.runtime.state("t").values["messages"][-2]
    assert tool_msg.status == "error" and named in tool_msg.content


def test_inject_fills_a_json_schema_tools_argument_from_the_trusted_context(kit_factory):
    calls: list[dict[str, Any]] = []
    spec = register(address_tool(calls), Mode.EXECUTE_LIMITED, inject={"user_id": "customer_id"})
    assert "user_id" not in spec.model_schema["properties"] and "user_id" not in spec.model_schema["required"]
    assert "user_id" not in spec.model_tool["function"]["parameters"]["properties"]
    kit = kit_factory([tool_call("verify", {}), tool_call("modify_address", GOOD), "moved"], FOREIGN_POLICY,
                      tools=[spec, _verifier()])
    kit.runtime.send("t", "I am ann")
    (item,) = kit.runtime.pending("t", kind="approval")
    assert item.action["args"] == GOOD  # the approver sees what the model asked, nothing injected
    assert kit.runtime.approve(item, approver="lee").reply == "moved"
    assert calls == [{**GOOD, "user_id": "cust-ann"}]
    assert [e.tool for e in kit.store.audit.entries("t", kind="executed")] == ["modify_address"]


def _verifier() -> Any:
    @tool
    def verify() -> dict[str, Any]:
        """Verify the customer."""
        return {"customer_id": "cust-ann"}

    return register(verify, Mode.READ_ONLY, on_result=lambda r: {"customer_id": r["customer_id"]})


def test_an_invalid_json_schema_is_refused_at_registration():
    broken = StructuredTool(name="broken", description="x", args_schema={"type": "object", "properties": 3},
                            func=lambda **kw: kw)
    with pytest.raises(RegistrationError, match="invalid JSON schema"):
        register(broken, Mode.READ_ONLY)


def test_inject_names_an_argument_the_json_schema_lacks():
    with pytest.raises(RegistrationError, match="no argument 'account'"):
        register(address_tool([]), Mode.EXECUTE_LIMITED, inject={"account": "customer_id"})


def _state_tool() -> Any:
    @tool
    def with_state(order_id: str, state: Annotated[dict, InjectedState]) -> str:
        """Needs the graph state."""
        return order_id

    return with_state


def _store_tool() -> Any:
    @tool
    def with_store(order_id: str, store: Annotated[Any, InjectedStore()]) -> str:
        """Needs the LangGraph store."""
        return order_id

    return with_store


def _runtime_tool() -> Any:
    @tool
    def with_runtime(order_id: str, runtime: ToolRuntime) -> str:
        """Needs the tool runtime."""
        return order_id

    return with_runtime


@pytest.mark.parametrize(("make", "arg", "marker"), [
    pytest.param(_state_tool, "state", "InjectedState", id="injected-state"),
    pytest.param(_store_tool, "store", "InjectedStore", id="injected-store"),
    pytest.param(_runtime_tool, "runtime", "ToolRuntime", id="tool-runtime"),
])
def test_tools_written_for_langgraphs_injection_are_refused_at_register_with_the_reason(make, arg, marker):
    with pytest.raises(RegistrationError, match=rf"takes '{arg}' as {marker}.*inject="):
        register(make(), Mode.READ_ONLY)


# -- tools that report failure in their result ------------------------------------------------------
def _flaky(result: Any) -> list[Any]:
    effects: list[Any] = []

    @tool
    def flaky_refund(amount: float) -> Any:
        """Refund an amount; the back office answers with an error in the result."""
        effects.append(amount)
        return result

    @tool
    def flaky_lookup(order: str) -> Any:
        """Look an order up; the back office answers with an error in the result."""
        return result

    return [flaky_refund, flaky_lookup, effects]


FAILED_RESULTS = [
    pytest.param("Error: payment gateway timeout", id="error-text"),
    pytest.param({"ok": False, "error": "card declined"}, id="ok-false"),
    pytest.param({"success": False, "message": "no such order"}, id="success-false"),
]


@pytest.mark.parametrize("result", FAILED_RESULTS)
def test_a_failure_reported_in_the_result_is_recorded_as_failed(kit_on, result):
    refund, lookup, _ = _flaky(result)
    specs = [register(refund, Mode.EXECUTE_LIMITED, irreversible=True, failure=error_in_result),
             register(lookup, Mode.READ_ONLY, failure=error_in_result)]
    kit = kit_on([[tool_call("flaky_refund", {"amount": 5}, id="r1"), tool_call("flaky_lookup", {"order": "1"},
                                                                                 id="l1")], "it failed"],
                 FOREIGN_POLICY, tools=specs)
    r = kit.runtime.send("t", "refund 5")
    assert r.reply == "it failed"
    failed = kit.store.audit.entries("t", kind="failed")
    assert sorted(e.tool for e in failed) == ["flaky_lookup", "flaky_refund"]
    assert not [e for e in kit.store.audit.entries("t") if e.kind in ("executed", "read")]
    (record,) = kit.store.ledger.for_thread("t")
    assert record.status == "failed" and record.error
    messages = {m.tool_call_id: m for m in kit.runtime.state("t").values["messages"] if m.type == "tool"}
    assert messages["r1"].status == "error" and messages["l1"].status == "error"
    assert kit.runtime.state("t").values["strikes"] == 2
    assert kit.store.audit.verify().ok


def test_without_a_failure_check_the_same_result_is_a_success(kit_factory):
    refund, _, effects = _flaky("Error: payment gateway timeout")
    kit = kit_factory([tool_call("flaky_refund", {"amount": 5}), "done"], FOREIGN_POLICY,
                      tools=[register(refund, Mode.EXECUTE_LIMITED, irreversible=True)])
    kit.runtime.send("t", "refund 5")
    assert effects == [5.0] and [e.tool for e in kit.store.audit.entries("t", kind="executed")] == ["flaky_refund"]


def test_a_failure_check_that_raises_never_records_a_success(kit_factory):
    refund, _, _ = _flaky({"weird": "shape"})

    def check(result: Any) -> str | None:
        raise KeyError("ok")

    kit = kit_factory([tool_call("flaky_refund", {"amount": 5}), "done"], FOREIGN_POLICY,
                      tools=[register(refund, Mode.EXECUTE_LIMITED, irreversible=True, failure=check)])
    kit.runtime.send("t", "refund 5")
    assert not kit.store.audit.entries("t", kind="executed")
    (failed,) = kit.store.audit.entries("t", kind="failed")
    assert "failure check of flaky_refund raised KeyError" in failed.data["error"]


def test_three_failed_results_in_a_turn_hand_the_case_to_a_person(kit_factory):
    refund, _, effects = _flaky({"ok": False, "error": "declined"})
    steps = [tool_call("flaky_refund", {"amount": n}) for n in (1, 2, 3)] + ["gave up"]
    kit = kit_factory(steps, FOREIGN_POLICY,
                      tools=[register(refund, Mode.EXECUTE_LIMITED, irreversible=True, failure=error_in_result)])
    r = kit.runtime.send("t", "refund")
    assert r.status == "escalated" and effects == [1.0, 2.0, 3.0]
    assert len(kit.store.audit.entries("t", kind="failed")) == 3


def test_a_schema_whose_reference_cannot_be_resolved_runs_nothing(kit_factory):
    calls: list[dict[str, Any]] = []
    schema = {"type": "object", "properties": {"order_id": {"$ref": "https://example.invalid/order.json"}},
              "required": ["order_id"]}
    remote = StructuredTool(name="modify_address", description="x", args_schema=schema,
                            func=lambda **kw: calls.append(kw))
    kit = kit_factory([tool_call("modify_address", {"order_id": "1"}), "sorry"], FOREIGN_POLICY,
                      tools=[register(remote, Mode.EXECUTE_LIMITED)])
    kit.runtime.send("t", "go")
    assert calls == [] and kit.store.inbox.list() == []
    (denied,) = kit.store.audit.entries("t", kind="denied")
    assert "could not be checked" in denied.data["reason"]
