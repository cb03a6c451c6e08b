"""Fail loud: a store that went away, filled up or turned read-only, a model server that is down
or answers garbage. Each is one line naming the cause and the path or URL, a typed error (exit
code 1 on the command line, never a traceback or "internal error"), and nothing half-written."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent_kit.errors import ModelError, StorageError
from agent_kit.store import SQLITE_FILE, Store
from tests._pg import PG_URL
from tests.fixture_app import App, make_app
from tests.openai_stub import OpenAIStub, text_response

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("agent-kit")
JANE = "Hi, I am Jane Doe, 94107"


def _run_cli(home: Path, *args: str, env: dict[str, str] | None = None,
             preexec: Any = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_KIT_", "OPENAI_"))}
    base.update(env or {})
    return subprocess.run([str(CLI), "--home", str(home), "--graph", "tests.fixture_app.served:graph", *args],
                          cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=300, preexec_fn=preexec)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


# -- the store's file deleted or replaced under a running process ------------------------------
def _delete(path: Path) -> None:
    path.unlink()


def _replace(path: Path) -> None:
    other = path.with_name("other.sqlite")
    shutil.copy(path, other)
    os.replace(other, path)  # same name, same content, another file


@pytest.mark.parametrize("mutate", [_delete, _replace], ids=["deleted", "replaced"])
def test_a_store_file_deleted_or_replaced_under_a_running_process_refuses_the_next_write(
        sqlite_app: App, mutate: Any) -> None:
    app = sqlite_app
    app.say("t", JANE, "Refund $20 on order 1001")
    assert len(app.shop.refunds(1001)) == 1
    path = app.home / SQLITE_FILE
    mutate(path)
    word = "deleted" if mutate is _delete else "replaced"
    for attempt in (lambda: app.runtime.send("t", "Refund $15 on order 1002"),
                    lambda: app.store.audit.append("read", actor="agent"),
                    lambda: app.store.leases.acquire("t2"),
                    lambda: app.store.ledger.begin("k", thread_id="t", tool_call_id="c", tool="issue_refund",
                                                   action_hash="h", args={})):
        with pytest.raises(StorageError, match=rf"{path}.* was {word} .*nothing more is written"):
            attempt()
    saver = app.runtime.graph.checkpointer
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    with pytest.raises(StorageError, match=word):
        saver.put_writes({"configurable": {**config["configurable"], "checkpoint_id": "x"}}, [("a", 1)], "task")
    assert len(app.shop.refunds()) == 1  # the second refund never ran: no effect without its record
    if mutate is _replace:  # the file at the path is what it was before: nothing was written to it
        with Store.open(app.home) as fresh:
            assert fresh.audit.verify().ok


# -- disk full ---------------------------------------------------------------------------------
@contextmanager
def _full(store: Store) -> Iterator[None]:
    """This thread's connection to the store can grow its file no more: SQLite's own 'database or
    disk is full'."""
    conn = store._db.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        yield
    finally:
        conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_is_one_typed_line_and_nothing_half_written(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.audit.append("read", actor="agent", data={"x": 1})
        before = store.audit.head()
        with _full(store):
            with pytest.raises(StorageError) as caught:
                for n in range(2000):  # past the pages WAL frames can still reuse
                    store.audit.append("read", actor="agent", data={"pad": "x" * 4000, "n": n})
        message = str(caught.value)
        assert "\n" not in message and str(tmp_path / SQLITE_FILE) in message
        assert "full" in message and "free space" in message
        report = store.audit.verify()
        assert report.ok and report.count >= before[0]
        store.audit.append("read", actor="agent")  # once space is back, it goes on
        assert store.audit.verify().ok


def _no_file_growth() -> None:
    """In the child: writing past the current end of any file fails (EFBIG), like a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_the_cli_on_a_full_disk_exits_1_with_one_line_naming_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run_cli(home, "chat", "--thread", "t", "--message", JANE).returncode == 0
    before = _run_cli(home, "audit", "--json")
    done = _run_cli(home, "chat", "--thread", "t", "--message", "Refund $20 on order 1001",
                    env={"PYTHONDONTWRITEBYTECODE": "1"}, preexec=_no_file_growth)
    assert done.returncode == 1, done.stderr
    line = _one_line(done)
    assert str(home) in line  # the store, or the application's own database beside it
    # Nothing half-written: the trail is what it was and verifies; the thread goes on once space is back.
    assert _run_cli(home, "audit", "--json").stdout == before.stdout
    assert _run_cli(home, "audit", "--verify").returncode == 0
    again = _run_cli(home, "chat", "--thread", "t", "--message", "Refund $20 on order 1001", "--json")
    assert again.returncode == 0, again.stderr


# -- read-only store ---------------------------------------------------------------------------
@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` and its files unwritable: a read-only bind mount when root (whom file modes
    do not stop), file modes otherwise."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
            yield
        finally:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_the_cli_on_a_read_only_store_exits_1_with_one_line_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run_cli(home, "chat", "--thread", "t", "--message", JANE).returncode == 0
    with _read_only(home):
        done = _run_cli(home, "chat", "--thread", "t", "--message", "Refund $20 on order 1001")
        assert done.returncode == 1, done.stderr
        line = _one_line(done)
        assert str(home) in line and ("writable" in line or "read-only" in line or "readonly" in line)
    assert _run_cli(home, "audit", "--verify").returncode == 0
    assert _run_cli(home, "chat", "--thread", "t", "--message", "Refund $20 on order 1001").returncode == 0


def test_a_read_only_store_in_python_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.audit.append("read", actor="agent")
    with _read_only(tmp_path), pytest.raises(StorageError) as caught:
        with Store.open(tmp_path) as store:
            store.audit.append("read", actor="agent")
    assert str(tmp_path) in str(caught.value) and "\n" not in str(caught.value)


# -- Postgres: the server ends our sessions, or the schema is dropped ---------------------------
@pytest.mark.postgres
def test_postgres_sessions_ended_by_the_server_fail_one_call_in_one_line_then_recover(
        tmp_path: Path, pg_schema: str) -> None:
    with Store.open(tmp_path, db_url=PG_URL, schema=pg_schema) as store:
        store.audit.append("read", actor="agent")
        (pid,) = store._db.fetchone("SELECT pg_backend_pid()")  # type: ignore[misc]
        with psycopg.connect(PG_URL, autocommit=True) as admin:  # a restart or failover, for this session
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError, match=r"PostgreSQL store at 127\.0\.0\.1:5432/\w+ \(schema ak_test_"):
            store.audit.append("read", actor="agent")
        store.audit.append("read", actor="agent")  # a new session: it goes on
        assert store.audit.verify().ok and store.audit.head()[0] == 2


@pytest.mark.postgres
def test_a_dropped_postgres_schema_is_one_line_saying_the_tables_are_gone(tmp_path: Path, pg_schema: str) -> None:
    with Store.open(tmp_path, db_url=PG_URL, schema=pg_schema) as store:
        store.audit.append("read", actor="agent")
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{pg_schema}" CASCADE')
        with pytest.raises(StorageError, match="tables are gone"):
            store.audit.append("read", actor="agent")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    import uuid

    from tests._pg import drop_schema

    schema = f"ak_test_{uuid.uuid4().hex[:12]}"
    yield schema
    drop_schema(schema)


# -- the model server --------------------------------------------------------------------------
def _garbage(_body: dict[str, Any]) -> dict[str, Any]:
    return {"unexpected": "this is not a chat completion"}


@pytest.mark.parametrize("server", ["unreachable", "garbling"])
def test_a_model_server_down_or_garbling_is_a_model_error_and_the_thread_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str) -> None:
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("AGENT_KIT_MODEL", "openai:test-model")
    with OpenAIStub(_garbage) as bad, OpenAIStub([text_response("Hello again.")]) as good:
        url = "http://127.0.0.1:1/v1" if server == "unreachable" else bad.base_url
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        app = make_app(tmp_path)
        try:
            with pytest.raises(ModelError) as caught:
                app.runtime.send("t", "Hello")
            message = str(caught.value)
            assert url in message and "\n" not in message
            assert ("Connection" in message) == (server == "unreachable")
            assert app.store.audit.verify().ok and app.store.inbox.list() == []
        finally:
            app.store.close()
        monkeypatch.setenv("OPENAI_BASE_URL", good.base_url)
        app = make_app(tmp_path)  # the server is back: the same thread answers
        try:
            assert app.runtime.send("t", "Hello").reply == "Hello again."
        finally:
            app.store.close()


@pytest.mark.parametrize("server", ["unreachable", "garbling"])
def test_the_cli_with_a_model_server_down_or_garbling_exits_1_naming_it(tmp_path: Path, server: str) -> None:
    with OpenAIStub(_garbage) as bad:
        url = "http://127.0.0.1:1/v1" if server == "unreachable" else bad.base_url
        done = _run_cli(tmp_path, "chat", "--thread", "t", "--message", "Hello",
                        env={"AGENT_KIT_MODEL": "openai:test-model", "OPENAI_BASE_URL": url,
                             "OPENAI_API_KEY": "test"})
    assert done.returncode == 1
    assert url in _one_line(done)


def test_a_sqlite_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / SQLITE_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError) as caught:
        Store.open(tmp_path)
    assert str(tmp_path / SQLITE_FILE) in str(caught.value) and "\n" not in str(caught.value)
    done = _run_cli(tmp_path, "pending")
    assert done.returncode == 1 and str(tmp_path / SQLITE_FILE) in _one_line(done)


def test_under_async_durability_a_checkpoint_never_saved_lets_nothing_be_decided_or_run(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database too slow to save the model's step (under ``durability="async"`` later steps run
    while it saves): the permission node waits for it, then fails the run in one line; no decision,
    no ledger record, no effect was made on a message that may never be saved."""
    import time

    from agent_kit import AgentRuntime, _actions
    from agent_kit.errors import CheckpointError

    app.say("t", JANE)
    saver = app.runtime.graph.checkpointer
    put = saver.put

    def stuck_put(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        time.sleep(1.0)
        return put(config, checkpoint, metadata, versions)

    monkeypatch.setattr(_actions, "SAVED_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(saver, "put", stuck_put)
    before = len(app.store.audit.entries("t"))
    runtime = AgentRuntime(app.runtime.graph, store=app.store, durability="async")
    with pytest.raises(CheckpointError, match=r"of thread 't' was not saved within 0.2 s; nothing was decided or run"):
        runtime.send("t", "open a ticket about a broken zipper")
    assert app.shop.tickets() == []
    assert app.store.ledger.for_thread("t") == []
    assert [e.kind for e in app.store.audit.entries("t")[before:]] == []
    monkeypatch.undo()  # the saves go through again: the thread carries on
    result = app.runtime.send("t", "open a ticket about a broken zipper")
    assert result.status == "replied"
    assert len(app.shop.tickets()) == 1


def _refuse_saves(store: Store, message: str, *, checkpoints: bool, writes: bool = False) -> Any:
    """Make the database refuse new checkpoints (and the writes of tasks) with ``message``, as a
    full disk would; returns what gives them back."""
    sqlite = store.backend == "sqlite"
    tables = [t for t, on in (("checkpoints", checkpoints), ("writes" if sqlite else "checkpoint_writes", writes)) if on]
    if not sqlite:
        store._db.execute("CREATE OR REPLACE FUNCTION refuse_saves() RETURNS trigger AS $$ BEGIN "
                          f"RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql")
    for table in tables:
        store._db.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                          + (f"BEGIN SELECT RAISE(ABORT, '{message}'); END" if sqlite
                             else "FOR EACH ROW EXECUTE FUNCTION refuse_saves()"))

    def undo() -> None:
        for table in tables:
            store._db.execute(f"DROP TRIGGER refuse_{table}" + ("" if sqlite else f" ON {table}"))

    return undo


def test_under_async_durability_a_failing_save_fails_the_run_at_once_naming_its_cause(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses every new checkpoint (here a trigger; a full disk, a lost table in
    life): LangGraph saves nothing more of the run, so the node waiting for its checkpoint learns
    of the failure from the store's checkpointer and fails the run with the cause, in about a second
    rather than at the end of the wait, so the thread's lease is not held for nothing."""
    import time

    from agent_kit import AgentRuntime, _actions
    from agent_kit.errors import AgentKitError

    app.say("t", JANE)
    monkeypatch.setattr(_actions, "SAVED_WAIT_SECONDS", 30.0)
    undo = _refuse_saves(app.store, "no room for the checkpoint (test)", checkpoints=True)
    runtime = AgentRuntime(app.runtime.graph, store=app.store, durability="async")
    started = time.monotonic()
    with pytest.raises(AgentKitError, match="no room for the checkpoint") as raised:
        runtime.send("t", "open a ticket about a broken zipper")
    assert time.monotonic() - started < 15, "the run waited for a checkpoint whose save had failed"
    assert "\n" not in str(raised.value)
    assert app.shop.tickets() == []
    assert app.store.ledger.for_thread("t") == []
    undo()
    result = app.runtime.send("t", "open a ticket about a broken zipper")
    assert result.status == "replied"
    assert len(app.shop.tickets()) == 1


def test_under_async_durability_an_approval_refused_by_a_failing_save_stays_listed_and_runs_once_the_database_is_back(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failed save is remembered (so waiters learn of it at once); once the database is back,
    the same process approving again must not mistake that old failure for the new run's, nor wait
    on a checkpoint saved before it."""
    import time

    from agent_kit import AgentRuntime, _actions
    from agent_kit.errors import AgentKitError

    app.say("t", JANE, "Refund $80 on order 1001")
    monkeypatch.setattr(_actions, "SAVED_WAIT_SECONDS", 30.0)
    runtime = AgentRuntime(app.runtime.graph, store=app.store, durability="async")
    undo = _refuse_saves(app.store, "no room (test)", checkpoints=True, writes=True)
    with pytest.raises(AgentKitError, match="no room"):
        runtime.approve(runtime.pending("t", kind="approval")[0], approver="lee")
    assert app.shop.refunds(1001) == []
    # The approval is recorded but its run failed: staff still see the item (at once, not at the
    # thread's next call), and deciding it again carries out the recorded approval.
    (listed,) = runtime.pending("t", kind="approval")
    undo()
    time.sleep(1.2)  # the failure is now older than the grace a waiter gives a failed save
    saver = app.runtime.graph.checkpointer
    put = saver.put

    def slow_to_start(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        time.sleep(0.3)  # each save begins late (a busy pool), so the old failure is the last word a while
        return put(config, checkpoint, metadata, versions)

    monkeypatch.setattr(saver, "put", slow_to_start)
    started = time.monotonic()
    result = runtime.approve(listed, approver="lee")
    assert result.status == "replied"
    assert time.monotonic() - started < 15
    assert len(app.shop.refunds(1001)) == 1
    assert [(r.tool, r.status) for r in app.store.ledger.for_thread("t")] == [("issue_refund", "done")]
    assert app.store.audit.verify().ok


def test_a_confirmation_answered_in_a_streamed_turn_whose_save_fails_stays_listed_and_runs_once(app: App) -> None:
    """A streamed turn fails as a sent one does: the customer's confirmation is recorded (its item
    leaving the inbox) and then the checkpoint after it cannot be saved. The item is listed again
    at once, not at the thread's next call; answering again carries out the recorded
    confirmation, once."""
    app.say("t", JANE, "cancel order 1002")
    (asked,) = app.runtime.pending("t", kind="verification")
    undo = _refuse_saves(app.store, "no room (test)", checkpoints=True, writes=True)
    with pytest.raises(Exception, match="no room"):
        list(app.runtime.stream("t", "yes"))
    (listed,) = app.runtime.pending("t", kind="verification")
    assert listed.interrupt_id == asked.interrupt_id
    undo()
    result = app.say("t", "yes")
    assert result.status == "replied" and app.runtime.pending("t") == []
    assert [(r.tool, r.status) for r in app.store.ledger.for_thread("t")] == [("cancel_order", "done")]
    assert app.store.audit.verify().ok
