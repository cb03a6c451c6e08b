"""Optional parts of agent_kit, installed as extras, imported only where they are used.

``agent_kit[postgres]`` (psycopg, LangGraph's ``PostgresSaver``) and ``agent_kit[openai]``
(``langchain-openai``) are not needed by the SQLite default or the offline model, so a plain
``pip install agent_kit`` leaves them out; using them without them fails with the command that
installs them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, tuple[str, str]] = {
    "postgres": ("psycopg", "a Postgres store (AGENT_KIT_DB_URL / --db-url)"),
    "openai": ("langchain_openai", "an OpenAI-compatible model (AGENT_KIT_MODEL=openai:...)"),
    "web": ("starlette", "the web inbox (agent-kit serve)"),
}
"""Each extra: the module that shows it is installed, and what needs it."""


def require(extra: str, module: str | None = None) -> ModuleType:
    """Import ``module`` (default: the extra's own) or raise :class:`MissingExtraError` saying
    which extra to install.

    Raises:
        MissingExtraError: the module is not installed; the message holds the pip command.
    """
    name, what = EXTRAS[extra]
    try:
        return importlib.import_module(module or name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module or name
        raise MissingExtraError(
            f"{what} needs the {extra!r} extra ({missing} is not installed): "
            f"pip install 'agent_kit[{extra}]'", extra=extra) from None
