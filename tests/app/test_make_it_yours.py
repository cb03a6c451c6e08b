"""The "make it yours" example (examples/my_first_tool.py) runs, and its effect waits for approval."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "my_first_tool.py"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    spec = importlib.util.spec_from_file_location("my_first_tool", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("my_first_tool", None)


def warranty_rows(home: Path) -> list[tuple[int, int]]:
    db = home / "warranty.sqlite"
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'warranty'").fetchone()
        return conn.execute("SELECT order_id, months FROM warranty").fetchall() if has_table else []
    finally:
        conn.close()


def test_example_extends_the_warranty_once_after_approval(example: ModuleType, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = example.main(tmp_path)

    assert rows == [(1001, 24)]
    assert warranty_rows(tmp_path) == [(1001, 24)]
    out = capsys.readouterr().out
    assert "paused long_extension" in out
    assert "replied Extended by 24 months." in out


def test_example_tool_never_runs_before_approval_and_the_audit_names_the_approver(
        example: ModuleType, tmp_path: Path) -> None:
    rt = example.build(tmp_path, [example.tool_call("extend_warranty", {"order_id": 7, "months": 24}), "Done."])
    try:
        paused = rt.send("t", "extend order 7 by two years")
        assert paused.status == "paused"
        assert paused.pending[0]["action"] == {"name": "extend_warranty", "args": {"order_id": 7, "months": 24}}
        assert paused.pending[0]["required_role"] == "support_lead"
        assert warranty_rows(tmp_path) == []

        done = rt.approve(rt.pending("t", kind="approval")[0], approver="lee")

        assert done.status == "replied"
        assert warranty_rows(tmp_path) == [(7, 24)]
        kinds = [(e.kind, e.actor) for e in rt.store.audit.entries("t")]
        assert ("approved", "lee") in kinds
        assert [k for k, _ in kinds].count("executed") == 1
        assert rt.store.audit.verify().ok
    finally:
        rt.store.close()


def test_example_short_extension_runs_without_a_person(example: ModuleType, tmp_path: Path) -> None:
    rt = example.build(tmp_path, [example.tool_call("extend_warranty", {"order_id": 7, "months": 6}), "Done."])
    try:
        result = rt.send("t", "extend order 7 by six months")
        assert result.status == "replied"
        assert result.pending == []
        assert warranty_rows(tmp_path) == [(7, 6)]
    finally:
        rt.store.close()


def test_example_rejected_extension_never_runs(example: ModuleType, tmp_path: Path) -> None:
    rt = example.build(tmp_path, [example.tool_call("extend_warranty", {"order_id": 7, "months": 36}), "Understood."])
    try:
        assert rt.send("t", "extend order 7 by three years").status == "paused"

        rt.reject(rt.pending("t", kind="approval")[0], approver="lee", reason="three years is beyond our policy")

        assert warranty_rows(tmp_path) == []
        assert "executed" not in [e.kind for e in rt.store.audit.entries("t")]
    finally:
        rt.store.close()


def test_example_tool_schema_hides_the_idempotency_key(example: ModuleType, tmp_path: Path) -> None:
    tool = example.warranty_tool(tmp_path / "warranty.sqlite")
    spec = example.register(tool, example.Mode.EXECUTE_LIMITED, changes=["warranty"], irreversible=True)

    assert set(spec.tool.tool_call_schema.model_json_schema()["properties"]) == {"order_id", "months"}
    assert spec.takes_idempotency_key


DOC = ROOT / "docs" / "MAKE_IT_YOURS.md"


def _blocks(lang: str) -> list[str]:
    parts = DOC.read_text().split(f"```{lang}\n")[1:]
    return [p.split("\n```", 1)[0] for p in parts]


def test_doc_shows_the_example_as_it_is_in_the_file() -> None:
    (code,) = _blocks("python")
    assert code.strip() in EXAMPLE.read_text(), "docs/MAKE_IT_YOURS.md's example drifted from examples/my_first_tool.py"
    assert len([line for line in code.splitlines() if line.strip()]) < 60


def test_doc_yaml_policy_is_the_example_policy(example: ModuleType) -> None:
    import yaml

    from agent_kit import Policy

    (text,) = _blocks("yaml")
    assert Policy.from_dict(yaml.safe_load(text)).version == example.POLICY.version


def test_doc_output_is_what_the_example_prints(example: ModuleType, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows = example.main(tmp_path)
    print(rows)

    (expected,) = _blocks("text")
    assert capsys.readouterr().out.strip() == expected.strip()
