"""The reference customer-service agent, every mode observed in shop.sqlite, on both backends."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

JANE = "Hi, I am Jane Doe, 94107"


def test_unverified_customer_is_asked_to_verify_before_a_refund(app):
    r = app.say("t", "Refund $20 on order 1001")
    assert r.status == "paused" and r.pending[0]["kind"] == "verification"
    assert "verify your identity" in r.reply
    assert app.shop.refunds(1001) == []
    r = app.say("t", "jane@example.com")  # an email alone is not proof
    assert r.status == "replied" and app.shop.refunds(1001) == []
    r = app.say("t", "Refund $20 on order 1001")
    r = app.say("t", "jane@example.com, zip 94107")
    assert r.status == "replied" and len(app.shop.refunds(1001)) == 1


def test_jane_cannot_see_omars_order(app):
    r = app.say("t", JANE, "Where is order 2001?")
    assert "does not belong" in r.reply
    assert [e.kind for e in app.store.audit.entries("t")][-1] == "denied"


def test_order_read_hides_card_email_and_address(app):
    app.say("t", JANE, "Where is my order 1001?")
    msg = app.runtime.state("t").values["messages"][-2]
    assert "4242424242424242" not in msg.content and "jane@example.com" not in msg.content
    assert '"last4": "4242"' in msg.content
    read = [e for e in app.store.audit.entries("t", kind="read")][-1]
    assert {"card_number", "customer_email", "shipping_address"} <= set(read.data["hidden_fields"])


def test_small_refund_runs_without_a_person(app):
    app.say("t", JANE, "Refund $20 on order 1001")
    assert [r["amount"] for r in app.shop.refunds(1001)] == [20.0]


def test_80_dollar_refund_pauses_for_support_lead_and_writes_one_row(app):
    r = app.say("t", JANE, "Refund $80 on order 1001")
    assert r.status == "paused" and r.pending[0]["required_role"] == "support_lead"
    assert app.shop.refunds(1001) == []
    r = app.runtime.approve(app.runtime.pending("t", kind="approval")[0], approver="lee")
    assert r.status == "replied"
    assert [x["amount"] for x in app.shop.refunds(1001)] == [80.0]
    kinds = [e.kind for e in app.store.audit.entries("t")]
    assert kinds.count("approved") == 1 and kinds.count("executed") == 1


def test_2400_dollar_refund_escalates(app):
    r = app.say("t", JANE, "Refund $2,400 on order 1003")
    assert r.status == "escalated" and app.shop.refunds(1003) == []
    assert "2400" in r.pending[0]["summary"]
    r = app.runtime.resolve(app.runtime.pending("t", kind="escalation")[0], approver="morgan", note="We will call you about this refund.")
    assert r.status == "closed" and r.reply == "We will call you about this refund."


def test_cancel_needs_the_customers_yes(app):
    r = app.say("t", JANE, "Cancel order 1002")
    assert r.status == "paused" and "Reply yes or no" in r.reply
    r = app.say("t", "no")
    assert app.shop.order(1002)["status"] == "pending"
    r = app.say("t", "Cancel order 1002")
    r = app.say("t", "yes")
    assert app.shop.order(1002)["status"] == "cancelled"


def test_recommendation_draft_ticket_and_preferences(app):
    app.say("t", JANE, "What do you recommend for order 1001? It arrived damaged.")
    assert app.shop.recommendations() == []  # recommend_only: the tool never ran
    app.say("t", "Draft a reply about the late delivery")
    assert len(app.shop.drafts()) == 1 and app.shop.drafts()[0]["status"] == "draft"
    app.say("t", "Open a ticket about the damaged box")
    assert len(app.shop.tickets()) == 1
    app.say("t", "stop emails")
    assert app.shop.preferences("cus_jane")["email_opt_in"] in (False, 0)
    kinds = {e.kind for e in app.store.audit.entries("t")}
    assert {"recommended", "drafted", "executed"} <= kinds


def test_frustrated_customer_escalates(app):
    r = app.say("t", JANE, "This is ridiculous!!! Refund $20 on order 1001")
    assert r.status == "escalated" and app.shop.refunds(1001) == []


def test_resume_in_a_new_process_executes_exactly_once(sqlite_app):
    app = sqlite_app
    app.say("t", JANE, "Refund $80 on order 1001")
    app.store.close()
    code = textwrap.dedent(f"""
        from tests.reference_app import make_app
        from pathlib import Path
        a = make_app(Path({str(app.home)!r}))
        print(a.runtime.approve(a.runtime.pending("t", kind="approval")[0], approver="lee").status)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "AGENT_KIT_HOME": str(app.home)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("replied")
    assert [x["amount"] for x in app.shop.refunds(1001)] == [80.0]


def test_readme_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "AGENT_KIT_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "paused support_lead" in out.stdout and "True" in out.stdout


@pytest.mark.asyncio
async def test_permission_flow_under_ainvoke_with_async_checkpointer(tmp_path, monkeypatch):
    from langchain_core.messages import HumanMessage
    from langgraph.types import Command

    from agent_kit.store import Store
    from graphs.customer_service import build_graph
    from tools.shop import Shop

    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    store = Store.open(home=tmp_path)
    layer = build_graph(home=tmp_path, store=store).agent_kit
    async with store.acheckpointer() as saver:
        g = layer.compile(checkpointer=saver)
        cfg = {"configurable": {"thread_id": "a"}}
        await g.ainvoke({"messages": [HumanMessage(JANE)]}, cfg)
        out = await g.ainvoke({"messages": [HumanMessage("Refund $80 on order 1001")]}, cfg)
        (intr,) = out["__interrupt__"]
        assert intr.value["kind"] == "approval"
        payload = {"decisions": [{"type": "approve"}], "approver": "lee", "action_hash": intr.value["action_hash"]}
        await g.ainvoke(Command(resume={intr.id: payload}), cfg)
    assert [x["amount"] for x in Shop.at_home(tmp_path).refunds(1001)] == [80.0]
    store.close()


def test_readme_command_line_example_runs(tmp_path):
    import os
    from pathlib import Path

    text = (ROOT / "README.md").read_text()
    script = re.search(r"```bash\nagent-kit chat(.*?)```", text, re.S).group(0).strip("`").removeprefix("bash\n")
    env = {**os.environ, "AGENT_KIT_HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    assert "refunded $80.00" in out.stdout and "audit chain intact" in out.stdout
