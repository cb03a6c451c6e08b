"""Checkpoint retention: a pruned thread keeps resuming, approving, auditing and reading its state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent_kit import AgentRuntime, Policy, create_permissioned_agent
from agent_kit.errors import AgentKitError
from agent_kit.retention import RetentionPolicy, checkpoint_count, prune_checkpoints, reclaim_space
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel, tool_call
from tests._pg import PG_URL, drop_schema
from tests.core.conftest import POLICY, Bank, bank_specs


class RetentionKit:
    """The core tests' bank on one store (SQLite file or a fresh Postgres schema)."""

    def __init__(self, home: Path, store: Store, steps: list[Any]) -> None:
        self.home = home
        self.store = store
        self.bank = Bank(home / "bank.sqlite")
        self.graph = create_permissioned_agent(ScriptedChatModel(steps=steps), bank_specs(self.bank),
                                               Policy.from_dict(POLICY), store=store,
                                               context_keys={"sentiment": str})
        # Retention is applied by hand in these tests, to see each prune's effect.
        self.runtime = AgentRuntime(self.graph, store=store, retention=None)
        self.saver = store.checkpointer()

    def rows(self, thread: str = "t") -> int:
        return checkpoint_count(self.store, thread)

    def kinds(self, thread: str = "t") -> list[str]:
        return [e.kind for e in self.store.audit.entries(thread)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    stores: list[Store] = []
    schema = f"ak_ret_{uuid.uuid4().hex[:10]}" if request.param == "postgres" else None

    def open_store() -> Store:
        store = Store.open(db_url=PG_URL, schema=schema) if schema else Store.open(home=tmp_path)
        stores.append(store)
        return store

    def make(steps: list[Any]) -> RetentionKit:
        return RetentionKit(tmp_path, open_store(), steps)

    make.open_store = open_store  # type: ignore[attr-defined]
    yield make
    for s in stores:
        s.close()
    if schema:
        drop_schema(schema)


def test_paused_thread_resumes_and_executes_once_after_prune(make_kit):
    kit = make_kit([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    assert kit.runtime.send("t", "pay ann 50").status == "paused"
    before = kit.rows()
    assert before > 1
    assert prune_checkpoints(kit.store, "t") == before - 1
    assert kit.rows() == 1
    (intr,) = kit.runtime.state("t").interrupts
    assert intr.value["kind"] == "approval"
    result = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    assert result.status == "replied" and result.reply == "paid"
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert kit.kinds() == ["approval_requested", "approved", "started", "executed"]
    assert kit.store.audit.verify().ok


def test_resume_after_prune_works_from_a_new_store_instance(make_kit):
    kit = make_kit([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50")
    prune_checkpoints(kit.saver, "t")
    other = make_kit(["unused"])  # a second process would open the store like this
    (item,) = other.runtime.pending("t", kind="approval")
    result = other.runtime.approve(item, approver="lee")
    assert result.status == "replied"
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    # A duplicate approval finds nothing pending and runs nothing.
    with pytest.raises(AgentKitError):
        kit.runtime.approve(item, approver="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]


def test_two_of_approval_survives_a_prune_between_the_approvals(make_kit):
    kit = make_kit([tool_call("pay", {"to": "bob", "amount": 150}), "paid"])
    kit.runtime.send("t", "pay bob 150")
    first = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    assert first.status == "paused" and kit.bank.payments() == []
    assert first.pending[0]["approvals"][0]["approver"] == "lee"
    assert prune_checkpoints(kit.store, "t") > 0 and kit.rows() == 1
    (intr,) = kit.runtime.state("t").interrupts
    assert [a["approver"] for a in intr.value["approvals_given"]] == ["lee"]
    with pytest.raises(AgentKitError):  # the same approver twice is still refused after the prune
        kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    result = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="sam")
    assert result.status == "replied" and kit.bank.payments() == [("bob", 150.0, 0)]
    assert kit.kinds().count("approved") == 2 and kit.kinds().count("executed") == 1
    assert kit.store.audit.verify().ok


def test_get_state_reads_the_whole_conversation_after_prune(make_kit):
    kit = make_kit([tool_call("lookup", {"account": "a1"}), "balance is 100"])
    kit.runtime.send("t", "my balance?")
    values = kit.runtime.state("t").values
    prune_checkpoints(kit.store, "t")
    snap = kit.runtime.state("t")
    assert snap.values["messages"] == values["messages"] and len(snap.values["messages"]) == 4
    assert snap.next == () and snap.parent_config is None
    assert kit.runtime.result("t").reply == "balance is 100"


def test_checkpoint_rows_stay_bounded_over_a_50_turn_conversation(make_kit):
    steps: list[Any] = []
    for i in range(50):
        steps += [tool_call("lookup", {"account": f"a{i}"}), f"reply {i}"]
    kit = make_kit(steps)
    retention = RetentionPolicy(keep_latest=1, reclaim_every=10)
    for i in range(50):
        assert kit.runtime.send("t", f"turn {i}").reply == f"reply {i}"
        retention.apply(kit.store, "t")
        assert kit.rows() == 1
    assert len(kit.runtime.state("t").values["messages"]) == 200
    assert kit.kinds().count("read") == 50 and kit.store.audit.verify().ok
    if kit.store.backend == "postgres":  # blobs of pruned checkpoints are freed too
        with kit.saver._cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM checkpoint_blobs WHERE thread_id = 't'")
            assert cur.fetchone()["n"] <= 10


def test_unpruned_thread_grows_and_keep_latest_keeps_that_many(make_kit):
    kit = make_kit([tool_call("lookup", {"account": "a"}), "r1", tool_call("lookup", {"account": "b"}), "r2"])
    kit.runtime.send("t", "one")
    kit.runtime.send("t", "two")
    total = kit.rows()
    assert total >= 8
    assert prune_checkpoints(kit.store, "t", keep_latest=3) == total - 3 and kit.rows() == 3
    assert prune_checkpoints(kit.store, "t", keep_latest=3) == 0
    assert prune_checkpoints(kit.store, "t") == 2 and kit.rows() == 1
    assert len(kit.runtime.state("t").values["messages"]) == 8


def test_prune_touches_only_the_named_thread(make_kit):
    kit = make_kit([tool_call("lookup", {"account": "a"}), "r1", tool_call("lookup", {"account": "b"}), "r2"])
    kit.runtime.send("t", "one")
    kit.runtime.send("u", "two")
    other = kit.rows("u")
    prune_checkpoints(kit.store, "t")
    assert kit.rows("t") == 1 and kit.rows("u") == other
    assert prune_checkpoints(kit.store, "nobody") == 0


@pytest.mark.parametrize("keep", [0, -1, 1.5, True], ids=["zero", "negative", "float", "bool"])
def test_keep_latest_below_one_is_refused(make_kit, keep):
    kit = make_kit(["hi"])
    with pytest.raises(AgentKitError, match="keep_latest"):
        prune_checkpoints(kit.store, "t", keep_latest=keep)


def test_unsupported_checkpointer_is_refused_by_name():
    with pytest.raises(AgentKitError, match="InMemorySaver"):
        prune_checkpoints(InMemorySaver(), "t")
    with pytest.raises(AgentKitError, match="cannot prune"):
        prune_checkpoints(object(), "t")


def test_reclaim_space_shrinks_the_sqlite_file(tmp_path):
    store = Store.open(home=tmp_path)
    try:
        steps: list[Any] = []
        for i in range(30):
            steps += [tool_call("lookup", {"account": f"a{i}"}), f"reply {i}"]
        kit = RetentionKit(tmp_path, store, steps)
        for i in range(30):
            kit.runtime.send("t", f"turn {i}")
        assert store.path is not None
        prune_checkpoints(store, "t")
        reclaim_space(store)
        grown = store.path.stat().st_size
        reclaim_space(store, full=True)
        assert store.path.stat().st_size < grown / 2
        assert len(kit.runtime.state("t").values["messages"]) == 120
    finally:
        store.close()
