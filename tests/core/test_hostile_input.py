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

ENTRIES = ["message", "held_message", "tool_args", "tool_result", "confirmation", "approver", "edit", "reject"]

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
        if entry in ("message", "held_message"):
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
    if entry == "held_message" and refused is None:
        assert _storable_text(value, ok)
        [held] = [e for e in store.audit.entries("t") if e.kind == "message_held"]
        assert held.data["text"] == value
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
    if entry in ("message", "held_message", "reject", "confirmation") and refused is not None:
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
    if entry == "held_message" and refused is None:
        # Delivered once the decision is made: the model gets the held text as it was sent.
        runtime.reject(runtime.result("t").pending[0], approver="lee", reason="no")
        delivered = [m.content for m in runtime.state("t").values["messages"] if m.id and m.id.startswith("held-")]
        assert value in delivered and store.audit.verify().ok


@pytest.mark.parametrize("name", ["pay\x00", "pay\ud800", "\u202epay", "p" * 5000, ""],
                         ids=["nul", "surrogate", "bidi", "long", "empty"])
def test_a_tool_call_with_a_hostile_name_is_refused_and_answered(kit_on: Any, name: str) -> None:
    kit: Kit = kit_on([{"name": name, "args": {"to": "bob", "amount": 5}, "id": "c1"}, "done"], HOSTILE_POLICY,
                      tools=_tools(None))
    assert kit.runtime.send("t", "hi").reply
    assert kit.bank.payments() == []
    assert any(e.kind == "denied" for e in kit.store.audit.entries("t"))
    assert kit.runtime.send("t", "again").reply and kit.store.audit.verify().ok


@pytest.mark.parametrize("case", ["lone_high_surrogate", "split_pair", "ten_megabytes", "nul", "line_separators"])
def test_a_message_sent_straight_to_the_graph_is_kept_or_refused_and_the_thread_answers(kit_on: Any,
                                                                                        case: str) -> None:
    """A served graph's input skips the runtime's door: the agent node keeps what can be stored and
    replaces what cannot by a note of its refusal, so the thread (and its model) stays usable."""
    from langchain_core.messages import HumanMessage

    from agent_kit.graph import RunContext

    value, ok = CASES[case]
    kit: Kit = kit_on(["ok", "again"], HOSTILE_POLICY, tools=_tools(None))
    config = {"configurable": {"thread_id": "t"}}
    out = kit.runtime.graph.invoke({"messages": [HumanMessage(content=value)]}, config,
                                   context=RunContext(store=kit.store))
    first, reply = out["messages"][0], out["messages"][-1]
    if _storable_text(value, ok):
        assert first.content == value and reply.content == "ok"
    else:
        assert "refused" in first.content and len(first.content) < 1000
        assert reply.content.startswith("I could not accept your message")
    assert kit.runtime.send("t", "hello again").reply
    assert kit.store.audit.verify().ok


@pytest.mark.parametrize("value,kept", [
    (Decimal("1.10"), "1.10"), (b"\x00\xff", "b'\\x00\\xff'"), (1e308, 1e308), ({"deep": _nested(200)}, None),
    ([2**64, 2**64 - 1, -(2**63), -(2**63) - 1], ["18446744073709551616", 2**64 - 1, -(2**63), "-9223372036854775809"]),
], ids=["decimal", "bytes", "huge_finite_float", "deep_under_a_key", "int_bounds"])
def test_a_result_is_kept_in_a_form_every_backend_stores(kit_on: Any, value: Any, kept: Any) -> None:
    kit: Kit = kit_on([tool_call("produce", {"n": 1}), "done"], HOSTILE_POLICY, tools=_tools(value))
    assert kit.runtime.send("t", "hi").reply == "done"
    [record] = [r for r in kit.store.ledger.for_thread("t") if r.tool == "produce"]
    assert record.status == "done"
    if kept is not None:
        assert record.result == kept
    assert kit.store.audit.verify().ok and kit.runtime.send("t", "again").reply


def test_a_result_over_the_limit_reaches_the_model_cut_and_the_ledger_whole(kit_on: Any) -> None:
    big = "y" * 2_000_000
    kit: Kit = kit_on([tool_call("produce", {"n": 1}), "done"], HOSTILE_POLICY, tools=_tools(big))
    kit.runtime.send("t", "hi")
    [record] = [r for r in kit.store.ledger.for_thread("t") if r.tool == "produce"]
    assert record.result == big
    [seen] = [m for m in kit.runtime.state("t").values["messages"] if getattr(m, "name", None) == "produce"]
    assert len(seen.content) < InputLimits().max_result_chars + 200 and "cut" in seen.content


def test_too_many_calls_in_one_message_are_refused_past_the_limit(kit_on: Any) -> None:
    n = InputLimits().max_tool_calls + 40
    kit: Kit = kit_on([[tool_call("echo", {"payload": i}) for i in range(n)], "done"], HOSTILE_POLICY,
                      tools=_tools(None))
    kit.runtime.send("t", "hi")
    ran = [r for r in kit.store.ledger.for_thread("t") if r.tool == "echo"]
    assert len(ran) <= InputLimits().max_tool_calls
    assert kit.runtime.send("t", "again").reply and kit.store.audit.verify().ok


def test_limits_come_from_the_environment_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_KIT_MAX_MESSAGE_CHARS", "1_000")
    assert InputLimits.from_env().max_message_chars == 1000
    assert InputLimits.from_env(max_message_chars=5).max_message_chars == 5
    monkeypatch.setenv("AGENT_KIT_MAX_DEPTH", "deep")
    with pytest.raises(InputError, match="AGENT_KIT_MAX_DEPTH"):
        InputLimits.from_env()
    with pytest.raises(InputError, match="max_args_chars"):
        InputLimits(max_args_chars=0)


def test_a_message_over_a_configured_limit_is_refused_naming_the_field(kit_on: Any) -> None:
    from agent_kit import AgentRuntime

    kit: Kit = kit_on(["ok"], HOSTILE_POLICY, tools=_tools(None))
    runtime = AgentRuntime(kit.graph, store=kit.store, limits=InputLimits(max_message_chars=10))
    with pytest.raises(InputError, match="limit is 10") as refused:
        runtime.send("t", "x" * 11)
    assert refused.value.field == "message" and not runtime.exists("t")
    assert runtime.send("t", "x" * 10).reply == "ok"


@pytest.mark.parametrize("case", ["big_int", "nested_10000", "inf", "lone_high_surrogate", "nul", "ten_megabytes"])
def test_a_hostile_edit_sent_straight_to_the_graph_is_refused_typed_and_the_run_stays_decidable(
        kit_on: Any, case: str) -> None:
    """What a server's client sends as a resume skips the runtime's door: it is refused by the node
    (asked again) or, when not even a checkpoint can hold it, with a CheckpointError; never a raw
    TypeError, and the run waits for a decision as before."""
    from langgraph.types import Command

    from agent_kit.errors import CheckpointError
    from agent_kit.graph import RunContext

    value, ok = CASES[case]
    kit: Kit = kit_on([tool_call("gated", {"payload": "x"}), "done", "again"], HOSTILE_POLICY, tools=_tools(None))
    kit.runtime.send("t", "hi")
    [pending] = kit.pending()
    resume = {pending["interrupt_id"]: {"approver": "lee", "decisions": [
        {"type": "edit", "edited_action": {"name": "gated", "args": {"payload": value}}}]}}
    try:
        kit.runtime.graph.invoke(Command(resume=resume), {"configurable": {"thread_id": "t"}},
                                 context=RunContext(store=kit.store))
    except CheckpointError as exc:
        assert case in ("big_int", "nested_10000") and "\n" not in str(exc)
    # The next runtime call on the thread lists exactly what is pending (a checkpoint that could
    # not be saved after the node wrote the inbox is healed here).
    kit.runtime.recover("t")
    [still] = kit.pending()  # the same item when refused, the edited one (asked again) when stored
    assert {i.interrupt_id for i in kit.store.inbox.for_thread("t")} == {still["interrupt_id"]}
    assert still["action"]["args"] == ({"payload": value} if ok else {"payload": "x"})
    for _ in range(3):
        if not kit.pending():
            break
        assert kit.runtime.reject(kit.pending()[0], approver="sam", reason="no").reply
    assert kit.store.audit.verify().ok and kit.store.inbox.for_thread("t") == [] and not kit.pending()
    [ledger_done] = [[r for r in kit.store.ledger.for_thread("t") if r.tool == "gated"]]
    assert ledger_done == []


@pytest.mark.postgres
def test_an_audit_table_from_before_is_made_nul_tolerant_when_opened(tmp_path: Any) -> None:
    import uuid

    import psycopg

    from agent_kit.store import Store
    from tests._pg import ensure_test_database
    from tests._pg import PG_URL, drop_schema

    ensure_test_database()
    schema = f"ak_test_{uuid.uuid4().hex[:10]}"
    cols = ",\n".join(f"{c} TEXT GENERATED ALWAYS AS ((body::jsonb) ->> '{c}') STORED"
                      for c in ("thread_id", "kind", "tool", "action_hash", "actor", "at", "key"))
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".audit (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, '
                     f'body TEXT NOT NULL, mac TEXT, {cols})')
    try:
        store = Store.open(home=tmp_path, db_url=PG_URL, schema=schema)
        store.audit.append("message_held", actor="customer", thread_id="t\x00x", data={"text": "a\x00b"})
        [entry] = store.audit.entries()
        assert entry.data == {"text": "a\x00b"} and entry.thread_id == "t\x00x"
        assert [e.seq for e in store.audit.entries(kind="message_held")] == [1]
        assert store.audit.verify().ok
        store.close()
    finally:
        drop_schema(schema)


@pytest.mark.parametrize("thread", ["t\x00", "t\ud800", "t\x1b[2J", "t" * 201])
def test_a_hostile_thread_id_is_refused_by_every_runtime_call(kit_on: Any, thread: str) -> None:
    """Postgres refuses NUL in any text parameter: a thread id is checked before it reaches a query."""
    kit: Kit = kit_on(["ok"], HOSTILE_POLICY, tools=_tools(None))
    calls = [lambda: kit.runtime.send(thread, "hi"), lambda: kit.runtime.result(thread),
             lambda: kit.runtime.pending(thread), lambda: kit.runtime.exists(thread),
             lambda: kit.runtime.recover(thread),
             lambda: kit.runtime.approve(thread, approver="lee", interrupt_id="x"),
             lambda: kit.runtime.reject(thread, approver="lee", reason="no", interrupt_id="x")]
    for call in calls:
        with pytest.raises(InputError) as refused:
            call()
        assert refused.value.field == "thread_id"
    assert kit.runtime.send("t", "hi").reply == "ok" and kit.store.audit.verify().ok
