"""The audit trail: an append-only, hash-chained, authenticated and anchored log.

Each entry is stored as its canonical JSON text (``body``: every field but ``hash``) next to
``hash = sha256(prev_hash + body)`` and ``mac = KEY_ID:HMAC(key, hash)``. The readable columns
(``thread_id``, ``kind``, ``actor``, ...) are generated from ``body`` by the database, so they
cannot be edited on their own: the only way to change an entry is to change its body, which
breaks its hash; recomputing the hashes breaks the MACs, and the key is not in the database
(:mod:`agent_kit.audit_keys`). After each append (or every ``anchor_every`` appends) the new head
is written to an anchor outside the database (:mod:`agent_kit.anchor`), so a cut tail, a wiped
table or an older copy of the database put back is caught too.

``verify()`` needs no help from the user. It reads the newest anchor record, then streams the
table in chunks and checks, for each entry in ``seq`` order, that ``seq`` has no gap, that the
body names the previous entry's hash and its own ``seq`` (so a moved or reordered row is
caught), that its hash matches and that its MAC does; finally that the anchored entry is still
in the chain with its anchored hash. It reads ``(seq, hash, body, mac)`` only and does no JSON
parsing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._canonical import canonical_json
from ._db import Database, Tx, utc_now
from .anchor import AnchorRecord, AuditAnchor
from .audit_keys import AuditKeyring
from .errors import AuditError
from .limits import storable_result

if TYPE_CHECKING:
    import sqlite_utils

__all__ = [
    "AUDIT_KINDS",
    "GENESIS",
    "AuditEntry",
    "AuditLog",
    "VerifyReport",
]

AUDIT_KINDS: tuple[str, ...] = (
    "read", "recommended", "drafted", "verification_requested", "verified", "approval_requested",
    "approved", "edited", "rejected", "escalated", "resolved", "denied", "started", "executed", "rolled_back",
    "failed", "refused", "credentials_changed", "message_held", "message_delivered",
)
"""Every kind of audit entry, in the order an action usually meets them. ``started`` is an effect's
intent, written with its ledger record before it runs; its outcome (``executed``, ``drafted``,
``rolled_back`` or ``failed``) is written with the ledger's outcome."""

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry, and the head hash of an empty log."""

T = TypeVar("T")

_CHUNK = 20_000
_COLUMNS = ("thread_id", "kind", "tool", "action_hash", "actor", "at", "key")
_PREV_MARK = b',"prev_hash":"'
_VERIFY_SQL = {
    "sqlite": "SELECT seq, CAST(hash AS BLOB), CAST(body AS BLOB), mac FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
    "postgres": "SELECT seq, convert_to(hash, 'UTF8'), convert_to(body, 'UTF8'), mac FROM audit "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
}


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit trail."""

    seq: int
    """Position in the chain, from 1, without gaps."""
    thread_id: str | None
    kind: str
    """One of :data:`AUDIT_KINDS`."""
    tool: str | None
    action_hash: str | None
    """Hash of tool name + canonical arguments of the action this entry is about."""
    actor: str
    """Who did it: an approver's name, ``"agent"``, ``"system"``..."""
    at: str
    """ISO-8601 UTC time of the append."""
    data: dict[str, Any]
    checkpoint_id: str | None
    interrupt_id: str | None
    policy_version: str | None
    key: str | None
    """Dedupe key: at most one entry carries it."""
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The entry as plain JSON."""
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`AuditLog.verify` found."""

    ok: bool
    count: int
    """Entries checked and found good."""
    head_seq: int
    """``seq`` of the last good entry (0 if none)."""
    head_hash: str
    first_bad_seq: int | None
    """The first ``seq`` that is wrong or missing."""
    problem: str | None
    """What is wrong there, in one sentence."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    """The audit table of one store."""

    def __init__(self, db: Database, keyring: AuditKeyring, anchor: AuditAnchor | None,
                 anchor_every: int = 1) -> None:
        self._db = db
        self.keyring = keyring
        """The keys that authenticate entries (outside the database)."""
        self.anchor = anchor
        """Where heads are anchored outside the database (None: nowhere, truncation goes unseen)."""
        if not isinstance(anchor_every, int) or anchor_every < 1:
            raise AuditError(f"anchor_every must be a whole number >= 1, got {anchor_every!r}")
        self.anchor_every = anchor_every
        """Anchor the head after every this many entries (1: after each)."""
        self._pending = threading.local()  # the newest entry appended in this thread's open write()

    def append(self, kind: str, *, actor: str, thread_id: str | None = None, tool: str | None = None,
               action_hash: str | None = None, data: dict[str, Any] | None = None,
               checkpoint_id: str | None = None, interrupt_id: str | None = None,
               policy_version: str | None = None, key: str | None = None) -> AuditEntry:
        """Append one entry in one short transaction and return it.

        With ``key``, an entry already carrying that key is returned and nothing is appended,
        so a node that runs again (resume, crash recovery) records its decision exactly once.

        Raises:
            AuditError: ``kind`` is not one of :data:`AUDIT_KINDS`, ``actor`` is empty, or
                ``data`` is not JSON.
        """
        fields = _fields(kind, actor=actor, thread_id=thread_id, tool=tool, action_hash=action_hash,
                         data=data, checkpoint_id=checkpoint_id, interrupt_id=interrupt_id,
                         policy_version=policy_version, key=key)
        entry, new = self._db.write(lambda tx: _append_in(tx, fields, self.keyring), lock="audit")
        if new:
            self._anchor_new(entry.seq, entry.hash)
        return entry

    def append_in(self, tx: Tx, kind: str, *, actor: str, thread_id: str | None = None,
                  tool: str | None = None, action_hash: str | None = None, data: dict[str, Any] | None = None,
                  checkpoint_id: str | None = None, interrupt_id: str | None = None,
                  policy_version: str | None = None, key: str | None = None) -> AuditEntry:
        """Append one entry inside a transaction opened by :meth:`write`, so that it commits
        (or rolls back) together with the caller's other writes in that transaction.

        Raises:
            AuditError: as :meth:`append`.
        """
        fields = _fields(kind, actor=actor, thread_id=thread_id, tool=tool, action_hash=action_hash,
                         data=data, checkpoint_id=checkpoint_id, interrupt_id=interrupt_id,
                         policy_version=policy_version, key=key)
        entry, new = _append_in(tx, fields, self.keyring)
        if new:
            self._pending.head = (entry.seq, entry.hash)  # anchored once the transaction commits
        return entry

    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn(tx)`` in one write transaction that may append entries with :meth:`append_in`:
        an effect's ledger record and its audit entry commit together, or neither does. The new
        head is anchored after the commit."""
        self._pending.head = None
        result = self._db.write(fn, lock="audit")
        head, self._pending.head = getattr(self._pending, "head", None), None
        if head is not None:
            self._anchor_new(*head)
        return result

    def _anchor_new(self, seq: int, digest: str) -> None:
        if self.anchor is not None and seq % self.anchor_every == 0:
            self.anchor_head(seq, digest)

    def anchor_head(self, seq: int | None = None, digest: str | None = None) -> AnchorRecord | None:
        """Write the head (or the given entry) to the anchor now; returns the record written.

        Raises:
            StorageError: the anchor cannot be written (the entry itself is committed already).
        """
        if self.anchor is None:
            return None
        if seq is None or digest is None:
            seq, digest = self.head()
        if seq == 0:
            return None
        record = AnchorRecord(seq, digest, self.keyring.sign(_anchor_message(seq, digest)), utc_now())
        self.anchor.record(record)
        return record

    def entries(self, thread_id: str | None = None, *, kind: str | tuple[str, ...] | None = None,
                after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Entries in ``seq`` order, optionally of one thread and/or one kind (or any of several),
        after ``after_seq``."""
        sql = "SELECT seq, hash, body FROM audit WHERE seq > ?"
        params: list[Any] = [after_seq]
        if thread_id is not None:
            sql += " AND thread_id = ?"
            params.append(thread_id)
        if isinstance(kind, tuple):
            sql += f" AND kind IN ({', '.join('?' * len(kind))})"
            params.extend(kind)
        elif kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_entry(row) for row in self._db.fetchall(sql, params)]

    def get(self, seq: int) -> AuditEntry | None:
        """The entry at ``seq``, or None."""
        row = self._db.fetchone("SELECT seq, hash, body FROM audit WHERE seq = ?", (seq,))
        return _entry(row) if row else None

    def by_key(self, key: str) -> AuditEntry | None:
        """The entry carrying dedupe ``key``, or None."""
        return self.by_keys([key]).get(key)

    def by_keys(self, keys: Sequence[str]) -> dict[str, AuditEntry]:
        """The entries carrying any of ``keys``, by key (one query; a key with no entry is absent)."""
        if not keys:
            return {}
        rows = self._db.fetchall(f"SELECT seq, hash, body FROM audit WHERE key IN ({', '.join('?' * len(keys))})",
                                 list(keys))
        return {e.key: e for e in map(_entry, rows) if e.key is not None}

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry; ``(0, GENESIS)`` when the log is empty."""
        row = self._db.fetchone("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def verify(self, *, expected_head: str | None = None,
               progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Check the whole chain against its hashes, its MACs and the anchor, streaming it in chunks.

        Args:
            expected_head: the hash of a head seen earlier (from :meth:`head`); if it is no
                longer in the chain, the log was truncated or rewritten after it. Not needed to
                catch truncation when an anchor is configured (the default).
            progress: called with the number of entries checked after each chunk.

        Returns:
            A report naming the first bad ``seq`` and what is wrong there.

        Raises:
            AuditError: the key file or the anchor cannot be read.
        """
        sha256 = hashlib.sha256
        check = self.keyring.check
        # Read the anchor before the chain: a head anchored while we stream is then never
        # mistaken for a cut tail.
        anchored = self.anchor.latest() if self.anchor is not None else None
        if anchored is not None and self.anchor is not None:
            why = check(_anchor_message(anchored.seq, anchored.hash), anchored.mac)
            if why is not None:
                return VerifyReport(False, 0, 0, GENESIS, anchored.seq, (
                    f"the newest record of the anchor {self.anchor.where} (entry {anchored.seq}) is not "
                    f"authentic: {why}; either the anchor was written by someone without the audit "
                    "key, or that key is missing here"))
        # Bytes end to end: no UTF-8 decode of each body only to encode it again for hashing.
        select = _VERIFY_SQL[self._db.backend]
        prev, expect, last = GENESIS.encode(), 1, 0
        wanted = expected_head.encode() if expected_head is not None else None
        seen_expected = expected_head is None or expected_head == GENESIS
        anchor_seq = anchored.seq if anchored is not None else 0
        anchor_hash = anchored.hash.encode() if anchored is not None else b""
        while True:
            rows = self._db.fetchall(select, (last, _CHUNK))
            if not rows:
                break
            for seq, digest, body, mac in rows:
                if seq != expect:
                    return _bad(expect, prev, f"entry {expect} is missing: the log jumps from "
                                f"{expect - 1} to {seq} (entries were deleted)")
                if sha256(prev + body).hexdigest().encode() != digest:
                    # The hash chains each entry to the one read before it, so a matching hash
                    # already proves the order; what the body records says why it does not match.
                    if not _records_position(body, prev, seq):
                        return _bad(seq, prev, f"entry {seq} does not follow entry {seq - 1}: its recorded "
                                    "position or predecessor differs (reordered, or an earlier entry "
                                    "was removed or rewritten)")
                    return _bad(seq, prev, f"entry {seq} was altered: its hash does not match "
                                "its contents")
                text = digest.decode()
                why = check(_entry_message(text), mac) if mac else "it carries no MAC"
                if why is not None:
                    return _bad(seq, prev, f"entry {seq} is not authentic: {why} (written or rewritten "
                                "by someone without the audit key)")
                if seq == anchor_seq and digest != anchor_hash:
                    return _bad(seq, prev, f"entry {seq} differs from the one anchored at "
                                f"{self.anchor.where if self.anchor else ''}: the chain was rewritten "
                                "up to here")
                if digest == wanted:
                    seen_expected = True
                prev = digest
                expect += 1
            last = rows[-1][0]
            if progress is not None:
                progress(expect - 1)
        if anchor_seq >= expect:
            assert self.anchor is not None
            what = "the audit table is empty (wiped)" if expect == 1 else f"the chain ends at entry {expect - 1}"
            return _bad(expect, prev, f"the anchor {self.anchor.where} recorded entry {anchor_seq}, but "
                        f"{what}: entries were removed (truncated, wiped, or an older copy of the "
                        "database was put back)")
        if not seen_expected:
            return _bad(expect, prev, f"the expected head {str(expected_head)[:16]}... is not in the "
                        f"chain: entries after {expect - 1} were removed (truncated) or rewritten")
        return VerifyReport(True, expect - 1, expect - 1, prev.decode(), None, None)



def _fields(kind: str, *, actor: str, thread_id: str | None, tool: str | None, action_hash: str | None,
            data: dict[str, Any] | None, checkpoint_id: str | None, interrupt_id: str | None,
            policy_version: str | None, key: str | None) -> dict[str, Any]:
    if kind not in AUDIT_KINDS:
        raise AuditError(f"unknown audit kind {kind!r}: use one of {', '.join(AUDIT_KINDS)}")
    if not actor:
        raise AuditError("an audit entry needs an actor: pass actor='name'")
    try:
        text = canonical_json(data or {}, allow_nan=False)
        text.encode()
    except TypeError as exc:
        raise AuditError(f"audit data for {kind!r} is not JSON: {exc}") from None
    except (ValueError, RecursionError):
        # Valid but odd values that reached the trail (a lone surrogate, inf, nesting past any
        # limit: a tool's error text, say) are kept as text saying what they were: an entry is
        # never lost for them, and every backend stores it.
        text = canonical_json(storable_result(data or {}, max_depth=64))
    data_value = json.loads(text)
    if not isinstance(data_value, dict):
        raise AuditError(f"audit data must be a dict, got {type(data).__name__}")
    return {
        "thread_id": thread_id, "kind": kind, "tool": tool, "action_hash": action_hash,
        "actor": actor, "data": data_value, "checkpoint_id": checkpoint_id,
        "interrupt_id": interrupt_id, "policy_version": policy_version, "key": key,
    }


_KEY_AND_HEAD_SQL = (
    "SELECT k.seq, k.hash, k.body, h.seq, h.hash FROM (SELECT 1 AS one) AS o"
    " LEFT JOIN (SELECT seq, hash, body FROM audit WHERE key = ?) AS k ON 1 = 1"
    " LEFT JOIN (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) AS h ON 1 = 1")
"""The entry carrying a key (NULLs when none does: a NULL key matches nothing) and the head."""


def _append_in(tx: Tx, fields: dict[str, Any], keyring: AuditKeyring) -> tuple[AuditEntry, bool]:
    """Append in ``tx``; the entry, and whether it is new (False: one with its key existed)."""
    key = fields["key"]
    # The entry under this key (if one exists) and the chain's head, in one statement: one round
    # trip to the server per entry, not two (the transaction holds the audit lock on Postgres, the
    # write lock on SQLite, so the head read is the head this entry follows).
    row = tx.fetchone(_KEY_AND_HEAD_SQL, (key,))
    assert row is not None  # the outer SELECT always yields one row
    if row[0] is not None:
        return _entry((row[0], row[1], row[2])), False
    seq, prev = (int(row[3]), str(row[4])) if row[3] is not None else (0, GENESIS)
    body = canonical_json({**fields, "seq": seq + 1, "prev_hash": prev, "at": utc_now()})
    digest = hashlib.sha256((prev + body).encode()).hexdigest()
    mac = keyring.sign(_entry_message(digest))
    tx.send("INSERT INTO audit (seq, hash, body, mac) VALUES (?, ?, ?, ?)", (seq + 1, digest, body, mac))
    return _entry((seq + 1, digest, body)), True


def _records_position(body: bytes, prev: bytes, seq: int) -> bool:
    """Whether an entry's body records ``seq`` as its position and ``prev`` as its predecessor."""
    at = body.rfind(_PREV_MARK)
    return at >= 0 and body.startswith(b'%s%s","seq":%d,"thread_id":' % (_PREV_MARK, prev, seq), at)


def _entry_message(digest: str) -> str:
    return f"entry\x1f{digest}"


def _anchor_message(seq: int, digest: str) -> str:
    return f"anchor\x1f{seq}\x1f{digest}"


def _bad(seq: int, prev: bytes, problem: str) -> VerifyReport:
    return VerifyReport(False, seq - 1, seq - 1, prev.decode(), seq, problem)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    seq, digest, body = row
    f = json.loads(body)
    return AuditEntry(
        seq=int(seq), thread_id=f["thread_id"], kind=f["kind"], tool=f["tool"],
        action_hash=f["action_hash"], actor=f["actor"], at=f["at"], data=f["data"],
        checkpoint_id=f["checkpoint_id"], interrupt_id=f["interrupt_id"],
        policy_version=f["policy_version"], key=f["key"], prev_hash=f["prev_hash"], hash=str(digest),
    )


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    # Plain SQL: sqlite-utils cannot declare generated columns.
    cols = ",\n".join(f"  {c} TEXT GENERATED ALWAYS AS (json_extract(body, '$.{c}')) VIRTUAL"
                      for c in _COLUMNS)
    db.execute(f"CREATE TABLE IF NOT EXISTS audit (\n  seq INTEGER PRIMARY KEY,\n"
               f"  hash TEXT NOT NULL,\n  body TEXT NOT NULL,\n  mac TEXT,\n{cols}\n)")
    if "mac" not in {c.name for c in db["audit"].columns}:
        db.execute("ALTER TABLE audit ADD COLUMN mac TEXT")  # a store from before entries were signed
    _create_indexes(db.execute)


def _create_postgres_tables(tx: Tx) -> None:
    cols = ",\n".join(f"  {c} {_pg_generated(c)}" for c in _COLUMNS)
    tx.execute(f"CREATE TABLE IF NOT EXISTS audit (\n  seq BIGINT PRIMARY KEY,\n"
               f"  hash TEXT NOT NULL,\n  body TEXT NOT NULL,\n  mac TEXT,\n{cols}\n)")
    tx.execute("ALTER TABLE audit ADD COLUMN IF NOT EXISTS mac TEXT")
    old = tx.fetchone("SELECT generation_expression FROM information_schema.columns WHERE table_schema = "
                      "current_schema() AND table_name = 'audit' AND column_name = 'kind'")
    if old is not None and "replace" not in str(old[0]):
        # A table from before text with NUL was stored: its columns are generated again, NUL-tolerant.
        for c in _COLUMNS:
            tx.execute(f"ALTER TABLE audit DROP COLUMN {c}")
            tx.execute(f"ALTER TABLE audit ADD COLUMN {c} {_pg_generated(c)}")
    _create_indexes(tx.execute)


def _pg_generated(column: str) -> str:
    # jsonb refuses the escape of NUL (\u0000) that JSON text may hold; the readable columns are
    # read with it shown as U+2400 (the body, which is hashed and read back, keeps it as it is).
    # The plain replace is exact: in JSON text a backslash-u0000 is either a NUL's escape or the
    # tail of an escaped backslash, and replacing it gives valid JSON in both cases.
    return (f"TEXT GENERATED ALWAYS AS ((replace(body, '\\u0000', '\\u2400')::jsonb) ->> '{column}') STORED")


def _create_indexes(execute: Callable[[str], Any]) -> None:
    execute("CREATE UNIQUE INDEX IF NOT EXISTS audit_key ON audit (key)")
    execute("CREATE INDEX IF NOT EXISTS audit_thread ON audit (thread_id, seq)")
    execute("CREATE INDEX IF NOT EXISTS audit_kind ON audit (kind, seq)")
