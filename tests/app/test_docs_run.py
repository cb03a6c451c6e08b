"""Every Python block in the README and in docs/*.md runs as written (docs/POLICY.md's blocks are
run one by one against their YAML by tests/core/test_policy_docs.py). The blocks of one file run in
order in one fresh process, as a reader would paste them; what their comments say they print, they
print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests._pg import PG_URL, ensure_test_database
from tests.conftest import drop_schema

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
DOCS = sorted([ROOT / "README.md", *(p for p in (ROOT / "docs").glob("*.md") if p.name != "POLICY.md")])
# What each file's blocks must print (from the comments beside them).
PRINTS = {
    "README.md": ["paused support_lead", "True"],
    "DEPLOY.md": ["paused replied"],
    "MAKE_IT_YOURS.md": ["paused long_extension", "replied Extended by 24 months."],
}


def _blocks(path: Path) -> list[str]:
    return [m.group(1) for m in _BLOCK.finditer(path.read_text())]


def test_every_doc_with_python_is_covered() -> None:
    with_code = {p.name for p in DOCS if _blocks(p)}
    assert with_code == set(PRINTS), f"add the new doc to PRINTS: {with_code ^ set(PRINTS)}"


@pytest.mark.parametrize("doc", [p for p in DOCS if _blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run_as_written(doc: Path, tmp_path: Path) -> None:
    code = "\n\n".join(_blocks(doc))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENT_KIT_HOME": str(tmp_path / "home")}
    env.pop("AGENT_KIT_DB_URL", None)
    schema = None
    if "AGENT_KIT_DB_URL" in code:  # a Postgres example: this session's test database, its own schema
        ensure_test_database()
        env["AGENT_KIT_DB_URL"] = PG_URL
        schema = "agents"
        code = code.replace('schema="agents"', f'schema="agents_{uuid.uuid4().hex[:8]}"')
        schema = re.search(r'schema="(agents_\w+)"', code).group(1)  # type: ignore[union-attr]
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=env)
    finally:
        if schema:
            drop_schema(schema)
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in PRINTS[doc.name]:
        assert expected in out.stdout, (expected, out.stdout[-2000:])
