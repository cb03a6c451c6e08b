"""An effect's life in the store: started, then done or failed, each step with its audit entry.

No effect exists without its entry:

- **start**: one transaction consumes the grants the effect spends (its approvals' and
  verifications' interrupts, see :meth:`ExecutionLedger.spend_in`), writes the ledger record
  (``started``) and the audit entry of the intent (``started``). If any part fails, nothing is
  written and the effect does not run; a grant already spent by another effect refuses it.
- **run** (:func:`run_effect`): the effect itself, timed, between the two; what it raises or
  reports as failure is a failed outcome, never a success.
- **finish**: one transaction records the outcome in the ledger and the audit entry of the
  outcome (``executed``, ``drafted``, ``rolled_back``, ``failed``). If it fails after the effect
  ran, the intent is on record; recovery finds the ``started`` record and reconciles it through its
  idempotency key, or hands it to a person.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langgraph.errors import GraphBubbleUp, GraphInterrupt

from agent_kit._db import Tx
from agent_kit.errors import AgentKitError

if TYPE_CHECKING:
    from agent_kit.ledger import LedgerRecord

T = TypeVar("T")


class GrantSpentError(AgentKitError):
    """An approval or verification was already consumed by another effect; nothing ran."""

    def __init__(self, spent: Mapping[str, str]) -> None:
        self.spent = dict(spent)
        """Grant (``thread:interrupt_id``) -> key of the effect that consumed it."""
        grants = ", ".join(f"{g.rsplit(':', 1)[-1]} (used by {k})" for g, k in self.spent.items())
        super().__init__(f"the grant(s) {grants} were already used by another execution; an approval "
                         "pays for exactly one execution of exactly its action")


class LimitRefused(Exception):
    """The action's limits, decided again inside the start transaction, no longer let it run."""

    def __init__(self, decision: Any) -> None:
        super().__init__("the call's running totals no longer allow it")
        self.decision = decision


def start(store: Any, key: str, *, thread_id: str, tool_call_id: str, tool: str, action_hash: str,
          args: dict[str, Any], grants: Sequence[str], intent: Mapping[str, Any],
          dims: Sequence[tuple[str, str]] = (), check: Any = None) -> tuple[LedgerRecord, bool]:
    """Consume ``grants``, write the ledger's ``started`` record and audit ``intent``, atomically.

    ``intent`` holds :meth:`AuditLog.append_in` keyword arguments (kind and all). Returns
    ``(record, created)`` as :meth:`ExecutionLedger.begin`; the intent is appended only by the
    call that creates the record.

    Raises:
        GrantSpentError: a grant was consumed by another effect (nothing was written).
        LimitRefused: ``check`` refused the action (nothing was written).
    """

    def start_in(tx: Tx) -> tuple[LedgerRecord, bool]:
        if check is not None and store.ledger.status_in(tx, key) in (None, "failed"):
            # Limits decided again in this transaction (serialized with every other start), so
            # two calls racing for the last room under a limit cannot both pass.
            refusal = check(tx)
            if refusal is not None:
                raise LimitRefused(refusal)
        spent = store.ledger.spend_in(tx, list(grants), key)
        if spent:
            raise GrantSpentError(spent)
        record, created = store.ledger.begin_in(tx, key, thread_id=thread_id, tool_call_id=tool_call_id,
                                                tool=tool, action_hash=action_hash, args=args, dims=dims)
        if created:
            store.audit.append_in(tx, **intent)
        return record, created

    return store.audit.write(start_in)  # type: ignore[no-any-return]


def finish(store: Any, key: str, *, entry: Mapping[str, Any], result: Any = None, error: str | None = None,
           duration_ms: float | None = None, also: Callable[[Tx, Any], T] | None = None,
           ) -> tuple[LedgerRecord, Any, T | None]:
    """Record the outcome in the ledger and its audit ``entry`` in one transaction.

    ``also(tx, audit_entry)`` runs in the same transaction (a rollback marks the original
    record there). Returns ``(record, audit_entry, also's result)``.
    """

    def finish_in(tx: Tx) -> tuple[LedgerRecord, Any, T | None]:
        record = store.ledger.finish_in(tx, key, result=result, error=error, duration_ms=duration_ms)
        audit_entry = store.audit.append_in(tx, **entry)
        return record, audit_entry, (also(tx, audit_entry) if also is not None else None)

    return store.audit.write(finish_in)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Outcome:
    """What :func:`run_effect` recorded: the result, or the error (raised or reported by the effect)."""

    result: Any
    error: str | None
    duration_ms: float
    audit_entry: Any


def run_effect(store: Any, key: str, invoke: Callable[[], Any], *,
               done: Callable[[Any, float], Mapping[str, Any]], failed: Callable[[str], Mapping[str, Any]],
               failure_of: Callable[[Any], str | None] | None = None, after: Callable[[], None] | None = None,
               also: Callable[[Tx, Any], Any] | None = None) -> Outcome:
    """Run the effect whose ledger record ``key`` was :func:`start`-ed, and :func:`finish` it.

    ``invoke()`` performs it; an exception (other than LangGraph's control flow) or a failure
    ``failure_of(result)`` reports is recorded with the audit entry ``failed(error)``; a result with
    ``done(result, duration_ms)`` and ``also`` in the same transaction. ``after()`` runs between the
    effect and its record (where a crash leaves an effect recorded only as started).
    """
    started = time.perf_counter()
    try:
        result = invoke()
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the effect raises is its failed outcome, recorded
        return _failed(store, key, str(exc), (time.perf_counter() - started) * 1000, failed)
    if after is not None:
        after()
    duration = (time.perf_counter() - started) * 1000
    failure = failure_of(result) if failure_of is not None else None
    if failure is not None:
        return _failed(store, key, failure, duration, failed)
    _, entry, _ = finish(store, key, result=result, duration_ms=duration, entry=done(result, duration), also=also)
    return Outcome(result, None, duration, entry)


def _failed(store: Any, key: str, error: str, duration: float,
            failed: Callable[[str], Mapping[str, Any]]) -> Outcome:
    _, entry, _ = finish(store, key, error=error, duration_ms=duration, entry=failed(error))
    return Outcome(None, error, duration, entry)


def run_tool(tool: Any, args: Mapping[str, Any]) -> Any:
    """Run a tool with no LangChain callbacks and no tracing.

    A tool's raw result holds what the policy hides from the model (``visible_fields``: a card
    number, an address). Invoked with the node's config, LangChain would hand that result to every
    inherited callback: a served graph's ``stream_mode="events"`` (``on_tool_end``, sent to the
    client) and tracing. The tool still gets its ``configurable``; only the callbacks are dropped
    (``callbacks=[]``: ``ensure_config`` ignores a None, which would keep the inherited ones).
    """
    from langsmith.run_helpers import tracing_context

    with tracing_context(enabled=False), never_paused(getattr(tool, "name", "the tool")):
        return tool.invoke(dict(args), config={"callbacks": []})


class ToolPaused(Exception):
    """A tool called LangGraph's ``interrupt()``: its call fails, with this as its error."""


@contextmanager
def never_paused(name: str) -> Iterator[None]:
    """Around a call of the application's code (a tool, a draft function): its ``interrupt()``
    fails the call. Its pause would be no item in the inbox, resumed by no one the policy names,
    and the code run again from its start on resume (a change then found begun: outcome unknown)."""
    try:
        yield
    except GraphInterrupt:
        raise ToolPaused(f"{name} called interrupt(): a tool cannot pause the run; ask for the person in "
                         "the policy (verification or approval)") from None
