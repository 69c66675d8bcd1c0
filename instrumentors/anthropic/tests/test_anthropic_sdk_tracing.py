"""anthropic 1.14+ traces its own calls with OpenTelemetry (on by default) and propagates their trace
context. An application that gives the SDK its own tracer provider gets, under GenOps, exactly the
SDK spans it gets bare (names, kinds, status, attributes, parents, count, and the trace context
each request carries), while GenOps records each call once, in its own span beside them.

Each scenario runs twice with the real SDK against the same local transport: bare (plugin
uninstrumented) and governed (plugin on, GenOps recording through ``capture``), each time with a
fresh application provider; the two recordings must be equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

pytest.importorskip("anthropic._tracing", reason="the SDK has its own OTel spans from anthropic 1.14")

MODEL = "claude-sonnet-4-6"
PROMPT = [{"role": "user", "content": "Say hello"}]
ASK = {"model": MODEL, "max_tokens": 64, "messages": PROMPT}
# Attributes that measure time: present in both runs, with values no two runs share.
TIMINGS = ("gen_ai.response.time_to_first_chunk",)


def _message(content, stop_reason, msg_id="msg_01"):
    usage = {"input_tokens": 10, "output_tokens": 5}
    return {"id": msg_id, "type": "message", "role": "assistant", "model": MODEL, "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def tool_server(base):
    """A scripted model for the tool runner: tool_use, then (after the tool result) end_turn; a
    compaction request gets a compaction block."""

    class ToolServer(base):
        def __call__(self, request):
            body = json.loads(request.content or b"{}")
            last = body.get("messages", [{}])[-1].get("content")
            if body.get("compaction"):
                self.body = _message([{"type": "compaction", "content": "The user asked for the weather."}], "compaction", "msg_c")
            elif isinstance(last, list) and any(block.get("type") == "tool_result" for block in last):
                self.body = _message([{"type": "text", "text": "It is sunny in Paris."}], "end_turn", "msg_2")
            else:
                self.body = _message([{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}], "tool_use", "msg_1")
            return super().__call__(request)

    return ToolServer()


def _tool_runner(client):
    from anthropic import beta_tool

    @beta_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    runner = client.beta.messages.tool_runner(tools=[weather], **ASK)
    for index, _ in enumerate(runner):
        if index == 0:
            runner.compact_before_next_turn()


def _failure(client):
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**ASK)


def _stream_helper(client):
    with client.messages.stream(**ASK) as stream:
        stream.get_final_message()


def _beta_stream(client):
    with client.beta.messages.stream(**ASK) as stream:
        list(stream.text_stream)


def _streaming_response(client):
    with client.messages.with_streaming_response.create(**ASK) as response:
        response.parse()


def _async(client):
    async def main():
        await client.messages.create(**ASK)
        async with client.messages.stream(**ASK) as stream:
            await stream.get_final_message()
        async for _ in await client.messages.create(stream=True, **ASK):
            pass

    asyncio.run(main())


# name -> (the application's code, server kind, client class)
SCENARIOS = {
    "create": (lambda c: c.messages.create(**ASK), "json", "Anthropic"),
    "create-stream": (lambda c: list(c.messages.create(stream=True, **ASK)), "sse", "Anthropic"),
    "stream-helper": (_stream_helper, "sse", "Anthropic"),
    "beta-stream": (_beta_stream, "sse", "Anthropic"),
    "raw-response": (lambda c: c.messages.with_raw_response.create(**ASK).parse(), "json", "Anthropic"),
    "streaming-response": (_streaming_response, "json", "Anthropic"),
    "count-tokens": (lambda c: c.messages.count_tokens(model=MODEL, messages=PROMPT), "json", "Anthropic"),
    "failure": (_failure, "error", "Anthropic"),
    "tool-runner-compaction": (_tool_runner, "tools", "Anthropic"),
    "async": (_async, "sse", "AsyncAnthropic"),
}


def _server(kind, sse_server, json_server):
    if kind == "sse":
        return sse_server(input_tokens=10, output_tokens=5)
    if kind == "error":
        return json_server(status=529)
    server = json_server(input_tokens=10, output_tokens=5)
    return tool_server(type(server)) if kind == "tools" else server


def shape(spans, requests):
    """What must be equal bare and governed: every span (name, kind, status, attributes, parent as an
    index into the same list) and, per request, which span its traceparent names."""
    spans = sorted(spans, key=lambda span: (span.start_time, span.name))
    index = {span.context.span_id: position for position, span in enumerate(spans)}
    trace_ids = {span.context.trace_id for span in spans}
    recorded = [
        (
            span.name,
            span.kind.name,
            span.status.status_code.name,
            {key: "<time>" if key in TIMINGS else value for key, value in span.attributes.items() if not key.startswith("genops.")},
            None if span.parent is None else index.get(span.parent.span_id, "outside"),
        )
        for span in spans
    ]
    sent = []
    for request in requests:
        traceparent = request.headers.get("traceparent")
        if traceparent is not None:
            _, trace_id, span_id, flags = traceparent.split("-")
            in_trace = int(trace_id, 16) in trace_ids
            traceparent = (index.get(int(span_id, 16), "outside"), in_trace, flags)
        sent.append((request.url.path, traceparent, json.loads(request.content or b"{}")))
    return recorded, sent


@pytest.fixture
def run(instrumented, make_client, sse_server, json_server, settings):
    """run(scenario, governed) -> (shape of the app's spans and requests, GenOps' recording or None)."""

    def go(name, governed, **options):
        code, kind, cls = SCENARIOS[name]
        server = _server(kind, sse_server, json_server)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if not governed:
            instrumented.uninstrument()
        try:
            with capture(settings) if governed else contextlib.nullcontext() as recorded:
                client = make_client(server, getattr(anthropic, cls), open_telemetry={"tracer_provider": provider, **options})
                with provider.get_tracer("app").start_as_current_span("handle request"):
                    code(client)
                if recorded is not None:
                    recorded.spans()  # GenOps' spans completed while the capture is open
        finally:
            if not governed:
                instrumented.instrument()
        return shape(exporter.get_finished_spans(), server.requests), recorded

    return go


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_apps_provider_gets_the_sdk_spans_it_gets_bare(name, run):
    (bare_spans, bare_sent), _ = run(name, governed=False)
    (spans, sent), recorded = run(name, governed=True)
    assert [span[0] for span in bare_spans].count("handle request") == 1  # premise: the SDK traced the calls
    assert any(span[0].startswith("anthropic.") for span in bare_spans)
    assert spans == bare_spans
    assert sent == bare_sent
    # GenOps' own spans stay in GenOps' provider (the app gave its provider to the SDK only), and
    # none of the SDK's spans go there.
    genops = recorded.spans()
    assert not any(span.name.startswith("anthropic.") for span in genops)
    messages = [span for span in bare_spans if span[0] == "anthropic.messages.create"]
    assert len(genops) == len(messages)
    assert all(span.name == f"chat {MODEL}" for span in genops)


def test_genops_counts_each_call_once(run):
    """The tool runner with a compaction: four model calls, four SDK call spans, four GenOps
    spans and one metric point per call, whatever the SDK records on its own spans."""
    (bare_spans, _), _ = run("tool-runner-compaction", governed=False)
    (spans, _), recorded = run("tool-runner-compaction", governed=True)
    names = [span[0] for span in spans]
    assert names.count("anthropic.messages.create") == 4 and names.count("anthropic.messages.tool_runner") == 1
    assert names.count("anthropic.custom_tool_use weather") == 2
    assert len(recorded.spans()) == 4
    points = recorded.metrics()[semconv.METRIC_TOKEN_USAGE]
    by_type = {attributes[semconv.GEN_AI_TOKEN_TYPE]: point for attributes, point in points}
    assert (by_type["input"].count, by_type["input"].sum) == (4, 40)
    assert (by_type["output"].count, by_type["output"].sum) == (4, 20)
    # every SDK call span keeps the tool runner as its parent, as bare
    runner = names.index("anthropic.messages.tool_runner")
    assert all(span[4] == runner for span in spans if span[0] == "anthropic.messages.create")


def test_genops_span_sits_beside_the_sdk_span(instrumented, make_client, json_server, settings):
    """GenOps' span has the application's span as its parent, like the SDK's, and is not the
    parent of anything the SDK opens."""
    server = json_server()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with capture(settings) as recorded:
        client = make_client(server, open_telemetry={"tracer_provider": provider})
        with provider.get_tracer("app").start_as_current_span("handle request") as outer:
            client.messages.create(**ASK)
        (genops,) = recorded.spans()
    sdk = [span for span in exporter.get_finished_spans() if span.name == "anthropic.messages.create"]
    assert len(sdk) == 1
    assert genops.parent.span_id == outer.get_span_context().span_id == sdk[0].parent.span_id
    assert genops.context.trace_id == sdk[0].context.trace_id
    assert server.requests[0].headers["traceparent"].split("-")[2] == f"{sdk[0].context.span_id:016x}"


@pytest.mark.parametrize("options", [{"traces": False}, {"propagation": False}], ids=["traces-off", "propagation-off"])
def test_sdk_options_behave_as_bare(options, run):
    (bare_spans, bare_sent), _ = run("create", governed=False, **options)
    (spans, sent), _ = run("create", governed=True, **options)
    assert (spans, sent) == (bare_spans, bare_sent)
    assert all(traceparent is None for _, traceparent, _ in sent)


def test_nested_in_another_genops_call_leaves_the_sdk_span_alone(make_client, json_server, settings):
    """A framework plugin recording the call already: GenOps records it once (the outer call), and
    the SDK's span is there as bare."""
    from genops_autoinstrument.engine.call import CallRequest
    from genops_autoinstrument.engine.runtime import begin_call

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = json_server(input_tokens=10, output_tokens=3)
    with capture(settings) as recorded:
        client = make_client(server, open_telemetry={"tracer_provider": provider})
        outer = begin_call(CallRequest(provider="anthropic", operation="chat", request_model=MODEL))
        with outer:
            client.messages.create(**ASK)
        outer.finish()
        (span,) = recorded.spans()
    assert span.name == f"chat {MODEL}"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the outer recorder reports usage itself
    (sdk,) = exporter.get_finished_spans()
    assert sdk.name == "anthropic.messages.create" and sdk.parent is None
    assert server.requests[0].headers["traceparent"].split("-")[2] == f"{sdk.context.span_id:016x}"
