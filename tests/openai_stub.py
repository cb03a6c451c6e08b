"""A local OpenAI-compatible Chat Completions server for offline tests.

``OpenAIStub`` listens on 127.0.0.1 on a free port in a background thread and answers
``POST /v1/chat/completions`` with scripted responses, recording each request body. Responses
may be full OpenAI JSON bodies or the short forms built by ``tool_call_response`` and
``text_response``::

    with OpenAIStub([tool_call_response("get_order", {"order_id": 1001}), text_response("Done.")]) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        ...
        assert stub.requests[0]["tools"]

A request with ``"stream": true`` (as LangChain sends when the graph is streamed) is answered the
way OpenAI streams: server-sent ``chat.completion.chunk`` events, the reply's text a word at a
time, then ``data: [DONE]``. ``hold_after=N`` makes the stub send the first N text chunks of each
streamed reply and then wait until :meth:`release` is called, so a test can see tokens arrive
while the turn is still running, without any sleep; :attr:`holding` is set while it waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStub", "stream_chunks", "text_response", "tool_call_response", "tool_calls_response"]

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def tool_call_response(name: str, args: dict[str, Any], *, call_id: str = "call_stub_0",
                       model: str = "test-model") -> dict[str, Any]:
    """A Chat Completions body whose one choice calls ``name`` with ``args``."""
    return tool_calls_response([(name, args, call_id)], model=model)


def tool_calls_response(calls: Sequence[tuple[str, dict[str, Any], str]], *, model: str = "test-model") -> dict[str, Any]:
    """A Chat Completions body with several parallel tool calls: ``(name, args, id)`` each."""
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for name, args, call_id in calls
        ],
    }
    return _completion(message, "tool_calls", model)


def text_response(text: str, *, model: str = "test-model") -> dict[str, Any]:
    """A Chat Completions body whose one choice is the plain reply ``text``."""
    return _completion({"role": "assistant", "content": text}, "stop", model)


def _completion(message: dict[str, Any], finish_reason: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Chat Completions body cut into the chunks OpenAI streams: the role, the text a word at a
    time (keeping the spaces), each tool call whole, then the finish reason."""
    choice = body["choices"][0]
    message, finish = choice["message"], choice["finish_reason"]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                                     "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    text = message.get("content") or ""
    words = text.split(" ")
    chunks += [chunk({"content": word + (" " if i < len(words) - 1 else "")}) for i, word in enumerate(words) if text]
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": call["function"]}]}))
    chunks.append(chunk({}, finish))
    return chunks


class OpenAIStub:
    """A scripted Chat Completions server on 127.0.0.1; use it as a context manager.

    Args:
        responses: The bodies to answer with, one per request in order (the last one repeats
            once they run out), or a callable given each request's JSON that returns the body.
    """

    def __init__(self, responses: Sequence[dict[str, Any]] | Responder, *, hold_after: int | None = None) -> None:
        if not callable(responses) and not responses:
            raise ValueError("OpenAIStub needs at least one response, or a callable")
        self._responses = responses
        self.hold_after = hold_after
        """Streamed replies stop after this many text chunks until :meth:`release` (None: never)."""
        self.holding = threading.Event()
        """Set while a streamed reply waits for :meth:`release`, its first chunks already sent."""
        self._release = threading.Event()
        self.streamed: list[list[dict[str, Any]]] = []
        """The chunks of every streamed reply, in order."""
        self.requests: list[dict[str, Any]] = []
        """The JSON body of every request received, in order."""
        self.paths: list[str] = []
        """The path of every request received, in order (to catch a wrong endpoint)."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to set as ``OPENAI_BASE_URL``: ``http://127.0.0.1:<port>/v1``."""
        if self._server is None:
            raise RuntimeError("OpenAIStub is not running; use it in a `with` block")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.paths.append(path)
            if path.rstrip("/") != "/v1/chat/completions":
                return 404, {"error": {"message": f"the stub serves /v1/chat/completions, not {path}"}}
            self.requests.append(body)
            if callable(self._responses):
                return 200, self._responses(body)
            index = min(len(self.requests), len(self._responses)) - 1
            return 200, self._responses[index]

    def release(self) -> None:
        """Let held streamed replies finish (and every later one run through)."""
        self._release.set()

    def _hold(self) -> None:
        self.holding.set()
        if not self._release.wait(timeout=120):
            raise RuntimeError("OpenAIStub held a streamed reply for 120 s and nobody released it")

    def __enter__(self) -> OpenAIStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                status, answer = stub._answer(self.path, body)
                if status == 200 and body.get("stream"):
                    self._stream(answer)
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, answer: dict[str, Any]) -> None:
                chunks = stream_chunks(answer)
                with stub._lock:
                    stub.streamed.append(chunks)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                texts = 0
                for chunk in chunks:
                    is_text = bool(chunk["choices"][0]["delta"].get("content"))
                    texts += is_text
                    hold = is_text and stub.hold_after is not None and texts == stub.hold_after
                    if hold:
                        # Set before the chunk goes out: a client that has read it always finds
                        # the stub holding (set after, a fast client could read it first).
                        stub.holding.set()
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    if hold:
                        stub._hold()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
