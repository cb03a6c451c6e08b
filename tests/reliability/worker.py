"""One step of a reliability scenario, run as its own OS process (so it can be SIGKILLed).

Usage: ``python tests/reliability/worker.py '<json>'`` with keys ``home``, ``db_url``, ``schema``,
``thread``, ``scenario``, ``step`` (``setup`` | ``decide`` | ``recover``) and ``durability``.
:func:`race` is the target of the racing processes of ``test_races.py`` (spawned).

``AGENT_KIT_CRASH_AT`` (read by agent_kit's ``crash_point``) kills the process inside the execute
node; ``RELIABILITY_CRASH_AT=before_checkpoint`` kills it after the execute node's writes were
saved and before the checkpoint that follows them is written; ``RELIABILITY_SLOW_PUT=<seconds>``
makes every checkpoint save that long (the window in which, under ``durability="async"``, later
steps run before the checkpoints of earlier ones are saved). The last stdout line is a JSON report
of what the step did.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JANE = "Hi, I am Jane Doe, 94107"

SCENARIOS: dict[str, dict[str, Any]] = {
    # tool: messages that bring the thread to the gate, then the decision that opens it
    "issue_refund": {"setup": [JANE, "Refund $80 on order 1001"], "decide": ("approve", "lee")},
    "apply_discount": {"setup": [JANE, "20% discount on 1002"], "decide": ("approve", "lee")},
    "change_address": {"setup": [JANE, "change the address of 1002 to 1 Main St, Springfield, 12345"],
                       "decide": ("send", "yes")},
    "cancel_order": {"setup": [JANE, "Cancel order 1002"], "decide": ("send", "yes")},
    "update_preferences": {"setup": ["stop emails"], "decide": ("send", "Jane Doe, 94107")},
    "create_ticket": {"setup": [JANE], "decide": ("send", "open a ticket about a broken zipper")},
}
"""Every execute tool of the fixture app (tests/fixture_app): issue_refund / apply_discount pause on staff approval,
change_address / cancel_order on the customer's yes, update_preferences on identity, and
create_ticket has no gate (the customer's message runs it directly)."""


def open_runtime(args: dict[str, Any]) -> tuple[Any, Any]:
    """The fixture app on the scenario's store: ``(runtime, store)``."""
    os.environ["AGENT_KIT_HOME"] = args["home"]
    os.environ.pop("AGENT_KIT_DB_URL", None)
    os.environ.pop("AGENT_KIT_MODEL", None)
    from agent_kit import AgentRuntime
    from agent_kit.store import Store
    from tests.fixture_app import build_graph

    if args.get("db_url"):
        store = Store.open(home=args["home"], db_url=args["db_url"], schema=args.get("schema"))
    else:
        store = Store.open(home=args["home"])
    graph = build_graph(home=args["home"], store=store)
    return AgentRuntime(graph, store=store, durability=args.get("durability", "sync")), store


def crash_before_checkpoint(runtime: Any, tool: str) -> None:
    """SIGKILL right after the execute node's writes for ``tool`` are saved, before the checkpoint
    that would follow them. (Killing at the next ``put`` instead is not deterministic: with async
    durability the step's checkpoint may be saved before, or concurrently with, its writes.)

    LangGraph may save a step's writes from a background thread after the run has moved on (under
    load, even past the turn's last checkpoint), so a checkpoint already holding ``tool``'s result
    is held back until the writes are saved, and the process killed with them."""
    saver = runtime.graph.checkpointer
    put_writes, put = saver.put_writes, saver.put

    def carries_result(values: Any) -> bool:
        return any(getattr(m, "type", None) == "tool" and getattr(m, "name", None) == tool
                   for m in (values if isinstance(values, list) else [values]))

    def put_writes_then_die(config: Any, writes: Any, task_id: str, task_path: str = "") -> Any:
        out = put_writes(config, writes, task_id, task_path)
        if any(carries_result(value) for _, value in writes):
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    def put_once_the_writes_killed_us(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if carries_result(checkpoint.get("channel_values", {}).get("messages")):
            time.sleep(120)  # the writes' thread SIGKILLs the process; the checkpoint is never saved
            raise AssertionError(f"the execute node's writes for {tool} were never saved")
        return put(config, checkpoint, metadata, versions)

    saver.put_writes = put_writes_then_die
    saver.put = put_once_the_writes_killed_us


def slow_checkpoints(runtime: Any, seconds: float) -> None:
    """Every checkpoint takes ``seconds`` longer to save, as on a loaded database."""
    saver = runtime.graph.checkpointer
    put = saver.put

    def slow_put(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        time.sleep(seconds)
        return put(config, checkpoint, metadata, versions)

    saver.put = slow_put


def decide(runtime: Any, thread: str, scenario: str) -> Any:
    how, value = SCENARIOS[scenario]["decide"]
    if how == "approve":
        # The operator names the approval they saw asked for (after a crash: the same one again).
        asked = runtime.store.audit.entries(thread, kind="approval_requested")[-1]
        return runtime.approve(thread, approver=value, interrupt_id=asked.interrupt_id)
    return runtime.send(thread, value)


def main(args: dict[str, Any]) -> dict[str, Any]:
    runtime, store = open_runtime(args)
    thread, scenario, step = args["thread"], args["scenario"], args["step"]
    report: dict[str, Any] = {"pid": os.getpid(), "step": step}
    try:
        if step == "setup":
            for message in SCENARIOS[scenario]["setup"]:
                result = runtime.send(thread, message)
            report["result"] = result.to_json()
        elif step in ("decide", "recover"):
            # recover: what the person does after a crash: the same decision again (the operator's
            # approve, the customer's answer), through the runtime's public API
            if step == "decide" and os.environ.get("RELIABILITY_CRASH_AT") == "before_checkpoint":
                crash_before_checkpoint(runtime, scenario)
            if step == "decide" and os.environ.get("RELIABILITY_SLOW_PUT"):
                slow_checkpoints(runtime, float(os.environ["RELIABILITY_SLOW_PUT"]))
            report["result"] = decide(runtime, thread, scenario).to_json()
        else:
            raise SystemExit(f"unknown step {step!r}")
    finally:
        store.close()
    return report


def race(args: dict[str, Any], barrier: Any, results: Any) -> None:
    """One racer (a spawned process): load everything, wait for the others, then approve."""
    runtime, store = open_runtime(args)
    try:
        barrier.wait()  # every racer is loaded: all resume at the same moment
        try:
            runtime.approve(args["thread"], approver=args["approver"], interrupt_id=args["interrupt_id"])
            results.put({"pid": os.getpid(), "outcome": "ran"})
        except Exception as exc:  # the losers' errors are what the race checks
            results.put({"pid": os.getpid(), "outcome": "error", "error": type(exc).__name__,
                         "message": str(exc)})
    finally:
        store.close()


def serve() -> None:
    """A fork server: import everything once, then run each step in a new forked process.

    Each stdin line is ``{"args": {...}, "env": {...}, "out": path, "err": path}``; the step runs
    in a child (its own pid, so a crash point SIGKILLs only it) with ``env`` added, stdout and
    stderr going to ``out`` / ``err``; one line ``{"returncode": n}`` answers (``-9`` when the
    child was SIGKILLed). Saves the ~2 s of imports per process that the matrix would pay 144 times.
    """
    open_runtime  # noqa: B018 - the imports below are what the children inherit
    from agent_kit import AgentRuntime  # noqa: F401
    from agent_kit.store import Store  # noqa: F401
    from tests.fixture_app import build_graph  # noqa: F401

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one step, then exit without running the server's cleanup
            code = 1
            try:
                with open(job["out"], "w") as out, open(job["err"], "w") as err:
                    os.dup2(out.fileno(), 1)
                    os.dup2(err.fileno(), 2)
                    os.environ.update(job["env"])
                    try:
                        print(json.dumps(main(job["args"]), default=str), flush=True)
                        code = 0
                    except BaseException:  # noqa: BLE001 - reported to the test through stderr
                        import traceback

                        traceback.print_exc()
                        sys.stderr.flush()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        print(json.dumps(main(json.loads(sys.argv[1])), default=str), flush=True)
