"""Strict checkpoint deserialization, and the checkpointers built on it.

LangGraph's default serializer rebuilds any object a msgpack extension names, so a forged
checkpoint row can run code on load (``os.system`` named as a "type"). Its strict mode blocks
unknown types but hands back the raw payload, which a graph then runs on as if nothing happened.
:class:`StrictSerializer` fails closed instead: a value of a type outside the allow-list, an
unknown extension code, a pickle or legacy-JSON value, or a payload that does not rebuild,
raises :class:`~agent_kit.errors.CheckpointError` before anything is imported or constructed.

The allow-list holds what an agent's state is made of: LangChain messages (and their chunks;
tool calls are plain dicts inside them), date/time, UUID, Decimal, set/frozenset/deque, the
:class:`~agent_kit.modes.Mode` enum, and LangGraph's ``Interrupt``, ``Send``, ``Command`` and
``Overwrite``. Add your own types with ``strict_serializer(extra_allowed=[MyModel])``.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import ormsgpack
import pydantic
from langchain_core import messages as lc_messages
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ._compat import delta_snapshot, ext_codes
from ._db import BUSY_TIMEOUT_S, postgres_connect_kwargs, sqlite_synchronous
from ._saved import watch
from .errors import CheckpointError

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "ALLOWED_METHODS",
    "ALLOWED_TYPES",
    "StrictSerializer",
    "make_async_checkpointer",
    "make_checkpointer",
    "strict_serializer",
]

_MESSAGE_CLASSES = (
    "AIMessage", "AIMessageChunk", "HumanMessage", "HumanMessageChunk", "SystemMessage",
    "SystemMessageChunk", "ToolMessage", "ToolMessageChunk", "ChatMessage", "ChatMessageChunk",
    "FunctionMessage", "FunctionMessageChunk", "RemoveMessage",
)

ALLOWED_TYPES: frozenset[tuple[str, ...]] = frozenset(
    {(getattr(lc_messages, n).__module__, n) for n in _MESSAGE_CLASSES}
    | {
        ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"),
        ("datetime", "timedelta"), ("datetime", "timezone"), ("zoneinfo", "ZoneInfo"),
        ("uuid", "UUID"), ("decimal", "Decimal"),
        ("builtins", "set"), ("builtins", "frozenset"), ("collections", "deque"),
        ("langgraph.types", "Interrupt"), ("langgraph.types", "Send"),
        ("langgraph.types", "Command"), ("langgraph.types", "Overwrite"),
        ("agent_kit.modes", "Mode"),
    }
)
"""``(module, name)`` of every type a strict checkpoint may contain."""

ALLOWED_METHODS: frozenset[tuple[str, str, str]] = frozenset({("datetime", "datetime", "fromisoformat")})
"""``(module, name, method)`` of every constructor method a checkpoint may call."""

# Extension codes written by LangGraph's JsonPlusSerializer (read from it, through agent_kit._compat).
_EXT = ext_codes()
_SINGLE_ARG, _POS_ARGS, _KW_ARGS = (_EXT["EXT_CONSTRUCTOR_SINGLE_ARG"], _EXT["EXT_CONSTRUCTOR_POS_ARGS"],
                                   _EXT["EXT_CONSTRUCTOR_KW_ARGS"])
_METHOD, _PYDANTIC_V1, _PYDANTIC_V2 = _EXT["EXT_METHOD_SINGLE_ARG"], _EXT["EXT_PYDANTIC_V1"], _EXT["EXT_PYDANTIC_V2"]
_NUMPY, _DELTA = _EXT["EXT_NUMPY_ARRAY"], _EXT["EXT_DELTA_SNAPSHOT"]
_CODE_NAMES = {_PYDANTIC_V1: "pydantic v1 model", _NUMPY: "numpy array"}


class _Refused(Exception):
    """A value the strict loader will not build (message says which and why)."""


class StrictSerializer(JsonPlusSerializer):
    """LangGraph's msgpack serializer, loading only allow-listed types and failing loudly."""

    def __init__(self, *, extra_allowed: Iterable[tuple[str, ...] | type] = ()) -> None:
        self.extra_allowed: frozenset[tuple[str, ...]] = frozenset(
            (t.__module__, t.__name__) if isinstance(t, type) else tuple(t) for t in extra_allowed)
        self.allowed: frozenset[tuple[str, ...]] = ALLOWED_TYPES | self.extra_allowed
        """Every ``(module, name)`` this serializer rebuilds."""
        super().__init__(pickle_fallback=False, allowed_json_modules=None,
                         allowed_msgpack_modules=tuple(self.allowed),
                         __unpack_ext_hook__=self._ext_hook([]))

    def with_msgpack_allowlist(self, extra_allowlist: Iterable[tuple[str, ...] | type]) -> StrictSerializer:
        """A copy that also allows ``extra_allowlist`` (LangGraph derives it from a graph's
        declared state types when it compiles with strict msgpack on)."""
        clone = StrictSerializer(extra_allowed=[*self.extra_allowed, *extra_allowlist])
        return self if clone.allowed == self.allowed else clone

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """Save one value; one that msgpack cannot hold (an integer beyond 64 bits, an object of
        no known type) is a :class:`CheckpointError` naming it, never a raw ``TypeError``. The
        doors of :mod:`agent_kit.limits` keep such values out; this is the last line."""
        try:
            return super().dumps_typed(obj)
        except (TypeError, OverflowError, ValueError) as exc:
            raise CheckpointError(f"a value of the run's state cannot be saved in a checkpoint: {exc} (state holds "
                                  "plain JSON: integers within 64 bits, nesting a few levels deep)") from None

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Load one stored value.

        Raises:
            CheckpointError: the value is not msgpack/bytes/null, or holds anything not allowed.
        """
        type_, blob = data
        if type_ == "null":
            return None
        if type_ == "bytes":
            return blob
        if type_ == "bytearray":
            return bytearray(blob)
        if type_ != "msgpack":
            raise CheckpointError(f"checkpoint value stored as {type_!r} refused: strict loading reads "
                                  "msgpack only (never pickle or legacy JSON)")
        problems: list[str] = []
        try:
            return ormsgpack.unpackb(blob, ext_hook=self._ext_hook(problems),
                                     option=ormsgpack.OPT_NON_STR_KEYS)
        except Exception as exc:  # noqa: BLE001 - ormsgpack hides the hook's error; `problems` keeps it
            reason = problems[0] if problems else f"the value is not valid msgpack ({exc})"
            raise CheckpointError(f"checkpoint failed strict loading: {reason}") from None

    def _ext_hook(self, problems: list[str]) -> Callable[[int, bytes], Any]:
        def hook(code: int, data: bytes) -> Any:
            try:
                return self._build(code, data, hook)
            except Exception as exc:
                # The innermost failure is the cause; outer layers only see ormsgpack's wrapper.
                if not problems:
                    problems.append(str(exc) if isinstance(exc, _Refused) else f"{type(exc).__name__}: {exc}")
                raise

        return hook

    def _build(self, code: int, data: bytes, hook: Callable[[int, bytes], Any]) -> Any:
        def unpack(payload: bytes) -> Any:
            return ormsgpack.unpackb(payload, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)

        if code == _DELTA:
            return delta_snapshot(unpack(data))
        if code not in (_SINGLE_ARG, _POS_ARGS, _KW_ARGS, _METHOD, _PYDANTIC_V2):
            raise _Refused(f"msgpack extension {code} ({_CODE_NAMES.get(code, 'unknown')}) is not allowed")
        tup = unpack(data)
        if not (isinstance(tup, (list, tuple)) and len(tup) >= 3
                and isinstance(tup[0], str) and isinstance(tup[1], str)):
            raise _Refused(f"malformed msgpack extension {code} payload")
        module, name, arg = tup[0], tup[1], tup[2]
        method = tup[3] if code == _METHOD and len(tup) > 3 else None
        if code == _METHOD:
            if (module, name, method) not in ALLOWED_METHODS:
                raise _Refused(f"the call {module}.{name}.{method} is not on the allow-list")
        elif (module, name) not in self.allowed:
            raise _Refused(f"a value of type {module}.{name} is not on the allow-list (add it with "
                           "strict_serializer(extra_allowed=[...]) if it is your own type)")
        cls = getattr(importlib.import_module(module), name)
        try:
            if code == _SINGLE_ARG:
                return cls(arg)
            if code == _POS_ARGS:
                if (module, name) == ("langgraph.types", "Send") and len(arg) == 3:
                    return cls(arg[0], arg[1], timeout=arg[2])
                return cls(*arg)
            if code == _KW_ARGS:
                return cls(**arg)
            if code == _METHOD:
                return getattr(cls, str(method))(arg)
            try:
                return cls(**arg)
            except pydantic.ValidationError:
                # What LangGraph does too: a model saved by an older version of its class.
                return cls.model_construct(**arg)
        except _Refused:
            raise
        except Exception as exc:
            raise _Refused(f"could not rebuild {module}.{name} from the checkpoint: {exc}") from exc


def strict_serializer(*, extra_allowed: Iterable[tuple[str, ...] | type] = ()) -> StrictSerializer:
    """The serializer every agent_kit checkpointer uses (see the module docstring)."""
    return StrictSerializer(extra_allowed=extra_allowed)


def make_checkpointer(store: Store, *, serde: StrictSerializer | None = None) -> BaseCheckpointSaver[Any]:
    """A new sync checkpointer on the store's database, with strict deserialization.

    It owns a new connection (``saver.conn``); :meth:`Store.checkpointer` keeps one and closes it
    with the store.
    """
    serde = serde or strict_serializer()
    if store.backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(str(store.path), check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        conn.execute(f"PRAGMA synchronous={sqlite_synchronous()}")  # see sqlite_synchronous()
        saver: SqliteSaver = _guarded_sqlite_saver(SqliteSaver)(conn, serde=serde)
        saver.store_db = store._db  # type: ignore[attr-defined]  # GuardedSqliteSaver declares it
        saver.setup()
        return watch(saver)
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    assert store.db_url is not None
    pg = psycopg.connect(store.db_url, prepare_threshold=0, row_factory=dict_row,
                         **postgres_connect_kwargs(store.schema, store.db_url))
    return watch(PostgresSaver(pg, serde=serde))


def _guarded_sqlite_saver(base: type[Any]) -> type[Any]:
    """``SqliteSaver`` whose writes first check that the store's file is still the one opened,
    and whose storage failures are :class:`~agent_kit.errors.StorageError` naming the file."""

    class GuardedSqliteSaver(base):  # type: ignore[misc]  # base is SqliteSaver, passed in to import it lazily
        store_db: Any

        def _guarded(self, method: str, *args: Any, **kwargs: Any) -> Any:
            self.store_db.ensure_same_file()
            try:
                return getattr(super(), method)(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                raise self.store_db.storage_error(exc) from None

        def put(self, *args: Any, **kwargs: Any) -> Any:
            return self._guarded("put", *args, **kwargs)

        def put_writes(self, *args: Any, **kwargs: Any) -> Any:
            return self._guarded("put_writes", *args, **kwargs)

        def delete_thread(self, *args: Any, **kwargs: Any) -> Any:
            return self._guarded("delete_thread", *args, **kwargs)

    return GuardedSqliteSaver


@asynccontextmanager
async def make_async_checkpointer(store: Store, *, serde: StrictSerializer | None = None,
                                  ) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An async checkpointer on the store's database (strict), closed on exit."""
    serde = serde or strict_serializer()
    if store.backend == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(str(store.path), timeout=BUSY_TIMEOUT_S) as conn:
            saver = AsyncSqliteSaver(conn, serde=serde)
            await saver.setup()
            yield watch(saver)
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    assert store.db_url is not None
    async with await AsyncConnection.connect(
            store.db_url, prepare_threshold=0, row_factory=dict_row,
            **postgres_connect_kwargs(store.schema, store.db_url)) as apg:
        yield watch(AsyncPostgresSaver(apg, serde=serde))
