"""Every private LangGraph seam agent_kit leans on, in one place.

agent_kit uses LangGraph through its public API (``StateGraph``, ``Send``, ``Command``,
``interrupt``, ``get_config``, ``get_runtime``, the savers) except for the few things below, which
LangGraph does not expose and which the permission layer cannot do without:

- the id LangGraph will give the next interrupt of the running task (so the inbox item and the
  audit entry written *before* ``interrupt()`` carry the id the client will answer to);
- how many interrupt answers the running task already holds (to tell a replayed answer from a new one);
- the durability mode of the running invocation (``"exit"`` is refused: a crash could lose an approval);
- the serializer's extension codes and its delta-snapshot type (the strict checkpoint loader reads
  exactly what ``JsonPlusSerializer`` writes);
- the Postgres saver's cursor and its delta-thread query (retention keeps the newest N checkpoints,
  which the saver's public ``prune`` cannot);
- the channel a client's ``Command(goto=END)`` writes to, a node's read of it, and whether an
  unkeyed resume waits for the running task (Agent Chat UI's "Mark as Resolved" would otherwise
  be dropped and leave the thread stuck);
- the configurable key of strict resumes (a resume naming an interrupt that is not pending is an
  error the client sees, not a silent re-ask).

Each seam is reached only through this module. :func:`check` verifies all of them against the
installed LangGraph and fails with one line naming what moved; ``create_permissioned_agent`` calls it
once, so an incompatible LangGraph stops at build time, not at the first paused refund. The range in
``pyproject.toml`` (``langgraph>=1.2,<1.3``) is the one ``tests/core/test_compat.py`` proves.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent_kit.errors import AgentKitError

__all__ = [
    "END_CHANNEL",
    "SUPPORTED_LANGGRAPH",
    "IncompatibleLangGraphError",
    "answers_stored",
    "bound_node_owner",
    "check",
    "delta_snapshot",
    "durability",
    "end_requested",
    "ext_codes",
    "next_interrupt_id",
    "node_runnable",
    "null_resume_pending",
    "postgres_cursor",
    "prune_delta_threads_sql",
    "scheduled_from",
    "strict_resume",
    "take_goto_end",
]

SUPPORTED_LANGGRAPH = ((1, 2), (1, 3))
"""``[low, high)`` (major, minor) of the LangGraph releases whose private seams are proven here."""

# (module, attribute, what agent_kit uses it for): every private name this module reaches.
_SEAMS: tuple[tuple[str, str, str], ...] = (
    ("langgraph._internal._constants", "CONFIG_KEY_CHECKPOINT_NS", "the running task's namespace"),
    ("langgraph._internal._constants", "CONFIG_KEY_SCRATCHPAD", "the running task's stored answers"),
    ("langgraph._internal._constants", "CONFIG_KEY_DURABILITY", "the invocation's durability mode"),
    ("langgraph._internal._constants", "CONFIG_KEY_CHECKPOINT_MAP", "the checkpoint a task was scheduled from"),
    ("langgraph._internal._constants", "CONFIG_KEY_CHECKPOINTER", "the running graph's checkpointer"),
    ("langgraph._internal._constants", "CONFIG_KEY_READ", "a node's read of a client's goto END"),
    ("langgraph._internal._constants", "CONFIG_KEY_STRICT_RESUME", "resumes naming no pending interrupt refused"),
    ("langgraph.channels.ephemeral_value", "EphemeralValue", "the channel a client's goto END lands in"),
    ("langgraph.types", "_interrupt_id", "the id of the next interrupt"),
    ("langgraph._internal._runnable", "RunnableCallable", "a node with an async twin"),
    ("langgraph.checkpoint.serde.types", "_DeltaSnapshot", "strict loading of delta snapshots"),
    ("langgraph.checkpoint.serde.jsonplus", "EXT_CONSTRUCTOR_SINGLE_ARG", "strict checkpoint loading"),
    ("langgraph.checkpoint.serde.jsonplus", "EXT_DELTA_SNAPSHOT", "strict checkpoint loading"),
)
_OPTIONAL_SEAMS: tuple[tuple[str, str, str], ...] = (
    ("langgraph.checkpoint.postgres.base", "PRUNE_DELTA_THREADS_SQL", "Postgres retention"),
)
_EXT_NAMES = ("EXT_CONSTRUCTOR_SINGLE_ARG", "EXT_CONSTRUCTOR_POS_ARGS", "EXT_CONSTRUCTOR_KW_ARGS",
              "EXT_METHOD_SINGLE_ARG", "EXT_PYDANTIC_V1", "EXT_PYDANTIC_V2", "EXT_NUMPY_ARRAY",
              "EXT_DELTA_SNAPSHOT")


class IncompatibleLangGraphError(AgentKitError):
    """The installed LangGraph lacks a seam agent_kit needs; the message names it and the supported range."""

    def __init__(self, message: str, *, version: str, missing: tuple[str, ...]) -> None:
        super().__init__(message)
        self.version = version
        """The installed ``langgraph`` version."""
        self.missing = missing
        """``module.attribute`` of each seam that is gone or changed shape."""


def _version() -> str:
    try:
        return importlib.metadata.version("langgraph")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - langgraph is a dependency
        return "unknown"


def _supported(version: str) -> bool:
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    low, high = SUPPORTED_LANGGRAPH
    return low <= major_minor < high


def _get(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def problems() -> list[str]:
    """Every seam that is missing or changed shape in the installed LangGraph (empty when compatible)."""
    found: list[str] = []
    seams = list(_SEAMS)
    try:
        importlib.import_module("langgraph.checkpoint.postgres.base")
    except ImportError:
        pass  # the Postgres extra is not installed: its seam is not needed
    else:
        seams += _OPTIONAL_SEAMS
    for module, name, use in seams:
        try:
            _get(module, name)
        except (ImportError, AttributeError):
            found.append(f"{module}.{name} ({use})")
    if not found:
        # Shapes, not only names: a renamed constant or a re-keyed id would pass a name check.
        from langgraph._internal import _constants as c
        from langgraph.types import _interrupt_id

        if (c.CONFIG_KEY_CHECKPOINT_NS, c.CONFIG_KEY_SCRATCHPAD, c.CONFIG_KEY_DURABILITY, c.CONFIG_KEY_READ,
                c.CONFIG_KEY_STRICT_RESUME) != ("checkpoint_ns", "__pregel_scratchpad", "__pregel_durability",
                                                "__pregel_read", STRICT_RESUME_KEY):
            found.append("langgraph._internal._constants (config keys renamed)")
        try:
            ok = isinstance(_interrupt_id("ns", 1), str) and _interrupt_id("ns", 0) != _interrupt_id("ns", 1)
        except TypeError:
            ok = False
        if not ok:
            found.append("langgraph.types._interrupt_id (signature (ns, answered) -> str changed)")
        codes = [getattr(importlib.import_module("langgraph.checkpoint.serde.jsonplus"), n, None)
                 for n in _EXT_NAMES]
        if codes != list(range(len(_EXT_NAMES))):
            found.append("langgraph.checkpoint.serde.jsonplus.EXT_* (extension codes renumbered)")
    version = _version()
    if not _supported(version):
        low, high = SUPPORTED_LANGGRAPH
        found.append(f"langgraph {version} is outside the proven range "
                     f">={low[0]}.{low[1]},<{high[0]}.{high[1]}")
    return found


@functools.cache
def _checked() -> None:
    found = problems()
    if found:
        raise IncompatibleLangGraphError(
            f"this agent_kit does not work with the installed langgraph {_version()}: "
            + "; ".join(found)
            + " (install the range pyproject.toml names, e.g. pip install 'langgraph>=1.2,<1.3')",
            version=_version(), missing=tuple(found))


def check() -> None:
    """Raise :class:`IncompatibleLangGraphError` unless every private seam is where agent_kit expects it.

    Cached after the first success; a failure is re-raised on every call.
    """
    _checked()


# -- the seams ------------------------------------------------------------------------------------

def next_interrupt_id(answered: int) -> str:
    """The id LangGraph gives the interrupt the running task raises after ``answered`` answers."""
    from langgraph._internal._constants import CONFIG_KEY_CHECKPOINT_NS
    from langgraph.config import get_config
    from langgraph.types import _interrupt_id

    return _interrupt_id(get_config()["configurable"][CONFIG_KEY_CHECKPOINT_NS], answered)


def answers_stored() -> int:
    """How many interrupt answers the running task already holds (answers replayed on re-entry)."""
    from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD
    from langgraph.config import get_config

    return len(get_config()["configurable"][CONFIG_KEY_SCRATCHPAD].resume)


def durability(config: Any) -> str | None:
    """The durability mode (``"sync"``, ``"async"``, ``"exit"``) of the invocation ``config`` belongs to."""
    from langgraph._internal._constants import CONFIG_KEY_DURABILITY

    value = ((config or {}).get("configurable") or {}).get(CONFIG_KEY_DURABILITY)
    return value if isinstance(value, str) else None


def scheduled_from(config: Any) -> tuple[Any, list[dict[str, Any]]] | None:
    """The running task's checkpointer and the configs of the checkpoints it was scheduled from:
    the root graph's first, then each enclosing subgraph's (each graph saves its own checkpoints,
    in order within it); None outside a run or without a checkpointer."""
    from langgraph._internal._constants import CONFIG_KEY_CHECKPOINT_MAP, CONFIG_KEY_CHECKPOINTER

    conf = (config or {}).get("configurable") or {}
    saver, parents = conf.get(CONFIG_KEY_CHECKPOINTER), conf.get(CONFIG_KEY_CHECKPOINT_MAP)
    thread = conf.get("thread_id")
    if saver is None or not isinstance(parents, dict) or not parents or thread is None:
        return None
    # (as a string, as LangGraph saves it: a caller's thread id may be an int)
    return saver, [{"configurable": {"thread_id": str(thread), "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
                   for ns, checkpoint_id in parents.items()]  # LangGraph adds each nested graph's entry last


def node_runnable(func: Any, afunc: Any, name: str) -> Any:
    """A node as ``StateGraph.add_node`` makes one from a function (untraced), with ``afunc`` as
    its asyncio twin instead of LangGraph's "run ``func`` in the loop's executor"."""
    from langgraph._internal._runnable import RunnableCallable

    return RunnableCallable(func, afunc, name=name, trace=False)


def delta_snapshot(value: Any) -> Any:
    """The serializer's delta-snapshot wrapper around ``value``."""
    from langgraph.checkpoint.serde.types import _DeltaSnapshot

    return _DeltaSnapshot(value)


def ext_codes() -> dict[str, int]:
    """The serializer's msgpack extension codes, by name (``EXT_CONSTRUCTOR_SINGLE_ARG`` ...)."""
    module = importlib.import_module("langgraph.checkpoint.serde.jsonplus")
    return {name: int(getattr(module, name)) for name in _EXT_NAMES}


def prune_delta_threads_sql() -> str:
    """The Postgres saver's query listing which of the given threads use a delta channel."""
    return str(_get("langgraph.checkpoint.postgres.base", "PRUNE_DELTA_THREADS_SQL"))


@contextmanager
def postgres_cursor(saver: Any) -> Iterator[Any]:
    """A cursor on the Postgres saver's own connection, its pipeline (if any) flushed first."""
    cursor: Callable[[], Any] = saver._cursor
    with cursor() as cur:
        if getattr(saver, "pipe", None):
            saver.pipe.sync()
        yield cur


def bound_node_owner(graph: Any, node: str) -> Any:
    """The object whose bound method runs ``node`` of a compiled ``StateGraph`` (None when the node
    is missing or is not a bound method). Reads the compiled graph's ``builder`` and the node's
    ``RunnableCallable.func``."""
    spec = (getattr(getattr(graph, "builder", None), "nodes", None) or {}).get(node)
    func = getattr(getattr(spec, "runnable", None), "func", None)
    return getattr(func, "__self__", None)


END_CHANNEL = "branch:to:__end__"
"""Where ``Command(goto=END)`` sent as run input writes (Agent Chat UI's "Mark as Resolved").
LangGraph has no such channel, so the write is dropped with a warning and the run re-raises the
pending interrupt: the thread stays stuck. :func:`take_goto_end` gives it a channel to land in."""


def take_goto_end(graph: Any) -> None:
    """Let a client's ``Command(goto=END)`` reach the nodes: they read it with :func:`end_requested`."""
    from langgraph.channels.ephemeral_value import EphemeralValue

    graph.channels.setdefault(END_CHANNEL, EphemeralValue(Any))


def end_requested() -> bool:
    """Inside a node: whether this step's input was a client's ``Command(goto=END)``."""
    from langgraph._internal._constants import CONFIG_KEY_READ
    from langgraph.config import get_config

    read = get_config()["configurable"].get(CONFIG_KEY_READ)
    if read is None:
        return False
    try:
        return read(END_CHANNEL, False) is not None
    except KeyError:  # a graph without the channel
        return False


def state_value(channel: str) -> Any:
    """Inside a node: the thread's ``channel`` as this step started (None where it cannot be read)."""
    from langgraph._internal._constants import CONFIG_KEY_READ
    from langgraph.config import get_config

    try:
        read = get_config()["configurable"].get(CONFIG_KEY_READ)
    except RuntimeError:  # not inside a run
        return None
    if read is None:
        return None
    try:
        return read(channel, False)
    except KeyError:
        return None


def null_resume_pending() -> bool:
    """Inside a node: whether an unkeyed ``Command(resume=...)`` waits to be taken by an interrupt."""
    from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD
    from langgraph.config import get_config

    return get_config()["configurable"][CONFIG_KEY_SCRATCHPAD].get_null_resume(False) is not None


STRICT_RESUME_KEY = "__pregel_strict_resume"
"""Configurable key that makes LangGraph refuse a resume naming an interrupt that is not pending
(``UnknownInterruptError``, raised before anything is written) instead of re-asking silently."""


def strict_resume(graph: Any) -> None:
    """Make the compiled graph refuse resumes aimed at interrupts that are not pending."""
    config = dict(graph.config or {})
    config["configurable"] = {**(config.get("configurable") or {}), STRICT_RESUME_KEY: True}
    graph.config = config
