"""Exactly once across crashes: a real OS process is SIGKILLed at each point of an effect's life,
for every execute tool of the fixture app (tests/fixture_app), under sync and async durability; a new
process then does what the person would do (the same approval again, the customer's same answer
again) and the action runs exactly once, as its system of record, the ledger and the audit trail all
agree.

Also here: forking a thread from an older checkpoint never runs an effect again, and
``durability="exit"`` is refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langgraph.types import Command

from agent_kit import AgentRuntime
from agent_kit.graph import RunContext
from agent_kit.errors import AgentKitError, UsageError

from ._checks import THREAD, ForkServer, assert_executed_exactly_once, effect_count, report_of
from .worker import SCENARIOS

POINTS = [
    "before_intent",      # the approval (or the customer's answer) is recorded; the ledger is not
    "before_effect",      # the ledger says "started"; the tool has not been called
    "after_effect",       # the tool ran; its result is not in the ledger
    "after_result",       # the ledger says "done"; no "executed" audit entry yet
    "before_writes",      # everything recorded; the execute node's writes are not saved
    "before_checkpoint",  # the node's writes are saved; the checkpoint after them is not
]
AFTER_EFFECT = {"after_effect", "after_result", "before_writes", "before_checkpoint"}
TOOLS = list(SCENARIOS)
APPROVED_BY_STAFF = {t for t, s in SCENARIOS.items() if s["decide"][0] == "approve"}


@pytest.fixture(scope="session")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """Every worker step runs in its own forked process of one pre-imported server."""
    server = ForkServer(tmp_path_factory.mktemp("forks"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def paused_home(tmp_path_factory: pytest.TempPathFactory, forks: ForkServer) -> Callable[[str, Path], Path]:
    """Copies of a home where the scenario's thread waits at its gate (made once per scenario)."""
    templates: dict[str, Path] = {}

    def copy(scenario: str, dest: Path) -> Path:
        if scenario not in templates:
            home = tmp_path_factory.mktemp(f"paused_{scenario}")
            report = report_of(forks.run(home, scenario, "setup"))
            expected = "replied" if scenario == "create_ticket" else "paused"  # create_ticket has no gate
            assert report["result"]["status"] == expected, report
            templates[scenario] = home
        shutil.copytree(templates[scenario], dest)
        return dest

    return copy


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["sync", "async"])
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("tool", TOOLS)
def test_sigkill_then_resume_runs_the_action_exactly_once(
    tool: str, point: str, durability: str, paused_home: Callable[[str, Path], Path], forks: ForkServer,
    tmp_path: Path,
) -> None:
    home = paused_home(tool, tmp_path / "home")

    crashed = forks.run(home, tool, "decide", durability=durability, crash_at=point)
    assert crashed.returncode == -9, (
        f"the worker should have been SIGKILLed at {point}; exit {crashed.returncode}\n{crashed.stderr[-3000:]}")
    assert effect_count(home, tool) == (1 if point in AFTER_EFFECT else 0)

    # A new process: the operator approves again / the customer answers again.
    recovered = report_of(forks.run(home, tool, "recover", durability=durability))
    assert recovered["result"]["status"] == "replied", recovered
    assert recovered["result"]["pending"] == []

    from agent_kit.store import Store

    with Store.open(home=home) as store:
        assert_executed_exactly_once(store, home, THREAD, tool)
        if tool in APPROVED_BY_STAFF:
            approved = store.audit.entries(THREAD, kind="approved")
            assert [(e.actor, e.tool) for e in approved] == [("lee", tool)]  # the approval was not lost
            assert store.audit.entries(THREAD, kind="escalated") == []


# -- durability="async": an effect waits for the checkpoints of the steps that asked for it -------

@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_effect", "after_effect"])
def test_under_async_durability_a_crash_before_the_asking_step_is_saved_runs_the_action_once(
    point: str, backend: str, forks: ForkServer, tmp_path: Path,
) -> None:
    """Under ``durability="async"`` LangGraph saves a step's checkpoint while the next steps run. The
    customer's message runs ``create_ticket`` in the same run that asks the model; with every
    checkpoint slow to save, a crash in the execute node would otherwise find the model's step
    unsaved: the recovery asks the model again, its new message is a new call with a new key, and
    the ticket is opened twice (or a ``started`` record is left for a call that no longer exists).
    The execute node waits until the checkpoint it was scheduled from is saved."""
    import uuid

    from tests._pg import PG_URL, drop_schema

    db = {"db_url": PG_URL, "schema": f"ak_test_{uuid.uuid4().hex[:10]}"} if backend == "postgres" else {}
    home = tmp_path / "home"
    try:
        report = report_of(forks.run(home, "create_ticket", "setup", **db))
        assert report["result"]["status"] == "replied", report
        crashed = forks.run(home, "create_ticket", "decide", durability="async", crash_at=point,
                            env={"RELIABILITY_SLOW_PUT": "0.4"}, **db)
        assert crashed.returncode == -9, f"exit {crashed.returncode}\n{crashed.stderr[-3000:]}"
        assert effect_count(home, "create_ticket") == (1 if point in AFTER_EFFECT else 0)
        recovered = report_of(forks.run(home, "create_ticket", "recover", durability="async", **db))
        assert recovered["result"]["status"] == "replied", recovered

        from agent_kit.store import Store

        with Store.open(home=home, **db) as store:
            assert_executed_exactly_once(store, home, THREAD, "create_ticket")
    finally:
        if db:
            drop_schema(db["schema"])


# -- forks from old checkpoints ------------------------------------------------------------------

def _keeping_every_checkpoint(app) -> AgentRuntime:  # type: ignore[no-untyped-def]
    """The app's runtime without checkpoint retention, so old checkpoints exist to fork from."""
    return AgentRuntime(app.runtime.graph, store=app.store, retention=None)


def test_forking_from_any_older_checkpoint_never_refunds_again(app) -> None:  # type: ignore[no-untyped-def]
    rt = _keeping_every_checkpoint(app)
    app.runtime = rt
    app.say("t", "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    rt.approve(rt.pending("t", kind="approval")[0], approver="lee")
    assert len(app.shop.refunds(1001)) == 1
    history = list(rt.graph.get_state_history({"configurable": {"thread_id": "t"}}))
    assert len(history) > 5
    forks = 0
    for snap in history[1:]:  # every checkpoint older than the last one
        old = snap.config["configurable"]["checkpoint_id"]
        rt.graph.invoke(None, {"configurable": {"thread_id": "t", "checkpoint_id": old}})
        forks += 1
        assert len(app.shop.refunds(1001)) == 1, f"forking from checkpoint {old} (next={snap.next}) refunded again"
    assert forks == len(history) - 1
    executed = app.store.audit.entries("t", kind="executed")
    assert [e.tool for e in executed] == ["issue_refund"]
    assert app.store.audit.verify().ok


def test_fork_paused_on_the_approval_cannot_refund_twice_even_if_approved_again(app) -> None:  # type: ignore[no-untyped-def]
    rt = _keeping_every_checkpoint(app)
    app.runtime = rt
    app.say("t", "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    paused_at = rt.state("t").config["configurable"]["checkpoint_id"]
    rt.approve(rt.pending("t", kind="approval")[0], approver="lee")
    assert len(app.shop.refunds(1001)) == 1

    rt.graph.invoke(None, {"configurable": {"thread_id": "t", "checkpoint_id": paused_at}})
    again = rt.result("t")
    assert again.status == "paused"  # the fork asks again rather than executing on its own
    assert len(app.shop.refunds(1001)) == 1
    rt.approve(rt.pending("t", kind="approval")[0], approver="sam")  # someone approves the forked request too
    assert len(app.shop.refunds(1001)) == 1  # same action, same idempotency key: the recorded result
    executed = app.store.audit.entries("t", kind="executed")
    assert len({e.data["idempotency_key"] for e in executed}) == 1
    records = app.store.ledger.for_thread("t")
    assert [(r.tool, r.status) for r in records] == [("issue_refund", "done")]
    assert app.store.audit.verify().ok


# -- durability="exit" ---------------------------------------------------------------------------

def test_runtime_refuses_exit_durability(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    graph = sqlite_app.runtime.graph
    with pytest.raises(UsageError, match="durability 'exit' is refused"):
        AgentRuntime(graph, store=sqlite_app.store, durability="exit")  # type: ignore[arg-type]


def test_graph_resumed_with_exit_durability_refuses_before_any_effect(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    rt: AgentRuntime = sqlite_app.runtime
    sqlite_app.say("t", "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    (pending,) = rt.state("t").interrupts
    payload = {"decisions": [{"type": "approve"}], "approver": "lee", "action_hash": pending.value["action_hash"]}
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(AgentKitError, match="durability='exit' is refused"):
        rt.graph.invoke(Command(resume={pending.id: payload}), config, durability="exit",
                        context=RunContext(store=sqlite_app.store, actor="lee"))
    assert sqlite_app.shop.refunds(1001) == []
    assert sqlite_app.store.ledger.for_thread("t") == []


def test_a_new_turn_with_exit_durability_is_refused(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.messages import HumanMessage

    with pytest.raises(AgentKitError, match="durability='exit' is refused"):
        sqlite_app.runtime.graph.invoke({"messages": [HumanMessage("Hi, I am Jane Doe, 94107")]},
                                        {"configurable": {"thread_id": "t"}}, durability="exit")


# -- approvals are bound to the action -----------------------------------------------------------

def test_an_approval_naming_another_action_hash_executes_nothing(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    rt: AgentRuntime = sqlite_app.runtime
    sqlite_app.say("t", "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    (pending,) = rt.state("t").interrupts
    forged = {"decisions": [{"type": "approve"}], "approver": "lee", "action_hash": "0" * 64}
    rt.graph.invoke(Command(resume={pending.id: forged}), {"configurable": {"thread_id": "t"}}, durability="sync")
    assert sqlite_app.shop.refunds(1001) == []
    assert rt.result("t").status == "paused"  # refused in the node and asked again
    assert [e.kind for e in sqlite_app.store.audit.entries("t")][-2:] == ["refused", "approval_requested"]
    rt.approve(rt.pending("t", kind="approval")[0], approver="lee")
    assert len(sqlite_app.shop.refunds(1001)) == 1


def _copy_thread(saver, source: str, target: str) -> None:  # type: ignore[no-untyped-def]
    """What LangGraph Server's ``threads.copy`` does: the thread's checkpoints and pending writes,
    under another thread id (the savers here do not implement ``copy_thread``)."""
    tuples = list(saver.list({"configurable": {"thread_id": source}}))
    for t in reversed(tuples):  # oldest first, so every parent exists before its child
        parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        cfg = {"configurable": {"thread_id": target, "checkpoint_ns": "",
                                **({"checkpoint_id": parent} if parent else {})}}
        saved = saver.put(cfg, t.checkpoint, t.metadata, dict(t.checkpoint["channel_versions"]))
        by_task: dict[str, list] = {}  # type: ignore[type-arg]
        for task_id, channel, value in t.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            saver.put_writes(saved, writes, task_id)


def test_a_copy_of_a_paused_thread_cannot_spend_the_approval_again(app) -> None:  # type: ignore[no-untyped-def]
    rt = app.runtime
    app.say("t", "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    (asked,) = rt.state("t").interrupts
    _copy_thread(rt.graph.checkpointer, "t", "copy")
    (copied,) = rt.state("copy").interrupts
    assert copied.id == asked.id  # the copy holds the very same pending interrupt
    assert rt.pending("copy") == []  # but it was never asked there: no inbox item, no request entry

    rt.approve("t", interrupt_id=asked.id, approver="lee")
    assert len(app.shop.refunds(1001)) == 1
    again = rt.approve("copy", interrupt_id=asked.id, approver="sam")
    assert len(app.shop.refunds(1001)) == 1, "approving the copy paid the one requested refund a second time"
    assert again.status == "paused"  # asked again on the copy, saying why, under an id of its own
    (fresh,) = rt.state("copy").interrupts
    assert fresh.id != asked.id and "never asked on this thread" in fresh.value["refused"]["reason"]
    refused = [e for e in app.store.audit.entries("copy", kind="refused") if e.data.get("rule") == "not_asked_here"]
    assert [e.interrupt_id for e in refused] == [asked.id]  # (the copied context is refused too: signed for "t")
    assert app.store.audit.entries("copy", kind="approved") == []
    assert app.store.audit.entries("copy", kind="executed") == []
    assert [i.interrupt_id for i in rt.pending("t")] == []  # the original's inbox is untouched by the copy
    assert [i.interrupt_id for i in rt.pending("copy")] == [fresh.id]
    assert app.store.audit.verify().ok
