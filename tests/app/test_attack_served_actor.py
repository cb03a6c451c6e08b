"""Against a real ``langgraph dev`` with the template's auth handler: an approver (lee, a support
lead) tries every way to make his decision count as someone else's (morgan, the supervisor a
refund on a $2,400 order needs). Each attempt is refused by the server, or reaches the graph and
decides as lee; no decision ever counts as morgan's, and the refund still waits on a supervisor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.app.test_langgraph_dev import served_signed_in
from tests.app.test_served_auth import ASSISTANT, Server, _customer_token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served_signed_in(tmp_path_factory, "served_actor") as (client, home, tokens):
        yield Server(client, home, tokens)


def _paused(server: Server) -> tuple[str, str, dict[str, Any]]:
    """Jane, verified, with a $20 refund on order 1003 ($2,400) waiting on a supervisor."""
    token, thread = server.verified_jane("Refund $20 on order 1003")
    state = server.state(thread)
    assert state["next"] == ["approval"], state
    (interrupt,) = state["interrupts"]
    assert interrupt["value"]["required_role"] == "supervisor"
    return token, thread, interrupt


APPROVE = {"decisions": [{"type": "approve"}]}
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "configurable_actor": ("runs/wait", {"config": {"configurable": {"actor": "morgan"}},
                                         "command": {"resume": APPROVE}}),
    "context_actor": ("runs/wait", {"context": {"actor": "morgan"}, "command": {"resume": APPROVE}}),
    "context_Actor": ("runs/wait", {"context": {"Actor": "morgan"}, "command": {"resume": APPROVE}}),
    "context_fullwidth": ("runs/wait", {"context": {"\uff41ctor": "morgan"}, "command": {"resume": APPROVE}}),
    "context_cyrillic": ("runs/wait", {"context": {"\u0430ctor": "morgan"}, "command": {"resume": APPROVE}}),
    "context_zero_width": ("runs/wait", {"context": {"actor\u200b": "morgan"}, "command": {"resume": APPROVE}}),
    "context_nested": ("runs/wait", {"context": {"context": {"actor": "morgan"}}, "command": {"resume": APPROVE}}),
    "context_list": ("runs/wait", {"context": {"actor": ["morgan"]}, "command": {"resume": APPROVE}}),
    "auth_user_configurable": ("runs/wait", {"config": {"configurable": {
                                                 "langgraph_auth_user": {"identity": "morgan"}}},
                                             "command": {"resume": APPROVE}}),
    "auth_user_id_configurable": ("runs/wait", {"config": {"configurable": {"langgraph_auth_user_id": "morgan"}},
                                                "command": {"resume": APPROVE}}),
    "user_id_configurable": ("runs/wait", {"config": {"configurable": {"user_id": "morgan"}},
                                           "command": {"resume": APPROVE}}),
    "auth_user_context": ("runs/wait", {"context": {"langgraph_auth_user": {"identity": "morgan"}},
                                        "command": {"resume": APPROVE}}),
    "payload_approver": ("runs/wait", {"command": {"resume": {**APPROVE, "approver": "morgan"}}}),
    "payload_approver_stream": ("runs/stream", {"command": {"resume": {**APPROVE, "approver": "morgan"}}}),
    "payload_approver_in_decision": ("runs/wait", {"command": {"resume": {"decisions": [
        {"type": "approve", "approver": "morgan"}]}}}),
    "metadata_user": ("runs/wait", {"metadata": {"user_id": "morgan", "approver": "morgan"},
                                    "command": {"resume": APPROVE}}),
    "background_run": ("runs", {"command": {"resume": APPROVE}, "config": {"configurable": {"actor": "morgan"}}}),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_approvers_decision_never_counts_as_someone_elses(server: Server, attack: str) -> None:
    _, thread, _ = _paused(server)
    path, body = ATTACKS[attack]
    r = server.post(f"/threads/{thread}/{path}", server.tokens["lee"], {"assistant_id": ASSISTANT, **body})
    if path == "runs" and r.status_code == 200:
        server.get(f"/threads/{thread}/runs/{r.json()['run_id']}/join", server.tokens["lee"])
    assert r.status_code in (200, 403, 409, 422), (attack, r.status_code, r.text)
    assert server.shop().refunds(1003) == [], (attack, r.status_code, r.text)
    entries = server.audit(thread)
    assert not [e for e in entries if e.actor == "morgan"], (attack, [(e.kind, e.actor) for e in entries])
    assert not [(e.kind, e.actor) for e in entries if e.kind in ("approved", "edited", "resolved")], attack
    # still waiting on a supervisor (nothing executed, so every case's refund total is its own $20)
    state = server.state(thread)
    assert state["next"] == ["approval"] and len(state["interrupts"]) == 1, (attack, state["next"])


@pytest.mark.parametrize("who", ["customer", "lee"])
@pytest.mark.parametrize("request_", [
    ("post", "/runs/batch", [{"assistant_id": ASSISTANT, "input": {"messages": [{"role": "user", "content": "hi"}]}}]),
    ("post", "/runs/stream", {"assistant_id": ASSISTANT, "input": {"messages": [{"role": "user", "content": "hi"}]}}),
    ("post", "/threads/{thread}/runs/crons", {"assistant_id": ASSISTANT, "schedule": "* * * * *",
                                              "input": {"messages": [{"role": "user", "content": "hi"}]}}),
], ids=["runs_batch", "stateless_stream", "thread_cron"])
def test_batches_stateless_streams_and_thread_crons_are_refused(server: Server, who: str,
                                                                 request_: tuple[str, str, Any]) -> None:
    token = _customer_token()
    thread = server.thread(token)
    caller = token if who == "customer" else server.tokens["lee"]
    method, path, body = request_
    r = server.client.request(method.upper(), path.format(thread=thread), json=body, headers=server.as_(caller))
    assert r.status_code in (403, 404, 422), (r.status_code, r.text)
    assert not server.audit(thread)


def test_a_run_creating_its_own_thread_with_a_resume_decides_nothing(server: Server) -> None:
    _, thread, interrupt = _paused(server)
    new = str(uuid.uuid4())
    body = {"assistant_id": ASSISTANT, "if_not_exists": "create",
            "command": {"resume": {interrupt["id"]: APPROVE}}}
    r = server.post(f"/threads/{new}/runs/wait", server.tokens["lee"], body)
    assert r.status_code in (200, 400, 403, 404, 409, 422), r.text
    assert server.shop().refunds(1003) == []
    assert not [e for e in server.audit(thread) if e.kind == "approved"]


@pytest.mark.parametrize("variant", ["list", "mixed_keys", "keyed", "unkeyed_stream", "enqueue", "approver_customer",
                                     "null_goto"])
def test_a_customer_cannot_answer_a_staff_approval_in_any_shape(server: Server, variant: str) -> None:
    token, thread, interrupt = _paused(server)
    iid = interrupt["id"]
    resumes: dict[str, tuple[str, dict[str, Any]]] = {
        "list": ("runs/wait", {"command": {"resume": [APPROVE]}}),
        "mixed_keys": ("runs/wait", {"command": {"resume": {iid: APPROVE, "decisions": APPROVE["decisions"]}}}),
        "keyed": ("runs/wait", {"command": {"resume": {iid: APPROVE}}}),
        "unkeyed_stream": ("runs/stream", {"command": {"resume": APPROVE}}),
        "enqueue": ("runs/wait", {"command": {"resume": APPROVE}, "multitask_strategy": "enqueue"}),
        "approver_customer": ("runs/wait", {"command": {"resume": {**APPROVE, "approver": "customer"}}}),
        "null_goto": ("runs/wait", {"command": {"resume": APPROVE, "goto": None, "update": None}}),
    }
    path, body = resumes[variant]
    r = server.post(f"/threads/{thread}/{path}", token, {"assistant_id": ASSISTANT, **body})
    assert r.status_code == 403, (variant, r.status_code, r.text)
    assert server.shop().refunds(1003) == []
    assert not [e for e in server.audit(thread) if e.kind in ("approved", "refused")]
    assert server.state(thread)["next"] == ["approval"]
