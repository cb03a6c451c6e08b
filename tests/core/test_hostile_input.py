"""Hostile input, every door, both backends: each value × each way in.

Every value that reaches agent_kit is either stored and replayed as it is, or refused up front
with a typed :class:`~agent_kit.errors.InputError` (an :class:`~agent_kit.errors.ApprovalError`
for a well-formed name the policy does not know). Whatever happens: no other exception escapes,
the thread answers its next message, the audit chain verifies, and no inbox item is lost.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.tools import tool

from agent_kit import Mode, register
from agent_kit.errors import ApprovalError, InputError
from agent_kit.limits import InputLimits
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY, Kit


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": [value]}
    return value


# value, and whether it is Unicode text / JSON every backend stores as it is.
CASES: dict[str, tuple[Any, bool]] = {
    "nul": ("a\x00b\x00", True),
    "controls": ("bell\x07 esc\x1b[2J del\x7f csi\x9b tab\t cr\r", True),
    "line_separators": ("a\u2028b\u2029c\x85d", True),
    "bom_rtl_zero_width": ("\ufeffstart \u202eevil\u200b\u2066", True),
    "emoji_pair": ("ok \U0001F642 \U0001F468\u200d\U0001F469", True),
    "lone_high_surrogate": ("bad \ud800 text", False),
    "lone_low_surrogate": ("bad \udfff", False),
    "split_pair": ("\udc3d\ud83d", False),
    "digits": ("9" * 5000, True),
    "big_int": (2**80, False),
    "negative_big_int": (-(2**70), False),
    "inf": (float("inf"), False),
    "nan": (float("nan"), False),
    "huge_float_text": ("1e400", True),
    "decimal": (Decimal("1.5"), False),
    "bytes": (b"\x00\xff", False),
    "nested_10000": (_nested(10_000), False),
    "nul_in_key": ({"k\x00ey": 1, "\u2028": "x"}, True),
    "surrogate_in_key": ({"k\ud800": 1}, False),
    "int_key": ({1: "one"}, False),
    "long_key": ({"k" * 50_000: 1}, True),
    "ten_megabytes": ("x" * 10_000_000, False),
}

ENTRIES = ["message", "tool_args", "tool_result", "confirmation", "approver", "edit", "reject"]

HOSTILE_POLICY: dict[str, Any] = copy.deepcopy(POLICY)
HOSTILE_POLICY["tools"].update({
    "echo": {"mode": "execute_limited"},
    "produce": {"mode": "execute_limited"},
    "confirm_it": {"mode": "execute_limited", "rules": [{"id": "customer_confirms", "verification": "confirm"}]},
    "gated": {"mode": "execute_limited", "rules": [{"id": "gated_needs_lead", "approval": {"role": "lead"}}]},
})


def _tools(result: Any) -> list[Any]:
    @tool
    def echo(payload: Any) -> dict[str, Any]:
        """Echo a payload."""
        return {"echoed": payload}

    @tool
    def produce(n: int) -> Any:
        """Produce a value."""
        return result

    @tool
    def confirm_it(what: str) -> dict[str, Any]:
        """Do something the customer confirms."""
        return {"done": what}

    @tool
    def gated(payload: Any) -> dict[str, Any]:
        """Do something a lead approves."""
        return {"done": payload}

    return [register(t, Mode.EXECUTE_LIMITED, changes=["things"], irreversible=True)
            for t in (echo, produce, confirm_it, gated)]


def _storable_text(value: Any, ok: bool) -> bool:
    return ok and isinstance(value, str) and len(value) <= InputLimits().max_message_chars


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_value_is_stored_as_it_is_or_refused_and_nothing_jams(kit_on: Any, case: str, entry: str) -> None:
    value, ok = CASES[case]
    steps: list[Any] = {
        "message": ["ok"],
        "tool_args": [tool_call("echo", {"payload": value}), "done"],
        "tool_result": [tool_call("produce", {"n": 1}), "done"],
        "confirmation": [tool_call("confirm_it", {"what": "x"}), "done"],
    }.get(entry, [tool_call("gated", {"payload": "x"}), "done"])
    kit: Kit = kit_on(steps, HOSTILE_POLICY, tools=_tools(value))
    store, runtime = kit.store, kit.runtime
    allowed: tuple[type[Exception], ...] = (InputError, ApprovalError) if entry == "approver" else (InputError,)

    refused: Exception | None = None
    before: list[str] = []
    if entry != "message":
        runtime.send("t", "hi")
        before = [p["interrupt_id"] for p in kit.pending()]
    pending = kit.pending()
    try:
        if entry == "message":
            runtime.send("t", value)
        elif entry in ("tool_args", "tool_result"):
            pass  # the value came in with the first turn
        elif entry == "confirmation":
            runtime.send("t", value)
        elif entry == "approver":
            runtime.approve(pending[0], approver=value)
        elif entry == "edit":
            runtime.approve(pending[0], approver="lee", edit={"name": "gated", "args": {"payload": value}})
        elif entry == "reject":
            runtime.reject(pending[0], approver="lee", reason=value)
    except allowed as exc:
        refused = exc
        assert str(exc).strip() and "\n" not in str(exc).strip(), "one clear line"
        if isinstance(exc, InputError):
            assert exc.field
        # A refusal changes nothing: what waited still waits.
        assert [p["interrupt_id"] for p in kit.pending()] == before

    # Stored values are replayed as they are.
    if refused is None and entry == "message":
        assert _storable_text(value, ok)
        assert runtime.state("t").values["messages"][0].content == value
    if entry == "reject" and refused is None:
        assert _storable_text(value, ok)
        [rejected] = [e for e in store.audit.entries("t") if e.kind == "rejected"]
        assert rejected.data["message"] == value
    if entry == "tool_args":
        done = [r for r in store.ledger.for_thread("t") if r.tool == "echo"]
        if ok and len(str(value)) < InputLimits().max_args_chars:
            assert [r.args for r in done] == [{"payload": value}]
        else:  # refused as an invalid call: audited as denied, the model told why, nothing ran
            assert done == []
            assert any(e.kind == "denied" for e in store.audit.entries("t"))
    if entry == "tool_result":
        [record] = [r for r in store.ledger.for_thread("t") if r.tool == "produce"]
        assert record.status == "done"
        if ok:
            assert _same(record.result, value)
        else:  # the effect ran: its result is kept as text saying what it was, never lost
            assert record.result is not None
    if entry in ("message", "reject", "confirmation") and refused is not None:
        assert not _storable_text(value, ok)

    # The thread answers its next message, the trail verifies, and no inbox item is lost.
    after = runtime.send("t", "hello again")
    assert after.reply
    report = store.audit.verify()
    assert report.ok, report.problem
    live = {p["interrupt_id"] for p in runtime.result("t").pending}
    assert {i.interrupt_id for i in store.inbox.for_thread("t")} == live
    if refused is not None and entry in ("approver", "edit", "reject"):
        assert set(before) <= live
