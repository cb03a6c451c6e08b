"""The audit key: a secret kept outside the database that authenticates every audit entry.

Anyone who can write the database can recompute a sha256 chain; nobody can compute an HMAC
without the key. Each entry stores ``KEY_ID:HMAC-SHA256(key, hash)`` beside its hash, so an edited
and re-hashed chain, or an appended forgery, fails :meth:`~agent_kit.audit.AuditLog.verify`.

Where the key comes from, first match wins:

1. ``AGENT_KIT_AUDIT_KEY``: ``ID:SECRET[,ID:SECRET...]`` (SECRET: at least 32 hex digits), the
   last one current. Use it where several machines append to one Postgres database: every
   writer must share the key. Rotate by appending a new ``ID:SECRET`` to the list.
2. The key file ``<home>/audit.key``: one ``ID SECRET`` line per key, the last one current,
   created on first use with mode 0600; a file readable by group or others is refused.
   :meth:`AuditKeyring.rotate` (``agent-kit audit --rotate-key``) appends a new key: older
   entries keep verifying with their own key id, new entries use the new one.

Removing a key from the ring makes the entries it signed fail verification, by design: a key
id that is not in the ring is indistinguishable from a forged one.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from .errors import AuditError, StorageError

__all__ = ["AUDIT_KEY_ENV", "KEY_FILE", "AuditKeyring"]

AUDIT_KEY_ENV = "AGENT_KIT_AUDIT_KEY"
"""Environment variable holding the audit keys (``ID:SECRET[,ID:SECRET...]``, last is current)."""
KEY_FILE = "audit.key"
"""The key file's name inside the home folder."""

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_SECRET = re.compile(r"^[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class _Key:
    key_id: str
    secret: bytes


class AuditKeyring:
    """The audit keys of one home folder (or of the environment).

    Args:
        home: the folder holding ``audit.key``.
        environ: where to read ``AGENT_KIT_AUDIT_KEY`` (default: ``os.environ``).
    """

    def __init__(self, home: Path, environ: dict[str, str] | None = None) -> None:
        self.home = home
        self.path = home / KEY_FILE
        """The key file (used when ``AGENT_KIT_AUDIT_KEY`` is not set)."""
        self._env = (environ if environ is not None else dict(os.environ)).get(AUDIT_KEY_ENV) or None
        self._keys: dict[str, _Key] | None = None
        self._current: _Key | None = None
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        """Where the keys come from, for messages: the variable's name or the file's path."""
        return f"${AUDIT_KEY_ENV}" if self._env else str(self.path)

    # -- signing -------------------------------------------------------------------------------
    def sign(self, message: str) -> str:
        """``KEY_ID:HMAC`` of ``message`` with the current key (the key file is created if missing)."""
        key = self._current_key()
        return f"{key.key_id}:{_mac(key.secret, message)}"

    def check(self, message: str, tag: str) -> str | None:
        """None if ``tag`` authenticates ``message``; else why not, in one phrase."""
        key_id, sep, mac = tag.partition(":")
        if not sep:
            return "it carries no key id"
        keys = self._keys  # loaded once; read without the lock (verify checks every entry)
        key = (keys if keys is not None else self._load(create=False)).get(key_id)
        if key is None:
            return f"its key id {key_id!r} is not in the keyring ({self.source})"
        if not hmac.compare_digest(_mac(key.secret, message), mac):
            return f"its MAC does not match (key {key_id})"
        return None

    def has_keys(self) -> bool:
        """Whether any key exists yet (without creating one)."""
        return bool(self._load(create=False))

    def current_id(self) -> str:
        """The id of the key new entries are signed with."""
        return self._current_key().key_id

    def rotate(self) -> str:
        """Add a new key and make it current; returns its id. Older keys stay for verification.

        Raises:
            AuditError: the keys come from the environment (rotate there), or the file cannot
                be written.
        """
        if self._env:
            raise AuditError(f"the audit keys come from ${AUDIT_KEY_ENV}: rotate by appending a new "
                             "ID:SECRET to it (keep the old ones so older entries still verify)")
        with self._lock:
            self._load_locked(create=True)
            new = _Key(secrets.token_hex(4), secrets.token_bytes(32))
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, f"{new.key_id} {new.secret.hex()}\n".encode())
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StorageError(f"cannot write the audit key file {self.path}: {exc.strerror}") from None
            self._keys = None
            self._current = None
            self._load_locked(create=False)
            return new.key_id

    # -- loading -------------------------------------------------------------------------------
    def _current_key(self) -> _Key:
        with self._lock:
            if self._current is None:
                self._load_locked(create=True)
            assert self._current is not None
            return self._current

    def _load(self, *, create: bool) -> dict[str, _Key]:
        with self._lock:
            return self._load_locked(create=create)

    def _load_locked(self, *, create: bool) -> dict[str, _Key]:
        if self._keys is not None:
            return self._keys
        if self._env:
            pairs = _parse_env(self._env)
        else:
            if not self.path.exists():
                if not create:
                    return {}
                _create_key_file(self.path)
            pairs = _read_key_file(self.path)
        keys = {k.key_id: k for k in pairs}
        self._keys, self._current = keys, pairs[-1]
        return keys


def _mac(secret: bytes, message: str) -> str:
    return hmac.digest(secret, message.encode(), sha256).hex()


def _parse_env(text: str) -> list[_Key]:
    keys: list[_Key] = []
    for n, item in enumerate(p for p in re.split(r"[,\s]+", text.strip()) if p):
        key_id, sep, secret = item.partition(":")
        if not sep or not _KEY_ID.match(key_id) or not _SECRET.match(secret):
            raise AuditError(f"${AUDIT_KEY_ENV} item {n + 1} is not ID:SECRET (an id of letters, digits, "
                             "'_.-', and a secret of at least 32 hex digits); e.g. "
                             f"{AUDIT_KEY_ENV}=k1:{'0' * 8}...  (generate one with `openssl rand -hex 32`)")
        keys.append(_Key(key_id, bytes.fromhex(secret)))
    if not keys:
        raise AuditError(f"${AUDIT_KEY_ENV} is set but holds no key; unset it or give ID:SECRET")
    return keys


def _create_key_file(path: Path) -> None:
    """Create the key file with one key, mode 0600, atomically: two processes racing to create
    it end with the same single file (the loser reads the winner's)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{secrets.token_hex(4)} {secrets.token_hex(32)}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise StorageError(f"cannot create the audit key file {path}: {exc.strerror}") from None


def _read_key_file(path: Path) -> list[_Key]:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditError(f"the audit key file {path} is open to other users (mode {stat.S_IMODE(mode):o}); "
                             f"run: chmod 600 {path}")
        text = path.read_text()
    except OSError as exc:
        raise StorageError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    keys: list[_Key] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _KEY_ID.match(parts[0]) or not _SECRET.match(parts[1]):
            raise AuditError(f"line {n} of the audit key file {path} is not 'ID SECRET' "
                             "(a key id and at least 32 hex digits)")
        keys.append(_Key(parts[0], bytes.fromhex(parts[1])))
    if not keys:
        raise AuditError(f"the audit key file {path} holds no key; delete it to have a new one made "
                         "(entries signed with a lost key no longer verify)")
    return keys
