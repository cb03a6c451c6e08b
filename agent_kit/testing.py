"""Offline test support: a scripted chat model and a programmatic approver.

:class:`ScriptedChatModel` is a real LangChain chat model that answers with the messages or tool
calls it is given, in order, so a graph driven by it is the graph an LLM would drive; tests,
notebooks and batch runs use it without a network. :class:`ProgrammaticApprover` decides the
interrupts of a run through the same public resume path an operator uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

__all__ = ["ProgrammaticApprover", "ScriptedChatModel", "tool_call"]


def tool_call(name: str, args: dict[str, Any] | None = None, id: str | None = None) -> dict[str, Any]:
    """One tool call for a script: ``tool_call("issue_refund", {"order_id": 1001, "amount": 20})``."""
    return {"name": name, "args": dict(args or {}), "id": id}


Step = AIMessage | str | dict[str, Any] | list[dict[str, Any]] | Callable[[Sequence[BaseMessage]], Any]


class ScriptedChatModel(BaseChatModel):
    """Answers with the scripted steps in order.

    A step is an :class:`AIMessage`, a string (a plain reply), one tool call or a list of them
    (see :func:`tool_call`), or a function of the messages that returns one of those. When the
    script runs out the model replies ``"(script finished)"`` (or repeats the last step with
    ``cycle=True``). Tool call ids are made unique when a step leaves them out.

    The model keeps no position in memory: each answer is marked with its step number, and the
    next step is the one after the last mark in the conversation it is given. So any process
    that loads the thread continues the script where it was.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    steps: list[Any]
    cycle: bool = False

    @property
    def _llm_type(self) -> str:
        return "agent_kit-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        i = _next_step(messages)
        n = i
        if n >= len(self.steps):
            if not self.cycle or not self.steps:
                return _result(_marked(AIMessage(content="(script finished)"), i))
            n %= len(self.steps)
        step = self.steps[n]
        if callable(step):
            step = step(messages)
        return _result(_marked(self._message(step, i), i))

    def _message(self, step: Any, i: int) -> AIMessage:
        if isinstance(step, AIMessage):
            return step.model_copy()
        if isinstance(step, str):
            return AIMessage(content=step)
        calls = [step] if isinstance(step, dict) else list(step)
        return AIMessage(content="", tool_calls=[
            {"name": c["name"], "args": dict(c.get("args") or {}), "id": c.get("id") or f"call_{i + 1}_{j + 1}",
             "type": "tool_call"} for j, c in enumerate(calls)
        ])


_STEP_KEY = "agent_kit_scripted_step"


def _next_step(messages: Sequence[BaseMessage]) -> int:
    """The step after the last one this script answered in the conversation (0 for a new one)."""
    for m in reversed(messages):
        step = m.response_metadata.get(_STEP_KEY) if isinstance(m, AIMessage) else None
        if isinstance(step, int):
            return step + 1
    return 0


def _marked(message: AIMessage, step: int) -> AIMessage:
    message.response_metadata = {**message.response_metadata, _STEP_KEY: step}
    return message


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


class ProgrammaticApprover:
    """Decides every pending interrupt of a thread with a callback, through the public resume path.

    The callback gets a :class:`agent_kit.inbox.PendingItem` and returns ``("approve", NAME)``,
    ``("reject", NAME, REASON)``, ``("edit", NAME, {"name", "args"})``, ``("resolve", NAME, NOTE)``
    or ``None`` to leave it pending.
    """

    def __init__(self, runtime: Any, decide: Callable[[Any], tuple[Any, ...] | None]) -> None:
        self.runtime = runtime
        self.decide = decide

    def run(self, thread_id: str, *, max_rounds: int = 20) -> Any:
        """Decide pending interrupts until none is left (or the callback leaves them); return the last result."""
        result = None
        for _ in range(max_rounds):
            pending = [p for p in self.runtime.pending(thread_id=thread_id) if p.kind != "verification"]
            acted = False
            for item in pending:
                choice = self.decide(item)
                if choice is None:
                    continue
                verb, who, *rest = choice
                if verb == "approve":
                    result = self.runtime.approve(item, approver=who)
                elif verb == "reject":
                    result = self.runtime.reject(item, approver=who, reason=rest[0])
                elif verb == "edit":
                    result = self.runtime.approve(item, approver=who, edit=rest[0])
                elif verb == "resolve":
                    result = self.runtime.resolve(item, approver=who, note=rest[0])
                else:
                    raise ValueError(f"unknown decision {verb!r}; use approve, reject, edit or resolve")
                acted = True
            if not acted:
                break
        return result
