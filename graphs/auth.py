"""Who may do what where LangGraph Server serves the reference graph (``langgraph.json`` names ``auth``).

Approvers sign in with ``agent-kit approvers token NAME``; customers with a session token of their
own (``cst_`` + 32 or more random URL-safe characters). Supervisors are operators. See
:mod:`agent_kit.server_auth` and docs/DEPLOY.md for what each may do.
"""

from agent_kit.server_auth import build_auth
from graphs.customer_service import POLICY_PATH

auth = build_auth(POLICY_PATH, operator_roles=("supervisor",))

__all__ = ["auth"]
