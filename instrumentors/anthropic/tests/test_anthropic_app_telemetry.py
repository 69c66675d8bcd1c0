"""The application's telemetry stays its own, end to end: a real app run bare and under `genops-run`
against the local provider over HTTP (GenOps exporting to the console).

* An app with no OpenTelemetry at all: GenOps exports its own spans and none of the SDK's
  (`anthropic.messages.count_tokens` included), and the app's requests are the bare ones.
* An app that sets its own global tracer provider before its first call, or after it: it keeps
  the provider and gets the SDK's spans exactly as bare.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = Path(sys.executable).parent / "genops-run"
MARK = "APP-RESULT "

APP = r'''
import json, os, sys
import anthropic
import anthropic._base_client as base

http = getattr(base, "httpx2", None) or base.httpx
mode = os.environ["APP_OTEL"]
sent = []


def hook(request):
    sent.append({"path": request.url.path, "headers": dict(request.headers), "body": json.loads(request.content or b"{}")})


exporter = None


def set_up_otel():
    global exporter
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "the application lost its provider"


def calls(client):
    client.messages.create(model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "Hello"}])
    client.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hello"}])
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]) as stream:
        stream.get_final_message()


if mode in ("global-before", "global-before-sdk-off"):
    set_up_otel()
options = {"open_telemetry": False} if mode == "global-before-sdk-off" else {}
client = anthropic.Anthropic(http_client=http.Client(event_hooks={"request": [hook]}), max_retries=0, **options)
calls(client)
if mode == "global-after":
    set_up_otel()
    calls(anthropic.Anthropic(http_client=http.Client(event_hooks={"request": [hook]}), max_retries=0))

spans = []
if exporter is not None:
    finished = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time)
    index = {span.context.span_id: position for position, span in enumerate(finished)}
    for span in finished:
        if span.name.startswith("anthropic."):
            parent = None if span.parent is None else index.get(span.parent.span_id, "outside")
            spans.append([span.name, span.kind.name, span.status.status_code.name, parent])
for request in sent:
    traceparent = request["headers"].get("traceparent")
    if traceparent:  # which of the app's spans it names, ids being new each run
        span_id = int(traceparent.split("-")[2], 16)
        names = {span.context.span_id: span.name for span in (exporter.get_finished_spans() if exporter else ())}
        request["headers"]["traceparent"] = names.get(span_id, "a span the app does not have")
every = sorted(span.name for span in exporter.get_finished_spans()) if exporter is not None else []
print("APP-RESULT " + json.dumps({"sent": sent, "spans": spans, "every": every}), flush=True)
'''


@pytest.fixture(scope="module")
def provider_url():
    spec = importlib.util.spec_from_file_location("_anthropic_app_local_provider", REPO / "examples" / "local_provider" / "server.py")
    server = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    with server.running(routes=server.load_routes(names=["anthropic"])) as running:
        yield running.url


def _run(tmp_path, provider_url, mode, governed):
    app = tmp_path / "app.py"
    app.write_text(APP)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "ANTHROPIC_", "PYTHON"))}
    environment.update(
        APP_OTEL=mode,
        ANTHROPIC_BASE_URL=provider_url,
        ANTHROPIC_API_KEY="sk-ant-demo",
        GENOPS_LEDGER_URL="memory://",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    command = [str(LAUNCHER), sys.executable, str(app)] if governed else [sys.executable, str(app)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    return json.loads(line[len(MARK):]), result.stdout.replace(line, "")


@pytest.mark.skipif(not LAUNCHER.exists(), reason="genops-run is not installed in this environment")
@pytest.mark.parametrize("mode", ["none", "global-before", "global-after"])
def test_the_apps_telemetry_and_requests_are_its_own(mode, tmp_path, provider_url):
    bare, bare_console = _run(tmp_path, provider_url, mode, governed=False)
    governed, console = _run(tmp_path, provider_url, mode, governed=True)
    assert governed["sent"] == bare["sent"]  # headers (trace context by span name) and bodies
    assert governed["spans"] == bare["spans"]  # the SDK's spans the app's own provider got
    assert bare_console.strip() == ""  # premise: bare, nothing exports to the console
    exported = [json.loads(block)["name"] for block in _json_blocks(console)]
    assert not any(name.startswith("anthropic.") for name in exported), exported  # none of the SDK's spans
    if mode == "none":  # GenOps exports its own spans when the app has no provider of its own
        assert exported.count("chat claude-sonnet-4-6") == 2


def _json_blocks(text):
    """The console exporter's spans: one pretty-printed JSON object each."""
    blocks, depth, start = [], 0, None
    for position, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = position
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and start is not None:
                blocks.append(text[start : position + 1])
    return [block for block in blocks if '"name"' in block and '"context"' in block]


@pytest.mark.skipif(not LAUNCHER.exists(), reason="genops-run is not installed in this environment")
def test_an_app_that_turned_the_sdks_telemetry_off_gets_none_of_it_in_its_provider(tmp_path, provider_url):
    anthropic = pytest.importorskip("anthropic")
    if "open_telemetry" not in inspect.signature(anthropic.Anthropic.__init__).parameters:
        pytest.skip(f"anthropic {anthropic.__version__} has no telemetry of its own to turn off")
    # The application has a provider of its own but told the SDK (open_telemetry=False) to keep
    # its calls out of it: bare its provider gets nothing, and under genops-run neither; GenOps
    # records the calls into its own providers instead.
    bare, _ = _run(tmp_path, provider_url, "global-before-sdk-off", governed=False)
    governed, console = _run(tmp_path, provider_url, "global-before-sdk-off", governed=True)
    assert bare["every"] == [] and governed["every"] == []
    assert governed["sent"] == bare["sent"]
    exported = [json.loads(block)["name"] for block in _json_blocks(console)]
    assert exported.count("chat claude-sonnet-4-6") == 2
