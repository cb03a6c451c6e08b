"""The web inbox under test: the real app over the fixture app's store (the root conftest's ``app`` /
``sqlite_app``; tests/app reuses these fixtures over the reference agent), served by uvicorn on
127.0.0.1 (a free port) for the browser, or driven in process by Starlette's test client."""

from __future__ import annotations

import re
import socket
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import App

PASSWORDS = {"lee": "lee-password-123", "sam": "sam-password-123", "morgan": "morgan-password-123"}
SECRET = "test-secret-key-" + "x" * 32
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


_credentials: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def with_passwords(app: App) -> Any:
    """The store's credentials with every approver's password set (once per store: scrypt is slow)."""
    from agent_kit.credentials import Credentials

    creds = _credentials.get(app.store)
    if creds is None:
        creds = _credentials[app.store] = Credentials(app.store)
        for name, password in PASSWORDS.items():
            creds.set_password(name, password)
    return creds


def make_web(app: App, **settings: Any) -> Any:
    from agent_kit.web import WebSettings, create_app

    creds = settings.pop("credentials", None) or with_passwords(app)
    return create_app(app.runtime, WebSettings(secret_key=SECRET, credentials=creds, event_poll_s=0.2, **settings))


@dataclass
class Served:
    """A running server: its base URL and the app behind it."""

    url: str
    app: App
    asgi: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(sqlite_app: App) -> Iterator[Served]:
    """The web inbox on SQLite, served on 127.0.0.1 in a background thread."""
    import uvicorn

    asgi = make_web(sqlite_app)
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=_free_port(), log_level="warning",
                                           timeout_graceful_shutdown=1, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    # uvicorn sets `started` once it listens; wait on that state (bounded), never on a fixed sleep.
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        started.wait(0.05)
    assert server.started, "the web server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", sqlite_app, asgi)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def sign_in(browser: Any, served: Served) -> Iterator[Any]:
    """``sign_in(name)``: a new browser context signed in as ``name``, its page on the inbox.
    The contexts are closed before the server stops (their live-update streams end with them)."""
    contexts: list[Any] = []

    def open_as(name: str, *, width: int = 1280, height: int = 900) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(ctx)
        return _sign_in(ctx, served, name)

    try:
        yield open_as
    finally:
        for ctx in contexts:
            ctx.close()


def _sign_in(ctx: Any, served: Served, name: str) -> Any:
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    page.goto(served.url + "/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[data-testid=me]")
    return page


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def login(client: Any, name: str, password: str | None = None) -> Any:
    """Sign ``client`` (Starlette's TestClient) in; returns the inbox response."""
    page = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(page.text), "name": name,
                                       "password": password or PASSWORDS[name], "next": "/"})


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords set in these tests use a low scrypt cost (each row records its own parameters, so
    checking them stays correct); the real cost is the credentials tests' business. Sign-ins happen
    dozens of times here, on a shared machine."""
    monkeypatch.setattr("agent_kit.credentials.SCRYPT_N", 2 ** 10)
