"""docs/POLICY.md is executed: every YAML example is loaded as written and the Python block after
it runs against the loaded policy. The committed JSON Schema is the one the models generate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent_kit import Mode, PolicyError, load_policy
from agent_kit._policy_check import policy_problems
from agent_kit._policy_schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "POLICY.md"
SCHEMA = ROOT / "docs" / "policy.schema.json"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def _examples() -> list[tuple[str, str]]:
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(DOC.read_text())]
    pairs = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "yaml":
            assert i + 1 < len(blocks) and blocks[i + 1][0] == "python", f"YAML example {len(pairs) + 1} has no check"
            pairs.append((body, blocks[i + 1][1]))
    return pairs


EXAMPLES = _examples()


def _problems_with_tools(policy: Any, home: Path) -> list[str]:
    """What ``agent-kit checklist`` finds in ``policy`` against an app's tools (the fixture app's,
    whose ``issue_refund`` takes amount, order_id and reason)."""
    from agent_kit.registry import ToolRegistry
    from tests.fixture_app import Records
    from tests.fixture_app.agent import specs

    return policy_problems(policy, ToolRegistry(specs(Records.at_home(home))), {})


def test_the_reference_documents_every_part_of_the_policy():
    text = DOC.read_text()
    assert len(EXAMPLES) >= 12
    words = ["version", "approvers_file", "roles", "approval_expiry", "max_strikes", "receivers", "visible_fields",
             "rollback", "verification", "deny", "reason", "tags", "aggregates", "within", "per", "count",
             "exists", "not_in", "ref", "gte", "lte", *(m.value for m in Mode)]
    for word in words:
        assert f"`{word}" in text or f"{word}:" in text, word


@pytest.mark.parametrize(("source", "check"), EXAMPLES, ids=[f"example-{i + 1}" for i in range(len(EXAMPLES))])
def test_every_example_loads_and_behaves_as_documented(tmp_path, source, check):
    (tmp_path / "policy.yaml").write_text(source)
    (tmp_path / "people.yaml").write_text("lee: [support_lead]\n")
    policy, error = None, None
    try:
        policy = load_policy(tmp_path / "policy.yaml")
    except PolicyError as exc:
        error = str(exc)
    namespace = {"policy": policy, "error": error, "Mode": Mode, "Path": Path, "tmp": tmp_path,
                 "load_policy": load_policy,
                 "problems_with_tools": lambda p: _problems_with_tools(p, tmp_path / "app")}
    exec(compile(check, f"{DOC.name} example", "exec"), namespace)  # noqa: S102 - our own documentation


def test_the_committed_json_schema_is_the_generated_one():
    assert json.loads(SCHEMA.read_text()) == json_schema(), "run `make policy-schema` and commit docs/policy.schema.json"


def test_the_json_schema_accepts_a_policy_file_and_the_examples():
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(yaml.safe_load((ROOT / "tests" / "fixture_app" / "policy.yaml").read_text()))
    for source, _ in EXAMPLES:
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError:
            continue
        try:
            from agent_kit import Policy

            Policy.from_dict({k: v for k, v in data.items() if k != "approvers_file"})
        except PolicyError:
            continue  # an example of a refused policy
        validator.validate(data)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"tools": {"pay": {"mode": "yolo"}}}, "mode"),
        ({"tools": {"pay": {"mode": "read_only", "colour": "red"}}}, "colour"),
        ({"defaults": {"approval_expiry": "soon"}}, "soon"),
        ({"tools": {"pay": {"mode": "execute_limited", "rules": [{"id": "r", "when": {"amount": 1}, "deny": "x"}]}}},
         "amount"),
    ],
    ids=["bad-mode", "unknown-key", "bad-duration", "bad-path"],
)
def test_the_json_schema_flags_what_the_loader_refuses(data, where):
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(data))
    assert errors and any(where in str(e.message) or where in str(list(e.path)) for e in errors)
