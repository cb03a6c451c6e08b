"""The template's auth handler, called as LangGraph Server calls it, over a store on each backend.

Who is who: an approver token is checked against the hashed store *and* the policy as it is now;
a customer session is a self-issued capability; anything else is refused with what to send.
The served behaviour (each endpoint) is in tests/app/test_served_auth.py.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph_sdk import Auth

from agent_kit.credentials import Credentials
from agent_kit.errors import AgentKitError
from agent_kit.server_auth import build_auth

POLICY = Path(__file__).resolve().parents[1] / "fixture_app" / "policy.yaml"


def _copy_of_the_policy(tmp_path: Path) -> Path:
    policy = tmp_path / "policy" / "policy.yaml"
    policy.parent.mkdir()
    shutil.copy(POLICY, policy)
    return policy


def _auth(tmp_path: Path, store: Any, **kw: Any) -> tuple[Any, Path]:
    policy = _copy_of_the_policy(tmp_path)
    return build_auth(policy, store=lambda: store, **kw), policy


def _sign_in(auth: Any, authorization: str | None = None, headers: dict[bytes, bytes] | None = None) -> Any:
    return asyncio.run(auth._authenticate_handler(authorization=authorization, headers=headers or {}))


def _refused(auth: Any, *args: Any, **kw: Any) -> Any:
    with pytest.raises(Auth.exceptions.HTTPException) as info:
        _sign_in(auth, *args, **kw)
    return info.value


def test_an_approver_token_signs_in_as_the_approver_with_their_roles(tmp_path: Path, store: Any) -> None:
    auth, _ = _auth(tmp_path, store)
    creds = Credentials(store)
    lee, morgan = creds.issue_token("lee"), creds.issue_token("morgan")
    assert _sign_in(auth, f"Bearer {lee}") == {"identity": "lee", "display_name": "lee",
                                               "permissions": ["approver", "support_lead"]}
    assert _sign_in(auth, None, {b"x-api-key": morgan.encode()})["permissions"][0] == "operator"
    assert _sign_in(auth, f"bearer  {lee} ")["identity"] == "lee"


@pytest.mark.parametrize("credential", [
    None, "", "Bearer", "Bearer akt_never-issued", "Basic bGVlOnB3", "Token akt_x", "Bearer cst_short",
    "Bearer cst_" + "a" * 31, "Bearer cst_" + "a" * 201, "Bearer cst_" + "a" * 40 + "!", "Bearer " + "akt_" * 100,
    "Bearer lee",
], ids=["none", "empty", "scheme-only", "forged-approver", "basic", "other-scheme", "short", "31-chars",
        "too-long", "bad-char", "huge", "a-name"])
def test_anything_but_a_valid_token_is_refused_with_what_to_send(tmp_path: Path, store: Any,
                                                                 credential: str | None) -> None:
    auth, _ = _auth(tmp_path, store)
    exc = _refused(auth, credential)
    assert exc.status_code == 401 and "agent-kit approvers token" in str(exc.detail)


def test_a_revoked_or_expired_token_or_an_approver_gone_from_the_policy_is_refused(tmp_path: Path, store: Any) -> None:
    from datetime import timedelta

    auth, policy = _auth(tmp_path, store)
    creds = Credentials(store)
    sam, lee = creds.issue_token("sam"), creds.issue_token("lee")
    short = creds.issue_token("lee", expires_in=timedelta(microseconds=1))
    assert _sign_in(auth, f"Bearer {sam}")["identity"] == "sam"
    creds.revoke_tokens("sam")
    assert "revoked" in str(_refused(auth, f"Bearer {sam}").detail)
    assert "revoked" in str(_refused(auth, f"Bearer {short}").detail)
    text = policy.read_text()
    assert "  lee: [support_lead]\n" in text
    policy.write_text(text.replace("  lee: [support_lead]\n", ""))  # the policy no longer lists lee
    exc = _refused(auth, f"Bearer {lee}")
    assert exc.status_code == 401 and "no approver in the policy now" in str(exc.detail)


def test_a_customer_session_is_a_stable_hashed_identity_of_its_own(tmp_path: Path, store: Any) -> None:
    auth, _ = _auth(tmp_path, store)
    token = "cst_" + "A1_-" * 10
    first = _sign_in(auth, f"Bearer {token}")
    assert first == _sign_in(auth, None, {b"x-api-key": token.encode()})
    assert first["identity"].startswith("customer:") and token[4:] not in first["identity"]
    assert first["permissions"] == ["customer"]
    assert _sign_in(auth, "Bearer cst_" + "B" * 40)["identity"] != first["identity"]


def test_a_deployment_login_can_name_its_customers(tmp_path: Path, store: Any) -> None:
    auth, _ = _auth(tmp_path, store, customer_identity=lambda t: "cus_jane" if t == "jane-session" else None)
    assert _sign_in(auth, "Bearer jane-session")["identity"] == "customer:cus_jane"
    assert _refused(auth, "Bearer cst_" + "a" * 40).status_code == 401


@pytest.mark.parametrize(("change", "roles", "named"), [
    (None, ("operator",), "no approver in the policy holds"),
    (None, ("Supervisor",), "no approver in the policy holds"),
    (("  lee: [support_lead]", "  'customer:lee': [support_lead]"), ("supervisor",), "reserved for customers"),
    (("  lee: [support_lead]", "  customer: [support_lead]"), ("supervisor",), "reserved for customers"),
], ids=["operator-role-nobody-holds", "role-in-another-case", "customer-prefixed-approver", "approver-named-customer"])
def test_a_configuration_that_would_fail_open_or_lock_everyone_out_is_refused(
        tmp_path: Path, store: Any, change: tuple[str, str] | None, roles: tuple[str, ...], named: str) -> None:
    policy = _copy_of_the_policy(tmp_path)
    if change is not None:
        text = policy.read_text()
        assert change[0] in text
        policy.write_text(text.replace(*change))
    with pytest.raises(AgentKitError, match=named):
        build_auth(policy, store=lambda: store, operator_roles=roles)


def _get_handler(auth: Any, ctx: Any) -> Any:
    """The handler LangGraph Server runs for an action (langgraph_api.auth.custom._get_handler's
    order: resource+action, resource, action, any; then the global handlers; none means allowed)."""
    for key in ((ctx.resource, ctx.action), (ctx.resource, "*"), ("*", ctx.action), ("*", "*")):
        if key in auth._handlers:
            return auth._handlers[key][-1]
    return auth._global_handlers[-1] if auth._global_handlers else None


def _ctx(kind: str, identity: str, resource: str, action: str) -> Any:
    return SimpleNamespace(permissions=[kind], user=SimpleNamespace(identity=identity), resource=resource,
                           action=action)


@pytest.mark.parametrize(("resource", "action"), [
    ("crons", "create"), ("crons", "search"), ("store", "put"), ("store", "get"), ("store", "search"),
    ("store", "list_namespaces"), ("store", "delete"), ("assistants", "create"), ("assistants", "update"),
    ("assistants", "delete"), ("threads", "update"), ("threads", "delete"), ("runs", "create"),
    ("made_up", "made_up"),
])
def test_an_action_the_handler_does_not_name_is_refused_to_all_but_operators(
        tmp_path: Path, store: Any, resource: str, action: str) -> None:
    auth, _ = _auth(tmp_path, store)
    for kind, identity in (("customer", "customer:abc"), ("approver", "lee"), ("", "langgraph-studio-user")):
        ctx = _ctx(kind, identity, resource, action)
        handler = _get_handler(auth, ctx)  # what LangGraph Server runs for this action
        assert handler is not None
        with pytest.raises(Auth.exceptions.HTTPException) as info:
            asyncio.run(handler(ctx=ctx, value={}))
        assert info.value.status_code == 403 and "not allowed" in str(info.value.detail)
    ctx = _ctx("operator", "morgan", resource, action)
    assert asyncio.run(_get_handler(auth, ctx)(ctx=ctx, value={})) is None


def test_a_copy_is_refused_to_customers_and_approvers_but_a_new_thread_is_not(tmp_path: Path, store: Any) -> None:
    auth, _ = _auth(tmp_path, store)
    for kind, identity in (("customer", "customer:abc"), ("approver", "lee")):
        ctx = _ctx(kind, identity, "threads", "create")
        with pytest.raises(Auth.exceptions.HTTPException) as info:  # threads.copy: the new id, nothing else
            asyncio.run(_get_handler(auth, ctx)(ctx=ctx, value={"thread_id": "t2"}))
        assert info.value.status_code == 403 and "threads.copy" in str(info.value.detail)
    ctx = _ctx("customer", "customer:abc", "threads", "create")
    value: dict[str, Any] = {"thread_id": "t3", "metadata": None, "if_exists": None}  # threads.create
    assert asyncio.run(_get_handler(auth, ctx)(ctx=ctx, value=value)) == {"owner": "customer:abc"}
    ctx = _ctx("operator", "morgan", "threads", "create")
    assert asyncio.run(_get_handler(auth, ctx)(ctx=ctx, value={"thread_id": "t4"})) is None
