"""What GenOps' spans do not do: ride on the SDK's requests, or pull others' spans into its exporter.

GenOps' call span is never made OpenTelemetry's current span while the SDK runs, so an SDK that
propagates trace context (anthropic 2.x does, through the global propagator, even with no SDK
set up) sends under ``genops-run`` exactly the headers it sends bare, and the spans it opens keep
their bare parent. The contrib instrumentors ``genops-run`` activates record into GenOps' own
providers, never into the application's. Real subprocesses, the local endpoint, headers as the
endpoint received them.
"""

from __future__ import annotations

from typing import Any

import pytest

ANTHROPIC = '''
import json
import anthropic

client = anthropic.Anthropic(max_retries=0)
client.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Say hello"}])
client.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Say hello"}])
'''

# Header values that differ from one bare run to the next (none today); compared by name only.
VOLATILE: set[str] = set()


def _comparable(headers: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{key: ("*" if key in VOLATILE else value) for key, value in request.items()} for request in headers]


def test_an_sdk_that_propagates_sends_the_bare_headers(apps: Any) -> None:
    pytest.importorskip("anthropic._tracing", reason="anthropic 2.x propagates trace context")
    bare = apps.run(ANTHROPIC, launcher="python")
    again = apps.run(ANTHROPIC, launcher="python")
    VOLATILE.update(key for first, second in zip(bare.headers, again.headers) for key in first if first.get(key) != second.get(key))
    instrumented = apps.run(ANTHROPIC)
    assert len(bare.headers) == 2 and "traceparent" not in bare.headers[0]
    assert _comparable(instrumented.headers) == _comparable(bare.headers)
    # GenOps recorded the call; the SDK's own spans (no SDK set up) went nowhere, as bare.
    assert instrumented.exported_names() == [("genops", "chat claude-sonnet-4-6")]


APP_PROPAGATES = ANTHROPIC.replace(
    "client = anthropic",
    '''from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
outer = trace.get_tracer("app").start_span("app request")
token = __import__("opentelemetry.context", fromlist=["attach"]).attach(trace.set_span_in_context(outer))
client = anthropic''',
) + '''
outer.end()
print("app spans:", json.dumps(app_spans(exporter)))
'''


def test_where_the_application_propagates_its_sdk_spans_keep_their_bare_parents(apps: Any) -> None:
    pytest.importorskip("anthropic._tracing", reason="anthropic 2.x traces its own calls")
    bare = apps.run(APP_PROPAGATES, launcher="python")
    instrumented = apps.run(APP_PROPAGATES)
    # The header names a span of the application's trace either way.
    for run in (bare, instrumented):
        outer = {span["name"]: span for span in run.printed("app spans")}["app request"]
        assert [request["traceparent"].split("-")[1] for request in run.headers] == [f"{outer['trace_id']:032x}"] * 2

    def sdk_spans(run: Any) -> list[tuple[str, str | None]]:
        spans = run.printed("app spans")
        names = {span["span_id"]: span["name"] for span in spans}
        return sorted((span["name"], names.get(span["parent_id"])) for span in spans if not span["scope"].startswith("genops"))

    assert sdk_spans(instrumented) == sdk_spans(bare)  # the SDK's spans: same names, same parents
    (genops,) = [span for span in instrumented.printed("app spans") if span["scope"].startswith("genops")]
    assert genops["parent_id"] == outer["span_id"]  # recorded into the application's provider, beside the SDK's
    assert instrumented.exported == []


CONTRIB = '''
import json
import openai
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

app = FastAPI()
client = openai.OpenAI(max_retries=0)


@app.get("/chat")
def chat():
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    return {"ok": True}


print("status:", TestClient(app).get("/chat").status_code)
print("app spans:", json.dumps(app_spans(exporter)))
'''


def test_a_contrib_instrumentor_activated_by_genops_run_records_into_genops_providers(apps: Any) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("opentelemetry.instrumentation.fastapi")
    result = apps.run(CONTRIB)
    assert result.printed("status") == 200
    contrib = "opentelemetry.instrumentation.fastapi"
    server_spans = [span for span in result.exported if span["scope"] == contrib and span["kind"] == "SpanKind.SERVER"]
    assert [span["name"] for span in server_spans] == ["GET /chat"]
    app_spans = result.printed("app spans")
    assert not [span for span in app_spans if span["scope"] == contrib]  # never into the application's provider
    # The model call: recorded into the application's provider, a child of the server span.
    (call,) = [span for span in app_spans if span["scope"].startswith("genops")]
    assert f"0x{call['parent_id']:016x}" == server_spans[0]["context"]["span_id"]
    assert not [span for span in result.exported if span["scope"].startswith("genops")]
