"""Approvers' credentials on every backend: scrypt passwords, hashed bearer tokens, revocation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from agent_kit import credentials as credentials_module
from agent_kit.credentials import MIN_PASSWORD_LENGTH, TOKEN_PREFIX, Credentials
from agent_kit.errors import CredentialError
from agent_kit.store import Store

GOOD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A smaller scrypt cost keeps the suite quick; one test below keeps the shipped cost."""
    monkeypatch.setattr(credentials_module, "SCRYPT_N", 2 ** 10)


def _rows(store: Store) -> list[tuple[object, ...]]:
    return store._db.fetchall("SELECT name, kind, digest, salt, params FROM approver_credentials ORDER BY id")


def test_the_table_is_created_with_the_store(store: Store) -> None:
    assert _rows(store) == []


def test_a_password_verifies_and_a_wrong_one_does_not(store: Store) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    assert creds.verify_password("lee", GOOD)
    assert not creds.verify_password("lee", GOOD + "x")
    assert not creds.verify_password("lee", GOOD.upper())
    assert not creds.verify_password("sam", GOOD)  # another name
    assert not creds.verify_password("Lee", GOOD)  # names are exact, as in the policy


def test_the_password_is_stored_as_salted_scrypt_never_in_clear(store: Store) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    creds.set_password("sam", GOOD)
    rows = _rows(store)
    assert [r[1] for r in rows] == ["password", "password"]
    assert all(GOOD not in str(r) and GOOD.encode().hex() not in str(r) for r in rows)
    (_, _, d1, s1, p1), (_, _, d2, s2, _) = rows
    assert s1 != s2 and d1 != d2, "each row has its own salt"
    assert str(p1).startswith("scrypt:")
    n, r, p = (int(x) for x in str(p1).split(":")[1:])
    assert d1 == hashlib.scrypt(GOOD.encode(), salt=bytes.fromhex(str(s1)), n=n, r=r, p=p, dklen=32).hex()


def test_the_shipped_cost_is_memory_hard(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real SCRYPT_N
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    n, r, _ = (int(x) for x in str(_rows(store)[0][4]).split(":")[1:])
    assert 128 * r * n >= 16 * 1024 * 1024, "at least 16 MiB per guess"
    assert creds.verify_password("lee", GOOD)


def test_setting_a_password_again_replaces_the_old_one(store: Store) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    creds.set_password("lee", "another long secret")
    assert not creds.verify_password("lee", GOOD)
    assert creds.verify_password("lee", "another long secret")
    assert len(_rows(store)) == 1


def test_a_password_set_with_an_older_cost_still_verifies(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    monkeypatch.setattr(credentials_module, "SCRYPT_N", 2 ** 11)
    assert creds.verify_password("lee", GOOD)


@pytest.mark.parametrize("password", [
    pytest.param("", id="empty"),
    pytest.param(" " * 20, id="only-spaces"),
    pytest.param("x" * (MIN_PASSWORD_LENGTH - 1), id="one-short"),
    pytest.param("x" * 2000, id="too-long"),
    pytest.param("long enough \ud800 pass", id="lone-surrogate"),
    pytest.param(None, id="not-a-string"),
])
def test_bad_passwords_are_refused_with_a_typed_error(store: Store, password: object) -> None:
    creds = Credentials(store)
    with pytest.raises(CredentialError):
        creds.set_password("lee", password)  # type: ignore[arg-type]
    assert _rows(store) == []


@pytest.mark.parametrize("password", [
    pytest.param("a long secret with \x00 NUL", id="nul"),
    pytest.param("שלום עולם ‏ 🔐 emoji pass", id="rtl-emoji"),
    pytest.param("x" * MIN_PASSWORD_LENGTH, id="exactly-minimum"),
])
def test_unusual_but_valid_passwords_round_trip(store: Store, password: str) -> None:
    creds = Credentials(store)
    creds.set_password("lee", password)
    assert creds.verify_password("lee", password)
    assert not creds.verify_password("lee", password[:-1])


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param(" lee", id="leading-space"),
    pytest.param("lee\n", id="newline"),
    pytest.param("le\u200be", id="zero-width"),
    pytest.param("lee\x00", id="nul"),
    pytest.param("le\u0301e", id="not-nfc"),
    pytest.param(None, id="not-a-string"),
])
def test_malformed_names_are_refused(store: Store, name: object) -> None:
    creds = Credentials(store)
    with pytest.raises(CredentialError):
        creds.set_password(name, GOOD)  # type: ignore[arg-type]
    with pytest.raises(CredentialError):
        creds.issue_token(name)  # type: ignore[arg-type]
    assert creds.verify_password(name, GOOD) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("guess", [
    pytest.param("lee", id="the-name"), pytest.param("\ud800", id="surrogate"), pytest.param(None, id="none"),
    pytest.param("x" * 100_000, id="huge"),
])
def test_verify_password_never_raises_on_bad_input(store: Store, guess: object) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    assert creds.verify_password("lee", guess) is False  # type: ignore[arg-type]


def test_a_token_verifies_to_its_approver_and_only_its_hash_is_stored(store: Store) -> None:
    creds = Credentials(store)
    token = creds.issue_token("lee")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    assert creds.verify_token(token) == "lee"
    rows = [r for r in _rows(store) if r[1] == "token"]
    assert len(rows) == 1
    assert rows[0][2] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(r) for r in _rows(store))


def test_several_tokens_per_name_and_revocation_ends_them_all(store: Store) -> None:
    creds = Credentials(store)
    lee1, lee2, sam = creds.issue_token("lee"), creds.issue_token("lee"), creds.issue_token("sam")
    assert lee1 != lee2
    assert (creds.verify_token(lee1), creds.verify_token(lee2), creds.verify_token(sam)) == ("lee", "lee", "sam")
    assert creds.revoke_tokens("lee") == 2
    assert creds.verify_token(lee1) is None and creds.verify_token(lee2) is None
    assert creds.verify_token(sam) == "sam"
    assert creds.revoke_tokens("lee") == 0


def test_a_password_is_not_a_token_and_revoking_tokens_keeps_the_password(store: Store) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    creds.issue_token("lee")
    assert creds.verify_token(GOOD) is None
    assert creds.verify_token(TOKEN_PREFIX + GOOD) is None
    password_digest = str(_rows(store)[0][2])
    assert creds.verify_token(password_digest) is None
    creds.revoke_tokens("lee")
    assert creds.verify_password("lee", GOOD)


@pytest.mark.parametrize("token", [
    pytest.param("", id="empty"), pytest.param("akt_", id="prefix-only"), pytest.param("akt_\x00", id="nul"),
    pytest.param("akt_\ud800", id="surrogate"), pytest.param("akt_" + "a" * 10_000, id="huge"),
    pytest.param(None, id="none"), pytest.param(123, id="int"),
])
def test_verify_token_returns_none_for_garbage(store: Store, token: object) -> None:
    creds = Credentials(store)
    creds.issue_token("lee")
    assert creds.verify_token(token) is None  # type: ignore[arg-type]


def test_a_token_that_differs_in_one_character_is_refused(store: Store) -> None:
    creds = Credentials(store)
    token = creds.issue_token("lee")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert creds.verify_token(flipped) is None
    assert creds.verify_token(token.upper()) is None
    assert creds.verify_token(token + " ") is None


def test_an_expired_token_is_refused(store: Store) -> None:
    creds = Credentials(store)
    live = creds.issue_token("lee", expires_in=timedelta(hours=1))
    assert creds.verify_token(live) == "lee"
    dead = creds.issue_token("lee", expires_in=timedelta(hours=1))
    store._db.execute("UPDATE approver_credentials SET expires_at = ? WHERE digest = ?",
                      ("2000-01-01T00:00:00.000000+00:00", hashlib.sha256(dead.encode()).hexdigest()))
    assert creds.verify_token(dead) is None
    with pytest.raises(CredentialError):
        creds.issue_token("lee", expires_in=timedelta(0))


def test_credentials_survive_reopening_the_store(open_store) -> None:  # type: ignore[no-untyped-def]
    first = open_store()
    creds = Credentials(first)
    creds.set_password("lee", GOOD)
    token = creds.issue_token("lee")
    first.close()
    again = Credentials(open_store())
    assert again.verify_password("lee", GOOD)
    assert again.verify_token(token) == "lee"


def test_every_change_is_audited_without_the_secret(store: Store) -> None:
    creds = Credentials(store)
    creds.set_password("lee", GOOD)
    token = creds.issue_token("lee")
    creds.revoke_tokens("lee")
    entries = store.audit.entries(kind="credentials_changed")
    assert [(e.actor, e.data["change"]) for e in entries] == [
        ("lee", "password_set"), ("lee", "token_issued"), ("lee", "tokens_revoked")]
    text = str([e.to_json() for e in entries])
    assert GOOD not in text and token not in text
    assert store.audit.verify().ok
