"""Shared state of the web app: its settings, the per-app :class:`Web` object, and the page
wrapper every signed-in page goes through. Kept apart from :mod:`agent_kit.web.app` (which builds
the routes) so the pages and the app import it, and not each other."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from agent_kit.web._security import LoginThrottle, Session, Sessions, same_token

__all__ = ["COOKIE", "HERE", "SECURITY_HEADERS", "Handler", "Web", "WebSettings", "flash", "page",
           "static_cache_control", "static_url"]

HERE = Path(__file__).parent
COOKIE = "agent_kit_session"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@functools.cache
def _static_version(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:12]


def static_cache_control(path: str, query: str) -> str | None:
    """The caching a static response gets: for good under the URL :func:`static_url` gives (its content
    cannot change under it), revalidated under any other; ``None`` for what is not a static file."""
    name = path.removeprefix("/static/")
    if name == path or "/" in name or not (HERE / "static" / name).is_file():
        return None
    if query == f"v={_static_version(name)}":
        return "public, max-age=31536000, immutable"
    return "no-cache"


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content: browsers keep it for good and ask again only
    when an upgrade changes it (a page never waits on its stylesheet being fetched again)."""
    return f"/static/{name}?v={_static_version(name)}"


class WebSettings:
    """How the web app runs.

    Args:
        secret_key: signs the session cookie (keep it outside the database; the same on every worker).
        secure_cookies: add ``Secure`` to the cookie (serve over HTTPS, or behind a proxy that does).
        event_poll_s: how often the live-update stream looks at the store for changes.
        throttle: the sign-in rate limit (default: 5 failures per name or address in 15 minutes).
    """

    def __init__(self, *, secret_key: str, secure_cookies: bool = False, event_poll_s: float = 1.0,
                 throttle: LoginThrottle | None = None, credentials: Any = None) -> None:
        if not isinstance(secret_key, str) or len(secret_key) < 32:
            from agent_kit.errors import AgentKitError

            raise AgentKitError("the web app's secret key must be at least 32 characters; set AGENT_KIT_WEB_SECRET "
                             "or let `agent-kit serve` make one in the home folder")
        self.secret_key = secret_key
        self.secure_cookies = secure_cookies
        self.event_poll_s = event_poll_s
        self.throttle = throttle or LoginThrottle()
        self.credentials = credentials


class Web:
    """Shared state of one app: the runtime, credentials, sessions and templates."""

    def __init__(self, runtime: Any, settings: WebSettings) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.settings = settings
        if settings.credentials is None:
            from agent_kit.credentials import Credentials

            settings.credentials = Credentials(self.store)
        self.credentials = settings.credentials
        self.sessions = Sessions(self.store)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(quote=quote, short=lambda h, n=12: (h or "")[:n], static=static_url)

    @property
    def policy(self) -> Any:
        return self.runtime.kernel.policy

    # -- sessions --------------------------------------------------------------------------------
    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.session.get("sid"))

    def render(self, request: Request, template: str, me: Session | None, status_code: int = 200,
               **context: Any) -> Response:
        # Fragments (live refreshes) never take the message meant for the next full page.
        full_page = not template.startswith("_")
        flash = request.session.pop("flash", None) if me is not None and full_page else None
        if me is None and "login_csrf" not in request.session:
            request.session["login_csrf"] = secrets.token_urlsafe(32)
        return self.templates.TemplateResponse(request, template, {
            "me": me, "roles": sorted(self.policy.roles_of(me.name)) if me else [],
            "csrf": me.csrf if me else request.session["login_csrf"], "flash": flash,
            "now": datetime.now(UTC), **context}, status_code=status_code)


Handler = Callable[[Request, Web, Session], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in people: others are sent to sign in (a GET) or refused (anything else)."""
    async def endpoint(request: Request) -> Response:
        web: Web = request.app.state.web
        me = await run_in_threadpool(web.session_of, request)
        if me is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            return web.render(request, "error.html", None, status_code=401, title="Sign in first",
                              message="You are not signed in (or your session ended). Nothing was decided.")
        if request.method == "POST":
            form = await request.form()
            if not same_token(form.get("csrf"), me.csrf):
                return web.render(request, "error.html", me, status_code=403, title="Form expired",
                                  message="This form's security token is missing or wrong (the page may be "
                                          "old, or another site sent it). Nothing was decided: reload and try again.")
        return await handler(request, web, me)

    return endpoint


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"text": text, "kind": kind}
