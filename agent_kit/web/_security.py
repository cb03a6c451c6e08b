"""Sign-in sessions, CSRF tokens and the sign-in rate limit of the web inbox.

- A session is a row in the store (``web_sessions``): a random id whose sha256 is kept, the
  signed-in approver, a CSRF token and an expiry. The browser holds only the id, in Starlette's
  signed, HttpOnly, SameSite cookie; signing out deletes the row, so a copied cookie stops
  working at once, on every worker that shares the store.
- Every form carries the session's CSRF token (the sign-in form a token kept in the signed
  cookie before anyone signs in); a POST without the right one is refused.
- Sign-in attempts are limited per name and per client address: after ``max_failures`` failures
  within ``window_s`` seconds that name (or address) is refused until the window has passed,
  even with the right password. The count is kept in each server process (``agent-kit serve``
  runs one); behind several workers, limit sign-ins at the proxy too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LoginThrottle", "Session", "Sessions", "same_token"]

SESSION_TTL_S = 8 * 3600
"""How long a sign-in lasts (a working day)."""


@dataclass(frozen=True)
class Session:
    """A signed-in approver."""

    sid: str
    name: str
    csrf: str
    expires_at: float


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def same_token(given: Any, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class Sessions:
    """The ``web_sessions`` table of one store (created on first use, on SQLite and Postgres)."""

    def __init__(self, store: Any, *, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self._db = store._db
        self._ttl_s = ttl_s
        self._clock = clock
        self._db.write(lambda tx: tx.execute(
            "CREATE TABLE IF NOT EXISTS web_sessions (sid TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "csrf TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)"),
            lock="web_sessions")

    def start(self, name: str) -> Session:
        """A new session for ``name``; the returned ``sid`` goes into the cookie, only its hash is kept."""
        now = self._clock()
        session = Session(sid=secrets.token_urlsafe(32), name=name, csrf=secrets.token_urlsafe(32),
                          expires_at=now + self._ttl_s)

        def write(tx: Any) -> None:
            tx.execute("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
            tx.execute("INSERT INTO web_sessions (sid, name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                       (_digest(session.sid), name, session.csrf, now, session.expires_at))

        self._db.write(write)
        return session

    def get(self, sid: Any) -> Session | None:
        """The live session with this id, or None (unknown, signed out or expired)."""
        if not isinstance(sid, str) or not sid or len(sid) > 200:
            return None
        row = self._db.fetchone("SELECT name, csrf, expires_at FROM web_sessions WHERE sid = ?", (_digest(sid),))
        if row is None or float(row[2]) <= self._clock():
            return None
        return Session(sid=sid, name=str(row[0]), csrf=str(row[1]), expires_at=float(row[2]))

    def end(self, sid: str) -> None:
        """Sign out: the session id stops working everywhere."""
        self._db.execute("DELETE FROM web_sessions WHERE sid = ?", (_digest(sid),))

    def end_all(self, name: str) -> int:
        """End every session of ``name`` (e.g. after a password change); returns how many."""
        return int(self._db.execute("DELETE FROM web_sessions WHERE name = ?", (name,)))


class LoginThrottle:
    """Failed sign-ins per key (a name, a client address) within a sliding window."""

    def __init__(self, *, max_failures: int = 5, window_s: float = 900,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until any of ``keys`` may try again (0: they may now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[len(q) - self.max_failures] + self.window_s - now)
        return max(1, int(wait + 0.999)) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of names
                for k in [k for k, q in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[k]

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)
