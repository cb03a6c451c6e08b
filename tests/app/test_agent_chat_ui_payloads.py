"""Agent Chat UI's own payloads decide runs on a real ``langgraph dev`` (one server for the module).

Every decision below is sent exactly as Agent Chat UI's source sends it
(``src/components/thread/agent-inbox/hooks/use-interrupted-actions.tsx`` and
``thread-actions-view.tsx``): ``{"command": {"resume": {"decisions": [<one decision>]}}}``, unkeyed,
no approver, edited numbers as strings, the API key in ``x-api-key`` (the SDK's ``api_key`` sends
it there too), and "Mark as Resolved" as ``{"command": {"goto": "__end__"}}``. The approver is the
signed-in user (``agent-kit approvers token NAME``). Each decision has its effect once, checked in
the shop's rows; a refused one comes back to the client in the interrupt it sees next.

The module shares one shop: Jane's refunds add up over the tests (24 h, per customer), so the
amounts are chosen to stay between $50 and $300 (one support lead) and within each order's total.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents.middleware.human_in_the_loop import HITLRequest
from langgraph_sdk import get_sync_client
from pydantic import TypeAdapter

from agent_kit.store import Store
from tests.app.test_langgraph_dev import served_signed_in
from tools.shop import Shop

ASSISTANT = "customer_service"
JANE = "Hi, I'm Jane Doe, zip 94107"

# -- the payloads, as Agent Chat UI's source writes them -----------------------------------------
APPROVE = {"decisions": [{"type": "approve"}]}
RESOLVE = {"goto": "__end__"}  # "Mark as Resolved": `goto: END` from @langchain/langgraph/web


def edit(name: str, args: dict[str, Any]) -> dict[str, Any]:
    # The UI edits every argument in a text field: numbers come back as strings.
    return {"decisions": [{"type": "edit", "edited_action": {"name": name, "args": {
        k: str(v) if isinstance(v, int | float) else v for k, v in args.items()}}}]}


def reject(message: str) -> dict[str, Any]:
    return {"decisions": [{"type": "reject", "message": message}]}


def respond(message: str) -> dict[str, Any]:  # LangChain's RespondDecision (HITL clients other than the UI)
    return {"decisions": [{"type": "respond", "message": message}]}


class Served:
    def __init__(self, url: str, home: Path, tokens: dict[str, str]) -> None:
        self.url, self.home, self.tokens = url, home, tokens

    def client(self, who: str) -> Any:
        return get_sync_client(url=self.url, api_key=self.tokens.get(who, who))

    def customer(self) -> tuple[Any, str]:
        """A fresh customer session (a self-issued token) and a thread it owns."""
        token = "cst_" + secrets.token_urlsafe(32)
        client = get_sync_client(url=self.url, api_key=token)
        return client, client.threads.create()["thread_id"]

    def say(self, client: Any, thread: str, text: str) -> Any:
        return client.runs.wait(thread, ASSISTANT, input={"messages": [{"role": "user", "content": text}]})

    def decide(self, who: str, thread: str, command: dict[str, Any]) -> Any:
        """Send one command as Agent Chat UI does; returns what the run answers."""
        return self.client(who).runs.wait(thread, ASSISTANT, command=command)

    def state(self, thread: str) -> Any:
        return self.client("morgan").threads.get_state(thread)

    def pending(self, thread: str) -> dict[str, Any]:
        state = self.state(thread)
        (interrupt,) = state["interrupts"]  # one at a time, always
        return interrupt

    def shop(self) -> Shop:
        return Shop(self.home / "shop.sqlite")

    def audit(self, thread: str) -> list[Any]:
        store = Store.open(home=self.home)
        try:
            return list(store.audit.entries(thread))
        finally:
            store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_signed_in(tmp_path_factory, "chat_ui") as (client, home, tokens):
        yield Served(str(client.base_url), home, tokens)


@pytest.fixture(scope="module", autouse=True)
def _jane_over_the_daily_limit(server: Served) -> None:
    """Jane's refunds of the last 24 hours come to more than $50 before any test runs, so every
    refund a test asks for waits on a lead, whichever tests ran before it on this server."""
    _, thread, _ = _verified_jane(server, "Refund $55 on order 1003")
    for who in ("morgan", "lee", "sam"):  # as many approvers as the policy asks for
        if not server.state(thread)["interrupts"]:
            break
        server.decide(who, thread, {"resume": APPROVE})
    assert _refunds(server, 1003) == [55.0] and server.state(thread)["next"] == []


def _verified_jane(server: Served, ask: str) -> tuple[Any, str, dict[str, Any]]:
    client, thread = server.customer()
    server.say(client, thread, JANE)
    server.say(client, thread, ask)
    return client, thread, server.pending(thread)


def _refunds(server: Served, order: int) -> list[float]:
    return [r["amount"] for r in server.shop().refunds(order)]


def _refused(value: dict[str, Any]) -> str:
    """The reason a refused decision comes back with: in the interrupt's ``refused`` field and
    at the head of the description Agent Chat UI shows."""
    reason = value["refused"]["reason"]
    assert value["action_requests"][0]["description"].startswith(f"Refused: {reason}")
    return str(reason)


def _returned_interrupt(result: Any) -> dict[str, Any]:
    """The interrupt the run that carried the decision hands back to its client."""
    (interrupt,) = result["__interrupt__"]
    return dict(interrupt)


# -- one gated call -------------------------------------------------------------------------------

def test_approve_runs_the_refund_once_as_the_signed_in_lead(server: Served) -> None:
    before = _refunds(server, 1001)  # the module's tests share one back office
    _, thread, interrupt = _verified_jane(server, "Refund $55 on order 1001")
    value = interrupt["value"]
    TypeAdapter(HITLRequest).validate_python(value)  # LangChain's own type, field names as they are
    assert value["review_configs"] == [{"action_name": "issue_refund", "allowed_decisions": ["approve", "edit", "reject"]}]
    server.decide("lee", thread, {"resume": APPROVE})
    assert _refunds(server, 1001) == [*before, 55.0]
    assert server.state(thread)["next"] == []
    # The UI's second click: nothing is pending, nothing runs again.
    server.decide("lee", thread, {"resume": APPROVE})
    assert _refunds(server, 1001) == [*before, 55.0]
    kinds = [(e.kind, e.actor) for e in server.audit(thread) if e.tool == "issue_refund"]
    assert kinds == [("approval_requested", "policy"), ("approved", "lee"), ("started", "agent"), ("executed", "agent")]


def test_edit_with_string_numbers_is_decided_again_and_the_editor_cannot_approve_it(server: Served) -> None:
    before = _refunds(server, 1004)
    _, thread, interrupt = _verified_jane(server, "Refund $58 on order 1004")
    result = server.decide("lee", thread, {"resume": edit("issue_refund", {"order_id": 1004, "amount": 51,
                                                                           "reason": "partial"})})
    # $51 on top of the day's refunds still needs a lead; lee asked for it now, so lee cannot approve it.
    again = _returned_interrupt(result)
    assert again["value"]["action_requests"][0]["args"]["amount"] == 51.0 and again["value"]["requested_by"] == "lee"
    assert _refunds(server, 1004) == before
    result = server.decide("lee", thread, {"resume": APPROVE})
    assert "lee" in _refused(_returned_interrupt(result)["value"]) and _refunds(server, 1004) == before
    server.decide("sam", thread, {"resume": APPROVE})
    assert _refunds(server, 1004) == [*before, 51.0]
    assert server.state(thread)["next"] == []


def test_reject_runs_nothing_and_the_model_hears_the_message(server: Served) -> None:
    before = _refunds(server, 1001)
    _, thread, _ = _verified_jane(server, "Refund $70 on order 1001")
    result = server.decide("lee", thread, {"resume": reject("Outside the return window")})
    assert _refunds(server, 1001) == before
    tool = [m for m in result["messages"] if m["type"] == "tool"][-1]
    assert "Outside the return window" in tool["content"] and "lee" in tool["content"]
    assert server.state(thread)["next"] == []


# -- two gated calls in one message ----------------------------------------------------------------

def test_two_gated_calls_are_presented_one_after_another(server: Served) -> None:
    before, before_1004 = _refunds(server, 1001), _refunds(server, 1004)
    _, thread, first = _verified_jane(server, "Refund $20 on order 1001 and $5 on order 1004")
    assert first["value"]["action_requests"][0]["args"]["amount"] == 20.0
    result = server.decide("lee", thread, {"resume": APPROVE})  # unkeyed: exactly one is pending
    second = _returned_interrupt(result)
    assert second["id"] != first["id"] and second["value"]["action_requests"][0]["args"]["amount"] == 5.0
    assert _refunds(server, 1001) == [*before, 20.0]
    server.decide("lee", thread, {"resume": reject("One refund a day")})
    assert _refunds(server, 1001) == [*before, 20.0] and _refunds(server, 1004) == before_1004
    assert server.state(thread)["next"] == []


def test_two_gated_calls_both_approved_each_run_once(server: Served) -> None:
    before, before_1004 = _refunds(server, 1001), _refunds(server, 1004)
    _, thread, _ = _verified_jane(server, "Refund $21 on order 1001 and $4 on order 1004")
    server.decide("lee", thread, {"resume": APPROVE})
    server.decide("sam", thread, {"resume": APPROVE})
    assert _refunds(server, 1001) == [*before, 21.0] and _refunds(server, 1004) == [*before_1004, 4.0]
    assert server.state(thread)["next"] == []
    executed = [e for e in server.audit(thread) if e.kind == "executed"]
    assert len(executed) == 2


# -- what is refused comes back to the client, and nothing runs --------------------------------------

BAD = [
    pytest.param({"resume": respond("done by hand")}, "not allowed", id="respond-on-an-approval"),
    pytest.param({"resume": {"decisions": [{"type": "approve"}, {"type": "approve"}]}}, "exactly one decision",
                 id="approve-all-two-for-one"),
    pytest.param({"resume": {"decisions": []}}, "exactly one decision", id="no-decision"),
    pytest.param({"resume": {"decisions": [{"type": "reject"}]}}, "needs a reason", id="reject-without-message"),
    pytest.param({"resume": {"decisions": [{"type": "edit", "edited_action": {"name": "issue_refund"}}]}},
                 "'args'", id="edit-without-args"),
    pytest.param({"resume": {"decisions": [{"type": "approve"}], "approver": "sam"}}, "authenticated user",
                 id="naming-another-approver"),
    pytest.param(RESOLVE, "closes escalated cases only", id="mark-as-resolved-on-an-approval"),
]


@pytest.mark.parametrize(("command", "why"), BAD)
def test_a_refused_decision_returns_its_reason_and_the_run_stays_decidable(server: Served, command: dict[str, Any],
                                                                        why: str) -> None:
    _, thread, _ = _verified_jane(server, "Refund $9 on order 1001")
    before = _refunds(server, 1001)
    result = server.decide("morgan", thread, command)  # morgan: an operator, whom the server lets send anything
    value = _returned_interrupt(result)["value"]
    assert why in _refused(value)
    assert value["kind"] == "approval" and _refunds(server, 1001) == before
    assert [e.kind for e in server.audit(thread)].count("refused") == 1
    server.decide("lee", thread, {"resume": reject("cleanup")})
    assert server.state(thread)["next"] == [] and _refunds(server, 1001) == before


def test_a_decision_keyed_to_a_stale_interrupt_is_an_error_and_decides_nothing(server: Served) -> None:
    before = _refunds(server, 1001)
    _, thread, first = _verified_jane(server, "Refund $9 on order 1001")
    result = server.decide("morgan", thread, {"resume": {"decisions": [{"type": "approve"}], "approver": "sam"}})
    stale = first["id"]
    live = _returned_interrupt(result)["id"]
    assert live != stale
    # LangGraph's UnknownInterruptError, raised before anything is written; the server passes its
    # name on (it masks the text of exceptions it does not know).
    with pytest.raises(Exception, match="UnknownInterruptError"):
        server.decide("lee", thread, {"resume": {stale: APPROVE}})
    assert server.pending(thread)["id"] == live and _refunds(server, 1001) == before
    server.decide("lee", thread, {"resume": {live: reject("cleanup")}})
    assert server.state(thread)["next"] == []


def test_two_resumes_racing_run_the_refund_once(server: Served) -> None:
    _, thread, _ = _verified_jane(server, "Refund $10 on order 1001")
    before = _refunds(server, 1001)

    def approve(who: str) -> str:
        try:
            server.decide(who, thread, {"resume": APPROVE})
        except Exception as exc:  # the loser is told (the thread is busy), or finds nothing pending
            return type(exc).__name__
        return "ok"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(approve, ["lee", "sam"]))
    assert "ok" in outcomes
    assert _refunds(server, 1001) == [*before, 10.0]
    assert server.state(thread)["next"] == []
    approved = [e for e in server.audit(thread) if e.kind == "approved"]
    assert len(approved) == 1


# -- escalations: the UI's own controls resolve them -------------------------------------------------

def test_an_escalation_offers_controls_the_ui_shows(server: Served) -> None:
    client, thread = server.customer()
    server.say(client, thread, "I want a human")
    value = server.pending(thread)["value"]
    TypeAdapter(HITLRequest).validate_python(value)
    assert value["kind"] == "escalation"
    assert value["review_configs"][0]["allowed_decisions"] == ["reject", "respond"]
    assert "Mark as Resolved" in value["action_requests"][0]["description"]


def test_reject_with_a_note_hands_the_case_back_to_the_agent(server: Served) -> None:
    client, thread = server.customer()
    server.say(client, thread, "I want a human")
    result = server.decide("lee", thread, {"resume": reject("We will call you today")})
    assert server.state(thread)["next"] == [] and result.get("status") != "closed"
    assert "We will call you today" in [m for m in result["messages"] if m["type"] == "tool"][-1]["content"]
    (resolved,) = [e for e in server.audit(thread) if e.kind == "resolved"]
    assert (resolved.actor, resolved.data["resolution"]) == ("lee", "return")
    server.say(client, thread, "thanks")  # the conversation goes on
    assert server.state(thread)["next"] == []


def test_mark_as_resolved_closes_the_case_as_the_signed_in_operator(server: Served) -> None:
    client, thread = server.customer()
    server.say(client, thread, "I want a human")
    result = server.decide("morgan", thread, RESOLVE)
    state = server.state(thread)
    assert state["next"] == [] and state["interrupts"] == [] and state["values"]["status"] == "closed"
    assert "__interrupt__" not in result
    (resolved,) = [e for e in server.audit(thread) if e.kind == "resolved"]
    assert (resolved.actor, resolved.data["resolution"], resolved.data["note"]) == ("morgan", "close",
                                                                                      "Marked as resolved")
    # The same click again: nothing is pending, nothing changes.
    server.decide("morgan", thread, RESOLVE)
    assert [e.kind for e in server.audit(thread)].count("resolved") == 1


def test_mark_as_resolved_from_an_approver_closes_the_case_if_the_policy_lets_them(server: Served) -> None:
    """Approvers may send exactly ``goto: "__end__"``; the graph checks who may resolve."""
    client, thread = server.customer()
    server.say(client, thread, "I want a human")
    server.decide("lee", thread, RESOLVE)  # lee is a support lead, one of the escalation receivers
    state = server.state(thread)
    assert state["next"] == [] and state["values"]["status"] == "closed"
    (resolved,) = [e for e in server.audit(thread) if e.kind == "resolved"]
    assert (resolved.actor, resolved.data["resolution"]) == ("lee", "close")
    client, thread = server.customer()
    server.say(client, thread, "I want a human")
    with pytest.raises(Exception, match="operators only"):  # any other goto stays operators-only
        server.decide("lee", thread, {"goto": "agent"})
    server.decide("lee", thread, {"resume": respond("Refund issued by phone")})  # respond closes it
    state = server.state(thread)
    assert state["next"] == [] and state["values"]["status"] == "closed"


# -- customer confirmations are the customer's ------------------------------------------------------

def test_a_confirmation_is_not_offered_to_staff_and_staff_answers_are_refused(server: Served) -> None:
    client, thread, interrupt = _verified_jane(server, "cancel order 1002 and refund $6 on order 1001")
    value = interrupt["value"]
    TypeAdapter(HITLRequest).validate_python(value)
    assert (value["kind"], value["answered_by"]) == ("verification", "customer")
    assert value["review_configs"][0]["allowed_decisions"] == ["respond"]  # no approve / reject for staff
    result = server.decide("lee", thread, {"resume": {"decisions": [{"type": "approve"}]}})
    assert "can answer it" in _refused(_returned_interrupt(result)["value"])
    result = server.decide("morgan", thread, RESOLVE)
    assert "the customer answers it" in _refused(_returned_interrupt(result)["value"])
    assert server.shop().order(1002)["status"] == "pending"
    # The customer answers; then the refund in the same message waits on a lead.
    result = client.runs.wait(thread, ASSISTANT, command={"resume": respond("yes")})
    assert server.shop().order(1002)["status"] == "cancelled"
    refund = _returned_interrupt(result)["value"]
    assert (refund["kind"], refund["action_requests"][0]["args"]["amount"]) == ("approval", 6.0)
    server.decide("sam", thread, {"resume": APPROVE})
    assert _refunds(server, 1001)[-1] == 6.0 and server.state(thread)["next"] == []


# -- the request body as useStream builds it --------------------------------------------------------

def test_the_ui_request_body_with_its_empty_input_decides(server: Served) -> None:
    """useStream's ``submit({}, {command})`` posts ``input: {}`` beside the command: still a decision."""
    import httpx

    _, thread, _ = _verified_jane(server, "20% discount on order 1003")
    body = {"assistant_id": ASSISTANT, "input": {}, "command": {"resume": APPROVE}}
    r = httpx.post(f"{server.url}/threads/{thread}/runs/stream", json=body, timeout=60,
                   headers={"x-api-key": server.tokens["lee"]})
    assert r.status_code == 200, r.text
    # lee's approval counted; the order is large, so a supervisor approves too
    assert [a["approver"] for a in server.pending(thread)["value"]["approvals_given"]] == ["lee"]
    server.decide("morgan", thread, {"resume": APPROVE})
    assert [(d["order_id"], d["percent"]) for d in server.shop().discounts()] == [(1003, 20.0)]
    assert server.state(thread)["next"] == []
