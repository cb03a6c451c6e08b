"""The fixture app's graph for the command line: ``agent-kit --graph tests.fixture_app.served:graph``
(its records in ``AGENT_KIT_HOME``, its store from the environment, as the CLI sets them)."""

from .agent import build_graph

graph = build_graph()
