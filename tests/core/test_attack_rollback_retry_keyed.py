"""A compensation whose back office is keyed by the idempotency key it is given (the reference app's
refunds and reversals are): an attempt that raised after the back office applied it (a timeout on
the way back) is retried. The back office must be able to see that it is the same reversal; a key of
its own per attempt reverses the payment twice."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.tools import InjectedToolArg, tool

from agent_kit import RollbackError
from agent_kit.rollback import rollback
from tests.core.conftest import tip_kit


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_keyed_compensation_that_timed_out_after_applying_reverses_once(kit_on: Any, backend: str) -> None:
    reversed_by_key: dict[str, int] = {}
    timeouts = [1]

    @tool
    def untip(tip_id: int, idempotency_key: Annotated[str | None, InjectedToolArg] = None) -> dict:
        """Take a tip back; the back office applies each idempotency key once."""
        reversed_by_key.setdefault(str(idempotency_key), tip_id)
        if timeouts[0]:
            timeouts[0] -= 1
            raise TimeoutError("the back office did not answer in time")
        return {"tip_id": tip_id, "reversed": True}

    kit, entry = tip_kit(kit_on, untip)
    with pytest.raises(RollbackError, match="did not answer"):
        rollback(kit.runtime, entry.seq, approver="lee")
    rollback(kit.runtime, entry.seq, approver="lee")
    assert len(reversed_by_key) == 1, f"the back office reversed the tip {len(reversed_by_key)} times: {reversed_by_key}"
