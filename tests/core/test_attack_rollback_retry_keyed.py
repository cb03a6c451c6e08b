"""A compensation whose back office is keyed by the idempotency key it is given (the reference app's
refunds and reversals are): an attempt that raised after the back office applied it (a timeout on
the way back) is retried. The back office must be able to see that it is the same reversal; a key of
its own per attempt reverses the payment twice."""

from __future__ import annotations

import copy
from typing import Annotated, Any

import pytest
from langchain_core.tools import InjectedToolArg, tool

from agent_kit import Compensation, Mode, RollbackError, register
from agent_kit.rollback import rollback
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_keyed_compensation_that_timed_out_after_applying_reverses_once(kit_on: Any, backend: str) -> None:
    reversed_by_key: dict[str, int] = {}
    timeouts = [1]

    @tool
    def tip(to: str, amount: float) -> dict:
        """Tip someone."""
        return {"tip_id": 7, "to": to, "amount": amount}

    @tool
    def untip(tip_id: int, idempotency_key: Annotated[str | None, InjectedToolArg] = None) -> dict:
        """Take a tip back; the back office applies each idempotency key once."""
        reversed_by_key.setdefault(str(idempotency_key), tip_id)
        if timeouts[0]:
            timeouts[0] -= 1
            raise TimeoutError("the back office did not answer in time")
        return {"tip_id": tip_id, "reversed": True}

    policy = copy.deepcopy(POLICY)
    policy["tools"]["tip"] = {"mode": "execute_limited", "rollback": {"role": "lead"}}
    policy["tools"]["untip"] = {"mode": "execute_limited"}
    tools = [register(tip, Mode.EXECUTE_LIMITED, changes=["tips"],
                      compensation=Compensation("untip", lambda a, r: {"tip_id": r["tip_id"]}, "take it back")),
             register(untip, Mode.EXECUTE_LIMITED, changes=["tips"], irreversible=True)]
    kit = kit_on([tool_call("tip", {"to": "ann", "amount": 3}), "tipped"], policy, tools=tools)
    kit.runtime.send("t", "tip ann")
    entry = kit.store.audit.entries("t", kind="executed")[0]
    with pytest.raises(RollbackError, match="did not answer"):
        rollback(kit.runtime, entry.seq, approver="lee")
    rollback(kit.runtime, entry.seq, approver="lee")
    assert len(reversed_by_key) == 1, f"the back office reversed the tip {len(reversed_by_key)} times: {reversed_by_key}"
