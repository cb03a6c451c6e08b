"""Streaming: ``AgentRuntime.stream`` / ``astream`` yield the model's tokens as the model server
sends them, and agent_kit's decisions, effects, refusals and pauses as typed events, ending with
the result ``send`` returns; ``agent-kit chat`` prints the tokens as they come, ``--json`` stays
one object. The slow model is a local OpenAI-compatible stub that holds its reply half-sent until
the test has seen the first tokens: no sleeps, no timing."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_kit.streaming import Decided, Executed, Paused, Refused, Token, TurnEnded
from tests.fixture_app import App, make_app
from tests.openai_stub import OpenAIStub, text_response, tool_call_response

ROOT = Path(__file__).resolve().parents[2]
GRAPH = "tests.fixture_app.served:graph"  # the CLI runs the fixture app (from ROOT), not langgraph.json's
REPLY = "Thanks, Jane, you're verified and all set."
SCRIPT = [
    tool_call_response("verify_customer", {"name": "Jane Doe", "zip": "94107"}, call_id="call_verify"),
    text_response(REPLY),
]


def types(events: list) -> list[str]:
    return [e.type for e in events]


def test_a_streamed_turn_ends_with_what_send_returns(app: App) -> None:
    rt = app.runtime
    plain = rt.send("plain", "Hi, I'm Jane Doe, zip 94107")
    events = list(rt.stream("streamed", "Hi, I'm Jane Doe, zip 94107"))
    assert isinstance(events[-1], TurnEnded) and types(events).count("turn_ended") == 1
    result = events[-1].result
    assert (result.status, result.reply) == (plain.status, plain.reply) == ("replied", plain.reply)
    (read,) = [e for e in events if isinstance(e, Decided) and e.kind == "read"]
    assert (read.kind, read.tool, read.data["hidden_fields"]) == ("read", "verify_customer", ["customer_id"])
    assert "".join(e.text for e in events if isinstance(e, Token)) == plain.reply
    assert app.store.audit.verify().ok


def test_stream_shows_effects_refusals_and_pauses_as_they_happen(app: App) -> None:
    rt = app.runtime
    refused = list(rt.stream("t", "Where is my order 1001?"))  # not verified yet: denied
    assert [(e.kind, e.tool) for e in refused if isinstance(e, Refused)] == [("denied", "get_order")]
    list(rt.stream("t", "Hi, I'm Jane Doe, zip 94107"))
    small = list(rt.stream("t", "Refund $20 on order 1001"))
    (done,) = [e for e in small if isinstance(e, Executed)]
    assert (done.tool, done.kind) == ("issue_refund", "executed") and done.seq > 0
    assert types(small).index("executed") < types(small).index("turn_ended")
    big = list(rt.stream("t", "Refund $80 on order 1001"))
    (paused,) = [e for e in big if isinstance(e, Paused)]
    assert paused.pending["kind"] == "approval" and paused.pending["action"]["name"] == "issue_refund"
    assert big[-1].result.status == "paused"
    assert big[-1].result.pending == [paused.pending]
    assert [r["amount"] for r in app.shop.refunds(1001)] == [20.0]
    # Every event is plain JSON, as a server would pass it on.
    for event in refused + small + big:
        json.dumps(event.to_json())


def test_a_stream_closed_early_releases_the_thread_and_nothing_runs_twice(app: App) -> None:
    rt = app.runtime
    list(rt.stream("t", "Hi, I'm Jane Doe, zip 94107"))
    events = rt.stream("t", "Refund $20 on order 1001")
    first = next(events)
    assert first.type in ("executed", "token", "decided")
    events.close()  # the reader goes away mid-turn
    after = rt.send("t", "Refund $20 on order 1001")  # the thread is free, and the cut-off run is finished
    assert after.status == "replied"
    assert len(app.shop.refunds(1001)) <= 2
    assert len([e for e in app.store.audit.entries("t") if e.kind == "executed"]) == len(app.shop.refunds(1001))
    assert app.store.audit.verify().ok


@pytest.fixture
def slow_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, OpenAIStub]]:
    with OpenAIStub(SCRIPT, hold_after=1) as stub:
        monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
        monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
        monkeypatch.delenv("OPENAI_API_BASE", raising=False)
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("AGENT_KIT_MODEL", "openai:test-model")
        a = make_app(tmp_path)
        try:
            yield a, stub
        finally:
            stub.release()
            a.store.close()


def test_tokens_arrive_before_the_turn_ends(slow_model: tuple[App, OpenAIStub]) -> None:
    app, stub = slow_model
    events = app.runtime.stream("t", "Hi, I am Jane Doe, 94107")
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, Token):
            break
    # The model server has sent only its first words and is holding the rest: the turn is not over.
    assert stub.holding.is_set()
    assert seen[-1].text == "Thanks, "
    assert "turn_ended" not in types(seen)
    assert [(e.kind, e.tool) for e in seen if isinstance(e, Decided)] == [("read", "verify_customer"),
                                                                          ("verified", "verify_customer")]
    stub.release()
    rest = list(events)
    assert "".join(e.text for e in seen + rest if isinstance(e, Token)) == REPLY
    assert rest[-1].result.reply == REPLY and rest[-1].result.status == "replied"
    assert stub.requests[-1]["stream"] is True


def test_astream_yields_the_same_events_without_blocking_the_loop(slow_model: tuple[App, OpenAIStub]) -> None:
    app, stub = slow_model

    async def run() -> list:
        seen: list = []
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        async for event in app.runtime.astream("t", "Hi, I am Jane Doe, 94107"):
            seen.append(event)
            if isinstance(event, Token) and not stub._release.is_set():
                assert stub.holding.is_set() and "turn_ended" not in types(seen)
                before = ticks
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                assert ticks > before  # the loop runs other tasks while the turn is in flight
                stub.release()
        ticker.cancel()
        return seen

    seen = asyncio.run(run())
    assert types(seen)[-1] == "turn_ended" and seen[-1].result.reply == REPLY
    assert "".join(e.text for e in seen if isinstance(e, Token)) == REPLY


def _cli_env(stub: OpenAIStub, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_DB_URL", "OPENAI_API_BASE")}
    env.update(AGENT_KIT_HOME=str(home), AGENT_KIT_MODEL="openai:test-model", OPENAI_BASE_URL=stub.base_url,
               OPENAI_API_KEY="test")
    return env


def test_agent_kit_chat_prints_tokens_before_the_turn_ends(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "agent-kit"
    with OpenAIStub(SCRIPT, hold_after=1) as stub:
        proc = subprocess.Popen([str(exe), "--graph", GRAPH, "chat", "--thread", "t", "--message", "Hi, I am Jane Doe, 94107"],
                                cwd=ROOT, env=_cli_env(stub, tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            got = b""
            while b"agent: Thanks, " not in got:  # wait on what the process prints, not on a clock
                assert sel.select(timeout=120), got
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, (got, proc.stderr.read() if proc.stderr else b"")
                got += chunk
            assert stub.holding.is_set() and proc.poll() is None  # the model is still answering
            assert b"verified and all set" not in got
        finally:
            stub.release()
        rest, errors = proc.communicate(timeout=120)
    text = (got + rest).decode()
    assert proc.returncode == 0, errors.decode()
    assert f"agent: {REPLY}" in text and text.count(REPLY) == 1
    assert "read verify_customer" in text and "thread t · replied" in text


def test_chat_json_stays_one_object_with_a_streaming_model(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "agent-kit"
    with OpenAIStub(SCRIPT) as stub:
        done = subprocess.run([str(exe), "--graph", GRAPH, "chat", "--thread", "t", "--message", "Hi, I am Jane Doe, 94107", "--json"],
                              cwd=ROOT, env=_cli_env(stub, tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    turn = json.loads(done.stdout)
    assert turn["reply"] == REPLY and turn["status"] == "replied"


@pytest.mark.parametrize("hostile", [
    "\x1b[2J\x1b[H", "\x1b]0;owned\x07", "\u202eevil", "nul\x00here", "\x9b31m",
], ids=["clear-screen", "set-title", "bidi-override", "nul", "c1-csi"])
def test_a_streamed_reply_cannot_drive_the_operators_terminal(tmp_path: Path, hostile: str) -> None:
    exe = Path(sys.executable).parent / "agent-kit"
    with OpenAIStub([text_response(f"Hello {hostile} there")]) as stub:
        done = subprocess.run([str(exe), "--graph", GRAPH, "chat", "--thread", "t", "--message", "Hello"], cwd=ROOT,
                              env=_cli_env(stub, tmp_path), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert stub.requests[-1]["stream"] is True
    shown = done.stdout.decode()
    assert hostile not in shown
    assert not any(ch in shown for ch in "\x1b\x00\x07\x9b\u202e")
    assert hostile.encode("unicode_escape").decode("ascii") in shown
