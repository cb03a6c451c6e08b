"""The operators' web inbox (``agent-kit serve``): sign in, decide, audit, roll back, at a glance.

A Starlette app with server-rendered Jinja2 templates, htmx (vendored) for live refreshes over
server-sent events, and SVG charts drawn on the server: no JavaScript build step, nothing loaded
from elsewhere. Decisions go through the same :class:`~agent_kit.runtime.AgentRuntime` path as the
command line.

    from agent_kit.web import WebSettings, create_app, serve
    serve(runtime, host="127.0.0.1", port=8700)            # what `agent-kit serve` does
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from agent_kit.web.app import WebSettings, create_app

__all__ = ["SECRET_ENV", "SECRET_FILE", "WebSettings", "create_app", "secret_key", "serve"]

SECRET_ENV = "AGENT_KIT_WEB_SECRET"
"""The environment variable holding the cookie-signing key (give every worker the same one)."""
SECRET_FILE = "web_secret"
"""Where ``agent-kit serve`` keeps a key it made, in the home folder (mode 0600)."""


def secret_key(home: str | Path | None) -> str:
    """The cookie-signing key: ``AGENT_KIT_WEB_SECRET`` if set, else the home folder's key file
    (made on first use, readable by its owner only), else a new key for this process only."""
    given = os.environ.get(SECRET_ENV)
    if given:
        return given
    if home is None:
        return secrets.token_urlsafe(48)
    path = Path(home) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        key = secrets.token_urlsafe(48)
        fh.write(key + "\n")
    return key


def serve(runtime: Any, *, host: str = "127.0.0.1", port: int = 8700, settings: WebSettings | None = None,
          log_level: str = "info") -> None:
    """Serve the web inbox over ``runtime`` until interrupted (uvicorn, one process)."""
    import uvicorn

    settings = settings or WebSettings(secret_key=secret_key(runtime.store.home))
    uvicorn.run(create_app(runtime, settings), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=3, proxy_headers=False)
