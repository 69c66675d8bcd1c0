"""Shared fixtures: a local OpenAI-compatible server (DSPy's default engine sends on bare sockets,
so it must be a real one), the instrumentor, settings, and DSPy kept off the network and disk."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from genops_autoinstrument import config
from genops_instrumentation_dspy import DSPyInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
USAGE = {
    "prompt_tokens": 1234,
    "completion_tokens": 56,
    "total_tokens": 1290,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}
ANSWER = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"


def chat_completion(content: str = ANSWER) -> dict[str, Any]:
    """A chat completion as api.openai.com sends it."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": RESPONSE_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


class OpenAICompatibleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAICompatibleServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "json": body, "headers": dict(self.headers)})
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})
            return
        self._send(200, chat_completion())

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    instance = OpenAICompatibleServer()
    thread = threading.Thread(target=instance.serve_forever, daemon=True)
    thread.start()
    yield instance
    instance.shutdown()
    instance.server_close()


@pytest.fixture(autouse=True)
def _offline_dspy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GENOPS_* from the shell; DSPy uses its bundled model metadata and a memory-only cache."""
    import os

    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    import dspy

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    yield


@pytest.fixture
def instrumentor() -> Iterator[DSPyInstrumentor]:
    instance = DSPyInstrumentor()
    instance.instrument()
    yield instance
    instance.uninstrument()


@pytest.fixture
def settings() -> config.Settings:
    return config.load({})


@pytest.fixture
def make_lm(server: OpenAICompatibleServer) -> Any:
    def make(model: str = "openai/gpt-4o-mini", **kwargs: Any) -> Any:
        import dspy

        kwargs.setdefault("cache", False)
        kwargs.setdefault("num_retries", 0)
        return dspy.LM(model, api_base=server.url, api_key=API_KEY, **kwargs)

    return make
