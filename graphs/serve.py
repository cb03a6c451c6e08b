"""The reference graph as LangGraph Server and the agent-kit CLI load it (see langgraph.json).

LangGraph Server reads ``module.__dict__["graph"]``, so the graph must be a real module attribute;
``graphs.customer_service`` builds its own lazily, so that importing it touches no files.
"""

from graphs.customer_service import build_graph, demo

graph = build_graph()

__all__ = ["demo", "graph"]
