"""Approvers' credentials: passwords (for the web inbox) and bearer tokens (for LangGraph Server).

Both live in the store's ``approver_credentials`` table, one row per secret:

- a password is kept as ``scrypt(password, salt)`` (memory-hard; a random salt per row, the cost
  parameters stored beside it so they can be raised later) and compared in constant time; an
  unknown name costs the same scrypt as a known one, so timing does not tell who exists;
- a token is handed out once (``issue_token``) and only its sha256 is kept: a stolen database
  yields no usable token. A name may hold several tokens (one per device); ``revoke_tokens``
  ends them all.

Who may hold credentials is the policy's business (its ``approvers``): the CLI refuses a name the
policy does not list. Every change is audited (``credentials_changed``), never the secret itself.

    creds = Credentials(store)
    creds.set_password("lee", "correct horse battery staple")
    token = creds.issue_token("lee")          # printed once, stored hashed
    assert creds.verify_token(token) == "lee"
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._db import Database, Tx, utc_now
from .errors import CredentialError

if TYPE_CHECKING:
    import sqlite_utils

    from .store import Store

__all__ = ["MIN_PASSWORD_LENGTH", "TOKEN_PREFIX", "Credentials"]

MIN_PASSWORD_LENGTH = 12
"""Shortest password :meth:`Credentials.set_password` accepts."""
MAX_PASSWORD_LENGTH = 1024
"""Longest password accepted (scrypt's cost does not depend on it; storage and parsing do)."""
TOKEN_PREFIX = "akt_"
"""Every approver token starts with this, so a leaked one is recognisable in logs and scanners."""

# scrypt cost: N=2**15, r=8, p=1 -> 32 MiB and about a third of a second per check on a small
# server: memory-hard, so a stolen table is slow to guess on GPUs. Each row records its own
# parameters, so raising SCRYPT_N later leaves existing passwords valid.
SCRYPT_N = 2 ** 15
"""scrypt's cost (CPU and memory) for new passwords; a power of two."""
_SCRYPT_R = 8
_SCRYPT_P = 1
_DKLEN = 32
_SALT_BYTES = 16
_MAXMEM = 256 * 1024 * 1024


class Credentials:
    """Passwords and bearer tokens of the approvers, in one open :class:`~agent_kit.store.Store`."""

    def __init__(self, store: Store) -> None:
        self._db: Database = store._db
        self._audit = store.audit
        # A fixed dummy row, so checking an unknown name costs one scrypt like a known one.
        self._dummy = (secrets.token_bytes(_SALT_BYTES), SCRYPT_N, _SCRYPT_R, _SCRYPT_P)

    # -- passwords ---------------------------------------------------------------------------

    def set_password(self, name: str, password: str) -> None:
        """Set (or replace) ``name``'s password.

        Raises:
            CredentialError: the name is empty or malformed, or the password is shorter than
                :data:`MIN_PASSWORD_LENGTH`, longer than :data:`MAX_PASSWORD_LENGTH`, all
                whitespace, or not encodable as UTF-8.
        """
        who = _check_name(name)
        secret = _password_bytes(password)
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = _scrypt(secret, salt, SCRYPT_N, _SCRYPT_R, _SCRYPT_P)

        def write(tx: Tx) -> None:
            tx.execute("DELETE FROM approver_credentials WHERE name = ? AND kind = 'password'", (who,))
            tx.execute(
                "INSERT INTO approver_credentials (name, kind, digest, salt, params, created_at, expires_at) "
                "VALUES (?, 'password', ?, ?, ?, ?, NULL)",
                (who, digest.hex(), salt.hex(), f"scrypt:{SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}", utc_now()))

        self._db.write(write, lock="credentials")
        self._audit.append("credentials_changed", actor=who, data={"change": "password_set"})

    def verify_password(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s password (False for an unknown name or bad input)."""
        try:
            who = _check_name(name)
            secret = password.encode("utf-8")
        except (CredentialError, AttributeError, UnicodeEncodeError):
            return False
        row = self._db.fetchone(
            "SELECT digest, salt, params FROM approver_credentials WHERE name = ? AND kind = 'password'",
            (who,))
        if row is None or len(secret) > MAX_PASSWORD_LENGTH * 4:
            salt, n, r, p = self._dummy
            _scrypt(b"", salt, n, r, p)
            return False
        digest_hex, salt_hex, params = row
        n, r, p = _parse_params(str(params))
        computed = _scrypt(secret, bytes.fromhex(str(salt_hex)), n, r, p)
        return hmac.compare_digest(computed, bytes.fromhex(str(digest_hex)))

    def has_password(self, name: str) -> bool:
        """Whether ``name`` has a password set."""
        return self._db.fetchone(
            "SELECT 1 FROM approver_credentials WHERE name = ? AND kind = 'password'", (name,)) is not None

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(self, name: str, *, expires_in: timedelta | None = None) -> str:
        """A new bearer token for ``name``, returned this once; only its sha256 is stored.

        Args:
            name: the approver.
            expires_in: how long the token is valid (default: until revoked).

        Raises:
            CredentialError: the name is empty or malformed, or ``expires_in`` is not positive.
        """
        who = _check_name(name)
        if expires_in is not None and expires_in <= timedelta(0):
            raise CredentialError(f"expires_in must be positive, got {expires_in}; omit it for a token "
                                  "valid until revoked")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = (datetime.now(UTC) + expires_in).isoformat(timespec="microseconds") \
            if expires_in is not None else None

        def write(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO approver_credentials (name, kind, digest, salt, params, created_at, expires_at) "
                "VALUES (?, 'token', ?, '', 'sha256', ?, ?)",
                (who, _token_digest(token), utc_now(), expires))

        self._db.write(write, lock="credentials")
        self._audit.append("credentials_changed", actor=who,
                           data={"change": "token_issued", "token_id": _token_digest(token)[:12],
                                 "expires_at": expires})
        return token

    def verify_token(self, token: str) -> str | None:
        """The approver a token belongs to, or None (unknown, revoked, expired or malformed)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        try:
            digest = _token_digest(token)
        except UnicodeEncodeError:
            return None
        row = self._db.fetchone(
            "SELECT name, digest, expires_at FROM approver_credentials WHERE kind = 'token' AND digest = ?",
            (digest,))
        if row is None:
            return None
        name, stored, expires = row
        if not hmac.compare_digest(str(stored), digest):
            return None
        if expires is not None and str(expires) <= utc_now():
            return None
        return str(name)

    def revoke_tokens(self, name: str) -> int:
        """End every token of ``name``; returns how many there were."""
        who = _check_name(name)
        count = self._db.write(
            lambda tx: tx.execute("DELETE FROM approver_credentials WHERE name = ? AND kind = 'token'", (who,)),
            lock="credentials")
        self._audit.append("credentials_changed", actor=who, data={"change": "tokens_revoked", "count": count})
        return count

    def names(self) -> list[str]:
        """Every name holding a password or a token, sorted."""
        return sorted({str(r[0]) for r in self._db.fetchall("SELECT DISTINCT name FROM approver_credentials")})


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise CredentialError(f"an approver name must be a non-empty string, got {name!r}")
    if name != name.strip() or any(unicodedata.category(c)[0] in "CZ" and c != " " for c in name):
        raise CredentialError(f"approver name {name!r} has surrounding whitespace or control characters; "
                              "give the name exactly as the policy lists it")
    if unicodedata.normalize("NFC", name) != name:
        raise CredentialError(f"approver name {name!r} is not in Unicode NFC form; give the name exactly "
                              "as the policy lists it")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise CredentialError(f"approver name {name!r} is not valid Unicode text") from None
    return name


def _password_bytes(password: Any) -> bytes:
    if not isinstance(password, str):
        raise CredentialError(f"a password must be a string, got {type(password).__name__}")
    if not password.strip():
        raise CredentialError("the password is empty; choose one of at least "
                              f"{MIN_PASSWORD_LENGTH} characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CredentialError(f"the password is too short ({len(password)} characters); choose one of at "
                              f"least {MIN_PASSWORD_LENGTH}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise CredentialError(f"the password is too long ({len(password)} characters); at most "
                              f"{MAX_PASSWORD_LENGTH}")
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise CredentialError("the password is not valid Unicode text (it holds a lone surrogate); "
                              "type it again") from None


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)


def _parse_params(params: str) -> tuple[int, int, int]:
    kind, n, r, p = params.split(":")
    if kind != "scrypt":
        raise CredentialError(f"unknown password hash {kind!r} in approver_credentials")
    return int(n), int(r), int(p)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db["approver_credentials"].create(  # type: ignore[union-attr]
        {"id": int, "name": str, "kind": str, "digest": str, "salt": str, "params": str,
         "created_at": str, "expires_at": str},
        pk="id", not_null={"name", "kind", "digest", "salt", "params", "created_at"}, if_not_exists=True)
    db["approver_credentials"].create_index(  # type: ignore[union-attr]
        ["kind", "digest"], index_name="approver_credentials_digest", unique=True, if_not_exists=True)
    db["approver_credentials"].create_index(  # type: ignore[union-attr]
        ["name", "kind"], index_name="approver_credentials_name", if_not_exists=True)


def _create_postgres_tables(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS approver_credentials (id BIGINT GENERATED BY DEFAULT AS IDENTITY "
               "PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL, salt TEXT NOT NULL, "
               "params TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT)")
    tx.execute("CREATE UNIQUE INDEX IF NOT EXISTS approver_credentials_digest ON approver_credentials (kind, digest)")
    tx.execute("CREATE INDEX IF NOT EXISTS approver_credentials_name ON approver_credentials (name, kind)")
