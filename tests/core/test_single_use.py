"""Single use: an approval or a customer's confirmation pays for exactly one execution.

A grant (the interrupt that recorded a person's yes) is consumed in the transaction that starts the
effect. Sending the spent grant to ``execute`` again, through the raw compiled graph, with a new
tool call id, another turn, or several copies at once, runs nothing and is audited as denied.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY


def _approved_pay(kit_factory: Any) -> tuple[Any, dict[str, Any]]:
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    paused = kit.runtime.send("t", "pay ann 50")
    kit.runtime.approve(paused.pending[0], approver="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    (approved,) = kit.store.audit.entries("t", kind="approved")
    grants = {"verified": [], "approvals": [{"approver": "lee", "role": "lead", "at": approved.at,
                                             "interrupt_id": approved.interrupt_id}]}
    return kit, grants


def _confirmed_close(kit_factory: Any) -> tuple[Any, dict[str, Any]]:
    policy = copy.deepcopy(POLICY)
    policy["tools"]["close_account"]["rules"] = [{"id": "confirm", "verification": "confirm"}]
    kit = kit_factory([tool_call("close_account", {"account": "a"}), "closed"], policy)
    kit.runtime.send("t", "close my account")
    kit.runtime.send("t", "yes")
    assert kit.bank.closed() == ["a"]
    (verified,) = kit.store.audit.entries("t", kind="verified")
    return kit, {"verified": ["confirm"], "approvals": [], "verified_at": {"confirm": verified.interrupt_id}}


GRANTS = {"approval": (_approved_pay, "pay", {"to": "ann", "amount": 50.0}),
          "confirmation": (_confirmed_close, "close_account", {"account": "a"})}


def _forged(tool: str, args: dict[str, Any], grants: dict[str, Any], call: str, turn: str | None = None,
            *, key: Any = None) -> Send:
    """A payload sent straight to execute. ``key``: sign it as agent_kit's nodes would (an attacker
    holding the audit key), to reach the second wall: grants checked and spent in execute itself."""
    action = {"tool_call_id": call, "turn": turn, "tool": tool, "args": args, "hash": action_hash(tool, args),
              "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
              "decision": {}, "grants": grants}
    if key is not None:
        from agent_kit import _provenance

        action = _provenance.sign_action(key, "execute", action)
    return Send("execute", {"action": action, "context": {}})


def _effects(kit: Any, tool: str) -> list[Any]:
    return kit.bank.payments() if tool == "pay" else kit.bank.closed()


@pytest.mark.parametrize("grant", list(GRANTS))
@pytest.mark.parametrize(("call", "turn", "copies"), [
    ("new-call", None, 1),
    ("call_0", "another-turn", 1),
    ("copy", None, 3),
], ids=["new-tool-call-id", "same-id-other-turn", "three-at-once"])
def test_a_spent_grant_sent_to_execute_again_runs_nothing(kit_factory: Any, grant: str, call: str,
                                                          turn: str | None, copies: int) -> None:
    make, tool, args = GRANTS[grant]
    kit, grants = make(kit_factory)
    before = list(_effects(kit, tool))
    keyring = kit.store.audit.keyring
    sends = [_forged(tool, args, grants, f"{call}-{i}" if copies > 1 else call, turn, key=keyring)
             for i in range(copies)]
    kit.runtime.graph.invoke(Command(goto=sends), {"configurable": {"thread_id": "t"}})
    assert _effects(kit, tool) == before
    assert kit.kinds().count("executed") == 1
    denied = [e for e in kit.store.audit.entries("t", kind="denied") if e.data.get("rule") == "grant_spent"]
    assert len(denied) == copies
    assert "already used by another execution" in denied[0].data["reason"]
    assert kit.store.audit.verify().ok


def test_the_consumed_grant_names_the_one_execution_that_spent_it(kit_factory: Any) -> None:
    kit, grants = _approved_pay(kit_factory)
    (executed,) = kit.store.audit.entries("t", kind="executed")
    iid = grants["approvals"][0]["interrupt_id"]
    assert kit.store.ledger.spent_by(f"t:{iid}") == executed.data["idempotency_key"]
    (started,) = kit.store.audit.entries("t", kind="started")
    assert started.data["idempotency_key"] == executed.data["idempotency_key"]
    assert started.seq < executed.seq


def test_an_unspent_approval_still_executes_once_when_sent_twice_in_one_step(kit_factory: Any) -> None:
    """Two payloads racing for one fresh grant: the first consumes it, the other is refused."""
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50")
    (intr,) = kit.runtime.state("t").interrupts
    # Record lee's approval without letting the run go on (the node is what would execute it).
    kit.store.audit.append("approved", actor="lee", thread_id="t", tool="pay",
                           action_hash=action_hash("pay", {"to": "ann", "amount": 50.0}),
                           interrupt_id=intr.id, key=f"t:{intr.id}:decided", data={"role": "lead"})
    grants = {"verified": [], "approvals": [{"approver": "lee", "role": "lead", "at": "x", "interrupt_id": intr.id}]}
    args = {"to": "ann", "amount": 50.0}
    keyring = kit.store.audit.keyring
    kit.runtime.graph.invoke(Command(goto=[_forged("pay", args, grants, "a", key=keyring),
                                           _forged("pay", args, grants, "b", key=keyring)]),
                             {"configurable": {"thread_id": "t"}})
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert kit.kinds().count("executed") == 1


def test_an_unsigned_payload_sent_to_execute_is_refused_before_anything_is_checked(kit_factory: Any) -> None:
    """The first wall: agent_kit's nodes MAC every action they send to a gate node; one written by
    hand (in-process, or a server's ``command.goto``) is refused and audited, whatever it carries."""
    kit, grants = _approved_pay(kit_factory)
    before = kit.bank.payments()
    kit.runtime.graph.invoke(Command(goto=[_forged("pay", {"to": "ann", "amount": 50.0}, grants, "again")]),
                             {"configurable": {"thread_id": "t"}})
    assert kit.bank.payments() == before
    (refused,) = [e for e in kit.store.audit.entries(kind="refused") if e.data.get("rule") == "forged_action"]
    assert refused.data["node"] == "execute"
    assert kit.store.audit.verify().ok
