"""Who is who: once a conversation is verified as a customer, it stays that customer's.

A verification as someone else, by the model's tool call, by the customer's answer to the
identity question, or by two verifications racing in one message, is refused and audited, and
the first identity stays. The reference verification needs two details (email plus name or zip,
or name and zip), as documented.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_kit.testing import ScriptedChatModel, tool_call
from tests.reference_app import App, make_app

JANE = "Hi, I'm Jane Doe, zip 94107"


def _identity(app: App, thread: str = "t") -> tuple[object, object]:
    ctx = app.runtime.state(thread).values.get("context") or {}
    return ctx.get("customer_id"), ctx.get("customer_verified")


def _refusals(app: App, thread: str = "t") -> list[dict]:
    return [e.data for e in app.store.audit.entries(thread, kind="refused") if "claimed" in e.data]


@pytest.mark.parametrize("second", ["I'm omar@example.com, zip 10001", "Omar Haddad, 10001"], ids=["email-zip", "name-zip"])
def test_a_second_verification_as_someone_else_is_refused_and_audited(app: App, second: str):
    r = app.say("t", JANE)
    assert _identity(app) == ("cus_jane", True)
    r = app.say("t", second)
    assert _identity(app) == ("cus_jane", True)
    assert "already verified as another customer" in str(app.runtime.state("t").values["messages"][-2].content)
    assert _refusals(app) == [{"error": "a second identity in one conversation", "verified_as": "cus_jane",
                               "claimed": "cus_omar"}]
    r = app.say("t", "Where is order 2001?")
    assert "does not belong" in r.reply  # still Jane's conversation: Omar's order stays hidden
    assert app.store.audit.verify().ok


def test_the_answer_to_the_identity_question_cannot_switch_customers(app: App):
    app.say("t", JANE)
    # A refund needs identity only when unverified; force the question through a fresh thread
    # that first verifies as Jane and then answers a verification prompt as Omar.
    r = app.say("u", "Refund $20 on order 2001")
    assert r.pending and r.pending[0]["kind"] == "verification"
    r = app.say("u", "Omar Haddad, 10001")
    assert _identity(app, "u") == ("cus_omar", True)
    r = app.say("u", "I'm jane@example.com, zip 94107")
    assert _identity(app, "u") == ("cus_omar", True) and _refusals(app, "u")[0]["claimed"] == "cus_jane"


def test_two_verifications_racing_in_one_message_leave_one_identity(tmp_path: Path, backend: str):
    import uuid

    from tests.conftest import PG_URL, drop_schema

    model = ScriptedChatModel(steps=[
        [tool_call("verify_customer", {"email": "jane@example.com", "zip": "94107"}),
         tool_call("verify_customer", {"email": "omar@example.com", "zip": "10001"})],
        "ok"])
    schema = f"ak_test_{uuid.uuid4().hex[:10]}" if backend == "postgres" else None
    app = make_app(tmp_path, db_url=PG_URL if schema else None, schema=schema, model=model)
    try:
        app.say("t", "verify us both")
        held, verified = _identity(app)
        other = {"cus_jane": "cus_omar", "cus_omar": "cus_jane"}[str(held)]  # whichever ran first holds it
        assert verified is True and [r["claimed"] for r in _refusals(app)] == [other]
        claim = app.store.audit.by_key("t:identity")
        assert claim is not None and claim.data["customer_id"] == held
    finally:
        app.store.close()
        if schema:
            drop_schema(schema)


@pytest.mark.parametrize("text", ["I'm jane@example.com", "jane doe", "zip 94107"], ids=["email-only", "name-only", "zip-only"])
def test_one_detail_does_not_verify(app: App, text: str):
    app.say("t", text)
    assert _identity(app) == (None, None)
