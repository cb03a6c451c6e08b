"""Anchors: the audit chain's head, written outside the database as the log grows.

An attacker who can write the database can cut the chain's tail, wipe the table or put back an
older copy; none of that leaves a bad hash behind. An anchor remembers where the chain was:
:meth:`~agent_kit.audit.AuditLog.verify` reads the newest anchored ``(seq, hash)`` and requires
the chain to still hold exactly that entry. Because every entry names its predecessor's hash,
one matching anchored entry vouches for every entry before it.

Anchor records are authenticated with the audit key (:mod:`agent_kit.audit_keys`), so whoever
can append to the anchor but has no key cannot make a forged chain pass; at worst they make
``verify`` fail.

:class:`FileAnchor`, the default, appends one JSON line per record to a file under the home
folder (``audit.anchor`` for SQLite; ``audit-<id>.anchor`` per Postgres database and schema),
opened with ``O_APPEND`` so concurrent writers never overwrite each other. Any object with
``record`` and ``latest`` (:class:`AuditAnchor`) can take its place: a WORM bucket, a remote
log, a transparency service.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import AuditError, StorageError

__all__ = ["AnchorRecord", "AuditAnchor", "FileAnchor"]

_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class AnchorRecord:
    """One anchored head: the entry at ``seq`` had hash ``hash``; ``mac`` authenticates both."""

    seq: int
    hash: str
    mac: str
    at: str


@runtime_checkable
class AuditAnchor(Protocol):
    """Where audit heads are written outside the database (append-only)."""

    @property
    def where(self) -> str:
        """Where the records go, for messages (a path, a URL)."""
        ...

    def record(self, entry: AnchorRecord) -> None:
        """Append ``entry``; never rewrite or drop an earlier one."""
        ...

    def latest(self) -> AnchorRecord | None:
        """The record with the highest ``seq`` (None if nothing was anchored yet).

        Raises:
            AuditError: the anchor cannot be read, or its newest records are malformed.
        """
        ...


class FileAnchor:
    """Anchor records as JSON lines appended to one file (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def record(self, entry: AnchorRecord) -> None:
        line = json.dumps({"seq": entry.seq, "hash": entry.hash, "mac": entry.mac, "at": entry.at},
                          separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # One write of a short line with O_APPEND: lines of concurrent writers never interleave.
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot write the audit anchor {self.path}: {exc.strerror}") from None

    def latest(self) -> AnchorRecord | None:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0, size - _TAIL_BYTES)
                f.seek(start)
                tail = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the audit anchor {self.path}: {exc.strerror}") from None
        lines = tail.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first line of a tail read may be cut
        best: AnchorRecord | None = None
        for n, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
                rec = AnchorRecord(int(d["seq"]), str(d["hash"]), str(d["mac"]), str(d.get("at", "")))
            except (ValueError, KeyError, TypeError):
                if n == len(lines) - 1:
                    continue  # a last line cut short by a crash mid-write: the records before stand
                raise AuditError(f"the audit anchor {self.path} holds a malformed record near its end "
                                 f"({raw[:60]!r}): it was edited by hand or damaged") from None
            if best is None or rec.seq > best.seq:
                best = rec
        return best


def anchor_file_name(namespace: str | None) -> str:
    """``audit.anchor`` for a SQLite home; ``audit-<12 hex>.anchor`` per Postgres database+schema."""
    if not namespace:
        return "audit.anchor"
    import hashlib

    return f"audit-{hashlib.sha256(namespace.encode()).hexdigest()[:12]}.anchor"
