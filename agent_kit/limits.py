"""What agent_kit accepts as input, and the checks at its doors.

Every string and number that reaches agent_kit (a customer's message, a tool call's arguments, a
tool's result, an approver's name, a decision's reason, note or edit, a customer's answer to a
confirmation) is either stored and replayed faithfully on every backend or refused up front with
an :class:`~agent_kit.errors.InputError` naming the field. The rule, the same at every door:

- **Stored faithfully**: any valid Unicode text, NUL and other control characters included (the
  store escapes them, so Postgres ``jsonb`` never sees a raw ``\\u0000``), ``\\u2028``, byte order
  marks, right-to-left marks, emoji; integers within 64 bits; finite floats.
- **Refused** (nothing is written; the thread stays usable): text with a lone UTF-16 surrogate (it
  is not Unicode text: no backend can store it as such), integers outside the signed/unsigned
  64-bit range (checkpoints are MessagePack), ``inf`` and ``nan`` (JSON has no such numbers),
  values nested deeper than :attr:`InputLimits.max_depth`, values that are not JSON (bytes,
  ``Decimal``, sets, objects, dictionary keys that are not text), and anything over its size limit.
- **Names** (approver names, thread ids) are identifiers, not free text: control characters are
  refused in them too.

A tool's *result* comes back after its effect ran, so it is never refused: a value the store cannot
hold as is becomes text saying what it was (``2**80`` becomes ``"1208925819614629174706176"``, ``inf``
``"inf"``, a lone surrogate ``"\\\\ud800"``, a subtree past the depth limit its description), and a
result over :attr:`InputLimits.max_result_chars` reaches the model cut to that size; the ledger
keeps what was recorded.

Each check is one pass over the value (no recursion, so a value nested 10,000 deep is refused,
not a ``RecursionError``), in time linear in its size.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from agent_kit.errors import InputError

__all__ = ["InputLimits", "check_name", "check_text", "check_value", "storable_result"]

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


@dataclass(frozen=True)
class InputLimits:
    """Size limits of what enters agent_kit; each can be set by its environment variable.

    >>> InputLimits(max_message_chars=10_000)  # or AGENT_KIT_MAX_MESSAGE_CHARS=10000
    """

    max_message_chars: int = 1_000_000
    """A chat message, a decision's reason or note, a confirmation answer
    (``AGENT_KIT_MAX_MESSAGE_CHARS``)."""
    max_args_chars: int = 100_000
    """One tool call's arguments, as JSON text (``AGENT_KIT_MAX_ARGS_CHARS``); an edit's too."""
    max_result_chars: int = 1_000_000
    """A tool result the model sees, as JSON text (``AGENT_KIT_MAX_RESULT_CHARS``); longer is cut."""
    max_depth: int = 64
    """Nesting of lists and objects in arguments, edits and results (``AGENT_KIT_MAX_DEPTH``)."""
    max_tool_calls: int = 16
    """Tool calls in one message of the model (``AGENT_KIT_MAX_TOOL_CALLS``); the ones past it are
    refused as invalid calls (the model is told), since the calls of one message are decided
    together and each one's totals include the others."""
    max_name_chars: int = 200
    """An approver's name or a thread id (``AGENT_KIT_MAX_NAME_CHARS``)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"InputLimits.{f.name} must be a positive integer, got {value!r}", field=f.name)

    @classmethod
    def from_env(cls, **overrides: int) -> InputLimits:
        """The defaults, then ``AGENT_KIT_MAX_*`` from the environment, then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = "AGENT_KIT_" + f.name.upper()
            raw = os.environ.get(var)
            if raw is not None and raw.strip():
                try:
                    values[f.name] = int(raw.strip().replace("_", ""))
                except ValueError:
                    raise InputError(f"{var}={raw!r} is not an integer", field=var) from None
        values.update(overrides)
        return cls(**values)


def _surrogate_at(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(text: Any, field: str, *, max_chars: int, allow_empty: bool = True) -> str:
    """Free text (a message, a reason, a note): any Unicode text up to ``max_chars``, control
    characters included; refused: not text, a lone surrogate, too long."""
    if not isinstance(text, str):
        raise InputError(f"{field} must be text, got {type(text).__name__}", field=field)
    if len(text) > max_chars:
        raise InputError(f"{field} is {len(text):,} characters long; the limit is {max_chars:,} "
                         "(InputLimits / AGENT_KIT_MAX_MESSAGE_CHARS)", field=field)
    at = _surrogate_at(text)
    if at is not None:
        raise InputError(f"{field} holds a lone UTF-16 surrogate {text[at]!r} at position {at}, which is not "
                         "Unicode text; send it as valid UTF-8", field=field)
    if not allow_empty and not text.strip():
        raise InputError(f"{field} must be non-empty text", field=field)
    return text


def check_name(name: Any, field: str, *, max_chars: int = 200) -> str:
    """A name or id: non-empty text without control characters or lone surrogates."""
    check_text(name, field, max_chars=max_chars, allow_empty=False)
    for i, ch in enumerate(name):
        if unicodedata.category(ch) == "Cc":
            raise InputError(f"{field} {name[:40]!r} holds the control character {ch!r} at position {i}; "
                             "a name is plain text", field=field)
    return str(name)


def check_value(value: Any, field: str, *, max_chars: int, max_depth: int) -> None:
    """A JSON value (arguments, an edit): refused unless every part can be stored and replayed
    as it is. ``max_chars`` bounds its size, counted as the length of its text and numbers."""
    problem = _first_problem(value, max_chars=max_chars, max_depth=max_depth)
    if problem is not None:
        where, what = problem
        raise InputError(f"{field}{where} {what}", field=field)


def _first_problem(value: Any, *, max_chars: int, max_depth: int) -> tuple[str, str] | None:
    size = 0
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        if v is None or isinstance(v, bool):
            size += 4
        elif isinstance(v, str):
            size += len(v) + 2
            at = _surrogate_at(v)
            if at is not None:
                return path, (f"holds a lone UTF-16 surrogate {v[at]!r} at position {at}, which is not Unicode "
                              "text; send valid UTF-8")
        elif isinstance(v, int):
            if not _INT_MIN <= v <= _INT_MAX:
                return path, (f"is an integer of {v.bit_length()} bits, outside the 64-bit range agent_kit "
                              "stores; send it as text")
            size += 20
        elif isinstance(v, float):
            if not math.isfinite(v):
                return path, f"is {v!r}, which is not a JSON number; send a finite number"
            size += 24
        elif isinstance(v, Mapping | list | tuple):
            if depth >= max_depth:
                return path, f"is nested more than {max_depth} levels deep; send a flatter value"
            size += 2
            if isinstance(v, Mapping):
                for k, item in v.items():
                    if not isinstance(k, str):
                        return path, f"has the key {k!r} of type {type(k).__name__}; object keys must be text"
                    at = _surrogate_at(k)
                    if at is not None:
                        return path, f"has a key holding a lone UTF-16 surrogate {k[at]!r}; send valid UTF-8"
                    size += len(k) + 3
                    stack.append((item, f"{path}.{_short(k)}", depth + 1))
            else:
                for i, item in enumerate(v):
                    stack.append((item, f"{path}[{i}]", depth + 1))
        else:
            return path, (f"is a {type(v).__name__}, which is not JSON; send text, a number, true/false, null, "
                          "a list or an object")
        if size > max_chars:
            return "", f"is larger than {max_chars:,} characters as JSON; the limit is set by InputLimits"
    return None


def _short(key: str) -> str:
    shown = key if len(key) <= 40 else key[:40] + "…"
    return shown.encode("unicode_escape").decode("ascii") if not shown.isprintable() else shown


def storable_result(value: Any, *, max_depth: int) -> Any:
    """A tool's result in a form every backend stores and replays as it is: what cannot be stored
    becomes text saying what it was (never refused: the effect already ran)."""
    if _first_problem(value, max_chars=2**62, max_depth=max_depth) is None:
        return value
    return _coerce(value, max_depth)


def _coerce(value: Any, max_depth: int) -> Any:
    # Rebuilt bottom-up without recursion: results can be nested 10,000 deep.
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        v, parent, slot, depth = stack.pop()
        out: Any
        if v is None or isinstance(v, bool):
            out = v
        elif isinstance(v, str):
            out = v if _surrogate_at(v) is None else v.encode("utf-8", "backslashreplace").decode("utf-8")
        elif isinstance(v, int):
            out = v if _INT_MIN <= v <= _INT_MAX else str(v)
        elif isinstance(v, float):
            out = v if math.isfinite(v) else repr(v)
        elif isinstance(v, Mapping | list | tuple):
            if depth >= max_depth:
                out = f"(a value nested more than {max_depth} levels deep, not kept)"
            elif isinstance(v, Mapping):
                out = {}
                for k, item in v.items():
                    key = k if isinstance(k, str) else str(k)
                    if _surrogate_at(key) is not None:
                        key = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    out[key] = None
                    stack.append((item, out, key, depth + 1))
            else:
                out = [None] * len(v)
                for i, item in enumerate(v):
                    stack.append((item, out, i, depth + 1))
        else:
            out = str(v)
            if _surrogate_at(out) is not None:
                out = out.encode("utf-8", "backslashreplace").decode("utf-8")
        parent[slot] = out
    return root[0]
