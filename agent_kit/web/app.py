"""The operators' web inbox: a Starlette app over one :class:`~agent_kit.runtime.AgentRuntime`.

Every decision goes through the runtime's own ``approve`` / ``reject`` / ``resolve`` and through
:func:`agent_kit.rollback.rollback`, exactly as the command line does: the web app is one more
way to *name* a decision, never a second way to make one. The decider is always the signed-in
person; each form names the interrupt id and action hash its page showed, so a decision never
lands on something else.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent_kit.web._security import same_token
from agent_kit.web._state import COOKIE, HERE, SECURITY_HEADERS, Web, WebSettings, page, static_cache_control

__all__ = ["WebSettings", "create_app"]

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
    """Adds the security headers to every response (a static file's caching is its own: see
    :func:`static_cache_control`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        caching = static_cache_control(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1")) \
            if scope["type"] == "http" else None

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if caching is not None and message.get("status") in (200, 304):
                    headers.append((b"cache-control", caching.encode()))
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
