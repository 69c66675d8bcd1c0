"""OpenTelemetry's shared inference key (opentelemetry-util-genai 1.3b0 and later).

util-genai 1.3b0 puts the inference an instrumentation starts in the context under
``CLIENT_INFERENCE_CONTEXT_KEY``; an instrumentation below that finds it publishes into it instead
of a span and metrics of its own (semantic-conventions-genai #475, opentelemetry-python-genai #663).
GenOps honours the key (a util-genai inference above GenOps' call is enriched, GenOps' usage
published into it) and sets it (a util-genai instrumentation below GenOps' call is suppressed).

The contrib OpenAI instrumentation (2.4b0) does not load with util-genai 1.3b0, so the test
environment pins util-genai 1.1b0 and keeps 1.3b0 in a folder of its own (.ci/test.sh), which a
subprocess puts first on its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

UTIL_GENAI_13 = Path(sys.prefix) / "extras" / "util-genai-1.3b0"

pytestmark = pytest.mark.skipif(not UTIL_GENAI_13.is_dir(), reason=f"util-genai 1.3b0 is not installed in {UTIL_GENAI_13} (.ci/test.sh)")

SCRIPT = r'''
import json, sys
import httpx, openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.genai.handler import TelemetryHandler
import opentelemetry.util.genai.version as util_version

from genops_autoinstrument import config
from genops_autoinstrument.engine.engine import Engine
from genops_autoinstrument.engine.runtime import set_engine
from genops_instrumentation_openai import OpenAIInstrumentor

exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
reader = InMemoryMetricReader()
meter_provider = MeterProvider(metric_readers=[reader])
settings = config.load({"GENOPS_TEAM": "search"})
config.set_current(settings)
engine = Engine(settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
set_engine(engine)
OpenAIInstrumentor().instrument()
handler = TelemetryHandler(tracer_provider=tracer_provider, meter_provider=meter_provider, instrumentation_scope_name="util_genai_layer")
inner = []

def answer(request):
    if sys.argv[1] == "below":  # a util-genai instrumentation under the SDK call (a transport's, say)
        invocation = handler.inference("openai", request_model="gpt-4o-mini")
        inner.append(type(invocation).__name__)
        invocation.data.usage_input_tokens, invocation.data.usage_output_tokens = 24, 9
        invocation.stop()
    return httpx.Response(200, json={
        "id": "chatcmpl-shared", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Once."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 24, "completion_tokens": 9, "total_tokens": 33},
    })

client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(answer)))
if sys.argv[1] == "above":  # a framework's util-genai inference around the SDK call GenOps records
    with handler.inference("openai", request_model="gpt-4o-mini"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
else:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
engine.flush()
spans = [{"scope": s.instrumentation_scope.name, "kind": s.kind.name, "attributes": dict(s.attributes)} for s in exporter.get_finished_spans()]
points = []
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            for point in metric.data.data_points:
                points.append({"scope": sm.scope.name, "name": metric.name, "attributes": dict(point.attributes), "value": getattr(point, "sum", getattr(point, "value", None))})
print(json.dumps({"util_genai": util_version.__version__, "spans": spans, "points": points, "inner": inner}))
'''


def _run(where: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(UTIL_GENAI_13), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, where], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["util_genai"] == "1.3b0"
    return found


def _tokens(found: dict[str, Any]) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = {}
    for point in found["points"]:
        if point["name"] == "gen_ai.client.token.usage":
            sums.setdefault(point["scope"], []).append(point["value"])
    return {scope: sorted(values) for scope, values in sums.items()}


def _cost(found: dict[str, Any]) -> float:
    return sum(point["value"] for point in found["points"] if point["name"] == "genops.cost")


COST = 24 * 0.15 / 1_000_000 + 9 * 0.60 / 1_000_000


def test_genops_enriches_the_util_genai_inference_above_it_and_publishes_its_usage() -> None:
    found = _run("above")
    (span,) = [span for span in found["spans"] if "gen_ai.operation.name" in span["attributes"]]
    assert span["scope"] == "util_genai_layer" and span["kind"] == "CLIENT"
    # The framework's inference had no usage of its own: GenOps published what the SDK answered.
    assert (span["attributes"]["gen_ai.usage.input_tokens"], span["attributes"]["gen_ai.usage.output_tokens"]) == (24, 9)
    assert span["attributes"]["gen_ai.response.id"] == "chatcmpl-shared"
    assert span["attributes"]["genops.cost.total"] == pytest.approx(COST)
    assert span["attributes"]["genops.team"] == "search"
    assert _tokens(found) == {"util_genai_layer": [9, 24]}
    assert _cost(found) == pytest.approx(COST)


def test_a_util_genai_instrumentation_below_genops_publishes_into_genops_call() -> None:
    found = _run("below")
    assert found["inner"] == ["SuppressedInferenceInvocation"]
    (span,) = [span for span in found["spans"] if "gen_ai.operation.name" in span["attributes"]]
    assert span["scope"].startswith("genops")
    assert span["attributes"]["genops.cost.total"] == pytest.approx(COST)
    assert _tokens(found) == {"genops_autoinstrument": [9, 24]}
    assert _cost(found) == pytest.approx(COST)
