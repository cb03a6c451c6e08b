"""The reference customer-service agent: the retail back office's tools under the reference policy.

``graph`` is compiled without a checkpointer (LangGraph Server and ``langgraph.json`` bring their
own; :class:`agent_kit.AgentRuntime` uses the store's). ``build_graph(...)`` makes one with other
parts: a model, a home folder, a policy file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph

from agent_kit import Compensation, Mode, ToolSpec, create_permissioned_agent, register
from graphs.models import make_model
from graphs.sentiment import classify_sentiment
from tools.customer_service import build_compensations, build_tools, order_facts
from tools.shop import Shop

POLICY_PATH = Path(__file__).resolve().parent.parent / "policies" / "customer_service.yaml"

SYSTEM_PROMPT = (
    "You are a retail customer-service agent. Verify the customer before touching their account. "
    "Use the tools for every lookup and change; never promise what a tool did not confirm. "
    "When a tool says a person must decide, tell the customer so."
)

CONTEXT_KEYS: dict[str, Any] = {"sentiment": str}
"""What this application writes into the trusted context beside agent_kit's identity keys."""

ORDER_FACTS: dict[str, Any] = {"order_total": float, "order_status": str, "order_customer_id": str,
                               "order_refunded": float}
"""The facts :func:`tools.customer_service.order_facts` reads for policy rules."""

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")  # starts only where a run starts: linear
_ZIP = re.compile(r"\b(\d{5})\b")


def default_home() -> Path:
    return Path(os.environ.get("AGENT_KIT_HOME") or ".agent_kit")


def _identity_verifier(shop: Shop):  # type: ignore[no-untyped-def]
    """Checks a customer's identity answer (an email, or a name and zip) against the back office."""

    def verify(answer: str) -> Mapping[str, Any] | None:
        email = _EMAIL.search(answer)
        zip_ = _ZIP.search(answer)
        rest = answer
        for found_text in (email.group(0) if email else None, zip_.group(1) if zip_ else None):
            if found_text:
                rest = rest.replace(found_text, " ")
        name = " ".join(re.sub(r"(?i)\b(my name is|my email is|email|i am|i'm|name|zip|code|and|is|hi|hello)\b|[,.:]",
                               " ", rest).split())
        details = {"email": email.group(0) if email else None, "zip": zip_.group(1) if zip_ else None,
                   "name": name or None}
        if sum(1 for v in details.values() if v) < 2:
            return None  # one detail is not proof: email plus name or zip, or name and zip
        return _verified_context(shop.verify_customer(**details)) or None

    return verify


def _verified_context(result: Any) -> dict[str, Any]:
    if isinstance(result, Mapping) and result.get("verified"):
        return {"customer_verified": True, "customer_id": result["customer_id"], "customer_name": result.get("name")}
    return {}


def _order_facts(shop: Shop):  # type: ignore[no-untyped-def]
    def facts(args: Mapping[str, Any], context: Mapping[str, Any]) -> Mapping[str, Any]:
        return order_facts(shop, args["order_id"]) if "order_id" in args else {}

    return facts


def specs_for(shop: Shop) -> list[ToolSpec]:
    """The reference tools, each registered with its mode ceiling, reach and reversal."""
    tools = {t.name: t for t in build_tools(shop)}
    comps = build_compensations()
    facts = _order_facts(shop)
    cust = {"customer_id": "customer_id"}

    def comp(name: str, text: str) -> Compensation:
        tool, fn = comps[name]
        return Compensation(tool=tool, args=fn, description=text)

    def reg(name: str, mode: Mode, **kw: Any) -> ToolSpec:
        tool = tools[name]
        inject = {k: v for k, v in cust.items() if k in (tool.get_input_schema().model_fields)}
        if "facts" in kw:
            kw["fact_types"] = ORDER_FACTS
        return register(tool, mode, system="retail back office (shop.sqlite)", inject=inject, **kw)

    return [
        reg("verify_customer", Mode.READ_ONLY, reads=("customers",), on_result=_verified_context),
        reg("get_order", Mode.READ_ONLY, reads=("orders", "payment_methods", "addresses"), facts=facts),
        reg("search_help", Mode.READ_ONLY, reads=("help articles",)),
        reg("recommend_resolution", Mode.RECOMMEND_ONLY, reads=("orders",), changes=("recommendations",),
            irreversible=True, facts=facts),
        reg("draft_reply", Mode.DRAFT_ONLY, changes=("drafts",), irreversible=True,
            draft=lambda **kw: tools["draft_reply"].invoke(kw)),
        reg("update_preferences", Mode.EXECUTE_LIMITED, changes=("preferences",), irreversible=True),
        reg("create_ticket", Mode.EXECUTE_LIMITED, changes=("tickets",), irreversible=True),
        reg("issue_refund", Mode.EXECUTE_LIMITED, reads=("orders",), changes=("refunds",), facts=facts,
            compensation=comp("issue_refund", "reverse the refund")),
        reg("apply_discount", Mode.EXECUTE_LIMITED, reads=("orders",), changes=("discounts",), facts=facts,
            compensation=comp("apply_discount", "remove the discount")),
        reg("change_address", Mode.EXECUTE_LIMITED, reads=("orders",), changes=("addresses", "orders"), facts=facts,
            compensation=comp("change_address", "restore the previous address")),
        reg("cancel_order", Mode.EXECUTE_LIMITED, reads=("orders",), changes=("orders",), facts=facts,
            compensation=comp("cancel_order", "reinstate the order while it has not shipped")),
        reg("request_human", Mode.ESCALATE, changes=("tickets",), irreversible=True),
        reg("dispute_payment", Mode.ESCALATE, changes=("tickets",), irreversible=True, facts=facts),
        reg("reverse_refund", Mode.EXECUTE_LIMITED, changes=("refunds",), irreversible=True),
        reg("remove_discount", Mode.EXECUTE_LIMITED, changes=("discounts",), irreversible=True),
        reg("restore_address", Mode.EXECUTE_LIMITED, changes=("addresses", "orders"), irreversible=True),
        reg("reinstate_order", Mode.EXECUTE_LIMITED, changes=("orders",), irreversible=True),
    ]


def build_graph(
    *,
    model: BaseChatModel | None = None,
    home: str | Path | None = None,
    policy: str | Path | None = None,
    checkpointer: Any = None,
    store: Any = None,
) -> CompiledStateGraph:
    """The reference agent.

    Args:
        model: default: ``AGENT_KIT_MODEL`` (the offline scripted model unless it names another).
        home: where ``shop.sqlite`` lives; default ``AGENT_KIT_HOME`` or ``./.agent_kit``.
        policy: the policy file; default ``policies/customer_service.yaml``.
        checkpointer: a LangGraph checkpointer, or None (the runtime supplies the store's).
        store: an agent_kit store (audit, ledger, inbox); default: opened from the environment.
    """
    shop = Shop.at_home(home if home is not None else default_home())
    return create_permissioned_agent(
        model or make_model(),
        specs_for(shop),
        policy or POLICY_PATH,
        checkpointer=checkpointer,
        store=store,
        system_prompt=SYSTEM_PROMPT,
        observe=lambda text: {"sentiment": classify_sentiment(text)},
        identity_verifier=_identity_verifier(shop),
        context_keys=CONTEXT_KEYS,
        name="customer_service",
    )


from graphs.demo import demo  # noqa: E402, F401  (agent-kit demo finds the story beside the graph)

_graph: CompiledStateGraph | None = None


def __getattr__(name: str) -> Any:
    # `graph` is built on first use, so importing this module touches no files.
    global _graph
    if name == "graph":
        if _graph is None:
            _graph = build_graph()
        return _graph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
