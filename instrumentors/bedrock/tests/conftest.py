"""Shared fixtures: a local HTTP server playing Bedrock Runtime, AWS event-stream framing, clients."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api import Decision
from genops_autoinstrument.governance.governor import Governor, Ticket

REGION = "us-east-1"


# --- AWS event-stream framing (application/vnd.amazon.eventstream) --------------------------
def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC32), string headers, payload, message CRC32."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """A ConverseStream event (messageStart, contentBlockDelta, messageStop, metadata…)."""
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return frame(headers, json.dumps(payload).encode())


def chunk(body: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event carrying one model-family JSON body."""
    payload = {"bytes": base64.b64encode(json.dumps(body).encode()).decode(), "p": "abcdefghij"}
    return event("chunk", payload)


def exception_event(exception_type: str, message: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    return frame(headers, json.dumps({"message": message}).encode())


# --- the local server ---------------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    truncate: bool = False  # announce the full length, send half, close: a dropped connection


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LocalAWS:
    """Answers every request with the next queued Reply, and records what arrived."""

    def __init__(self) -> None:
        self.replies: list[Reply | Callable[[Received], Reply]] = []
        self.received: list[Received] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(self.command, self.path, dict(self.headers), self.rfile.read(length))
                owner.received.append(request)
                reply = owner.replies.pop(0) if owner.replies else Reply(500, b'{"message":"no reply queued"}')
                if callable(reply):
                    reply = reply(request)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("x-amzn-RequestId", "11111111-2222-3333-4444-555555555555")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.truncate:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.truncate:
                    self.wfile.write(reply.body[: len(reply.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reply_json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.replies.append(Reply(status, json.dumps(body).encode(), headers or {}))

    def reply_stream(self, frames: list[bytes], truncate: bool = False) -> None:
        self.replies.append(Reply(200, b"".join(frames), {}, "application/vnd.amazon.eventstream", truncate))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Test credentials only: nothing from the machine's AWS configuration, no metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_S3", "AWS_USE_FIPS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _local_aws():
    local = LocalAWS()
    yield local
    local.close()


@pytest.fixture
def server(_local_aws: LocalAWS) -> LocalAWS:
    """The session's server with an empty queue and log (starting one per test costs 0.5 s)."""
    _local_aws.replies.clear()
    _local_aws.received.clear()
    return _local_aws


@pytest.fixture
def instrumented():
    from genops_instrumentation_bedrock import BedrockInstrumentor

    instrumentor = BedrockInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def make_client(service: str, endpoint_url: str | None) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def bedrock(aws_env: None, server: LocalAWS, instrumented: Any) -> Any:
    return make_client("bedrock-runtime", server.url)


@pytest.fixture
def settings() -> config.Settings:
    return config.load({})


class BlockingGovernor(Governor):
    """Answers every call with one fixed decision."""

    active = True

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.asked = 0

    def decide(self, request: Any, attribution: Any) -> Ticket:
        self.asked += 1
        return Ticket(decision=self.decision)


@pytest.fixture
def blocking_governor():
    return BlockingGovernor


class EventStreamFrames:
    """The framing helpers, as a fixture (test modules cannot import conftest under importlib mode)."""

    frame = staticmethod(frame)
    event = staticmethod(event)
    chunk = staticmethod(chunk)
    exception = staticmethod(exception_event)


@pytest.fixture
def frames() -> EventStreamFrames:
    return EventStreamFrames()


@pytest.fixture
def client_factory(aws_env: None, server: LocalAWS) -> Callable[..., Any]:
    """make_client(service, endpoint_url=server.url) for tests that need other services or endpoints."""

    def factory(service: str, endpoint_url: str | None = server.url) -> Any:
        return make_client(service, endpoint_url)

    return factory


class RecordingGovernor(Governor):
    """Allows everything and keeps the CallRequests it saw (to check what pricing will receive)."""

    active = True

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def decide(self, request: Any, attribution: Any) -> Ticket:
        self.requests.append(request)
        return Ticket()


@pytest.fixture
def recording_governor() -> RecordingGovernor:
    return RecordingGovernor()
