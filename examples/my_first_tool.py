"""Make it yours: your own tool and policy under agent_kit, offline, in one file.

Run it: ``python examples/my_first_tool.py`` (it works in a temporary folder).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg

from agent_kit import AgentRuntime, Mode, Policy, create_permissioned_agent, register
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel, tool_call

POLICY = Policy.from_dict({
    "approvers": {"lee": ["support_lead"]},
    "tools": {"extend_warranty": {"mode": "execute_limited", "rules": [
        {"id": "long_extension", "when": {"args.months": {"gt": 12}}, "approval": {"role": "support_lead"}},
    ]}},
})


def warranty_tool(db: Path):  # type: ignore[no-untyped-def]
    def extend_warranty(order_id: int, months: int,
                        idempotency_key: Annotated[str | None, InjectedToolArg] = None) -> dict[str, Any]:
        """Extend the warranty of an order by a number of months."""
        with sqlite3.connect(db) as conn:  # the key makes a retried call a no-op
            conn.execute("CREATE TABLE IF NOT EXISTS warranty (key TEXT PRIMARY KEY, order_id INT, months INT)")
            conn.execute("INSERT OR IGNORE INTO warranty VALUES (?, ?, ?)", (idempotency_key, order_id, months))
        return {"order_id": order_id, "extended_by_months": months}

    return extend_warranty


def build(home: Path, steps: list[Any]) -> AgentRuntime:
    store = Store.open(home=home)
    tool = register(warranty_tool(home / "warranty.sqlite"), Mode.EXECUTE_LIMITED,
                    changes=["warranty"], irreversible=True)
    graph = create_permissioned_agent(ScriptedChatModel(steps=steps), [tool], POLICY, store=store)
    return AgentRuntime(graph, store=store)


def main(home: Path) -> list[tuple[Any, ...]]:
    rt = build(home, [tool_call("extend_warranty", {"order_id": 1001, "months": 24}), "Extended by 24 months."])
    paused = rt.send("t1", "Please extend my warranty on order 1001 by two years")
    print(paused.status, paused.pending[0]["rule"])  # paused long_extension
    done = rt.approve(paused.pending[0], approver="lee")  # names the exact action lee saw
    print(done.status, done.reply)  # replied Extended by 24 months.
    assert rt.store.audit.verify().ok
    with sqlite3.connect(home / "warranty.sqlite") as conn:
        return conn.execute("SELECT order_id, months FROM warranty").fetchall()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)))
