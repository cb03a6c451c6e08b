"""``make_model`` picks the offline model or an OpenAI-compatible server from a spec or the environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from graphs.models import MODEL_ENV, make_model
from graphs.scripted_model import CustomerServiceModel

from .conftest import cancel_order, get_order
from tests.openai_stub import OpenAIStub, text_response, tool_call_response, tool_calls_response


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MODEL_ENV, "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("spec", [None, "", "scripted", " Scripted "], ids=["none", "empty", "scripted", "padded"])
def test_default_and_scripted_give_the_offline_model(spec: str | None) -> None:
    assert isinstance(make_model(spec), CustomerServiceModel)


def test_spec_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "openai:from-env")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    model = make_model()
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "from-env"


def test_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "openai:from-env")
    assert isinstance(make_model("scripted"), CustomerServiceModel)


def test_openai_spec_gives_a_deterministic_chat_completions_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = make_model("openai:some-model")
    assert isinstance(model, ChatOpenAI)
    assert (model.model_name, model.temperature, model.use_responses_api) == ("some-model", 0, False)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"


def test_local_server_without_a_key_still_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert isinstance(make_model("openai:llama3"), ChatOpenAI)


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "openai", "anthropic:claude", "scripted:x", "ollama:llama3"])
def test_unknown_spec_is_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        make_model(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert '"scripted"' in message and '"openai:<model>"' in message


def test_unknown_spec_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "bogus")
    with pytest.raises(ValueError, match=f"unknown {MODEL_ENV} 'bogus'"):
        make_model()


def test_openai_compatible_server_drives_tool_calls_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIStub([tool_call_response("get_order", {"order_id": 1001}, call_id="call_a"),
                     text_response("Order 1001 has shipped.")]) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        model = make_model("openai:test-model").bind_tools([get_order, cancel_order])

        asked = model.invoke([HumanMessage("where is order 1001")])
        assert asked.tool_calls == [{"name": "get_order", "args": {"order_id": 1001}, "id": "call_a",
                                     "type": "tool_call"}]
        answered = model.invoke([HumanMessage("where is order 1001"), asked,
                                 ToolMessage(content=json.dumps({"status": "shipped"}), tool_call_id="call_a")])
        assert answered.content == "Order 1001 has shipped."
        assert answered.tool_calls == []

    assert stub.paths == ["/v1/chat/completions", "/v1/chat/completions"]
    first, second = stub.requests
    assert first["model"] == "test-model"
    assert first["temperature"] == 0
    assert [t["function"]["name"] for t in first["tools"]] == ["get_order", "cancel_order"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["order_id"] == {"type": "integer"}
    assert first["messages"] == [{"role": "user", "content": "where is order 1001"}]
    # The tool call and its result travel back to the server in OpenAI's format.
    assert second["messages"][1]["tool_calls"][0]["function"] == {"name": "get_order",
                                                                  "arguments": '{"order_id": 1001}'}
    assert second["messages"][2] == {"role": "tool", "tool_call_id": "call_a", "content": '{"status": "shipped"}'}


def test_openai_stub_answers_parallel_calls_from_a_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    def respond(request: dict[str, Any]) -> dict[str, Any]:
        names = [t["function"]["name"] for t in request.get("tools", [])]
        return tool_calls_response([(name, {"order_id": 1002}, f"call_{i}") for i, name in enumerate(names)])

    with OpenAIStub(respond) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        reply = make_model("openai:test-model").bind_tools([get_order, cancel_order]).invoke("check and cancel 1002")
    assert [(c["name"], c["id"]) for c in reply.tool_calls] == [("get_order", "call_0"), ("cancel_order", "call_1")]
    assert len(stub.requests) == 1


def test_openai_stub_repeats_its_last_response_and_needs_one() -> None:
    with pytest.raises(ValueError, match="at least one response"):
        OpenAIStub([])
    with pytest.raises(RuntimeError, match="not running"):
        _ = OpenAIStub([text_response("x")]).base_url
