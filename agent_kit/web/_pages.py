"""The pages of the web inbox: inbox, item (approve / edit / reject / resolve), thread, audit
(with rollback) and dashboard. Each handler gets the signed-in person from :func:`app.page`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agent_kit.errors import AgentKitError, ApprovalError, RollbackError, RunBusyError, StaleInterruptError
from agent_kit.web import _views as views
from agent_kit.web._dashboard import figures
from agent_kit.web._security import Session
from agent_kit.web._state import Web, flash
from agent_kit.web.charts import bars, lines, stacked_bars

__all__ = ["routes"]

FILTERS = ("kind", "role", "tool", "thread")


def _now() -> datetime:
    return datetime.now(UTC)


def thread_url(thread: str) -> str:
    return "/threads/" + quote(thread, safe="")


def item_url(thread: str, interrupt_id: str) -> str:
    return f"/items/{quote(interrupt_id, safe='')}?{urlencode({'thread': thread})}"


def _who(policy: Any, kind: str, role: str | None) -> list[str]:
    """Who may act on an item: holders of its role (of any escalation receiver's, for an escalation)."""
    if kind == "verification":
        return []
    roles = list(policy.document.escalation.receivers or ()) if kind == "escalation" else [role] if role else []
    return sorted({name for r in roles for name in policy.holders_of(r)})


# -- inbox ----------------------------------------------------------------------------------------
def _inbox(web: Web, me: Session, query: Any) -> dict[str, Any]:
    policy, now = web.policy, _now()
    items = list(reversed(web.store.inbox.list()))  # newest first
    chosen = {k: (query.get(k) or "").strip() for k in FILTERS}
    options = {
        "kind": sorted({i.kind for i in items}), "role": sorted({i.required_role for i in items if i.required_role}),
        "tool": sorted({i.action["name"] for i in items}),
    }
    shown = [i for i in items
             if (not chosen["kind"] or i.kind == chosen["kind"])
             and (not chosen["role"] or i.required_role == chosen["role"])
             and (not chosen["tool"] or i.action["name"] == chosen["tool"])
             and (not chosen["thread"] or chosen["thread"] in i.thread_id)]
    rows = []
    for i in shown:
        expires = views.parse_time(i.expires_at)
        rows.append({
            "item": i, "perm": views.list_permission(i, me.name, policy), "url": item_url(i.thread_id, i.interrupt_id),
            "age": views.rough_time(i.requested_at, now),
            "expires": views.rough_time(i.expires_at, now) if expires else None,
            "expired": bool(expires and expires <= now),
            "who": _who(policy, i.kind, i.required_role),
            "got": len(i.approvals), "need": i.approvals_needed,
        })
    return {"rows": rows, "chosen": chosen, "options": options, "total": len(items),
            "mine": sum(1 for r in rows if r["perm"].any), "query": urlencode({k: v for k, v in chosen.items() if v})}


async def inbox(request: Request, web: Web, me: Session) -> Response:
    data = await run_in_threadpool(_inbox, web, me, request.query_params)
    return web.render(request, "inbox.html", me, **data)


async def inbox_rows(request: Request, web: Web, me: Session) -> Response:
    data = await run_in_threadpool(_inbox, web, me, request.query_params)
    return web.render(request, "_rows.html", me, **data)


# -- one item -------------------------------------------------------------------------------------
def _item(web: Web, me: Session, interrupt_id: str, thread: str | None) -> dict[str, Any]:
    rt, policy, now = web.runtime, web.policy, _now()
    row = web.store.inbox.get(interrupt_id)
    thread = row.thread_id if row is not None else thread
    if not thread:
        return {"missing": True, "interrupt_id": interrupt_id}
    snap = rt.state(thread)
    live = next((i for i in snap.interrupts if i.id == interrupt_id), None)
    values = snap.values or {}
    entries = web.store.audit.entries(thread)
    data: dict[str, Any] = {
        "thread": thread, "interrupt_id": interrupt_id, "thread_url": thread_url(thread),
        "lines": views.conversation(list(values.get("messages", []))), "status": rt.result(thread).status
        if values else "unknown", "others": [], "timeline": list(reversed(entries[-40:])),
    }
    if live is None:
        decided = [e for e in entries if e.interrupt_id == interrupt_id]
        data.update(stale=True, decided=decided, others=[
            {"url": item_url(thread, i.id), "value": i.value} for i in snap.interrupts])
        return data
    value = live.value
    request_ = value["action_requests"][0]
    spec = rt.kernel.registry.get(request_["name"])
    schema = spec.model_schema.model_json_schema() if spec is not None and not isinstance(spec.model_schema, dict) \
        else (spec.model_schema if spec is not None else {})
    edited_from = next((e for e in reversed(entries) if e.kind == "edited"
                        and e.data.get("new_action_hash") == value["action_hash"]), None)
    origin = None
    if edited_from is not None:
        before = _args_before(entries, edited_from, list(values.get("messages", [])), value.get("tool_call_id"))
        changes = views.diff_args(before or {}, edited_from.data.get("new_args") or {})
        origin = {"entry": edited_from, "changes": changes}
    data.update(
        stale=False, value=value, action={"name": request_["name"], "args": request_["args"]},
        perm=views.permissions(value, me.name, policy, now), fields=views.edit_fields(schema, request_["args"]),
        can_edit="edit" in value["review_configs"][0]["allowed_decisions"] and bool(schema.get("properties")),
        expires=views.rough_time(value.get("expires_at"), now) if value.get("expires_at") else None,
        expired=_expired(value.get("expires_at"), now),
        who=_who(policy, value["kind"], value.get("required_role")),
        origin=origin, requested=views.rough_time(value.get("requested_at"), now),
        others=[{"url": item_url(thread, i.id), "value": i.value} for i in snap.interrupts if i.id != interrupt_id],
    )
    return data


def _expired(expires_at: Any, now: datetime) -> bool:
    when = views.parse_time(expires_at)
    return when is not None and when <= now


def _args_before(timeline: list[Any], edit: Any, messages: list[Any],
                 tool_call_id: str | None) -> dict[str, Any] | None:
    """The arguments an edit changed: those of an earlier edit that made that action, else the model's call."""
    earlier = next((e for e in timeline if e.kind == "edited" and e.seq < edit.seq
                    and e.data.get("new_action_hash") == edit.action_hash), None)
    if earlier is not None:
        return dict(earlier.data.get("new_args") or {})
    for m in reversed(messages):
        for call in getattr(m, "tool_calls", None) or []:
            if call.get("id") == tool_call_id:
                return dict(call.get("args") or {})
    return None


async def item(request: Request, web: Web, me: Session) -> Response:
    iid = request.path_params["interrupt_id"]
    data = await run_in_threadpool(_item, web, me, iid, request.query_params.get("thread"))
    if data.get("missing"):
        return web.render(request, "error.html", me, status_code=404, title="No such item",
                          message=f"Interrupt {iid} is not pending and no thread was named.")
    return web.render(request, "item.html", me, **data)


async def item_status(request: Request, web: Web, me: Session) -> Response:
    """A fragment for live updates on an item page: whether what the page shows is still pending."""
    iid = request.path_params["interrupt_id"]
    row = await run_in_threadpool(web.store.inbox.get, iid)
    seen_hash, seen_count = request.query_params.get("hash"), request.query_params.get("n")
    changed = row is None or row.action_hash != seen_hash or str(len(row.approvals)) != seen_count
    return web.render(request, "_status.html", me, changed=changed, row=row,
                      reload=item_url(request.query_params.get("thread") or "", iid))


def _refusal_status(exc: AgentKitError) -> int:
    if isinstance(exc, StaleInterruptError | RunBusyError):
        return 409
    if isinstance(exc, RollbackError):
        return 409 if "already rolled back" in str(exc) else 403
    if isinstance(exc, ApprovalError):
        # What the page showed is no longer what is pending (changed, or expired): a conflict.
        return 409 if "changed since you looked" in str(exc) or "expired" in str(exc) else 403
    return 400


def _decide(web: Web, call: Callable[..., Any], thread: str, interrupt_id: str, action_hash: str, **kw: Any) -> Any:
    """Call the runtime naming exactly what the page showed: the interrupt id and its action hash."""
    import inspect

    if "action_hash" in inspect.signature(call).parameters:
        return call(thread, interrupt_id=interrupt_id, action_hash=action_hash, **kw)
    live = next((i for i in web.runtime.state(thread).interrupts if i.id == interrupt_id), None)
    if live is not None and live.value.get("action_hash") != action_hash:
        raise ApprovalError(f"the decision is for action {action_hash[:12]}…, but the pending action is "
                            f"{live.value['action_hash'][:12]}…; it changed since you looked")
    return call(thread, interrupt_id=interrupt_id, **kw)


async def _refused(request: Request, web: Web, me: Session, iid: str, thread: str, exc: AgentKitError) -> Response:
    data = await run_in_threadpool(_item, web, me, iid, thread)
    return web.render(request, "item.html", me, status_code=_refusal_status(exc), refused=str(exc), **data)


def _outcome_text(verb: str, result: Any) -> str:
    reply = f" The agent replied: “{result.reply}”" if result.reply else ""
    return f"{verb}. The run is now {result.status}.{reply}"


async def decide(request: Request, web: Web, me: Session) -> Response:
    iid = request.path_params["interrupt_id"]
    form = await request.form()
    thread, action_hash = str(form.get("thread") or ""), str(form.get("action_hash") or "")
    decision = str(form.get("decision") or "")
    text = str(form.get("text") or "").strip()
    rt = web.runtime
    calls: dict[str, tuple[Callable[..., Any], dict[str, Any], str]] = {
        "approve": (rt.approve, {}, "Approved"),
        "reject": (rt.reject, {"reason": text}, "Rejected"),
        "resolve": (rt.resolve, {"note": text}, "Case resolved"),
        "return": (rt.resolve, {"note": text, "hand_back": True}, "Handed back to the agent"),
    }
    if decision not in calls or not thread or not action_hash:
        return web.render(request, "error.html", me, status_code=400, title="Incomplete form",
                          message="The form must name a decision, the thread and the action hash it showed.")
    call, extra, verb = calls[decision]
    try:
        # The decider is the signed-in person, never a field of the form.
        result = await run_in_threadpool(_decide, web, call, thread, iid, action_hash, approver=me.name, **extra)
    except AgentKitError as exc:
        return await _refused(request, web, me, iid, thread, exc)
    flash(request, _outcome_text(verb, result))
    return RedirectResponse(thread_url(thread), status_code=303)


def _edit_args(web: Web, thread: str, iid: str, form: Any) -> tuple[str, dict[str, Any]]:
    snap = web.runtime.state(thread)
    live = next((i for i in snap.interrupts if i.id == iid), None)
    if live is None:
        raise StaleInterruptError(f"interrupt {iid!r} is not pending on thread {thread!r} (already decided); "
                                  "the page shows the current state", interrupt_id=iid, thread_id=thread,
                                  pending=tuple(i.id for i in snap.interrupts))
    req = live.value["action_requests"][0]
    spec = web.runtime.kernel.registry.get(req["name"])
    if spec is None:
        raise ApprovalError(f"tool {req['name']!r} is not registered; it cannot be edited")
    fields = views.edit_fields(spec.model_schema.model_json_schema(), req["args"])
    args = views.parse_edit_form(fields, form)
    try:
        spec.validate_args(args)
    except ValueError as exc:
        raise views.FormError(str(exc)) from None
    return req["name"], args


async def edit_preview(request: Request, web: Web, me: Session) -> Response:
    """Check an edit and show it as a diff; nothing is decided until it is confirmed."""
    iid = request.path_params["interrupt_id"]
    form = await request.form()
    thread, action_hash = str(form.get("thread") or ""), str(form.get("action_hash") or "")
    try:
        tool, args = await run_in_threadpool(_edit_args, web, thread, iid, form)
    except views.FormError as exc:
        data = await run_in_threadpool(_item, web, me, iid, thread)
        return web.render(request, "item.html", me, status_code=400, edit_error=str(exc), **data)
    except AgentKitError as exc:
        return await _refused(request, web, me, iid, thread, exc)
    data = await run_in_threadpool(_item, web, me, iid, thread)
    if data.get("stale") or data["value"]["action_hash"] != action_hash:
        return await _refused(request, web, me, iid, thread, StaleInterruptError(
            "the pending action changed since you looked; the page shows the current state",
            interrupt_id=iid, thread_id=thread))
    return web.render(request, "edit_confirm.html", me, tool=tool, args_json=json.dumps(args),
                      changes=views.diff_args(data["action"]["args"], args), action_hash=action_hash, **{
                          k: data[k] for k in ("thread", "interrupt_id", "action", "value")})


async def edit_confirm(request: Request, web: Web, me: Session) -> Response:
    iid = request.path_params["interrupt_id"]
    form = await request.form()
    thread, action_hash = str(form.get("thread") or ""), str(form.get("action_hash") or "")
    try:
        args = json.loads(str(form.get("args") or ""))
        tool = str(form.get("tool") or "")
        if not isinstance(args, dict) or not tool:
            raise ValueError(args)
    except ValueError:
        return web.render(request, "error.html", me, status_code=400, title="Incomplete form",
                          message="The edit form lost its arguments; open the item and edit again.")
    live = await run_in_threadpool(lambda: next(
        (i for i in web.runtime.state(thread).interrupts if i.id == iid), None) if thread else None)
    if live is not None and live.value["action_requests"][0]["name"] != tool:
        # The page edits the arguments of the action it showed; another tool is not that action.
        return await _refused(request, web, me, iid, thread, ApprovalError(
            f"the edit names tool {tool!r}, but the action shown is {live.value['action_requests'][0]['name']!r}; "
            "the web inbox edits arguments only"))
    try:
        result = await run_in_threadpool(_decide, web, web.runtime.approve, thread, iid, action_hash,
                                         approver=me.name, edit={"name": tool, "args": args})
    except AgentKitError as exc:
        return await _refused(request, web, me, iid, thread, exc)
    flash(request, _outcome_text("Edited: the new action was decided again by policy", result))
    return RedirectResponse(thread_url(thread), status_code=303)


# -- thread, audit, rollback ---------------------------------------------------------------------
def _thread(web: Web, me: Session, thread: str) -> dict[str, Any]:
    rt = web.runtime
    snap = rt.state(thread)
    values = snap.values or {}
    entries = web.store.audit.entries(thread)
    return {"thread": thread, "exists": bool(values), "lines": views.conversation(list(values.get("messages", []))),
            "status": rt.result(thread).status if values else "unknown",
            "pending": [{"url": item_url(thread, i.id), "value": i.value} for i in snap.interrupts],
            "entries": list(reversed(entries)), "rollbackable": _rollbackable(web, me, entries),
            "report": web.store.audit.verify()}


async def thread_page(request: Request, web: Web, me: Session) -> Response:
    thread = request.path_params["thread"]
    data = await run_in_threadpool(_thread, web, me, thread)
    return web.render(request, "thread.html", me, status_code=200 if data["exists"] else 404, **data)


def _rollbackable(web: Web, me: Session, entries: list[Any]) -> dict[int, str | None]:
    """Executed entries -> None if ``me`` may roll it back now, else why not (shown as the button's note)."""
    kernel, out = web.runtime.kernel, dict[int, str | None]()
    for e in entries:
        if e.kind != "executed":
            continue
        spec = kernel.registry.get(e.tool or "")
        need = kernel.policy.rollback_requirement(e.tool or "")
        key = e.data.get("idempotency_key")
        record = web.store.ledger.get(key) if key else None
        if spec is None or spec.compensation is None:
            out[e.seq] = "cannot be reversed"
        elif record is not None and record.rolled_back_by is not None:
            out[e.seq] = f"rolled back (entry {record.rolled_back_by})"
        elif need is None:
            out[e.seq] = "the policy names nobody who may roll it back"
        elif not kernel.policy.can_act_as(me.name, need.role):
            out[e.seq] = f"needs role {need.role}"
        else:
            out[e.seq] = None
    return out


def _audit(web: Web, me: Session, before: int | None, per_page: int = 100) -> dict[str, Any]:
    head, _ = web.store.audit.head()
    top = min(before or head + 1, head + 1)
    entries = web.store.audit.entries(after_seq=max(0, top - 1 - per_page), limit=per_page)
    entries = [e for e in entries if e.seq < top]
    return {"entries": list(reversed(entries)), "report": web.store.audit.verify(),
            "rollbackable": _rollbackable(web, me, entries), "older": entries[0].seq if entries and entries[0].seq > 1
            else None, "head": head}


async def audit(request: Request, web: Web, me: Session) -> Response:
    before = request.query_params.get("before")
    data = await run_in_threadpool(_audit, web, me, int(before) if before and before.isdigit() else None)
    return web.render(request, "audit.html", me, **data)


def _rollback_plan(web: Web, seq: int) -> dict[str, Any]:
    entry = web.store.audit.get(seq)
    if entry is None or entry.kind != "executed":
        return {"problem": f"audit entry {seq} is not an executed action"}
    kernel = web.runtime.kernel
    spec = kernel.registry.get(entry.tool or "")
    record = web.store.ledger.get(entry.data.get("idempotency_key") or "")
    need = kernel.policy.rollback_requirement(entry.tool or "")
    plan: dict[str, Any] = {"entry": entry, "record": record, "need": need,
                            "thread_url": thread_url(entry.thread_id or "")}
    if spec is not None and spec.compensation is not None and record is not None:
        plan["compensation"] = spec.compensation.tool
        plan["comp_args"] = spec.compensation.args(record.args, record.result)
    return plan


async def rollback_confirm(request: Request, web: Web, me: Session) -> Response:
    seq = request.path_params["seq"]
    plan = await run_in_threadpool(_rollback_plan, web, seq)
    if "problem" in plan:
        return web.render(request, "error.html", me, status_code=404, title="Nothing to roll back",
                          message=plan["problem"])
    allowed = (await run_in_threadpool(_rollbackable, web, me, [plan["entry"]])).get(seq)
    return web.render(request, "rollback.html", me, seq=seq, why_not=allowed, **plan)


async def rollback_do(request: Request, web: Web, me: Session) -> Response:
    from agent_kit.rollback import rollback

    seq = request.path_params["seq"]
    try:
        result = await run_in_threadpool(rollback, web.runtime, seq, approver=me.name)
    except AgentKitError as exc:
        plan = await run_in_threadpool(_rollback_plan, web, seq)
        if "problem" in plan:
            return web.render(request, "error.html", me, status_code=404, title="Nothing to roll back",
                              message=plan["problem"])
        return web.render(request, "rollback.html", me, status_code=_refusal_status(exc), seq=seq, why_not=None,
                          refused=str(exc), **plan)
    entry = await run_in_threadpool(web.store.audit.get, seq)
    flash(request, f"Rolled back entry {seq} with {result['compensation']}; audit entry {result['audit_seq']}.")
    return RedirectResponse(thread_url(entry.thread_id or "") if entry else "/audit", status_code=303)


# -- dashboard ------------------------------------------------------------------------------------
async def dashboard(request: Request, web: Web, me: Session) -> Response:
    fig = await run_in_threadpool(figures, web.store, _now())
    amounts = {tool: {k: v[1] for k, v in d.items()} for tool, d in fig.executed.items()
               if any(v[1] for v in d.values())}
    charts = {
        "pending": lines(fig.pending_series, title="Pending by role over time",
                         empty="Nothing has waited on a person yet."),
        "waits": bars(fig.time_to_decision, title="Time to decision", empty="No decisions yet."),
        "rules": stacked_bars({r: {k: float(v) for k, v in d.items()} for r, d in fig.by_rule.items()},
                              title="Decisions by rule and outcome", empty="No decisions yet."),
        "executed": stacked_bars({t: {k: float(v[0]) for k, v in d.items() if v[0]} for t, d in fig.executed.items()},
                                 title="Executed actions: automatic vs approved", empty="Nothing executed yet."),
        "amounts": stacked_bars(amounts, title="Amounts paid: automatic vs approved", empty="No amounts paid yet."),
    }
    return web.render(request, "dashboard.html", me, fig=fig, charts=charts, amounts=amounts)


def routes(page: Callable[..., Any]) -> list[Route]:
    return [
        Route("/", page(inbox), methods=["GET"]),
        Route("/inbox/rows", page(inbox_rows), methods=["GET"]),
        Route("/items/{interrupt_id}", page(item), methods=["GET"]),
        Route("/items/{interrupt_id}/status", page(item_status), methods=["GET"]),
        Route("/items/{interrupt_id}/decide", page(decide), methods=["POST"]),
        Route("/items/{interrupt_id}/edit", page(edit_preview), methods=["POST"]),
        Route("/items/{interrupt_id}/edit/confirm", page(edit_confirm), methods=["POST"]),
        Route("/threads/{thread:path}", page(thread_page), methods=["GET"]),
        Route("/audit", page(audit), methods=["GET"]),
        Route("/audit/{seq:int}/rollback", page(rollback_confirm), methods=["GET"]),
        Route("/audit/{seq:int}/rollback", page(rollback_do), methods=["POST"]),
        Route("/dashboard", page(dashboard), methods=["GET"]),
    ]
