"""The fixture app's authorization handler, for a served configuration (``langgraph.json``'s
``auth``) that ``agent-kit checklist`` accepts."""

from agent_kit.server_auth import build_auth

from .agent import POLICY

auth = build_auth(POLICY)
