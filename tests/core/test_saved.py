"""The save watch of the store's checkpointers (agent_kit/_saved.py): what a waiting node learns
from it, and that it stays bounded whatever the saves do."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit import _saved
from agent_kit._saved import WATCH_ATTR, SaveWatch, watch


class Saver:
    """A checkpointer whose saves succeed, or fail with ``error``."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.rows: set[tuple[str, str]] = set()

    def put(self, config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if self.error is not None:
            raise self.error
        self.rows.add((config["configurable"]["thread_id"], checkpoint["id"]))
        return config

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, versions)


def _put(saver: Any, thread: str, cid: str) -> None:
    saver.put({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}, {"id": cid}, {}, {})


def test_a_waiter_learns_saved_failed_and_superseded_failures() -> None:
    saver = watch(Saver())
    w: SaveWatch = getattr(saver, WATCH_ATTR)
    _put(saver, "t", "0001")
    assert w.state(("t", ""), "0001") == (True, None, True)
    assert w.state(("t", ""), "0002") == (False, None, False)
    saver.error = OSError("disk full\nCONTEXT: the driver's second line")
    with pytest.raises(OSError):
        _put(saver, "t", "0002")
    # A later checkpoint of the same run will never come: the cause, in one line.
    assert w.state(("t", ""), "0003") == (False, "OSError: disk full", False)
    assert w.state(("t", ""), "0001") == (True, None, True)  # saved before the failure
    saver.error = None
    # A new run's first save begins: the old failure is no longer the last word.
    _put(saver, "t", "0004")
    assert w.state(("t", ""), "0005") == (False, None, False)


def test_the_watch_stays_bounded_and_keeps_no_exception_whatever_the_saves_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_saved, "_KEEP_THREADS", 100)
    saver = watch(Saver())
    w: SaveWatch = getattr(saver, WATCH_ATTR)
    saver.error = OSError("disk full")
    for i in range(1000):  # a long outage while new conversations keep coming
        with pytest.raises(OSError):
            _put(saver, f"t{i}", f"{i:04d}")
    assert len(w._threads) == 100
    saver.error = None
    for i in range(1000):
        for k in range(3):
            _put(saver, f"s{i}", f"{i:04d}{k}")
    assert len(w._threads) == 100
    assert all(not isinstance(part, BaseException) for s in w._threads.values() for part in (s.failed or ()))
    assert all(len(s.saved) <= _saved._KEEP_IDS for s in w._threads.values())


def test_wait_saved_fails_in_one_line_after_the_grace_when_the_save_failed() -> None:
    import time

    from agent_kit.errors import CheckpointError

    saver = watch(Saver())
    saver.get_tuple = lambda config: None  # type: ignore[attr-defined]
    saver.error = OSError("disk full")
    with pytest.raises(OSError):
        _put(saver, "t", "0002")
    target = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "0003"}}
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=r"^the checkpoint 0003 of thread 't' could not be saved "
                                              r"\(OSError: disk full\); nothing was decided or run on it"):
        _saved.wait_saved(saver, [target], timeout=30)
    assert _saved.FAILED_GRACE_SECONDS <= time.monotonic() - started < 10


def _task_config(thread: Any, parents: dict[str, str], saver: Any) -> dict[str, Any]:
    from langgraph._internal._constants import CONFIG_KEY_CHECKPOINT_MAP, CONFIG_KEY_CHECKPOINTER, CONFIG_KEY_DURABILITY

    return {"configurable": {"thread_id": thread, CONFIG_KEY_CHECKPOINTER: saver,
                             CONFIG_KEY_CHECKPOINT_MAP: parents, CONFIG_KEY_DURABILITY: "async"}}


def test_the_checkpoints_a_task_waits_for_are_named_as_langgraph_saves_them() -> None:
    from agent_kit._compat import scheduled_from

    saver = object()
    found = scheduled_from(_task_config(7, {"": "c1", "support:abc": "c2"}, saver))
    assert found is not None and found[0] is saver
    assert found[1] == [  # the thread id as a string (LangGraph saves it so), outermost graph first
        {"configurable": {"thread_id": "7", "checkpoint_ns": "", "checkpoint_id": "c1"}},
        {"configurable": {"thread_id": "7", "checkpoint_ns": "support:abc", "checkpoint_id": "c2"}},
    ]


def test_a_body_skips_only_the_wait_done_for_it_not_a_nested_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The asyncio twin waits on the loop and marks its body's context; a graph that body starts
    (a tool running another agent) waits for its own checkpoints."""
    from agent_kit import _actions

    waited: list[list[str]] = []
    monkeypatch.setattr(_actions, "wait_saved", lambda saver, targets, timeout: waited.append(
        [t["configurable"]["checkpoint_id"] for t in targets]))
    saver = object()
    token = _actions._WAITED.set(("c1",))  # what arun_when_saved sets for a body scheduled from c1
    try:
        _actions.act_on_saved_state(_task_config("t", {"": "c1"}, saver))  # the body itself
        _actions.act_on_saved_state(_task_config("inner", {"": "n1"}, saver))  # a graph it started
    finally:
        _actions._WAITED.reset(token)
    assert waited == [["n1"]]
