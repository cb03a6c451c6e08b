"""A worker pointed at a wrong or unreachable Postgres fails at once, in one line naming the host,
both in the Python API (``Store.open``) and on the command line (no traceback, non-zero exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_kit.errors import StorageError
from agent_kit.store import Store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres

BAD_URLS = [
    pytest.param("postgresql://postgres:s3cret@127.0.0.1:1/test", "127.0.0.1:1", id="nothing-listening"),
    pytest.param("postgresql://postgres:s3cret@no-such-host.invalid:5432/test", "no-such-host.invalid",
                 id="unknown-host"),
]
CLI = Path(sys.executable).with_name("agent-kit")


@pytest.mark.parametrize("url, host", BAD_URLS)
@pytest.mark.parametrize("schema", [None, "ak_never_made"], ids=["no-schema", "schema"])
def test_store_open_on_a_bad_url_raises_one_line_naming_the_host(url: str, host: str, schema: str | None) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        Store.open(db_url=url, schema=schema)
    message = str(caught.value)
    assert message.startswith("cannot connect to PostgreSQL at ") and host in message
    assert "\n" not in message and "s3cret" not in message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("url, host", BAD_URLS)
@pytest.mark.parametrize("how", ["option", "env"])
def test_the_cli_on_a_bad_url_exits_non_zero_with_one_line_naming_the_host(
        url: str, host: str, how: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_KIT_")}
    env["AGENT_KIT_HOME"] = str(tmp_path)
    argv = [str(CLI), "pending"]
    if how == "option":
        argv[1:1] = ["--db-url", url]
    else:
        env["AGENT_KIT_DB_URL"] = url
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot connect to PostgreSQL at ") and host in lines[0]
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr + done.stdout
    assert not (tmp_path / "agent_kit.sqlite").exists()  # no silent fall-back to SQLite
