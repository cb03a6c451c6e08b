"""A served graph with **no** auth handler: a genuine verification task (the customer's "please
confirm" of a cancellation), read from ``runs/stream``'s ``tasks`` mode, sent again through
``command.goto`` after the customer said no and became frustrated. The action's MAC checks; its
context is the thread's own, signed while the customer was calm, so the node decides the call
again without the ``frustrated_customer`` escalation, and the customer's yes cancels the order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.test_attack_served_replay_refused import _tasks_sent
from tests.app.test_langgraph_dev import _run, _say, served_without_auth
from tools.shop import Shop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    with served_without_auth(tmp_path_factory, "replay_context") as served_app:
        yield served_app


def _answer(client: httpx.Client, thread: str, text: str) -> Any:
    (interrupt,) = client.get(f"/threads/{thread}/state").json()["interrupts"]
    assert interrupt["value"]["kind"] == "verification", interrupt
    return _run(client, thread, {"command": {"resume": {interrupt["id"]: {
        "decisions": [{"type": "respond", "message": text}], "approver": "customer"}}}})


def test_a_replayed_confirmation_task_escapes_the_frustrated_customer_escalation(
        server: tuple[httpx.Client, Path]) -> None:
    client, home = server
    thread = client.post("/threads", json={}).json()["thread_id"]
    _say(client, thread, "Hi, I am Jane Doe, 94107")
    (task,) = _tasks_sent(client, thread, {"input": {"messages": [
        {"role": "user", "content": "Cancel order 1002"}]}}, "verification")
    _answer(client, thread, "no")
    shop = Shop(home / "shop.sqlite")
    before = shop._order_row(1002)["status"]
    _say(client, thread, "This is absurd, I am fed up and angry")
    context = client.get(f"/threads/{thread}/state").json()["values"]["context"]
    assert context.get("sentiment") == "frustrated"  # policy now sends every call to a person
    out = _run(client, thread, {"command": {"goto": {"node": "verification", "input": task}}})
    (asked,) = out["__interrupt__"]  # the customer is asked to confirm again
    assert asked["value"]["kind"] == "verification"
    _run(client, thread, {"command": {"resume": {asked["id"]: {"decisions": [{"type": "respond", "message": "yes"}],
                                                                  "approver": "customer"}}}})
    after = shop._order_row(1002)["status"]
    assert after == before, f"order 1002 went from {before} to {after} for a frustrated customer"
