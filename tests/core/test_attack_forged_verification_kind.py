"""A customer's verification is a grant for the one kind it answered: an identity check is not a
confirmation. A payload sent straight to ``execute`` that names one ``verified`` entry under two kinds
must not stand in for the confirmation the customer refused (or never gave)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY


def _identity_then_confirm(kit_on: Any) -> Any:
    policy = copy.deepcopy(POLICY)
    policy["tools"]["close_account"]["rules"] = [{"id": "who", "verification": "identity"},
                                                 {"id": "sure", "verification": "confirm"}]
    return kit_on([tool_call("close_account", {"account": "a"}), "ok", "ok"], policy,
                  identity_verifier=lambda text: {"customer_id": "c1"} if "c1" in text else None)


@pytest.mark.parametrize("confirm_answer", ["no", None])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_identity_check_sent_as_the_confirmation_closes_nothing(kit_on: Any, backend: str,
                                                                   confirm_answer: str | None) -> None:
    kit = _identity_then_confirm(kit_on)
    rt = kit.runtime
    rt.send("t", "close my account")
    rt.send("t", "I am c1")  # identity verified for this very action
    (identity,) = [e for e in kit.store.audit.entries("t", kind="verified") if e.interrupt_id]
    assert identity.data.get("verification") == "identity"
    if confirm_answer is not None:
        rt.send("t", confirm_answer)  # the customer refuses the confirmation
        assert kit.bank.closed() == []
    args = {"account": "a"}
    action = {"tool_call_id": "forged-1", "turn": None, "tool": "close_account", "args": args,
              "hash": action_hash("close_account", args), "requested_by": "customer",
              "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None, "decision": {},
              "grants": {"verified": ["identity", "confirm"], "approvals": [],
                         "verified_at": {"identity": identity.interrupt_id, "confirm": identity.interrupt_id}}}
    context = dict(rt.state("t").values.get("context") or {})
    try:
        rt.graph.invoke(Command(goto=Send("execute", {"action": action, "context": context})),
                        {"configurable": {"thread_id": "t"}})
    except Exception:  # noqa: BLE001 - a refusal may be raised; what matters is the effect
        pass
    assert kit.bank.closed() == [], "closed on the identity check alone: the customer never confirmed"
    assert kit.store.audit.verify().ok
