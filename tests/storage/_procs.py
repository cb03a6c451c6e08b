"""Helpers that run storage work in other OS processes (spawned, so nothing is inherited).

A child opens the same store from :func:`store_args` (plain, picklable values), runs a
module-level function of this file and sends back its result; an exception in a child is
re-raised in the parent with the child's traceback text.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from agent_kit.errors import RunBusyError
from agent_kit.store import Store

__all__ = ["append_many", "append_with_key", "barrier", "hold_lease_and_die", "race_for_lease", "run_processes",
           "run_to_exit", "store_args"]

_CTX = multiprocessing.get_context("spawn")


def store_args(store: Store) -> dict[str, Any]:
    """What a child needs to open ``store`` again."""
    if store.backend == "sqlite":
        return {"home": str(store.home)}
    return {"home": str(store.home), "db_url": store.db_url, "schema": store.schema}


def _child(target: Callable[..., Any], index: int, args: tuple[Any, ...], results: Any) -> None:
    try:
        results.put((index, True, target(*args)))
    except BaseException:  # noqa: BLE001 - reported to the parent
        results.put((index, False, traceback.format_exc()))


def run_processes(target: Callable[..., Any], args_per_process: Sequence[tuple[Any, ...]],
                  timeout: float = 120) -> list[Any]:
    """Run ``target(*args)`` in one spawned process per ``args``; their results, in order."""
    results = _CTX.Queue()
    procs = [_CTX.Process(target=_child, args=(target, i, args, results))
             for i, args in enumerate(args_per_process)]
    for proc in procs:
        proc.start()
    try:
        collected = dict[int, Any]()
        for _ in procs:
            index, ok, value = results.get(timeout=timeout)
            if not ok:
                raise AssertionError(f"child process {index} failed:\n{value}")
            collected[index] = value
    finally:
        for proc in procs:
            proc.join(timeout=timeout)
            if proc.is_alive():
                proc.kill()
    return [collected[i] for i in range(len(procs))]


def run_to_exit(target: Callable[..., Any], args: tuple[Any, ...], timeout: float = 120) -> int | None:
    """Run ``target(*args)`` in a spawned process that may die; its exit code."""
    proc = _CTX.Process(target=target, args=args)
    proc.start()
    proc.join(timeout=timeout)
    if proc.is_alive():
        proc.kill()
    return proc.exitcode


def append_many(args: dict[str, Any], proc: int, count: int, start: Any) -> list[int]:
    """Append ``count`` entries tagged with ``proc``; returns their seqs."""
    with Store.open(**args) as store:
        start.wait()
        return [store.audit.append("executed", actor=f"proc{proc}", thread_id=f"t{proc}",
                                   data={"proc": proc, "n": n}).seq for n in range(count)]


def append_with_key(args: dict[str, Any], proc: int, key: str, start: Any) -> int:
    """Append one entry with a shared dedupe key; returns the seq it got back."""
    with Store.open(**args) as store:
        start.wait()
        return store.audit.append("approved", actor=f"proc{proc}", key=key).seq


def race_for_lease(args: dict[str, Any], thread_id: str, ready: Any, tried: Any) -> str:
    """Try to take the thread's lease at the same moment as the others; ``"won"`` or ``"busy"``.

    The winner holds the lease until every racer has tried, so a late racer cannot win a
    released lease.
    """
    with Store.open(**args) as store:
        ready.wait()
        try:
            lease = store.leases.acquire(thread_id, owner=f"pid{os.getpid()}")
        except RunBusyError:
            tried.wait()
            return "busy"
        with lease:
            tried.wait()
        return "won"


def hold_lease_and_die(args: dict[str, Any], thread_id: str) -> None:
    """Take the lease and exit without releasing it (a crashed worker)."""
    store = Store.open(**args)
    store.leases.acquire(thread_id, owner="doomed")
    os._exit(0)


def barrier(parties: int) -> Any:
    """A barrier children of :func:`run_processes` can share."""
    return _CTX.Barrier(parties)
