"""A local OpenAI-compatible Chat Completions server for offline tests.

``OpenAIStub`` listens on 127.0.0.1 on a free port in a background thread and answers
``POST /v1/chat/completions`` with scripted responses, recording each request body. Responses
may be full OpenAI JSON bodies or the short forms built by ``tool_call_response`` and
``text_response``::

    with OpenAIStub([tool_call_response("get_order", {"order_id": 1001}), text_response("Done.")]) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        ...
        assert stub.requests[0]["tools"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStub", "text_response", "tool_call_response", "tool_calls_response"]

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


class OpenAIStub:
    """A scripted Chat Completions server on 127.0.0.1; use it as a context manager.

    Args:
        responses: The bodies to answer with, one per request in order (the last one repeats
            once they run out), or a callable given each request's JSON that returns the body.
    """

    def __init__(self, responses: Sequence[dict[str, Any]] | Responder) -> None:
        if not callable(responses) and not responses:
            raise ValueError("OpenAIStub needs at least one response, or a callable")
        self._responses = responses
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
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
