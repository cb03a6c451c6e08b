"""The operators' web inbox: a Starlette app over one :class:`~agent_kit.runtime.AgentRuntime`.

Every decision goes through the runtime's own ``approve`` / ``reject`` / ``resolve`` and through
:func:`agent_kit.rollback.rollback`, exactly as the command line does: the web app is one more
way to *name* a decision, never a second way to make one. The decider is always the signed-in
person; each form names the interrupt id and action hash its page showed, so a decision never
lands on something else.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agent_kit.web._security import LoginThrottle, Session, Sessions, same_token

__all__ = ["WebSettings", "create_app"]

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
        self.templates.env.globals.update(quote=quote, short=lambda h, n=12: (h or "")[:n])

    @property
    def policy(self) -> Any:
        return self.runtime.layer.policy

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


# -- sign-in --------------------------------------------------------------------------------------
async def login_form(request: Request) -> Response:
    web: Web = request.app.state.web
    nxt = _safe_next(request.query_params.get("next"))
    return web.render(request, "login.html", None, next=nxt, error=None, name="")


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``https://...``, ``/\\evil``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    web: Web = request.app.state.web
    form = await request.form()
    nxt = _safe_next(str(form.get("next") or ""))
    if not same_token(form.get("csrf"), request.session.get("login_csrf", "")):
        return web.render(request, "login.html", None, status_code=403, next=nxt, name="",
                          error="The sign-in form expired; please try again.")
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    token = str(form.get("token") or "").strip()
    keys = [f"addr:{_client(request)}"] + ([f"name:{name}"] if name else [])
    wait = web.settings.throttle.retry_after(*keys)
    if wait:
        resp = web.render(request, "login.html", None, status_code=429, next=nxt, name=name,
                          error=f"Too many failed sign-ins. Try again in {max(1, wait // 60)} min.")
        resp.headers["retry-after"] = str(wait)
        return resp

    def check() -> str | None:
        if token:
            who = web.credentials.verify_token(token)
            return who if who and web.policy.roles_of(who) else None
        if not name or not password:
            return None
        ok = web.credentials.verify_password(name, password)
        # Exactly a name the policy lists: no look-alikes, no case or width variants.
        return name if ok and name in web.policy.document.approvers else None

    who = await run_in_threadpool(check)
    if who is None:
        web.settings.throttle.failed(*keys)
        return web.render(request, "login.html", None, status_code=401, next=nxt, name=name,
                          error="Wrong name, password or token (or the name is not an approver in the policy).")
    web.settings.throttle.succeeded(f"name:{who}")
    session = await run_in_threadpool(web.sessions.start, who)
    request.session.clear()
    request.session["sid"] = session.sid
    return RedirectResponse(nxt, status_code=303)


async def logout(request: Request) -> Response:
    web: Web = request.app.state.web
    me = await run_in_threadpool(web.session_of, request)
    form = await request.form()
    if me is not None and same_token(form.get("csrf"), me.csrf):
        await run_in_threadpool(web.sessions.end, me.sid)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# -- live updates ---------------------------------------------------------------------------------
async def events(request: Request) -> Response:
    """Server-sent events: ``changed`` whenever the audit trail grows (an item arrives or is decided
    by anyone, through any process), so pages refresh what they show."""
    web: Web = request.app.state.web
    me = await run_in_threadpool(web.session_of, request)
    if me is None:
        return Response("sign in first", status_code=401)
    poll = web.settings.event_poll_s
    stopping: asyncio.Event = request.app.state.stopping

    async def stream() -> Any:
        last = None
        idle = 0.0
        yield "retry: 2000\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            seq, _ = await run_in_threadpool(web.store.audit.head)
            if last is not None and seq != last:
                yield f"event: changed\ndata: {seq}\n\n"
                idle = 0.0
            elif idle >= 15:
                yield ": keep-alive\n\n"
                idle = 0.0
            last = seq
            try:
                await asyncio.wait_for(stopping.wait(), timeout=poll)
            except TimeoutError:
                idle += poll

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


class _Headers:
    """Adds the security headers to every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode().lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(runtime: Any, settings: WebSettings) -> Starlette:
    """The web inbox over ``runtime`` (its store, graph and policy)."""
    from agent_kit.web import _pages

    web = Web(runtime, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        app.state.stopping = asyncio.Event()
        try:
            yield
        finally:
            app.state.stopping.set()

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/events", events),
        *_pages.routes(page),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(_Headers),
        Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie=COOKIE, max_age=8 * 3600,
                   same_site="lax", https_only=settings.secure_cookies),
    ])
    app.state.web = web
    app.state.stopping = asyncio.Event()
    return app
