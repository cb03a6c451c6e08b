"""Waiting for a checkpoint to be saved (``durability="async"``: LangGraph saves a step's checkpoint
in the background while later steps run; see :func:`agent_kit._actions.act_on_saved_state`).

Any checkpointer works by reading it (``get_tuple``) until the checkpoint is there. The store's own
checkpointers (:mod:`agent_kit.checkpoint`) also carry a :class:`SaveWatch`: every save of this
process reports to it, so a waiting node wakes as soon as its checkpoint is saved, and learns at
once, with the cause, that a save failed (LangGraph then saves nothing more of that run, and
waiting out the deadline would only hold the thread's lease and hide the cause).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, TypeVar

from agent_kit.errors import CheckpointError

WATCH_ATTR = "agent_kit_saves"
"""The attribute of a checkpointer that holds its :class:`SaveWatch`."""

FAILED_GRACE_SECONDS = 1.0
"""How long a failed save must stay the last word on its thread before a waiter gives up on it: a
failure left by an earlier run is superseded as soon as the next run's first save starts."""

_RECHECK_SECONDS = 0.5
"""How often a watched waiter also reads the checkpointer (a save made outside this process)."""

_KEEP_THREADS = 4096
_KEEP_IDS = 64


class SaveWatch:
    """What this process's saves through one checkpointer did, by thread and namespace."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._saved: OrderedDict[tuple[str, str], deque[str]] = OrderedDict()
        self._started: dict[tuple[str, str], str] = {}
        self._failed: dict[tuple[str, str], tuple[str, BaseException, float]] = {}

    # -- what the checkpointer reports ------------------------------------------------------------
    def started(self, config: Any, checkpoint: Any) -> None:
        where, cid = _where(config), str(checkpoint["id"])
        with self._cond:
            if cid > self._started.get(where, ""):
                self._started[where] = cid
            self._cond.notify_all()

    def saved(self, config: Any, checkpoint: Any) -> None:
        where = _where(config)
        with self._cond:
            ids = self._saved.get(where)
            if ids is None:
                ids = self._saved[where] = deque(maxlen=_KEEP_IDS)
                if len(self._saved) > _KEEP_THREADS:
                    old, _ = self._saved.popitem(last=False)
                    self._started.pop(old, None)
                    self._failed.pop(old, None)
            else:
                self._saved.move_to_end(where)
            ids.append(str(checkpoint["id"]))
            self._failed.pop(where, None)
            self._cond.notify_all()

    def failed(self, config: Any, checkpoint: Any, exc: BaseException) -> None:
        with self._cond:
            self._failed[_where(config)] = (str(checkpoint["id"]), exc, time.monotonic())
            self._cond.notify_all()

    # -- what a waiter asks ---------------------------------------------------------------------
    def _state(self, where: tuple[str, str], cid: str) -> tuple[bool, BaseException | None]:
        """(saved, the failure that means it never will be); call with the condition held."""
        if cid in self._saved.get(where, ()):
            return True, None
        failure = self._failed.get(where)
        if failure is not None:
            failed_id, exc, at = failure
            if (failed_id <= cid and self._started.get(where, "") <= failed_id
                    and time.monotonic() - at >= FAILED_GRACE_SECONDS):
                return False, exc
        return False, None


S = TypeVar("S")


def watch(saver: S) -> S:
    """Give ``saver`` a :class:`SaveWatch` that its ``put`` / ``aput`` report to; returns it."""
    w = SaveWatch()
    put, aput = saver.put, saver.aput  # type: ignore[attr-defined]

    def watched_put(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        w.started(config, checkpoint)
        try:
            out = put(config, checkpoint, metadata, new_versions)
        except BaseException as exc:
            w.failed(config, checkpoint, exc)
            raise
        w.saved(config, checkpoint)
        return out

    async def watched_aput(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        w.started(config, checkpoint)
        try:
            out = await aput(config, checkpoint, metadata, new_versions)
        except BaseException as exc:
            w.failed(config, checkpoint, exc)
            raise
        w.saved(config, checkpoint)
        return out

    saver.put, saver.aput = watched_put, watched_aput  # type: ignore[attr-defined]
    setattr(saver, WATCH_ATTR, w)
    return saver


def wait_saved(saver: Any, targets: Sequence[dict[str, Any]], timeout: float) -> None:
    """Return once every checkpoint of ``targets`` (configs naming thread, namespace and id) is
    saved; :class:`CheckpointError` when one cannot be (its save failed, or ``timeout`` passed)."""
    w: SaveWatch | None = getattr(saver, WATCH_ATTR, None)
    deadline = time.monotonic() + timeout
    for target in targets:
        where, cid = _where(target), str(target["configurable"]["checkpoint_id"])
        pause, read_at = 0.0002, 0.0
        while True:
            in_flight = False  # this process has begun saving it (or a later one): no need to read
            if w is not None:
                with w._cond:
                    done, failure = w._state(where, cid)
                    in_flight = w._started.get(where, "") >= cid
                if done:
                    break
                if failure is not None:
                    cause = (str(failure).strip().splitlines() or [""])[0]  # a driver's CONTEXT lines dropped
                    raise CheckpointError(f"{_named(target)} could not be saved ({type(failure).__name__}: "
                                          f"{cause}); nothing was decided or run on it (the run fails; "
                                          "resuming the thread carries on from its last saved checkpoint)"
                                          ) from failure
            now = time.monotonic()
            if now >= read_at:
                if not in_flight and saver.get_tuple(target) is not None:
                    break
                read_at = now + (_RECHECK_SECONDS if w is not None else 0.0)
            if now > deadline:
                raise CheckpointError(f"{_named(target)} was not saved within {timeout:g} s; nothing was "
                                      "decided or run on it (the run fails; resuming the thread carries on "
                                      "from its last saved checkpoint)")
            if w is not None:
                with w._cond:
                    done, failure = w._state(where, cid)
                    if not done and failure is None:
                        w._cond.wait(min(_RECHECK_SECONDS, FAILED_GRACE_SECONDS / 4, max(deadline - now, 0.0)))
            else:
                time.sleep(pause)
                pause = min(pause * 2, 0.02)


def _where(config: Any) -> tuple[str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns") or "")


def _named(target: dict[str, Any]) -> str:
    conf = target["configurable"]
    ns = f" (subgraph {conf['checkpoint_ns']!r})" if conf.get("checkpoint_ns") else ""
    return f"the checkpoint {conf['checkpoint_id']} of thread {conf['thread_id']!r}{ns}"
