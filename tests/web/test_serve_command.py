"""``agent-kit serve`` as an operator runs it: the console script in its own process, a password set
with ``agent-kit approvers set-password``, a refund paused by ``agent-kit chat`` and approved over
HTTP, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.cli.conftest import GRAPH
from tests.conftest import ROOT, make_app

SCRIPT = Path(sys.executable).parent / "agent-kit"
PASSWORD = "lee-password-123"


def _run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # the SQLite store under HOME, whatever another test in this process left in the environment
    env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_DB_URL", "AGENT_KIT_WEB_SECRET")}
    return subprocess.run([str(SCRIPT), "--home", str(home), *GRAPH, *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_agent_kit_serve_signs_in_and_approves_through_the_same_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    env.pop("AGENT_KIT_DB_URL", None)
    env.pop("AGENT_KIT_WEB_SECRET", None)
    assert _run(home, "approvers", "set-password", "lee", stdin=PASSWORD + "\n").returncode == 0
    assert _run(home, "chat", "--thread", "t1", "-m", "Hi, I'm Jane Doe, zip 94107").returncode == 0
    assert "paused" in _run(home, "chat", "--thread", "t1", "-m", "Refund $80 on order 1001").stdout
    port = _free_port()
    proc = subprocess.Popen([str(SCRIPT), "--home", str(home), *GRAPH, "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the runtime is ready, before it listens
        assert f"http://127.0.0.1:{port}/" in banner, banner
        seen = [banner]
        while "Uvicorn running on" not in seen[-1]:  # uvicorn says so once it listens
            line = proc.stdout.readline()
            assert line, "".join(seen)  # the server ended before it listened
            seen.append(line)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(f"http://127.0.0.1:{port}/login", timeout=60).read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        inbox = opener.open(f"http://127.0.0.1:{port}/login", data=urlencode(
            {"csrf": csrf, "name": "lee", "password": PASSWORD, "next": "/"}).encode(), timeout=60).read().decode()
        assert 'data-testid="me">lee' in inbox and "issue_refund" in inbox
        item = re.search(r'href="(/items/[^"]+)"', inbox).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
        html = opener.open(f"http://127.0.0.1:{port}{item}", timeout=60).read().decode()
        form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
                "thread": "t1", "decision": "approve",
                "action_hash": re.search(r'data-testid="action-hash">([0-9a-f]+)<', html).group(1)}  # type: ignore[union-attr]
        iid = item.split("/")[2].split("?")[0]
        done = opener.open(f"http://127.0.0.1:{port}/items/{iid}/decide", data=urlencode(form).encode(),
                           timeout=120).read().decode()
        assert "issue_refund: {&#34;refund_id&#34;: 1, &#34;order_id&#34;: 1001, &#34;amount&#34;: 80.0}" in done
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    app = make_app(home)
    try:
        assert [r["amount"] for r in app.shop.refunds(1001)] == [80.0]
        assert [e.actor for e in app.store.audit.entries("t1") if e.kind == "approved"] == ["lee"]
    finally:
        app.store.close()
    assert (home / "web_secret").stat().st_mode & 0o077 == 0  # the cookie key is the owner's only
