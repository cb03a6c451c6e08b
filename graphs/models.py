"""Choosing the chat model that drives the reference agent: the offline one, or any OpenAI-compatible server."""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel

from agent_kit.errors import MissingExtraError

from graphs.scripted_model import CustomerServiceModel

__all__ = ["MODEL_ENV", "make_model"]

MODEL_ENV = "AGENT_KIT_MODEL"
"""Environment variable read when ``make_model`` is given no spec."""

_ACCEPTED = '"scripted" (the default, offline) or "openai:<model>" (e.g. "openai:gpt-4o-mini")'


def make_model(spec: str | None = None) -> BaseChatModel:
    """Build the chat model named by ``spec``, or by ``AGENT_KIT_MODEL`` when ``spec`` is None.

    Args:
        spec: ``"scripted"`` (also empty or unset) for the offline ``CustomerServiceModel``, or
            ``"openai:<model>"`` for ``ChatOpenAI(model=<model>, temperature=0)`` on the Chat
            Completions API. That path reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (or
            ``OPENAI_API_BASE``), so a local OpenAI-compatible server (Ollama, vLLM) works by
            pointing ``OPENAI_BASE_URL`` at it; such servers rarely check the key, so one is
            filled in when only the base URL is set.

    Returns:
        A chat model; call ``bind_tools`` on it before use in a graph.

    Raises:
        ValueError: ``spec`` is neither form; the message shows it and the accepted forms.
        MissingExtraError: an OpenAI model without the ``openai`` extra installed.
    """
    raw = spec if spec is not None else os.environ.get(MODEL_ENV, "")
    text = raw.strip()
    if text == "" or text.lower() == "scripted":
        return CustomerServiceModel()
    provider, sep, model = text.partition(":")
    if provider.strip().lower() == "openai" and sep and model.strip():
        return _openai(model.strip())
    source = "model spec" if spec is not None else f"{MODEL_ENV}"
    raise ValueError(f"unknown {source} {raw!r}: use {_ACCEPTED}")


def _openai(model: str) -> BaseChatModel:
    # Imported here so the offline default never needs the OpenAI client (an extra) nor its import time.
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise MissingExtraError(
            f"the model openai:{model} needs langchain-openai, which is not installed: "
            "pip install 'agent_kit[openai]'", extra="openai") from None

    base_url = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or None
    api_key = os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
    # Chat Completions is the API every OpenAI-compatible server speaks; never switch to Responses.
    return ChatOpenAI(model=model, temperature=0, base_url=base_url, api_key=api_key,  # type: ignore[arg-type]
                      use_responses_api=False)
