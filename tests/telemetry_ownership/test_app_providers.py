"""Under ``genops-run`` the application's OpenTelemetry stays its own (issue 13).

GenOps exports through providers of its own and never registers them as the global ones: an
application that sets up OpenTelemetry before or after its first model call keeps it, and its
spans never reach GenOps' exporter. A call made while the application has a real global provider
is recorded into it, as OpenTelemetry instrumentations do; otherwise into GenOps' providers (a
provider that cannot be loaded counts as none). Spans opened through the global API with no SDK
set up go nowhere, as bare. Real applications run as subprocesses through ``genops-run`` against
the local OpenAI-compatible endpoint; the application's own SDK records into an in-memory
exporter that it prints, GenOps' into the file exporter of ``conftest.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("openai")

CHAT = '''
import json, os
import openai

client = openai.OpenAI(max_retries=0)


def chat(tag):
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": tag}], max_tokens=8)


def in_memory_provider():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
'''

OVERRIDE = "Overriding of current"


def _prompt(span: dict[str, Any]) -> str:
    return " ".join(part["content"] for message in json.loads(span["attributes"]["gen_ai.input.messages"]) for part in message["parts"])


def test_an_application_that_sets_its_provider_after_its_first_call_keeps_it(apps: Any) -> None:
    result = apps.run(
        CHAT
        + '''
from opentelemetry import trace

chat("first")  # GenOps records it: the application has no provider yet
provider, exporter = in_memory_provider()
trace.set_tracer_provider(provider)  # telemetry set up lazily, after the first model call
with trace.get_tracer("app").start_as_current_span("app work"):
    chat("second")
print("kept:", json.dumps(trace.get_tracer_provider() is provider))
print("app spans:", json.dumps(app_spans(exporter)))
'''
    )
    assert OVERRIDE not in result.stderr
    assert result.printed("kept") is True
    # The application's exporter: its own span, and the call made while it had a provider, under it.
    app_spans = {span["name"]: span for span in result.printed("app spans")}
    assert set(app_spans) == {"app work", "chat gpt-4o-mini"}
    assert app_spans["app work"]["scope"] == "app"
    assert app_spans["chat gpt-4o-mini"]["scope"].startswith("genops")
    assert app_spans["chat gpt-4o-mini"]["parent_id"] == app_spans["app work"]["span_id"]
    assert app_spans["chat gpt-4o-mini"]["attributes"]["genops.cost.status"] == "priced"
    # GenOps' exporter: the first call only; never the application's span.
    assert result.exported_names() == [("genops", "chat gpt-4o-mini")]
    assert _prompt(result.exported[0]) == "first"
    assert result.metric_sum("gen_ai.client.operation.duration") == 2  # no meter provider of its own: both calls in GenOps'


def test_a_call_made_under_the_applications_provider_is_recorded_into_it(apps: Any) -> None:
    result = apps.run(
        CHAT
        + '''
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

provider, exporter = in_memory_provider()
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
chat("only")
names = [m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
print("app metrics:", json.dumps(sorted(set(names))))
print("app spans:", json.dumps(app_spans(exporter)))
'''
    )
    assert OVERRIDE not in result.stderr
    (span,) = result.printed("app spans")
    assert span["name"] == "chat gpt-4o-mini" and span["scope"].startswith("genops") and span["parent_id"] is None
    assert span["attributes"]["genops.cost.status"] == "priced"
    assert {"genops.cost", "gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= set(result.printed("app metrics"))
    assert result.exported == [] and result.metrics == []  # GenOps built no provider of its own


def test_the_otel_api_without_an_sdk_exports_only_genops_spans(apps: Any) -> None:
    result = apps.run(
        CHAT
        + '''
from opentelemetry import trace

tracer = trace.get_tracer("app")
with tracer.start_as_current_span("app work"):  # no SDK set up: a no-op span, as bare
    with tracer.start_as_current_span("app step"):
        chat("inside")
print("provider:", json.dumps(type(trace.get_tracer_provider()).__name__))
'''
    )
    assert result.printed("provider") == "ProxyTracerProvider"  # GenOps registered nothing
    assert result.exported_names() == [("genops", "chat gpt-4o-mini")]
    assert result.exported[0]["parent_id"] is None


def test_an_application_with_no_opentelemetry_at_all(apps: Any) -> None:
    result = apps.run(CHAT + 'chat("one")\nchat("two")\nimport sys\nprint("otel imported by the app:", json.dumps(False))\n')
    assert result.exported_names() == [("genops", "chat gpt-4o-mini")] * 2
    assert [_prompt(span) for span in sorted(result.exported, key=lambda span: span["start_time"])] == ["one", "two"]
    assert result.metric_sum("genops.cost") > 0


def test_a_global_provider_that_cannot_be_loaded_counts_as_none(apps: Any) -> None:
    result = apps.run(CHAT + 'chat("one")\n', OTEL_PYTHON_TRACER_PROVIDER="no_such_provider", OTEL_PYTHON_METER_PROVIDER="no_such_provider")
    assert result.exported_names() == [("genops", "chat gpt-4o-mini")]
    assert result.metric_sum("genops.cost") > 0
    assert "Failed to load configured provider" not in result.stderr and "Traceback" not in result.stderr


def test_flush_exports_before_a_process_ends_without_its_exit_handlers(apps: Any) -> None:
    # A serverless runtime freezes or kills the process after the handler returns: only what was
    # exported by then survives. os._exit skips every exit handler, GenOps' included.
    handler = CHAT + 'chat("in the handler")\nimport genops_autoinstrument, os\nprint("flushed:", json.dumps(genops_autoinstrument.flush(5)))\n'
    result = apps.run(handler + 'os._exit(0)\n')
    assert result.printed("flushed") is True
    assert result.exported_names() == [("genops", "chat gpt-4o-mini")]
    assert result.metric_sum("genops.cost") > 0
    without = apps.run(CHAT + 'chat("in the handler")\nimport os\nos._exit(0)\n')
    assert without.exported_names() == []  # the proof that flush() is what exported it
