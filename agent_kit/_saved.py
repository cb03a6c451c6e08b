"""Waiting for a checkpoint to be saved (``durability="async"``: LangGraph saves a step's checkpoint
in the background while later steps run; see :func:`agent_kit._actions.act_on_saved_state`).

Any checkpointer works by reading it (``get_tuple``) until the checkpoint is there. The store's own
checkpointers (:mod:`agent_kit.checkpoint`) also carry a :class:`SaveWatch`: every save of this
process reports to it, so a waiting node need not read the database for a save this process
began (a sync waiter is woken by the report; one on the event loop looks every few milliseconds),
and learns, with the cause, that a save failed (LangGraph then saves nothing more of that run, and
waiting out the deadline would only hold the thread's lease and hide the cause).

Under asyncio (``ainvoke``, ``astream``, LangGraph Server) the wait runs on the event loop
(:func:`await_saved`), never in a worker thread: the loop's executor has few threads, and an async
checkpointer needs one of them to prepare the very save the workers would be waiting for.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent_kit.errors import CheckpointError

WATCH_ATTR = "agent_kit_saves"
"""The attribute of a checkpointer that holds its :class:`SaveWatch`."""

FAILED_GRACE_SECONDS = 1.0
"""How long a waiter must see a failed save stay the last word on its thread before it gives up: a
failure left by an earlier run is superseded as soon as the next run's first save starts, which
LangGraph does only once the saves queued before it are done."""

_RECHECK_SECONDS = 0.5
"""How often a watched waiter also reads the checkpointer (a checkpoint saved by another process)."""

_KEEP_THREADS = 4096
"""Threads (with their namespaces) a watch remembers, the least recently saved forgotten first."""
_KEEP_IDS = 64

S = TypeVar("S")


@dataclass
class _Saves:
    """What one thread's saves (in one namespace) did in this process."""

    saved: deque[str] = field(default_factory=lambda: deque(maxlen=_KEEP_IDS))
    started: deque[str] = field(default_factory=lambda: deque(maxlen=_KEEP_IDS))
    failed: tuple[str, str] | None = None
    """(checkpoint id, the cause in one line): kept as text, so no traceback (and the checkpoint
    its frames hold) outlives the failure."""


class SaveWatch:
    """What this process's saves through one checkpointer did, by thread and namespace."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._threads: OrderedDict[tuple[str, str], _Saves] = OrderedDict()

    def _saves(self, where: tuple[str, str]) -> _Saves:
        """The record of ``where``, made if new (call with the condition held)."""
        saves = self._threads.get(where)
        if saves is None:
            saves = self._threads[where] = _Saves()
            while len(self._threads) > _KEEP_THREADS:
                self._threads.popitem(last=False)
        else:
            self._threads.move_to_end(where)
        return saves

    # -- what the checkpointer reports ------------------------------------------------------------
    def started(self, config: Any, checkpoint: Any) -> None:
        with self._cond:
            self._saves(_where(config)).started.append(str(checkpoint["id"]))
            self._cond.notify_all()

    def saved(self, config: Any, checkpoint: Any) -> None:
        with self._cond:
            saves = self._saves(_where(config))
            saves.saved.append(str(checkpoint["id"]))
            saves.failed = None
            self._cond.notify_all()

    def failed(self, config: Any, checkpoint: Any, exc: BaseException) -> None:
        cause = (str(exc).strip().splitlines() or [""])[0]  # a driver's CONTEXT lines dropped
        with self._cond:
            self._saves(_where(config)).failed = (str(checkpoint["id"]), f"{type(exc).__name__}: {cause}")
            self._cond.notify_all()

    # -- what a waiter asks ---------------------------------------------------------------------
    def state(self, where: tuple[str, str], cid: str) -> tuple[bool, str | None, bool]:
        """``(saved, why it may never be (a failed save, the last word on its thread), whether this
        process began saving it)``."""
        with self._cond:
            return self._state(where, cid)

    def wait_for_news(self, where: tuple[str, str], cid: str, timeout: float) -> None:
        """Block until the next save reports (or ``timeout``), unless ``cid`` is saved already."""
        with self._cond:
            if not self._state(where, cid)[0]:
                self._cond.wait(timeout)

    def _state(self, where: tuple[str, str], cid: str) -> tuple[bool, str | None, bool]:
        saves = self._threads.get(where)
        if saves is None:
            return False, None, False
        if cid in saves.saved:
            return True, None, True
        begun = cid in saves.started
        if saves.failed is not None:
            failed_id, cause = saves.failed
            # A failed save ends its run's chain (LangGraph saves nothing after it): the target, as
            # late or later, will not come, unless a save begun since belongs to a new run.
            if failed_id <= cid and max(saves.started, default="") <= failed_id:
                return False, cause, begun
        return False, None, begun


def watch(saver: S) -> S:
    """Give ``saver`` a :class:`SaveWatch` that its ``put`` / ``aput`` report to; returns it."""
    w = SaveWatch()
    put, aput = saver.put, saver.aput  # type: ignore[attr-defined]

    def watched_put(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        w.started(config, checkpoint)
        with _reported(w, config, checkpoint):
            return put(config, checkpoint, metadata, new_versions)

    async def watched_aput(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        w.started(config, checkpoint)
        with _reported(w, config, checkpoint):
            return await aput(config, checkpoint, metadata, new_versions)

    saver.put, saver.aput = watched_put, watched_aput  # type: ignore[attr-defined]
    setattr(saver, WATCH_ATTR, w)
    return saver


@contextmanager
def _reported(w: SaveWatch, config: Any, checkpoint: Any) -> Iterator[None]:
    """Report the save run inside to ``w``: saved, or failed with its cause."""
    try:
        yield
    except BaseException as exc:
        w.failed(config, checkpoint, exc)
        raise
    w.saved(config, checkpoint)


class _Waiter:
    """One wait for one checkpoint: what to check next, and when to give up."""

    def __init__(self, saver: Any, target: dict[str, Any], deadline: float, timeout: float) -> None:
        self.saver, self.target, self.deadline, self.timeout = saver, target, deadline, timeout
        self.watch: SaveWatch | None = getattr(saver, WATCH_ATTR, None)
        self.where, self.cid = _where(target), str(target["configurable"]["checkpoint_id"])
        self.read_at = 0.0
        self.pause = 0.0002
        self.failure_seen: float | None = None

    def known(self) -> tuple[bool, bool]:
        """``(saved, whether the checkpointer should be read now)``; raises once it cannot be."""
        begun = False
        if self.watch is not None:
            done, cause, begun = self.watch.state(self.where, self.cid)
            if done:
                return True, False
            if cause is None:
                self.failure_seen = None
            elif self.failure_seen is None:
                self.failure_seen = time.monotonic()
            elif time.monotonic() - self.failure_seen >= FAILED_GRACE_SECONDS:
                raise self.error(f"could not be saved ({cause})")
        now = time.monotonic()
        if now > self.deadline:
            enclosing = " (or an enclosing graph compiled with checkpointer=False saves none)" \
                if self.where[1] else ""
            raise self.error(f"was not saved within {self.timeout:g} s{enclosing}")
        # A save this process began reports its outcome: no need to read. One it did not (another
        # process saved it, or saved it before this process watched) is read, now and then.
        read = not begun and now >= self.read_at
        if read:
            self.read_at = now + (_RECHECK_SECONDS if self.watch is not None else 0.0)
        return False, read

    def error(self, why: str) -> CheckpointError:
        return CheckpointError(f"{_named(self.target)} {why}; nothing was decided or run on it (the run fails; "
                               "resuming the thread carries on from its last saved checkpoint)")

    def next_pause(self) -> float:
        pause = min(self.pause, max(self.deadline - time.monotonic(), 0.0))
        # Unwatched, each look is a read of the database (LangGraph Server's): 10 a second at most.
        self.pause = min(self.pause * 2, 0.1 if self.watch is None else 0.005)
        return pause


def wait_saved(saver: Any, targets: Sequence[dict[str, Any]], timeout: float) -> None:
    """Return once every checkpoint of ``targets`` (configs naming thread, namespace and id) is
    saved; :class:`CheckpointError` when one cannot be (its save failed, or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    for target in targets:
        waiter = _Waiter(saver, target, deadline, timeout)
        while True:
            done, read = waiter.known()
            if done or (read and saver.get_tuple(target) is not None):
                break
            if waiter.watch is not None:
                waiter.watch.wait_for_news(waiter.where, waiter.cid, min(
                    _RECHECK_SECONDS, FAILED_GRACE_SECONDS / 4, max(deadline - time.monotonic(), 0.0)))
            else:
                time.sleep(waiter.next_pause())


async def await_saved(saver: Any, targets: Sequence[dict[str, Any]], timeout: float) -> None:
    """:func:`wait_saved` on the event loop."""
    deadline = time.monotonic() + timeout
    for target in targets:
        waiter = _Waiter(saver, target, deadline, timeout)
        while True:
            done, read = waiter.known()
            if done or (read and await _aread(saver, target) is not None):
                break
            await asyncio.sleep(waiter.next_pause())


async def _aread(saver: Any, target: dict[str, Any]) -> Any:
    try:
        return await saver.aget_tuple(target)
    except NotImplementedError:  # a checkpointer with sync methods only
        return saver.get_tuple(target)


def _where(config: Any) -> tuple[str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns") or "")


def _named(target: dict[str, Any]) -> str:
    conf = target["configurable"]
    ns = f" (subgraph {conf['checkpoint_ns']!r})" if conf.get("checkpoint_ns") else ""
    return f"the checkpoint {conf['checkpoint_id']} of thread {conf['thread_id']!r}{ns}"
