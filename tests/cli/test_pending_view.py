"""`agent-kit pending` shows each item's real question, who must act, and how it is resumed."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, verified


def test_a_verification_shows_the_customers_question_and_who_answers(cli: CLI) -> None:
    cli("chat", "--thread", "t2", "--message", "Refund $20 on order 1001")
    r = cli("pending")
    assert "None" not in r.stdout
    assert "asks:    Please verify your identity first" in r.stdout
    assert "acts:    the customer (customer), who answers in the chat" in r.stdout
    assert "chat --thread t2 --message TEXT" in r.stdout
    (item,) = cli("pending", "--json").json()
    assert item["question"].startswith("Please verify your identity")


def test_an_approval_shows_the_role_that_acts_and_who_may_not(cli: CLI) -> None:
    verified(cli, "t1")
    cli("chat", "--thread", "t1", "--message", "Refund $80 on order 1001")
    r = cli("pending")
    assert "acts:    a support_lead (0/1 approvals; not customer)" in r.stdout
    assert "asks:    " in r.stdout and "refund_over_50" in r.stdout


def test_an_escalation_shows_who_resolves_it(cli: CLI) -> None:
    verified(cli, "t1")
    cli("chat", "--thread", "t1", "--message", "I want a human")
    r = cli("pending")
    assert "acts:    a supervisor or support_lead, who resolves the case" in r.stdout
    assert "resolve t1 --interrupt " in r.stdout


def _pause_as_served(home: Path, thread: str) -> str:
    """Pause a refund the way LangGraph Server runs the graph: its own checkpointer, its ids in the config."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from agent_kit.graph import with_checkpointer
    from agent_kit.store import Store
    from tests.fixture_app import build_graph

    with Store.open(home=home) as store:
        graph = with_checkpointer(build_graph(home=home, store=store), InMemorySaver())
        cfg = {"configurable": {"thread_id": thread, "graph_id": "fixture_app", "assistant_id": "a-1"}}
        graph.invoke({"messages": [HumanMessage("Hi, I'm Jane Doe, zip 94107")]}, cfg)
        out = graph.invoke({"messages": [HumanMessage("Refund $80 on order 1001")]}, cfg)
        return str(out["__interrupt__"][0].id)


def test_a_run_served_by_langgraph_server_says_how_it_is_resumed_there(cli: CLI, home: Path) -> None:
    iid = _pause_as_served(home, "srv-1")
    r = cli("pending")
    assert "served by LangGraph Server (graph fixture_app)" in r.stdout
    assert "/threads/srv-1/runs" in r.stdout and iid in r.stdout
    assert "agent-kit --home" not in r.stdout.split("srv-1", 1)[1]  # no agent-kit command that would fail
    (item,) = cli("pending", "--json").json()
    assert item["served_by"] == {"graph_id": "fixture_app", "assistant_id": "a-1"}
    refused = cli("approve", "srv-1", "--interrupt", iid, "--as", "lee")
    assert refused.code == 1 and "run by LangGraph Server" in refused.one_error_line()
