"""The reference policy file (policies/customer_service.yaml) loads with a content-hash version and
is valid against the committed JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from agent_kit import load_policy
from agent_kit._policy_schema import json_schema

REFERENCE = Path(__file__).resolve().parents[2] / "policies" / "customer_service.yaml"


def test_reference_policy_loads_and_has_a_content_hash_version() -> None:
    p = load_policy(REFERENCE)
    assert len(p.version) == 16
    assert p.version == load_policy(REFERENCE).version


def test_the_json_schema_accepts_the_reference_policy() -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(yaml.safe_load(REFERENCE.read_text()))
