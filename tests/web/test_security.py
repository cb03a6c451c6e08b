"""Attacks on the web inbox, over HTTP, on SQLite and on Postgres: no decision without a session,
without the form's CSRF token, with a forged or ended session, on a stale item, or as anyone but
the signed-in person; sign-in is rate-limited and names must be exactly the policy's."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from starlette.testclient import TestClient

from agent_kit.web._state import HERE as WEB_HERE
from tests.conftest import App
from tests.web.conftest import PASSWORDS, SECRET, csrf_of, login, make_web

JANE = "Hi, I'm Jane Doe, zip 94107"
WEB_STATIC = WEB_HERE / "static"


def client_for(app: App, **settings: Any) -> TestClient:
    return TestClient(make_web(app, **settings), follow_redirects=False)


def paused_refund(app: App, thread: str = "t1", text: str = "Refund $80 on order 1001") -> dict[str, Any]:
    result = app.say(thread, JANE, text)
    assert result.status == "paused"
    return dict(result.pending[0])


def decide_form(item: dict[str, Any], csrf: str, decision: str = "approve", **extra: str) -> dict[str, str]:
    return {"csrf": csrf, "thread": item["thread_id"], "action_hash": item["action_hash"], "decision": decision,
            **extra}


def signed_in(app: App, name: str = "lee", **settings: Any) -> tuple[TestClient, str]:
    client = client_for(app, **settings)
    resp = login(client, name)
    assert resp.status_code == 303, resp.text
    return client, csrf_of(client.get("/").text)


def nothing_happened(app: App, item: dict[str, Any]) -> None:
    assert app.shop.refunds(1001) == []
    assert app.store.inbox.get(item["interrupt_id"]) is not None
    assert not [e for e in app.store.audit.entries(item["thread_id"]) if e.kind in ("approved", "rejected", "executed")]


# -- no session ----------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["approve", "reject", "edit_confirm", "rollback"])
def test_no_decision_without_a_session(app: App, action: str) -> None:
    item = paused_refund(app)
    client = client_for(app)
    iid = item["interrupt_id"]
    url, form = {
        "approve": (f"/items/{iid}/decide", decide_form(item, "x")),
        "reject": (f"/items/{iid}/decide", decide_form(item, "x", "reject", text="no")),
        "edit_confirm": (f"/items/{iid}/edit/confirm", {**decide_form(item, "x"), "tool": "issue_refund",
                                                         "args": json.dumps({"order_id": 1001, "amount": 40, "reason": "r"})}),
        "rollback": ("/audit/1/rollback", {"csrf": "x"}),
    }[action]
    resp = client.post(url, data=form)
    assert resp.status_code == 401 and "not signed in" in resp.text
    nothing_happened(app, item)


@pytest.mark.parametrize("path", ["/", "/dashboard", "/audit", "/threads/t1", "/items/abc?thread=t1", "/inbox/rows"])
def test_every_page_needs_a_session(app: App, path: str) -> None:
    app.say("t1", JANE)
    resp = client_for(app).get(path)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")


def test_live_updates_need_a_session(app: App) -> None:
    assert client_for(app).get("/events").status_code == 401


# -- CSRF ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["missing", "empty", "wrong", "another_sessions", "the_sign_in_forms"])
def test_a_decision_without_this_sessions_csrf_token_is_refused(app: App, token: str) -> None:
    item = paused_refund(app)
    client, csrf = signed_in(app, "lee")
    other, other_csrf = signed_in(app, "sam")
    fresh = client_for(app)
    login_csrf = csrf_of(fresh.get("/login").text)
    form = decide_form(item, csrf)
    if token == "missing":
        del form["csrf"]
    else:
        form["csrf"] = {"empty": "", "wrong": csrf[:-2] + "xx", "another_sessions": other_csrf,
                        "the_sign_in_forms": login_csrf}[token]
    resp = client.post(f"/items/{item['interrupt_id']}/decide", data=form)
    assert resp.status_code == 403 and "security token" in resp.text
    nothing_happened(app, item)


def test_sign_in_itself_needs_the_forms_csrf_token(app: App) -> None:
    client = client_for(app)
    client.get("/login")
    resp = client.post("/login", data={"name": "lee", "password": PASSWORDS["lee"], "csrf": "forged"})
    assert resp.status_code == 403 and "sid" not in _session(client)


# -- forged and ended sessions -------------------------------------------------------------------
def _cookie(payload: dict[str, Any], key: str) -> str:
    return TimestampSigner(key).sign(base64.b64encode(json.dumps(payload).encode())).decode()


def _session(client: TestClient) -> dict[str, Any]:
    raw = client.cookies.get("agent_kit_session")
    if not raw:
        return {}
    return dict(json.loads(base64.b64decode(TimestampSigner(SECRET).unsign(raw.encode(), max_age=None))))


@pytest.mark.parametrize("forgery", [
    "claims_morgan_signed_with_another_key", "copies_lees_session_signed_with_another_key", "unsigned",
    "signature_altered", "made_up_session_id_with_the_real_key", "lees_cookie_after_sign_out",
])
def test_a_forged_or_ended_session_cookie_is_refused(app: App, forgery: str) -> None:
    item = paused_refund(app)
    lee, csrf = signed_in(app, "lee")
    sid = _session(lee)["sid"]
    real = lee.cookies["agent_kit_session"]
    cookie = {
        "claims_morgan_signed_with_another_key": _cookie({"sid": sid, "name": "morgan", "user": "morgan"}, "k" * 40),
        "copies_lees_session_signed_with_another_key": _cookie({"sid": sid}, "k" * 40),
        "unsigned": base64.b64encode(json.dumps({"sid": sid}).encode()).decode(),
        "signature_altered": real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB"),
        "made_up_session_id_with_the_real_key": _cookie({"sid": "morgan"}, SECRET),
        "lees_cookie_after_sign_out": real,
    }[forgery]
    if forgery == "lees_cookie_after_sign_out":
        assert lee.post("/logout", data={"csrf": csrf}).status_code == 303
    attacker = client_for(app)
    attacker.cookies.set("agent_kit_session", cookie)
    assert attacker.get("/").status_code == 303  # sent to sign in
    resp = attacker.post(f"/items/{item['interrupt_id']}/decide", data=decide_form(item, csrf))
    assert resp.status_code == 401
    nothing_happened(app, item)


# -- stale items ---------------------------------------------------------------------------------
class _Later(datetime):
    """``datetime`` two days from now: the approval request has expired."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(days=2)


@pytest.mark.parametrize("stale", ["decided_elsewhere", "action_changed", "expired", "other_thread", "rejected_elsewhere",
                                   "same_form_sent_twice"])
def test_a_decision_on_a_stale_item_is_refused_with_the_reason_and_nothing_executes(
        app: App, stale: str, monkeypatch: pytest.MonkeyPatch) -> None:
    item = paused_refund(app)
    client, csrf = signed_in(app, "lee")
    form = decide_form(item, csrf)
    if stale == "decided_elsewhere":
        app.runtime.approve(app.runtime.pending("t1", kind="approval")[0], approver="sam")  # through the CLI's path, while lee's page was open
    elif stale == "same_form_sent_twice":  # a double click, or a replayed request
        assert client.post(f"/items/{item['interrupt_id']}/decide", data=form).status_code == 303
    elif stale == "rejected_elsewhere":
        app.runtime.reject(app.runtime.pending("t1", kind="approval")[0], approver="sam", reason="duplicate")
    elif stale == "action_changed":
        form["action_hash"] = "0" * 64
    elif stale == "expired":
        monkeypatch.setattr("agent_kit.runtime.datetime", _Later)
        monkeypatch.setattr("agent_kit.web._pages._now", lambda: _Later.now(UTC))
    else:
        paused_refund(app, "t2", "Refund $90 on order 1002")
        form["thread"] = "t2"
    before = [(r["amount"], r["status"]) for r in app.shop.refunds()]
    resp = client.post(f"/items/{item['interrupt_id']}/decide", data=form)
    assert resp.status_code == 409, resp.text
    text = re.sub(r"\s+", " ", resp.text)
    assert "Refused, nothing was decided" in text
    reason = {"decided_elsewhere": "not pending", "rejected_elsewhere": "not pending", "action_changed": "changed",
              "expired": "expired", "other_thread": "not pending", "same_form_sent_twice": "not pending"}[stale]
    assert reason in text
    assert [(r["amount"], r["status"]) for r in app.shop.refunds()] == before
    approvals = [e for e in app.store.audit.entries() if e.kind == "approved" and e.actor == "lee"]
    assert len(approvals) == (1 if stale == "same_form_sent_twice" else 0)
    if stale in ("decided_elsewhere", "rejected_elsewhere", "same_form_sent_twice"):
        assert 'data-testid="stale"' in text and "The run is now" in text  # the current state is shown
    else:
        assert app.store.inbox.get(item["interrupt_id"]) is not None  # still pending, still decidable


def test_the_decider_is_the_signed_in_person_whatever_the_form_says(app: App) -> None:
    item = paused_refund(app)
    client, csrf = signed_in(app, "lee")
    resp = client.post(f"/items/{item['interrupt_id']}/decide",
                       data=decide_form(item, csrf, approver="morgan", **{"as": "morgan", "name": "morgan"}))
    assert resp.status_code == 303
    assert [e.actor for e in app.store.audit.entries("t1") if e.kind == "approved"] == ["lee"]
    assert [r["amount"] for r in app.shop.refunds(1001)] == [80.0]


def test_an_edit_is_validated_by_the_tools_schema_before_anything_is_decided(app: App) -> None:
    item = paused_refund(app)
    client, csrf = signed_in(app, "lee")
    base = {"csrf": csrf, "thread": "t1", "action_hash": item["action_hash"]}
    for bad in ({"arg:order_id": "1001", "arg:amount": "abc", "arg:reason": "x"},
                {"arg:order_id": "1001", "arg:amount": "", "arg:reason": "x"},
                {"arg:order_id": "1001", "arg:amount": "nan", "arg:reason": "x"},
                {"arg:order_id": "1001", "arg:amount": "1e400", "arg:reason": "x"}):
        resp = client.post(f"/items/{item['interrupt_id']}/edit", data={**base, **bad})
        assert resp.status_code == 400 and 'data-testid="edit-error"' in resp.text
    # An edit to another tool cannot be smuggled through the confirmation form either.
    resp = client.post(f"/items/{item['interrupt_id']}/edit/confirm", data={
        **base, "tool": "reverse_refund", "args": json.dumps({"refund_id": 1})})
    assert resp.status_code == 403 and "edits arguments only" in resp.text
    nothing_happened(app, item)


@pytest.mark.parametrize("text,stored", [("nul \x00 byte", True), ("rtl \u202e mark", True), ("emoji 🙂", True),
                                         ("x" * 200_000, True)], ids=["nul", "rtl", "emoji", "200k"])
def test_hostile_text_in_a_rejection_is_stored_or_refused_and_the_thread_stays_usable(
        app: App, text: str, stored: bool) -> None:
    item = paused_refund(app)
    client, csrf = signed_in(app, "lee")
    resp = client.post(f"/items/{item['interrupt_id']}/decide", data=decide_form(item, csrf, "reject", text=text))
    if stored:
        assert resp.status_code == 303
        [rejected] = [e for e in app.store.audit.entries("t1") if e.kind == "rejected"]
        assert rejected.data["message"] == text
    else:  # refused up front on both backends (Postgres cannot store it), the item still pending
        assert resp.status_code == 400 and "NUL" in resp.text
        assert app.store.inbox.get(item["interrupt_id"]) is not None
        resp = client.post(f"/items/{item['interrupt_id']}/decide", data=decide_form(item, csrf, "reject", text="ok"))
        assert resp.status_code == 303
    assert client.get("/threads/t1").status_code == 200
    assert app.shop.refunds(1001) == [] and app.store.audit.verify().ok


# -- sign-in -------------------------------------------------------------------------------------
def test_sign_in_is_rate_limited_per_name_and_address(app: App) -> None:
    from agent_kit.web._security import LoginThrottle

    clock = [1000.0]
    client = client_for(app, throttle=LoginThrottle(max_failures=5, window_s=900, clock=lambda: clock[0]))
    for _ in range(5):
        assert login(client, "lee", "wrong-password-1").status_code == 401
    locked = login(client, "lee")  # the right password, too late
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "sid" not in _session(client)
    clock[0] += 901
    assert login(client, "lee").status_code == 303


def test_a_password_spray_from_one_address_is_rate_limited(app: App) -> None:
    from agent_kit.web._security import LoginThrottle

    client = client_for(app, throttle=LoginThrottle(max_failures=5, window_s=900, clock=lambda: 0.0))
    for name in ("lee", "sam", "morgan", "ann", "bob"):
        assert login(client, name, "guess-guess-guess").status_code == 401
    assert login(client, "morgan").status_code == 429


@pytest.mark.parametrize("name", ["Lee", "LEE", "ｌｅｅ", "lee\u200b", "\u217cee", "le\u0435"],
                         ids=["capital", "upper", "fullwidth", "zero_width", "roman_numeral_l", "cyrillic_e"])
def test_sign_in_names_must_be_exactly_the_policys(app: App, name: str) -> None:
    client = client_for(app)
    resp = login(client, name, PASSWORDS["lee"])
    assert resp.status_code == 401 and "sid" not in _session(client)


def test_sign_in_with_a_token_and_a_revoked_token(app: App) -> None:
    from agent_kit.credentials import Credentials

    creds = Credentials(app.store)
    token = creds.issue_token("lee")
    client = client_for(app, credentials=creds)
    page = client.get("/login")
    resp = client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert resp.status_code == 303
    assert 'data-testid="me">lee' in client.get("/").text
    creds.revoke_tokens("lee")
    again = client_for(app, credentials=creds)
    page = again.get("/login")
    assert again.post("/login", data={"csrf": csrf_of(page.text), "token": token}).status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(app: App, target: str) -> None:
    client = client_for(app)
    page = client.get("/login")
    resp = client.post("/login", data={"csrf": csrf_of(page.text), "name": "lee", "password": PASSWORDS["lee"],
                                       "next": target})
    assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_what_customers_write_is_shown_escaped(app: App) -> None:
    app.say("t1", JANE, "<script>alert(1)</script><img src=x onerror=alert(2)> refund $80 on order 1001")
    client, _ = signed_in(app, "lee")
    for path in ("/threads/t1", "/"):
        html = client.get(path).text
        assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/threads/t1").text


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_session_cookie_flags_and_security_headers(app: App, secure: bool) -> None:
    client = client_for(app, secure_cookies=secure)
    page = client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and ("secure" in cookie) == secure
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_pages_are_never_stored_and_static_files_are_kept_under_their_content_versioned_url(app: App) -> None:
    client, _ = signed_in(app)
    inbox = client.get("/")
    assert inbox.headers["cache-control"] == "no-store"
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', inbox.text)
    assert {u.split("?")[0] for u in urls} == {"/static/app.css", "/static/app.js", "/static/htmx-2.0.10.min.js"}
    for url in urls:
        name, version = url.removeprefix("/static/").split("?v=")
        assert version == hashlib.sha256((WEB_STATIC / name).read_bytes()).hexdigest()[:12]
        kept = client.get(url)
        assert kept.status_code == 200 and kept.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert kept.headers["x-content-type-options"] == "nosniff"
        for stale in (f"/static/{name}", f"/static/{name}?v=000000000000"):  # an old page's URL: asked again
            assert client.get(stale).headers["cache-control"] == "no-cache"
    assert client.get("/static/nothing.css").status_code == 404
    assert client.get("/static/nothing.css").headers["cache-control"] == "no-store"


def test_a_second_rollback_is_refused_and_the_compensation_runs_once(app: App) -> None:
    app.say("t1", JANE, "Refund $30 on order 1001")
    [entry] = [e for e in app.store.audit.entries("t1") if e.kind == "executed"]
    lee, lee_csrf = signed_in(app, "lee")
    sam, sam_csrf = signed_in(app, "sam")
    assert "Roll back entry" in lee.get(f"/audit/{entry.seq}/rollback").text  # the confirmation step
    assert app.shop.refunds(1001)[0]["status"] == "issued"
    assert lee.post(f"/audit/{entry.seq}/rollback", data={"csrf": lee_csrf}).status_code == 303
    again = sam.post(f"/audit/{entry.seq}/rollback", data={"csrf": sam_csrf})
    assert again.status_code == 409 and "already rolled back" in again.text
    assert [r["status"] for r in app.shop.refunds(1001)] == ["reversed"]
    assert [e.actor for e in app.store.audit.entries("t1") if e.kind == "rolled_back"] == ["lee"]
