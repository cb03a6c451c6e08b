"""Every call the scripted model makes for a documented phrase is valid for the reference tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from graphs.scripted_model import PHRASES, CustomerServiceModel
from tools import Shop, build_tools


@pytest.fixture
def reference_tools(tmp_path: Path) -> Any:
    with Shop(tmp_path / "shop.sqlite") as shop:
        yield {t.name: t for t in build_tools(shop)}


@pytest.mark.parametrize(("phrase", "tool_name"), PHRASES, ids=[p for p, _ in PHRASES])
def test_phrase_call_validates_against_the_reference_tool(reference_tools: dict[str, Any], phrase: str,
                                                          tool_name: str) -> None:
    model = CustomerServiceModel().bind_tools(list(reference_tools.values()))
    calls = model.invoke([HumanMessage(phrase)]).tool_calls
    assert calls and {c["name"] for c in calls} == {tool_name}
    for call in calls:
        schema = reference_tools[call["name"]].tool_call_schema
        validated = schema.model_validate(call["args"]).model_dump(exclude_unset=True)
        assert validated == call["args"]
