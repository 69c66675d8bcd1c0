"""Shared fixtures: a scripted Gemini-shaped HTTP server on 127.0.0.1 and the patched SDK.

The real ``google-genai`` client talks to the server through ``http_options.base_url``; each test
scripts the answers (JSON bodies, SSE streams, error bodies) and reads the requests it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api import Decision
from genops_autoinstrument.governance.governor import Governor, Ticket

MODEL_VERSION = "gemini-2.5-flash-preview-05-20"
RESPONSE_ID = "5dQwaPqgLq6Gz7IPh8u3kAg"

# A realistic usage block: 120 prompt tokens of which 100 came from a context cache, 30 visible
# output tokens and 12 thinking tokens (the API reports thoughts outside candidatesTokenCount).
USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 30,
    "totalTokenCount": 162,
    "cachedContentTokenCount": 100,
    "thoughtsTokenCount": 12,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 100}],
}


def generate_body(
    text: str = "Hello from Gemini.",
    *,
    usage: dict[str, Any] | None = None,
    finish_reason: str | None = "STOP",
    response_id: str = RESPONSE_ID,
    model_version: str = MODEL_VERSION,
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One ``GenerateContentResponse`` as the Gemini API sends it (camelCase JSON)."""
    candidate: dict[str, Any] = {"content": {"parts": parts if parts is not None else [{"text": text}], "role": "model"}, "index": 0}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model_version, "responseId": response_id}
    if usage is not None:
        body["usageMetadata"] = usage
    return body


def stream_bodies(words: list[str], usage: dict[str, Any], *, response_id: str = RESPONSE_ID) -> list[dict[str, Any]]:
    """SSE chunks: running usage totals on every chunk, finishReason on the last, as the API does."""
    chunks = []
    for index, word in enumerate(words):
        last = index == len(words) - 1
        running = dict(usage) if last else {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
        if not last and "cachedContentTokenCount" in usage:
            running["cachedContentTokenCount"] = usage["cachedContentTokenCount"]
        chunks.append(generate_body(word, usage=running, finish_reason="STOP" if last else None, response_id=response_id))
    return chunks


class Reply:
    """What the server answers: a JSON body, or SSE events (optionally followed by an error event)."""

    def __init__(self, status: int = 200, body: Any = None, events: list[Any] | None = None) -> None:
        self.status = status
        self.body = body
        self.events = events

    @staticmethod
    def error(status: int, message: str, grpc_status: str) -> "Reply":
        return Reply(status, {"error": {"code": status, "message": message, "status": grpc_status}})


def _default_reply(path: str, body: dict[str, Any]) -> Reply:
    if "alt=sse" in path:
        return Reply(events=[generate_body(usage=USAGE)])
    return Reply(body=generate_body(usage=USAGE))


class GeminiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Reply] = []
        self.default: Callable[[str, dict[str, Any]], Reply] = _default_reply

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (early stream exit) is normal here, not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order (then the default)."""
        self.replies.extend(replies)

    def next_reply(self, path: str, body: dict[str, Any]) -> Reply:
        return self.replies.pop(0) if self.replies else self.default(path, body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GeminiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        reply = self.server.next_reply(self.path, body)
        if reply.events is None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(reply.status)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for event in reply.events:
                piece = b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


@pytest.fixture(scope="session")
def _server() -> Iterator[GeminiServer]:
    server = GeminiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture()
def server(_server: GeminiServer) -> Iterator[GeminiServer]:
    _server.requests.clear()
    _server.replies.clear()
    yield _server
    _server.replies.clear()


@pytest.fixture(scope="session")
def instrumented() -> Iterator[Any]:
    from genops_instrumentation_google_genai import GoogleGenAIInstrumentor

    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture()
def client(server: GeminiServer, instrumented: Any) -> Any:
    from google import genai

    return genai.Client(api_key="test", http_options={"base_url": server.url})


@pytest.fixture()
def vertex_client(server: GeminiServer, instrumented: Any) -> Any:
    from google import genai

    return genai.Client(vertexai=True, api_key="test", http_options={"base_url": server.url})


@pytest.fixture()
def settings() -> config.Settings:
    return config.Settings()


class BlockingGovernor(Governor):
    """Blocks every call with one fixed decision."""

    active = True

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.decided: list[Any] = []

    def decide(self, request: Any, attribution: Any) -> Ticket:
        self.decided.append(request)
        return Ticket(decision=self.decision)


@pytest.fixture()
def budget_block() -> BlockingGovernor:
    return BlockingGovernor(
        Decision(result="BLOCKED", policy_name="budget:team", reason_code="BUDGET_EXCEEDED", message="team budget of $5.00/day is spent")
    )


@pytest.fixture()
def rule_block() -> BlockingGovernor:
    return BlockingGovernor(
        Decision(result="BLOCKED", policy_name="models", reason_code="POLICY_DENY_MODEL", message="model gemini-2.5-pro is not allowed")
    )


def one_span(recorded: Any) -> Any:
    spans = recorded.spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


@pytest.fixture()
def gemini() -> Any:
    """The helpers above, for test modules (which must not import conftest under importlib mode)."""
    import types as _types

    return _types.SimpleNamespace(
        generate_body=generate_body,
        stream_bodies=stream_bodies,
        Reply=Reply,
        USAGE=USAGE,
        MODEL_VERSION=MODEL_VERSION,
        RESPONSE_ID=RESPONSE_ID,
        one_span=one_span,
        BlockingGovernor=BlockingGovernor,
    )


def _sdk_reports_embedding_usage() -> bool:
    from google.genai import types

    return "usage_metadata" in types.EmbedContentResponse.model_fields


@pytest.fixture
def embedding_usage_reported() -> None:
    """google-genai before 3.x (the newest release on Python 3.10) drops usageMetadata from
    embedding responses, so the plugin cannot see those tokens and records the call as unpriced."""
    if not _sdk_reports_embedding_usage():
        pytest.skip("this google-genai version drops embedding usage (recorded as unpriced)")
