"""Log integrity against someone who can write the database: the audit key and the anchor.

Each attack is done the way an attacker with database access would do it (raw SQL, hashes
recomputed, rows forged); ``verify()`` is called with no argument, as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_kit._canonical import canonical_json
from agent_kit.anchor import AnchorRecord, FileAnchor
from agent_kit.audit_keys import AUDIT_KEY_ENV, KEY_FILE, AuditKeyring
from agent_kit.errors import AuditError
from agent_kit.store import Store


def _fill(store: Store, count: int, start: int = 1) -> None:
    for n in range(start, start + count):
        store.audit.append("executed", actor="alice", thread_id="t1", tool="issue_refund",
                           action_hash=f"h{n}", data={"amount": n})


def _rows(store: Store) -> list[tuple[int, str, str, str | None]]:
    return [(int(r[0]), str(r[1]), str(r[2]), r[3])
            for r in store._db.fetchall("SELECT seq, hash, body, mac FROM audit ORDER BY seq")]


def _rechain(store: Store, from_seq: int, edit: Callable[[dict[str, Any]], None],
             sign: Callable[[str], str | None] = lambda digest: None) -> None:
    """Edit entry ``from_seq`` and recompute every later body's ``prev_hash`` and every hash,
    keeping each row's MAC (or putting ``sign(hash)`` there): a full, careful rewrite."""
    rows = _rows(store)
    prev = rows[from_seq - 2][1] if from_seq > 1 else "0" * 64
    for seq, _digest, body, mac in rows[from_seq - 1:]:
        fields = json.loads(body)
        fields["prev_hash"] = prev
        if seq == from_seq:
            edit(fields)
        new_body = canonical_json(fields)
        digest = hashlib.sha256((prev + new_body).encode()).hexdigest()
        store._db.execute("UPDATE audit SET body = ?, hash = ?, mac = ? WHERE seq = ?",
                          (new_body, digest, sign(digest) or mac, seq))
        prev = digest


def _rewrite_and_rehash(store: Store) -> None:
    _rechain(store, 3, lambda f: f["data"].update(amount=3000))


def _cut_tail(store: Store) -> None:
    store._db.execute("DELETE FROM audit WHERE seq > 7")


def _append_forgery(store: Store) -> None:
    seq, digest, body, mac = _rows(store)[-1]
    fields = json.loads(body)
    fields.update(seq=seq + 1, prev_hash=digest, actor="mallory", data={"amount": 9999})
    forged = canonical_json(fields)
    new = hashlib.sha256((digest + forged).encode()).hexdigest()
    store._db.execute("INSERT INTO audit (seq, hash, body, mac) VALUES (?, ?, ?, ?)",
                      (seq + 1, new, forged, mac))  # the MAC of another entry, the best one can do


def _append_unsigned(store: Store) -> None:
    seq, digest, body, _mac = _rows(store)[-1]
    fields = json.loads(body)
    fields.update(seq=seq + 1, prev_hash=digest, kind="approved", actor="mallory")
    forged = canonical_json(fields)
    store._db.execute("INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                      (seq + 1, hashlib.sha256((digest + forged).encode()).hexdigest(), forged))


def _wipe(store: Store) -> None:
    store._db.execute("DELETE FROM audit")


def _wipe_and_start_over(store: Store) -> None:
    """Wipe the table and write a fresh, self-consistent chain of three entries."""
    rows = _rows(store)[:3]
    store._db.execute("DELETE FROM audit")
    for seq, digest, body, mac in rows:
        store._db.execute("INSERT INTO audit (seq, hash, body, mac) VALUES (?, ?, ?, ?)", (seq, digest, body, mac))


ATTACKS: dict[str, tuple[Callable[[Store], None], str]] = {
    "rewrite_and_rehash": (_rewrite_and_rehash, "entry 3 is not authentic"),
    "cut_tail": (_cut_tail, "chain ends at entry 7"),
    "append_forgery": (_append_forgery, "entry 11 is not authentic"),
    "append_unsigned": (_append_unsigned, "entry 11 is not authentic: it carries no MAC"),
    "wipe": (_wipe, "audit table is empty (wiped)"),
    "wipe_and_start_over": (_wipe_and_start_over, "chain ends at entry 3"),
}


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_verify_alone_detects_each_attack_with_database_access(store: Store, attack: str) -> None:
    _fill(store, 10)
    assert store.audit.verify().ok
    do, says = ATTACKS[attack]
    do(store)
    report = store.audit.verify()
    assert not report.ok, attack
    assert says in str(report.problem)


def test_a_rewrite_signed_with_the_stolen_key_is_caught_by_the_anchor(store: Store) -> None:
    _fill(store, 10)
    keyring = AuditKeyring(store.home)  # the attacker has read the key file
    _rechain(store, 4, lambda f: f.update(actor="mallory"), sign=lambda d: keyring.sign(f"entry\x1f{d}"))
    report = store.audit.verify()
    assert not report.ok and report.first_bad_seq == 10
    assert "differs from the one anchored" in str(report.problem)


def test_a_cut_tail_is_caught_even_when_anchoring_every_few_entries(open_store: Any) -> None:
    store = open_store()
    store.audit.anchor_every = 4
    _fill(store, 10)
    anchored = store.audit.anchor.latest()
    assert anchored is not None and anchored.seq == 8
    store._db.execute("DELETE FROM audit WHERE seq > 7")
    assert "chain ends at entry 7" in str(store.audit.verify().problem)


def test_a_forged_anchor_record_is_refused(store: Store) -> None:
    _fill(store, 5)
    assert isinstance(store.audit.anchor, FileAnchor)
    store.audit.anchor.record(AnchorRecord(50, "f" * 64, "k:" + "0" * 64, "now"))
    report = store.audit.verify()
    assert not report.ok and "not authentic" in str(report.problem) and "anchor" in str(report.problem)


def test_a_torn_last_anchor_line_is_ignored_and_a_torn_middle_line_is_reported(store: Store) -> None:
    _fill(store, 5)
    anchor = store.audit.anchor
    assert isinstance(anchor, FileAnchor)
    with open(anchor.path, "ab") as f:
        f.write(b'{"seq":6,"hash":"ab')  # a crash mid-write
    assert store.audit.verify().ok
    with open(anchor.path, "ab") as f:
        f.write(b"\n")
    _fill(store, 1, start=6)
    with pytest.raises(AuditError, match="malformed record"):
        store.audit.verify()


def test_entries_and_anchor_stay_outside_the_database_under_the_home(store: Store) -> None:
    _fill(store, 3)
    key_file = store.home / KEY_FILE
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert isinstance(store.audit.anchor, FileAnchor) and store.audit.anchor.path.parent == store.home
    assert stat.S_IMODE(store.audit.anchor.path.stat().st_mode) == 0o600
    secret = key_file.read_text().split()[1]
    dumped = json.dumps(_rows(store))
    assert secret not in dumped
    assert all(r[3] and r[3].startswith(key_file.read_text().split()[0] + ":") for r in _rows(store))


def test_rotation_keeps_old_entries_verifying_and_signs_new_ones_with_the_new_key(open_store: Any) -> None:
    store = open_store()
    _fill(store, 3)
    old_id = store.audit.keyring.current_id()
    new_id = store.audit.keyring.rotate()
    assert new_id != old_id
    other = open_store()  # another process's view: reads the rotated file
    _fill(other, 3, start=4)
    macs = [r[3] for r in _rows(store)]
    assert [m.split(":")[0] for m in macs] == [old_id] * 3 + [new_id] * 3  # type: ignore[union-attr]
    assert store.audit.verify().ok and other.audit.verify().ok
    # Dropping the old key makes the entries it signed unverifiable: a removed key is a forged key.
    key_file = store.home / KEY_FILE
    key_file.write_text("\n".join(line for line in key_file.read_text().splitlines() if not line.startswith(old_id)))
    report = open_store().audit.verify()
    assert report.first_bad_seq == 1 and "not in the keyring" in str(report.problem)


def test_a_lost_key_file_makes_verify_fail_loudly(open_store: Any) -> None:
    store = open_store()
    _fill(store, 3)
    (store.home / KEY_FILE).unlink()
    report = open_store().audit.verify()
    assert not report.ok and "not in the keyring" in str(report.problem)
    assert not (store.home / KEY_FILE).exists()  # verify never makes a key up
    unanchored = open_store()
    unanchored.audit.anchor = None  # the entries themselves fail too, not only the anchor
    report = unanchored.audit.verify()
    assert report.first_bad_seq is not None and "not in the keyring" in str(report.problem)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["world", "group", "other"])
def test_a_key_file_open_to_other_users_is_refused(tmp_path: Path, mode: int) -> None:
    with Store.open(tmp_path) as store:
        _fill(store, 1)
        (tmp_path / KEY_FILE).chmod(mode)
    with Store.open(tmp_path) as store, pytest.raises(AuditError, match="chmod 600"):
        _fill(store, 1)


def test_keys_from_the_environment_are_used_and_no_key_file_is_made(
        open_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, f"old:{'1' * 64}, new:{'2' * 64}")
    store = open_store()
    _fill(store, 2)
    assert not (store.home / KEY_FILE).exists()
    assert {r[3].split(":")[0] for r in _rows(store)} == {"new"}  # type: ignore[union-attr]
    assert store.audit.verify().ok
    with pytest.raises(AuditError, match="rotate by appending"):
        store.audit.keyring.rotate()
    monkeypatch.setenv(AUDIT_KEY_ENV, f"other:{'3' * 64}")
    assert "not in the keyring" in str(open_store().audit.verify().problem)


@pytest.mark.parametrize("value", ["nocolon", "k1:short", "k 1:" + "1" * 64, ",", "k1:" + "z" * 64],
                         ids=["no_colon", "short_secret", "space_in_id", "empty", "not_hex"])
def test_a_malformed_environment_key_is_refused_with_how_to_fix_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, value)
    with Store.open(tmp_path) as store, pytest.raises(AuditError, match=AUDIT_KEY_ENV):
        _fill(store, 1)
    assert not (tmp_path / KEY_FILE).exists()


def test_two_processes_creating_the_key_file_at_once_share_one_key(open_store: Any) -> None:
    from ._procs import append_many, barrier, run_processes, store_args

    store = open_store()
    start = barrier(3)
    run_processes(append_many, [(store_args(store), p, 5, start) for p in range(3)])
    assert len((store.home / KEY_FILE).read_text().splitlines()) == 1
    assert store.audit.verify().ok and store.audit.verify().count == 15
    assert not [p for p in os.listdir(store.home) if p.startswith(f".{KEY_FILE}")]
