"""The runtime: the one public path to run, resume, approve, reject and resolve a thread.

Every call takes the thread's lease (one run per thread, across processes), checks that the
interrupt it answers is still pending, and validates the resume payload *before* the graph is
invoked: a refused payload changes nothing and the run stays paused and resumable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StreamMode

from agent_kit._db import storage_failures
from agent_kit._decisions import Named, Target, describe, named
from agent_kit.errors import (
    ApprovalError,
    DecisionInputError,
    InputError,
    ResumeError,
    StaleInterruptError,
    UsageError,
)
from agent_kit.graph import PermissionLayer, RunContext, layer_of, with_checkpointer
from agent_kit.inbox import PendingItem
from agent_kit.interrupts import CUSTOMER, check_resume, is_request, now_iso
from agent_kit.kernel import Kernel
from agent_kit.leases import Lease
from agent_kit.limits import InputLimits, check_name, check_text
from agent_kit.retention import RetentionPolicy, reclaim_space
from agent_kit.streaming import Paused, StreamEvent, Token, TurnEnded, event_of_audit_entry

__all__ = ["AgentRuntime", "TurnResult"]

_log = logging.getLogger(__name__)

Status = Literal["replied", "paused", "escalated", "closed"]


@dataclass(frozen=True)
class TurnResult:
    """Where a thread stands after a call: its status, the reply, and what waits on a person."""

    thread_id: str
    status: Status
    reply: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "status": self.status, "reply": self.reply, "pending": self.pending}


def pending_view(thread_id: str, interrupt_id: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's view of one pending interrupt (the shape of ``pending --json``): the inbox's
    :class:`~agent_kit.inbox.PendingItem`, as JSON."""
    return PendingItem.from_request(thread_id, interrupt_id, value).to_json()


class AgentRuntime:
    """Runs an agent_kit graph on a store: chat turns, approvals, rejections, resolutions.

    Args:
        graph: a graph made by :func:`agent_kit.create_permissioned_agent` (with or without a
            checkpointer; the store's own checkpointer is used unless one is given).
        store: the :class:`agent_kit.store.Store`; default: the graph's, else opened from env.
        checkpointer: override the store's checkpointer.
        durability: ``"sync"`` (default) or ``"async"``; ``"exit"`` is refused.
        retention: which checkpoints to keep after each call (default: the latest, which holds
            every pending interrupt; the audit trail keeps the history). None keeps them all.
        limits: size limits of messages, arguments and results (default:
            :meth:`InputLimits.from_env`). An input over its limit, or one no backend can store
            as it is, is refused with :class:`~agent_kit.errors.InputError` before anything is
            written (see :mod:`agent_kit.limits`).
    """

    def __init__(self, graph: Any, *, store: Any = None, checkpointer: Any = None,
                 durability: Literal["sync", "async"] = "sync",
                 retention: RetentionPolicy | None = RetentionPolicy(),
                 limits: InputLimits | None = None) -> None:
        self.layer: PermissionLayer = layer_of(graph)
        self.kernel: Kernel = self.layer.kernel
        """The graph's kernel: its registry, policy and default store."""
        self.limits = limits if limits is not None else InputLimits.from_env()
        # The graph and its layer are never changed: this runtime's store reaches the nodes
        # through the run's context, and its checkpointer through a copy of the compiled graph
        # (not compiled again), so several runtimes can share one graph, each with its own store.
        from agent_kit.store import Store

        if store is not None and not isinstance(store, Store):
            raise UsageError(f"store must be an agent_kit.store.Store (Store.open(...)), got {type(store).__name__}")
        self.store = store if store is not None else self.kernel.default_store
        if durability not in ("sync", "async"):
            raise UsageError(f"durability {durability!r} is refused for permissioned graphs; use 'sync' or 'async'")
        self.durability = durability
        self.graph = with_checkpointer(graph, checkpointer or self.store.checkpointer())
        self.retention = retention

    # -- reading -------------------------------------------------------------------------------
    def _config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    def _context(self, actor: str) -> RunContext:
        return RunContext(store=self.store, actor=actor)

    def state(self, thread_id: str) -> Any:
        check_name(thread_id, "thread_id", max_chars=self.limits.max_name_chars)
        return self.graph.get_state({"configurable": {"thread_id": thread_id}})

    def exists(self, thread_id: str) -> bool:
        return bool(self.state(thread_id).values)

    def pending(self, thread_id: str | None = None, kind: str | None = None) -> list[Any]:
        """Pending interrupts from the inbox index (no scan of thread states)."""
        if thread_id is not None:
            check_name(thread_id, "thread_id", max_chars=self.limits.max_name_chars)
        items = self.store.inbox.for_thread(thread_id) if thread_id else self.store.inbox.list(kind=kind)
        return [i for i in items if kind is None or i.kind == kind]

    def result(self, thread_id: str, snap: Any = None) -> TurnResult:
        """What the thread's last call came to (from ``snap``, its current state, if given)."""
        if snap is None:
            snap = self.state(thread_id)
        foreign = [i for i in snap.interrupts if not is_request(i.value)]
        if foreign:
            shown = ascii(foreign[0].value)[:200]
            raise UsageError(
                f"thread {thread_id!r} waits on an interrupt agent_kit did not raise ({shown}): "
                "the runtime decides only the pauses the policy asks for; resume it with "
                "graph.invoke(Command(resume=...)) on the thread, or ask for the person in the policy")
        pending = [pending_view(thread_id, i.id, i.value) for i in snap.interrupts]
        values = snap.values or {}
        messages = values.get("messages", [])
        reply = None
        if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
            reply = str(messages[-1].content)
        elif pending:
            reply = _waiting_reply(pending)
        status: Status
        if any(p["kind"] == "escalation" for p in pending):
            status = "escalated"
        elif pending:
            status = "paused"
        elif values.get("status") == "closed":
            status = "closed"
        else:
            status = "replied"
        return TurnResult(thread_id=thread_id, status=status, reply=reply, pending=pending)

    # -- acting --------------------------------------------------------------------------------
    def send(self, thread_id: str, message: str, *, actor: str = CUSTOMER) -> TurnResult:
        """One customer turn. While the run waits on the customer (verification), this answers it.

        Raises:
            InputError: the message (or thread id, actor) cannot be stored as it is or is over
                its limit; nothing was written and the thread answers the next message.
        """
        self._check_turn(thread_id, message, actor)
        with self.store.leases.acquire(thread_id, owner="turn") as lease:
            planned = self._plan_turn(thread_id, message, actor)
            if isinstance(planned, TurnResult):
                return planned
            self._invoke(planned.value, thread_id, actor)
            self._mark_delivered(thread_id, planned.held)
            return self._settle(thread_id, lease)

    def stream(self, thread_id: str, message: str, *, actor: str = CUSTOMER) -> Generator[StreamEvent, None, None]:
        """One customer turn, as :meth:`send`, streamed: the model's tokens as the model server
        sends them, each decision and effect as its audit entry is written, each pause on a
        person as it is raised, and last a :class:`~agent_kit.streaming.TurnEnded` with the
        result ``send`` would return.

        The thread's lease is held until the stream is exhausted or closed; closing it early
        stops the run where it is, as a crash would (the next call on the thread finishes it,
        and no effect runs twice).
        """
        self._check_turn(thread_id, message, actor)
        with self.store.leases.acquire(thread_id, owner="turn (streamed)") as lease:
            planned = self._plan_turn(thread_id, message, actor)
            if isinstance(planned, TurnResult):
                yield TurnEnded(thread_id=thread_id, result=planned)
                return
            last_seq = max((e.seq for e in self.store.audit.entries(thread_id)), default=0)
            paused: set[str] = set()
            config = self._config(thread_id)
            modes: list[StreamMode] = ["messages", "updates"]
            with self._failing_run(thread_id):
                for mode, chunk in self.graph.stream(planned.value, config, context=self._context(actor),
                                                     durability=self.durability, stream_mode=modes):
                    if mode == "messages":
                        token = _token(thread_id, chunk)
                        if token is not None:
                            yield token
                        continue
                    for entry in self.store.audit.entries(thread_id, after_seq=last_seq):
                        last_seq = entry.seq
                        event = event_of_audit_entry(entry)
                        if event is not None:
                            yield event
                    for intr in (chunk.get("__interrupt__") or ()) if isinstance(chunk, dict) else ():
                        if intr.id not in paused and is_request(intr.value):
                            paused.add(intr.id)
                            yield Paused(thread_id=thread_id, pending=pending_view(thread_id, intr.id, intr.value))
            self._mark_delivered(thread_id, planned.held)
            result = self._settle(thread_id, lease)
            for entry in self.store.audit.entries(thread_id, after_seq=last_seq):
                event = event_of_audit_entry(entry)
                if event is not None:
                    yield event
            for item in result.pending:
                if item["interrupt_id"] not in paused:
                    yield Paused(thread_id=thread_id, pending=item)
            yield TurnEnded(thread_id=thread_id, result=result)

    async def astream(self, thread_id: str, message: str, *, actor: str = CUSTOMER) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` for asyncio: the same events, the turn run in a worker thread (the
        store's checkpointer is synchronous), so the event loop is never blocked."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            events = self.stream(thread_id, message, actor=actor)
            try:
                for event in events:
                    loop.call_soon_threadsafe(queue.put_nowait, ("event", event))
                    if stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            finally:
                events.close()  # releases the lease in this thread, where it was taken
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

        worker = threading.Thread(target=produce, name=f"agent-kit-stream-{thread_id}", daemon=True)
        worker.start()
        try:
            while True:
                what, item = await queue.get()
                if what == "event":
                    yield item
                elif what == "error":
                    raise item
                else:
                    return
        finally:
            stop.set()
            await asyncio.to_thread(worker.join)

    def _plan_turn(self, thread_id: str, message: str, actor: str) -> TurnResult | _Planned:
        """What a customer message does to the thread (under its lease): finish a run a crash
        cut off, answer the verification it waits on, wait for staff, or start a new turn."""
        snap = self.state(thread_id)
        if self._interrupted(thread_id, snap):
            # A crash cut the last run off: finish it first (the message is most likely the
            # customer retrying the answer that run was carrying); the caller sees the result.
            return _Planned(None)
        waiting = [i for i in snap.interrupts if i.value.get("kind") == "verification"]
        if waiting:
            target = waiting[0]
            payload = {"decisions": [{"type": "respond", "message": message}], "approver": CUSTOMER,
                       "action_hash": target.value["action_hash"], "decided_at": now_iso()}
            check_resume(payload, target.value, roles_of=self.kernel.policy.roles_of, now=datetime.now(UTC),
                         limits=self.limits)
            return _Planned(Command(resume={target.id: payload}))
        if snap.interrupts:
            # Waiting on staff: the message is kept (audited), the customer is told it waits,
            # and the model gets it once the decision is made.
            self.store.audit.append("message_held", actor=actor, thread_id=thread_id, data={"text": message})
            result = self.result(thread_id)
            return replace(result, reply=_held_reply(result.pending))
        # A message is held only while the run waits on a person: a thread with no state yet has none.
        held = self._undelivered(thread_id, snap) if snap.values else []
        return _Planned({"messages": [*_held_messages(thread_id, held), HumanMessage(content=message)]}, held)

    def approve(self, target: Target, *, approver: str, interrupt_id: str | None = None,
                action_hash: str | None = None, edit: Mapping[str, Any] | None = None) -> TurnResult:
        """Approve (or edit and approve) the pending action the approver saw, and resume the run.

        Args:
            target: what is decided: a pending item as :meth:`pending` returns it (or one of
                ``TurnResult.pending``), or a thread id together with ``interrupt_id`` and/or
                ``action_hash`` as ``pending`` shows them. A decision never lands on an action
                its decider did not name: if the pending action changed since, it is refused.
            approver: who decides, as the policy lists them.
            edit: ``{"name", "args"}``: approve this action instead (decided again by policy).

        Raises:
            StaleInterruptError: what was named is no longer pending (decided, or changed).
            ResumeError: nothing was named, or the decision is malformed.
            ApprovalError: the approver may not decide it.
        """
        decision: dict[str, Any] = {"type": "approve"}
        if edit is not None:
            decision = {"type": "edit", "edited_action": dict(edit)}
        return self._resume(named(target, interrupt_id, action_hash), approver, decision, kinds=("approval",))

    def reject(self, target: Target, *, approver: str, reason: str, interrupt_id: str | None = None,
               action_hash: str | None = None) -> TurnResult:
        """Reject the pending action the approver saw (named as for :meth:`approve`); the model is told why."""
        return self._resume(named(target, interrupt_id, action_hash), approver,
                            {"type": "reject", "message": reason}, kinds=("approval",))

    def resolve(self, target: Target, *, approver: str, note: str, hand_back: bool = False,
                interrupt_id: str | None = None, action_hash: str | None = None) -> TurnResult:
        """Close the escalated case the approver saw (named as for :meth:`approve`): the customer
        gets the note; or hand it back to the agent."""
        return self._resume(named(target, interrupt_id, action_hash), approver,
                            {"type": "respond", "message": note}, kinds=("escalation",),
                            resolution="return" if hand_back else "close")

    def _resume(self, target_named: Named, approver: str, decision: dict[str, Any], *,
                kinds: tuple[str, ...], resolution: str | None = None) -> TurnResult:
        thread_id = target_named.thread_id
        if not isinstance(approver, str) or not approver.strip():
            raise DecisionInputError("an identified approver is required (--as NAME)", field="approver")
        try:
            check_name(thread_id, "thread_id", max_chars=self.limits.max_name_chars)
            check_name(approver, "approver", max_chars=self.limits.max_name_chars)
        except InputError as exc:
            raise DecisionInputError(str(exc), field=exc.field) from None
        with self.store.leases.acquire(thread_id, owner=f"resume by {approver}") as lease:
            snap = self.state(thread_id)
            if not snap.values:
                raise StaleInterruptError(f"unknown thread {thread_id!r}: nothing has run on it")
            if self._interrupted(thread_id, snap):
                if not self.kernel.policy.roles_of(approver):
                    raise ApprovalError(f"unknown approver {approver!r}: the policy lists no roles for them",
                                        approver=approver, reason="unknown_approver")
                # The decision was taken and the run cut off by a crash: repeating it finishes that run.
                self._invoke(None, thread_id, _requester(snap))
                return self._settle(thread_id, lease)
            target = self._target(target_named, snap.interrupts, kinds)
            payload: dict[str, Any] = {"decisions": [decision], "approver": approver,
                                       "action_hash": target_named.action_hash or target.value["action_hash"],
                                       "decided_at": now_iso()}
            if resolution is not None:
                payload["resolution"] = resolution
            checked = check_resume(payload, target.value, roles_of=self.kernel.policy.roles_of, now=datetime.now(UTC),
                                   limits=self.limits)
            if checked.edited_action is not None:
                self._check_edit(checked.edited_action)
            # The run goes on for its requester: a decider only decides, and never becomes the one
            # who asks for the calls the model makes after this.
            self._invoke(Command(resume={target.id: payload}), thread_id, _requester(snap))
            return self._settle(thread_id, lease, self._deliver_held(thread_id))

    def _check_turn(self, thread_id: Any, message: Any, actor: Any) -> None:
        """The door of every customer turn: refused here, a message changes nothing."""
        check_name(thread_id, "thread_id", max_chars=self.limits.max_name_chars)
        check_name(actor, "actor", max_chars=self.limits.max_name_chars)
        if not isinstance(message, str) or not message.strip():
            raise InputError("a chat message must be non-empty text", field="message")
        check_text(message, "message", max_chars=self.limits.max_message_chars)

    # -- messages that came in while the run waited on a person ----------------------------------
    def _undelivered(self, thread_id: str, snap: Any) -> list[Any]:
        """Messages held while the run waited and not yet in the conversation."""
        both = self.store.audit.entries(thread_id, kind=("message_held", "message_delivered"))
        delivered = {e.data.get("held") for e in both if e.kind == "message_delivered"}
        held = [e for e in both if e.kind == "message_held" and e.seq not in delivered]
        # Delivered before a crash cut off the audit mark: mark it now, never show it twice.
        present = {m.id for m in (snap.values or {}).get("messages", [])}
        self._mark_delivered(thread_id, [e for e in held if f"held-{thread_id}-{e.seq}" in present])
        return [e for e in held if f"held-{thread_id}-{e.seq}" not in present]

    def _mark_delivered(self, thread_id: str, held: list[Any]) -> None:
        for e in held:
            self.store.audit.append("message_delivered", actor=e.actor, thread_id=thread_id, data={"held": e.seq},
                                    key=f"{thread_id}:delivered:{e.seq}")

    def _deliver_held(self, thread_id: str) -> Any:
        """Once nothing waits on a person any more, the model gets the messages held meanwhile.
        Returns the thread's state if that did not change it (so it is not read again), else None."""
        snap = self.state(thread_id)
        if snap.interrupts:
            return snap
        held = self._undelivered(thread_id, snap)
        if not held:
            return snap
        # Ids made from the audit entries: delivering again after a crash adds nothing twice.
        self._invoke({"messages": _held_messages(thread_id, held)}, thread_id, held[-1].actor)
        self._mark_delivered(thread_id, held)
        return None

    def recover(self, thread_id: str) -> TurnResult:
        """Finish a run that a crash cut off (its decisions were taken; its effects go through
        the ledger, so none runs twice). On a thread with nothing cut off this changes nothing.
        The run goes on for its requester, whoever calls this."""
        check_name(thread_id, "thread_id", max_chars=self.limits.max_name_chars)
        with self.store.leases.acquire(thread_id, owner="recover") as lease:
            snap = self.state(thread_id)
            if self._interrupted(thread_id, snap):
                self._invoke(None, thread_id, _requester(snap))
            return self._settle(thread_id, lease)

    def _interrupted(self, thread_id: str, snap: Any) -> bool:
        """Whether a run was cut off with work left: no interrupt waits on a person, yet a step is
        due, or a step's saved writes were never folded into a checkpoint."""
        if snap.interrupts or not snap.values:
            return False
        if snap.next:
            return True
        saver = self.graph.checkpointer
        if not isinstance(saver, BaseCheckpointSaver):  # the runtime always gives the graph its saver
            return False
        saved = saver.get_tuple({"configurable": {"thread_id": thread_id}})
        return bool(saved is not None and saved.pending_writes)

    def _target(self, named: Named, interrupts: Any, kinds: tuple[str, ...]) -> Any:
        """The pending interrupt a decision names; refused unless it is exactly what was named."""
        thread_id = named.thread_id
        live = {i.id: i for i in interrupts}
        eligible = [i for i in interrupts if i.value.get("kind") in kinds]
        listing = "; ".join(describe(i) for i in eligible) or "none"
        if named.interrupt_id is not None:
            if named.interrupt_id not in live:
                raise StaleInterruptError(
                    f"interrupt {named.interrupt_id!r} is not pending on thread {thread_id!r} (already decided, "
                    f"or from another thread); pending: {listing}")
            target = live[named.interrupt_id]
            if target.value.get("kind") not in kinds:
                raise ResumeError(
                    f"interrupt {named.interrupt_id!r} is a pending {target.value.get('kind')}, not "
                    f"{' or '.join(kinds)}; "
                    + ("the customer answers it through the chat" if target.value.get("kind") == "verification"
                       else "use the command for that kind"))
            if named.action_hash is not None and not target.value["action_hash"].startswith(named.action_hash):
                raise StaleInterruptError(
                    f"interrupt {named.interrupt_id!r} now holds action {target.value['action_hash'][:16]}, not "
                    f"{named.action_hash[:16]} which you named; list pending again")
            return target
        if named.action_hash is not None:
            matches = [i for i in eligible if i.value["action_hash"].startswith(named.action_hash)]
            if not matches:
                raise StaleInterruptError(
                    f"no pending {' or '.join(kinds)} on thread {thread_id!r} has action hash {named.action_hash[:16]} "
                    f"(already decided, or the pending action changed since you looked); pending: {listing}")
            if len(matches) > 1:
                raise ResumeError(
                    f"{len(matches)} pending interrupts on thread {thread_id!r} hold action {named.action_hash[:16]} "
                    f"(the same call made more than once); name one by its interrupt id: {listing}")
            return matches[0]
        raise ResumeError(
            f"name the decision you make on thread {thread_id!r}: pass an item from pending(), or interrupt_id= / "
            f"action_hash= (on the command line --interrupt ID or --hash HASH); pending: {listing}")

    def _check_edit(self, edited: Mapping[str, Any]) -> None:
        spec = self.kernel.registry.get(edited["name"])
        if spec is None or edited["name"] not in self.kernel.policy.tools:
            raise ResumeError(f"the edit names tool {edited['name']!r}, which is not registered with a policy entry")
        try:
            spec.validate_args(edited["args"])
        except ValueError as exc:
            raise ResumeError(f"the edited action is invalid: {exc}") from None

    def _invoke(self, value: Any, thread_id: str, actor: str) -> None:
        with self._failing_run(thread_id):
            self.graph.invoke(value, self._config(thread_id), context=self._context(actor),
                              durability=self.durability)

    @contextmanager
    def _failing_run(self, thread_id: str) -> Iterator[None]:
        """Around a run, invoked or streamed: when it fails, its pending items are listed again
        and a failed checkpoint write names the store."""
        try:
            yield
        except Exception as exc:
            self._relist_after_failure(thread_id)
            if isinstance(exc, storage_failures()):
                # A checkpoint write that failed (disk full, read-only, server gone): name the store.
                raise self.store._db.storage_error(exc) from None
            raise

    def _relist_after_failure(self, thread_id: str) -> None:
        """A run failed: a decision may have been recorded (taking its item out of the inbox)
        while the checkpoint after it was not saved, so the graph still holds the interrupt. List
        it again now, not at the thread's next call, so staff see it (deciding it again carries out
        the recorded decision, once). Best effort: the failure being raised is the one to report."""
        try:
            snap = self.state(thread_id)
            listed = {item.interrupt_id for item in self.store.inbox.for_thread(thread_id)}
            self._relist(thread_id, snap, listed)
        except Exception as exc:  # the store may be what failed
            _log.warning("could not list the pending items of thread %r again after a failed run: %s", thread_id, exc)

    def _relist(self, thread_id: str, snap: Any, listed: set[str]) -> None:
        """Put in the inbox every pending interrupt of ``snap`` that is not in ``listed``."""
        from agent_kit._gates import pending_item_of

        for intr in snap.interrupts:
            if intr.id not in listed and is_request(intr.value):
                self.store.inbox.put(pending_item_of({**intr.value, "interrupt_id": intr.id}, thread_id))

    def _settle(self, thread_id: str, lease: Lease, snap: Any = None) -> TurnResult:
        """The turn's result (from ``snap``, the thread's current state, if the caller has it); the
        inbox sweep and checkpoint retention go into the transaction that gives the thread's lease
        back (nothing else writes this thread's checkpoints now)."""
        result = self.result(thread_id, snap)
        live = [p["interrupt_id"] for p in result.pending]
        listed = {item.interrupt_id for item in self.store.inbox.for_thread(thread_id)}
        if listed - set(live):
            # A repair of the index (a decision normally removes its item itself): made durable.
            lease.on_release(lambda tx: self.store.inbox.sweep_in(tx, thread_id, keep=live))
        if set(live) - listed:
            # A run whose checkpoint could not be saved after its node wrote the inbox (a value
            # sent straight to the graph that no checkpoint can hold) left a pending interrupt
            # unlisted: list it again, so no pending item is ever missing from the inbox.
            self._relist(thread_id, snap if snap is not None else self.state(thread_id), listed)
        retention = self.retention
        if retention is not None:
            if self.graph.checkpointer is self.store.checkpointer():
                # Pruning that a server crash undid is redone by the thread's next call.
                lease.on_release(lambda tx: retention.apply_in(tx, thread_id), durable=False)
                if retention.reclaim_due():
                    reclaim_space(self.graph.checkpointer)
            else:
                retention.apply(self.graph.checkpointer, thread_id)
        return result




@dataclass(frozen=True)
class _Planned:
    """The graph input a turn runs with (None: finish the run a crash cut off), and the held
    messages it delivers."""

    value: Any
    held: list[Any] = field(default_factory=list)




def _token(thread_id: str, chunk: Any) -> Token | None:
    """The text piece of a ``messages`` stream chunk from the agent node, if it has one."""
    message, meta = chunk
    if not isinstance(message, AIMessage) or (meta or {}).get("langgraph_node") != "agent":
        return None
    text = str(message.text)
    return Token(thread_id=thread_id, text=text, message_id=message.id) if text else None


def _requester(snap: Any) -> str:
    """The thread's end user, as its agent node recorded them (the customer by default)."""
    return str((snap.values or {}).get("requester") or CUSTOMER)


def _held_messages(thread_id: str, held: list[Any]) -> list[HumanMessage]:
    return [HumanMessage(content=e.data["text"], id=f"held-{thread_id}-{e.seq}") for e in held]


def _held_reply(pending: list[dict[str, Any]]) -> str:
    waiting = _waiting_reply(pending)
    return f"{waiting} I've noted your message and will come back to it as soon as that is decided."


def _waiting_reply(pending: list[dict[str, Any]]) -> str:
    p = pending[0]
    if p["kind"] == "verification":
        return str(p.get("question") or "Please confirm.")
    if p["kind"] == "escalation":
        return "I've passed your case to a person, who will follow up with you."
    who = p.get("required_role") or "staff member"
    return f"Your request ({p['action']['name']}) needs approval by a {who}; I'll continue once it is decided."
