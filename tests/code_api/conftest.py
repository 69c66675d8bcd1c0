"""Shared fixtures for the code-API tests: the real OpenAI SDK and its GenOps plugin against a
local chat-completions endpoint (an httpx transport answering like api.openai.com and counting
what it was sent), the real OpenTelemetry SDK (``capture``), and real ledgers."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any, Iterator

import httpx
import openai
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_instrumentation_openai import OpenAIInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
PRICED_MODEL = "gpt-4o-mini"  # answered as gpt-4o-mini-2024-07-18, which genai-prices knows
UNPRICED_MODEL = "acme-private-llm-7b"  # a self-hosted model no price table knows
# Small, realistic usage: "Say hello" with max_tokens=20.
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}
RESPONSE_MODELS = {PRICED_MODEL: "gpt-4o-mini-2024-07-18"}


class Endpoint:
    """A local /v1/chat/completions: answers each request with a completion of the requested
    model, records every request it was sent (thread-safe)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = USAGE  # None: a response without usage (cannot be priced)
        self.delay = 0.0  # seconds each answer takes
        self.most_in_flight = 0  # the most requests it was answering at once
        self._in_flight = 0
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            time.sleep(self.delay)
            return self._answer(body, number)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, body: dict[str, Any], number: int) -> httpx.Response:
        model = body.get("model", PRICED_MODEL)
        completion = {
            "id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S5q{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": RESPONSE_MODELS.get(model, model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None, "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }
        if self.usage is not None:
            completion["usage"] = self.usage
        return httpx.Response(200, json=completion, headers={"x-request-id": f"req_{number}"})

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=API_KEY, max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(self.handler)))

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=API_KEY, max_retries=0, http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)))


def chat(client: openai.OpenAI, model: str = PRICED_MODEL) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)


async def achat(client: openai.AsyncOpenAI, model: str = PRICED_MODEL) -> Any:
    return await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)


@pytest.fixture(autouse=True)
def _no_ambient_genops(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def instrumentor() -> Iterator[OpenAIInstrumentor]:
    instance = OpenAIInstrumentor()
    instance.instrument()
    yield instance
    instance.uninstrument()


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def recorded(instrumentor: Any) -> Iterator[Any]:
    """A capture with the default settings (no rule: the governor is inactive)."""
    with capture(config.load({})) as rec:
        yield rec


@pytest.fixture
def h() -> Any:
    """Helpers for the tests (test modules must not import each other or this file)."""
    import types

    return types.SimpleNamespace(chat=chat, achat=achat, PRICED_MODEL=PRICED_MODEL, UNPRICED_MODEL=UNPRICED_MODEL, USAGE=USAGE, Endpoint=Endpoint)


# --- the real redis-server of tests/conftest.py --------------------------------------------------
@pytest.fixture
def clean_redis(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


# --- a governor on a real SQLite ledger file ------------------------------------------------------
@pytest.fixture
def ledger_path(tmp_path: Any) -> str:
    return str(tmp_path / "ledger.db")


@pytest.fixture
def governed(instrumentor: Any, ledger_path: str) -> Any:
    """``with governed(GENOPS_...=...) as (recorded, governor):`` an EnforcingGovernor on a SQLite file."""

    @contextlib.contextmanager
    def make(**env: str) -> Iterator[tuple[Any, EnforcingGovernor]]:
        settings = config.load({"GENOPS_LEDGER_URL": f"sqlite:///{ledger_path}", **env})
        governor = EnforcingGovernor(settings)
        try:
            with capture(settings, governor=governor) as recorded:
                yield recorded, governor
        finally:
            governor.close()

    return make
