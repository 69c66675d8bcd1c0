"""Counted once across layers: the real OpenAI SDK against a local chat-completions endpoint, GenOps'
OpenAI plugin, and another layer that emits GenAI telemetry of its own (the official
opentelemetry-instrumentation-openai-v2, a framework's client span, util-genai's handler), all
recording into one real OpenTelemetry SDK with in-memory exporters.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.engine.engine import Engine
from genops_autoinstrument.engine.runtime import set_engine

MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"
USAGE = (24, 9)
COST = USAGE[0] * 0.15 / 1_000_000 + USAGE[1] * 0.60 / 1_000_000  # gpt-4o-mini list prices


class Endpoint:
    """A local /v1/chat/completions answering like api.openai.com; counts what reached it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
        if body.get("stream"):
            return httpx.Response(200, content=self._stream(number), headers={"content-type": "text/event-stream"})
        completion = {
            "id": f"chatcmpl-Counted{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": SNAPSHOT,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Once.", "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1], "total_tokens": sum(USAGE)},
            "system_fingerprint": "fp_06737a9306",
        }
        return httpx.Response(200, json=completion)

    @staticmethod
    def _stream(number: int) -> bytes:
        base = {"id": f"chatcmpl-Counted{number:05d}", "object": "chat.completion.chunk", "created": 1741569952, "model": SNAPSHOT}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Once."}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1], "total_tokens": sum(USAGE)}},
        ]
        return b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks) + b"data: [DONE]\n\n"

    def client(self) -> Any:
        import openai

        return openai.OpenAI(api_key="sk-test-counted-once", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(self.handler)))


@dataclass
class Telemetry:
    """One real SDK tracer and meter provider (in-memory), and GenOps' engine recording into them."""

    exporter: Any
    reader: Any
    tracer_provider: Any
    meter_provider: Any
    engine: Engine
    endpoint: Endpoint = field(default_factory=Endpoint)

    def spans(self) -> list[Any]:
        self.engine.flush()
        return list(self.exporter.get_finished_spans())

    def genai_spans(self) -> list[Any]:
        return [span for span in self.spans() if "gen_ai.operation.name" in (span.attributes or {})]

    def points(self, name: str) -> list[tuple[str, dict[str, Any], Any]]:
        """(scope name, attributes, data point) of every point of metric ``name``."""
        self.engine.flush()
        found = []
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found += [(scope_metrics.scope.name, dict(point.attributes), point) for point in metric.data.data_points]
        return found

    def token_sums(self) -> dict[str, list[int]]:
        """gen_ai.client.token.usage sums by scope ("genops" for GenOps')."""
        sums: dict[str, list[int]] = {}
        for scope, _, point in self.points("gen_ai.client.token.usage"):
            sums.setdefault("genops" if scope.startswith("genops") else scope, []).append(point.sum)
        return {scope: sorted(values) for scope, values in sums.items()}

    def cost_total(self) -> float:
        return sum(point.value for _, _, point in self.points("genops.cost"))


def telemetry_for(settings: config.Settings) -> Iterator[Telemetry]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    engine = Engine(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
    previous = config._current
    config.set_current(settings)
    set_engine(engine)
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider, engine)
    finally:
        set_engine(None)
        config.set_current(previous)
        tracer_provider.shutdown()
        meter_provider.shutdown()


@pytest.fixture
def settings() -> config.Settings:
    return config.load({"GENOPS_TEAM": "search", "GENOPS_BUDGETS": "team=5/day", "GENOPS_BLOCKED_MODELS": "gpt-4o", "GENOPS_LEDGER_URL": "memory://"})


@pytest.fixture
def telemetry(settings: config.Settings) -> Iterator[Telemetry]:
    yield from telemetry_for(settings)


@pytest.fixture
def genops_openai() -> Iterator[None]:
    """GenOps' OpenAI plugin, as genops-run activates it."""
    from genops_instrumentation_openai import OpenAIInstrumentor

    plugin = OpenAIInstrumentor()
    plugin.instrument()
    yield
    plugin.uninstrument()


@pytest.fixture
def h() -> Any:
    """Constants for the tests (test modules must not import this file)."""
    import types

    return types.SimpleNamespace(MODEL=MODEL, USAGE=USAGE, COST=COST)
