"""A real local HTTP server answering like the model providers, the wire layer, and capture.

The server speaks HTTP/1.1 on 127.0.0.1: JSON bodies, SSE and NDJSON streams written event by
event (chunked, flushed), and records every request it served (path, headers, JSON body). Bodies
are shaped as the providers' real APIs answer.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_instrumentation_http import HTTPInstrumentor

Reply = tuple[int, dict[str, str], Any]  # status, headers, body bytes or a list of chunks (streamed)

OPENAI_USAGE = {
    "prompt_tokens": 1234,
    "completion_tokens": 56,
    "total_tokens": 1290,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}
STREAM_USAGE = {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def chat_completion(model: str = "gpt-4o-mini-2024-07-18") -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None, "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
        "usage": OPENAI_USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def chat_chunks(texts: tuple[str, ...] = ("Hel", "lo", " there", "!")) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-AxFtB6Z3YhS2dmkqBm6bzXeJwlQ9p", "object": "chat.completion.chunk", "created": 1738606833, "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_72ed7ab54c"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]} for text in texts]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    return chunks


def sse_events(events: list[Any], named: bool = False, done: bool = True) -> list[bytes]:
    out = [(f"event: {event['type']}\n" if named else "").encode() + f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode() for event in events]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def openai_chat(request: dict[str, Any]) -> Reply:
    """OpenAI's chat completions: JSON, or SSE; asked for usage, ``"usage":null`` on every chunk
    and a usage-only chunk before ``[DONE]`` (as api.openai.com does)."""
    body = request["json"]
    if body.get("stream") is not True:
        return 200, {"content-type": "application/json"}, json.dumps(chat_completion()).encode()
    include = (body.get("stream_options") or {}).get("include_usage") is True
    chunks = chat_chunks()
    events = [dict(chunk, usage=None) for chunk in chunks] if include else chunks
    if include:
        events.append({**{k: v for k, v in chunks[0].items() if k != "choices"}, "choices": [], "usage": STREAM_USAGE})
    return 200, {"content-type": "text/event-stream; charset=utf-8"}, sse_events(events)


class FakeProviders:
    """Routes by path; ``requests`` holds what reached the server."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.pause = 0.0  # seconds between streamed chunks (so that a client reads them as they come)
        self.routes: dict[str, Callable[[dict[str, Any]], Reply]] = {"/v1/chat/completions": openai_chat}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.routes[path] = lambda request: (status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode())

    def stream(self, path: str, chunks: list[bytes], content_type: str = "text/event-stream") -> None:
        self.routes[path] = lambda request: (200, {"content-type": content_type}, chunks)

    def gzip(self, path: str = "/v1/chat/completions") -> None:
        """Answer ``path`` as before, compressed with gzip (each chunk flushed, as servers stream it)."""
        original = self.routes[path]

        def compressed(request: dict[str, Any]) -> Reply:
            status, headers, body = original(request)
            encoder = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
            chunks = [body] if isinstance(body, bytes) else body
            out = [encoder.compress(chunk) + encoder.flush(zlib.Z_SYNC_FLUSH) for chunk in chunks] + [encoder.flush()]
            return status, {**headers, "content-encoding": "gzip"}, out

        self.routes[path] = compressed

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        providers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._reply(200, {"content-type": "application/json"}, b'{"ok":true}')

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"raw": raw.decode("latin-1")}
                path = self.path.partition("?")[0]
                record = {"path": path, "query": self.path.partition("?")[2], "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body}
                providers.requests.append(record)
                route = providers.routes.get(path)
                if route is None:
                    self._reply(404, {"content-type": "application/json"}, b'{"error":"not found"}')
                    return
                self._reply(*route(record))

            def _reply(self, status: int, headers: dict[str, str], body: Any) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if isinstance(body, bytes):
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in body:
                    if providers.pause:
                        time.sleep(providers.pause)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


@pytest.fixture
def providers():
    server = FakeProviders()
    yield server
    server.close()


@pytest.fixture
def wire():
    instance = HTTPInstrumentor()
    instance.instrument()
    yield instance
    instance.uninstrument()


@pytest.fixture
def rec(wire):
    with capture(config.load({})) as recorded:
        yield recorded


@pytest.fixture
def governed(wire, tmp_path):
    """``governed(env)`` -> a capture() context with the real enforcing governor on a SQLite file."""

    def start(env: dict[str, str]) -> Any:
        settings = config.load({"GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": f"sqlite:///{tmp_path}/ledger.db", **env})
        return capture(settings, governor=EnforcingGovernor(settings))

    return start


def one_span(recorded: Any) -> Any:
    spans = recorded.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


@pytest.fixture
def h() -> Any:
    """Helpers for the tests (test modules must not import each other or this file)."""
    import sys

    return sys.modules[__name__]


# --- the other protocols: (path, request body, JSON answer, stream events, stream content type, (input, output) tokens) ---
ANTHROPIC_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 6, "service_tier": "standard"},
}
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello!"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}},
    {"type": "message_stop"},
]
GEMINI_RESPONSE = {
    "candidates": [{"content": {"parts": [{"text": "Hello!"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 3, "totalTokenCount": 11, "thoughtsTokenCount": 2},
    "modelVersion": "gemini-2.5-flash", "responseId": "mGr2aKzBOaWgz7IPz5uNqA0",
}
GEMINI_CHUNKS = [
    {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}], "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.5-flash", "responseId": "mGr2aKzBOaWgz7IPz5uNqA0"},
    {"candidates": [{"content": {"parts": [{"text": "lo!"}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 3, "totalTokenCount": 13, "thoughtsTokenCount": 2}, "modelVersion": "gemini-2.5-flash", "responseId": "mGr2aKzBOaWgz7IPz5uNqA0"},
]
OLLAMA_CHAT = {"model": "llama3.2", "created_at": "2025-05-01T10:00:00.000Z", "message": {"role": "assistant", "content": "Hello!"}, "done_reason": "stop", "done": True, "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": 26, "prompt_eval_duration": 342546000, "eval_count": 7, "eval_duration": 4535599000}
OLLAMA_LINES = [
    {"model": "llama3.2", "created_at": "2025-05-01T10:00:00.000Z", "message": {"role": "assistant", "content": "Hel"}, "done": False},
    {"model": "llama3.2", "created_at": "2025-05-01T10:00:00.100Z", "message": {"role": "assistant", "content": "lo!"}, "done": False},
    {**OLLAMA_CHAT, "message": {"role": "assistant", "content": ""}},
]
COHERE_CHAT = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finish_reason": "COMPLETE",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
    "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 3}, "tokens": {"input_tokens": 71, "output_tokens": 3}},
}
COHERE_EVENTS = [
    {"type": "message-start", "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "delta": {"message": {"role": "assistant", "content": []}}},
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello!"}}}},
    {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 3}, "tokens": {"input_tokens": 71, "output_tokens": 3}}}},
]


def ndjson(lines: list[Any]) -> list[bytes]:
    return [json.dumps(line).encode() + b"\n" for line in lines]


PROTOCOLS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "path": "/v1/messages", "provider": "anthropic", "model": "claude-haiku-4-5",
        "body": {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello"}]},
        "answer": ANTHROPIC_MESSAGE, "stream": sse_events(ANTHROPIC_EVENTS, named=True, done=False), "usage": (112, 6), "stream_usage": (112, 6),
        "stream_body": {"stream": True}, "error": lambda body: body["type"] == "error" and body["error"]["type"] == "permission_error", "priced": True,
    },
    "gemini": {
        "path": "/v1beta/models/gemini-2.5-flash:generateContent", "stream_path": "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "provider": "gcp.gemini", "model": "gemini-2.5-flash",
        "body": {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}], "generationConfig": {"maxOutputTokens": 64}},
        "answer": GEMINI_RESPONSE, "stream": sse_events(GEMINI_CHUNKS, done=False), "usage": (8, 5), "stream_usage": (8, 5),
        "stream_body": {}, "error": lambda body: body["error"]["status"] == "PERMISSION_DENIED" and body["error"]["code"] == 403, "priced": True,
    },
    "ollama": {
        "path": "/api/chat", "provider": "ollama", "model": "llama3.2",
        "body": {"model": "llama3.2", "messages": [{"role": "user", "content": "Say hello"}], "stream": False},
        "answer": OLLAMA_CHAT, "stream": ndjson(OLLAMA_LINES), "content_type": "application/x-ndjson", "usage": (26, 7), "stream_usage": (26, 7),
        "stream_body": {"stream": True}, "error": lambda body: isinstance(body["error"], str), "priced": False,
    },
    "cohere": {
        "path": "/v2/chat", "provider": "cohere", "model": "command-a-03-2025",
        "body": {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "Say hello"}]},
        "answer": COHERE_CHAT, "stream": sse_events(COHERE_EVENTS, named=True, done=False), "usage": (5, 3), "stream_usage": (5, 3),
        "stream_body": {"stream": True}, "error": lambda body: isinstance(body["message"], str), "priced": False, "budget_status": 402,
    },
}
