"""Gateway pricing fixtures: clean settings and pricing cache; a local server speaking the OpenAI
and Anthropic APIs at an address (127.0.0.1), as a company gateway or proxy would."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.pricing import prices as pricing

OPENAI_USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500, "prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 0}}
ANTHROPIC_USAGE = {"input_tokens": 900, "output_tokens": 250, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


def openai_reply(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
        "usage": OPENAI_USAGE, "system_fingerprint": "fp_06737a9306",
    }


def anthropic_reply(model: str) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn", "stop_sequence": None, "usage": ANTHROPIC_USAGE,
    }


class Gateway(ThreadingHTTPServer):
    """Answers /v1/chat/completions and /v1/messages with the model the client asked for."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Gateway

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        self.server.requests.append({"path": self.path, "json": body})
        if self.path.endswith("/chat/completions"):
            status, reply = 200, openai_reply(body.get("model", ""))
        elif self.path.endswith("/messages"):
            status, reply = 200, anthropic_reply(body.get("model", ""))
        else:
            status, reply = 404, {"error": {"message": "not found"}}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GENOPS_* from the developer's shell; fresh settings and pricing cache for each test."""
    import os

    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)
    previous = config._current
    config.set_current(config.Settings())
    pricing.reset_cache()
    yield
    pricing.reset_cache()
    config.set_current(previous)
