"""How many Postgres transactions an approval round trip and an automatically allowed call cost,
counted by the server.

Each commit that writes waits for the server's WAL flush (about 4 ms on the machine this was
measured on), so a change that adds transactions to the hot path slows every approval. The count
comes from ``pg_stat_database`` in a database made for the measurement (nobody else's traffic is
in it): ``AgentRuntime.send`` (pauses on a gated call), ``pending``, ``approve`` (executes, replies).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench import _pg
from bench.approval_round_trip import open_ours
from bench.auto_allowed import open_pg_side
from tests._pg import SERVER_URL

pytestmark = pytest.mark.postgres

CEILING = 34.4
"""Transactions per round trip reached by folding each step's writes together (55 before; the
bare LangChain HITL middleware on PostgresSaver takes 17). 37 until the approval gate read what
the trail holds of an interrupt (refused, decided, asked) in one query instead of three; 35.4
until a customer's first message stopped looking for messages held on a thread that has no state
yet; 34.4 measured since (the same in every quiet run). Lower it when a change saves more."""
SLACK = 0.9
"""Up to nine transactions in the ten round trips counted that are not the round trip's own, and
no more: a change adding one transaction to every round trip (+1.0) still fails. Under the whole
suite's load the count has come out 34.9 and 35.0 against 34.4 (cause not pinned: not reproduced
under CPU load alone). The measurement keeps out what is known to depend on time, not on the
round trip: autovacuum (see bench/_pg.py), statistics of sessions still exiting (read once
settled), and, here, the lease heartbeat (a lease held over a third of its TTL is renewed)."""


def test_an_approval_round_trip_on_postgres_costs_at_most_the_reached_transaction_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_KIT_LEASE_TTL", "3600")
    per_round_trip = _counted(open_ours)
    assert per_round_trip > 10, f"nothing counted ({per_round_trip}): the measurement itself is broken"
    assert per_round_trip <= CEILING + SLACK, (
        f"an approval round trip now costs {per_round_trip:.1f} Postgres transactions, more than the "
        f"{CEILING} reached (+{SLACK} allowed for noise): a write that belongs to a step got a transaction of "
        "its own")


READ_CEILING = 11.0
"""Transactions per automatically allowed read (``graph.invoke``: model, read, reply), reached by
running a read cleared to run in the permission node's step (13 while it took an execute step of
its own). A bare ``StateGraph`` + ``ToolNode`` takes 10 (its checkpoints); the one more is the
read's audit entry."""


def test_an_automatically_allowed_read_on_postgres_costs_at_most_the_reached_transaction_count() -> None:
    per_call = _counted(open_pg_side)
    assert per_call > 5, f"nothing counted ({per_call}): the measurement itself is broken"
    assert per_call <= READ_CEILING + SLACK, (
        f"an automatically allowed read now costs {per_call:.1f} Postgres transactions, more than the "
        f"{READ_CEILING} reached (+{SLACK} allowed for noise)")


def _counted(open_side: Any) -> float:
    """Transactions per call of a side (``open_side(home, url)``), counted by the server over ten
    calls in a database of their own."""
    with tempfile.TemporaryDirectory() as tmp:
        return _pg.transactions_per_call(lambda url: open_side(Path(tempfile.mkdtemp(dir=tmp)), url), calls=10,
                                         server=SERVER_URL)
