"""The audit trail: append rate, and verify rate over a long chain.

Appends go through ``AuditLog.append`` (one transaction each, as the graph makes them). The long
chain is built in bulk: entries made exactly as ``append`` makes them (same canonical body, same
chained hash) and inserted with ``executemany`` in large transactions; the time to build is
reported. The anchor for verify is the floor of any chained check: read ``(hash, body)`` and
recompute the chain's hashes, nothing else.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_kit._canonical import canonical_json
from agent_kit._db import utc_now
from agent_kit.audit import GENESIS, _entry_message
from agent_kit.store import Store

from . import Result, interleave, median, report

NAME = "audit"
GOAL = 0.9
"""Verify reaches at least this share of the read-and-rehash floor of the same entries."""


def _bulk(path: Path, start_seq: int, prev: str, n: int, keyring: Any) -> str:
    """Append ``n`` chained entries signed with the store's key, as AuditLog writes them."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    sha, at = hashlib.sha256, utc_now()
    seq = start_seq
    batch = 50_000
    for k in range(0, n, batch):
        rows = []
        for j in range(min(batch, n - k)):
            seq += 1
            body = canonical_json({
                "thread_id": f"t{seq % 5000}", "kind": "executed", "tool": "pay", "action_hash": "ab" * 32,
                "actor": "agent", "data": {"idempotency_key": f"k{seq}", "duration_ms": 1.5},
                "checkpoint_id": None, "interrupt_id": None, "policy_version": "0123456789abcdef",
                "key": f"t{seq % 5000}:k{seq}:executed", "seq": seq, "prev_hash": prev, "at": at})
            prev = sha((prev + body).encode()).hexdigest()
            rows.append((seq, prev, body, keyring.sign(_entry_message(prev))))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO audit (seq, hash, body, mac) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.close()
    return prev


def run(quick: bool = False) -> Result:
    total = 100_000 if quick else 1_000_000
    appends = 300 if quick else 2_000
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(home=Path(tmp))
        audit = store.audit
        t0 = time.perf_counter()
        for i in range(appends):
            audit.append("executed", actor="agent", thread_id=f"t{i % 50}", tool="pay", action_hash="ab" * 32,
                         data={"idempotency_key": f"k{i}"}, key=f"a{i}")
        append_rate = appends / (time.perf_counter() - t0)
        seq, head = audit.head()
        t0 = time.perf_counter()
        head = _bulk(store.path, seq, head, total - seq, audit.keyring)  # type: ignore[arg-type]
        build_s = time.perf_counter() - t0
        size_mb = store.path.stat().st_size / 1e6  # type: ignore[union-attr]
        conn = sqlite3.connect(str(store.path))

        def ours(_: int) -> None:
            rep = audit.verify(expected_head=head)
            assert rep.ok and rep.count == total, rep

        def floor(_: int) -> None:
            prev, sha = GENESIS, hashlib.sha256
            check = audit.keyring.check
            for digest, body, mac in conn.execute("SELECT hash, body, mac FROM audit ORDER BY seq"):
                if sha((prev + body).encode()).hexdigest() != digest or check(_entry_message(digest), mac):
                    raise AssertionError
                prev = digest

        rounds = 2 if quick else 3
        a, b = interleave(ours, floor, rounds=rounds, warmup=1, scale=1.0)
        conn.close()
        store.close()
    ours_rate, floor_rate = total / median(a), total / median(b)
    res = Result(NAME, ours_rate, floor_rate, "entries/s", f">={GOAL}x floor", ours_rate >= GOAL * floor_rate,
                 "AuditLog.verify", "read + rehash + MAC check floor", higher_is_better=True,
                 extra={"entries": total, "append_per_s": append_rate, "appends_timed": appends,
                        "build_s": build_s, "db_mb": size_mb, "verify_s": median(a)})
    return report(res, [
        f"append (AuditLog.append, one transaction each, default synchronous): {append_rate:,.0f} entries/s "
        f"over {appends}",
        f"built {total:,} chained entries in bulk in {build_s:.1f} s ({size_mb:.0f} MB)",
        f"verify: {ours_rate:,.0f} entries/s ({median(a):.2f} s); read+rehash floor {floor_rate:,.0f} entries/s",
    ])
