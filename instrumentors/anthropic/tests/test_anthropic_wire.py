"""What the application sends stays its own: every request carries the headers and JSON body it
carries bare, and the SDK's transport runs with the OpenTelemetry context it has bare, whatever the
SDK's tracing settings (anthropic 1.14+: on, off, no propagation, with or without the application's
own provider). A Bedrock request with the application's own ``traceparent`` is signed over exactly
what is sent, as bare.

Each case runs bare (plugin uninstrumented) and governed (GenOps recording) against the same
transport; the two recordings must be equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import anthropic
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genops_autoinstrument.api.testing import capture

MODEL = "claude-sonnet-4-6"
BEDROCK_MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
PROMPT = [{"role": "user", "content": "Say hello"}]
ASK = {"model": MODEL, "max_tokens": 64, "messages": PROMPT}
AWS = {"aws_access_key": "AKIAIOSFODNN7EXAMPLE", "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_region": "us-east-1"}
APP_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SDK_TRACING = hasattr(anthropic.Anthropic(api_key="k"), "open_telemetry")

# The SDK's tracing as the application sets it: client option (None: not given) and environment.
if SDK_TRACING:
    SETTINGS = {
        "default": (None, {}),
        "env-off": (None, {"ANTHROPIC_OPEN_TELEMETRY": "false"}),
        "option-off": (False, {}),
        "app-provider": ("provider", {}),
        "app-provider-no-propagation": ("provider-no-propagation", {}),
    }
else:  # anthropic < 1.14: no tracing of its own
    SETTINGS = {"default": (None, {})}


def _stream_helper(client):
    with client.messages.stream(**ASK) as stream:
        stream.get_final_message()


def _async(client):
    async def main():
        await client.messages.create(**ASK)
        async with client.messages.stream(**ASK) as stream:
            await stream.get_final_message()

    asyncio.run(main())


SCENARIOS = {
    "create": (lambda c: c.messages.create(**ASK), "Anthropic"),
    "create-stream": (lambda c: list(c.messages.create(stream=True, **ASK)), "Anthropic"),
    "stream-helper": (_stream_helper, "Anthropic"),
    "beta-create": (lambda c: c.beta.messages.create(**ASK), "Anthropic"),
    "raw-response": (lambda c: c.messages.with_raw_response.create(**ASK).parse(), "Anthropic"),
    "count-tokens": (lambda c: c.messages.count_tokens(model=MODEL, messages=PROMPT), "Anthropic"),
    "async": (_async, "AsyncAnthropic"),
}


def recording_transport(server):
    """The server, plus what was current in OpenTelemetry when the SDK's HTTP client sent."""

    def handler(request):
        context = trace.get_current_span().get_span_context()
        request.extensions = {**request.extensions, "current": (context.is_valid, context.span_id, context.trace_id)}
        return server(request)

    return handler


def wire(requests, spans):
    """Per request: path, headers (trace context by the span it names), body, current span at send."""
    names = {span.context.span_id: f"{span.name}#{position}" for position, span in enumerate(sorted(spans, key=lambda s: s.start_time))}
    traces = {span.context.trace_id for span in spans}

    def who(span_id, trace_id):
        if trace_id == int(APP_TRACEPARENT.split("-")[1], 16):
            return "the app's traceparent"
        return names.get(span_id, "not an app/SDK span") + ("" if trace_id in traces else " (other trace)")

    found = []
    for request in requests:
        headers = dict(request.headers)
        for key in ("traceparent", "tracestate", "baggage"):
            if key == "traceparent" and key in headers:
                _, trace_id, span_id, flags = headers[key].split("-")
                headers[key] = (who(int(span_id, 16), int(trace_id, 16)), flags)
        valid, span_id, trace_id = request.extensions["current"]
        current = who(span_id, trace_id) if valid else None
        found.append((request.method, request.url.path, headers, json.loads(request.content or b"{}"), current))
    return found


@pytest.fixture
def send(instrumented, make_client, sse_server, settings, monkeypatch):
    """send(scenario code, client class, setting, governed, outer, server=None, **client kwargs) -> wire()."""

    def go(code, cls, setting, governed, outer, server=None, **kwargs):
        option, environment = SETTINGS[setting]
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        server = server if server is not None else sse_server(input_tokens=10, output_tokens=5)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if option is not None:
            kwargs["open_telemetry"] = {"provider": {"tracer_provider": provider}, "provider-no-propagation": {"tracer_provider": provider, "propagation": False}}.get(option, option)
        if not governed:
            instrumented.uninstrument()
        try:
            with capture(settings) if governed else contextlib.nullcontext():
                client = make_client(recording_transport(server), cls, **kwargs)
                with provider.get_tracer("app").start_as_current_span("handle request") if outer else contextlib.nullcontext():
                    code(client)
        finally:
            if not governed:
                instrumented.instrument()
            for key in environment:
                monkeypatch.delenv(key)
        return wire(server.requests, exporter.get_finished_spans())

    return go


@pytest.mark.parametrize("outer", [True, False], ids=["in-app-span", "no-app-span"])
@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_requests_are_sent_as_bare(name, setting, outer, send):
    code, cls = SCENARIOS[name]
    bare = send(code, getattr(anthropic, cls), setting, governed=False, outer=outer)
    governed = send(code, getattr(anthropic, cls), setting, governed=True, outer=outer)
    assert bare and len(governed) == len(bare)
    for sent, expected in zip(governed, bare):
        assert sent[:2] == expected[:2]
        assert sent[2] == expected[2]  # every header, name and value (trace context by the span it names)
        assert sent[3] == expected[3]  # the JSON body, field by field
        assert sent[4] == expected[4]  # what the SDK's transport sees as the current span


def _signature_holds(request) -> tuple[bool, list[str]]:
    """Recompute the SigV4 signature over the request as it was sent; (matches, signed header names)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    scheme, _, fields = request.headers["authorization"].partition(" ")
    parts = dict(field.strip().split("=", 1) for field in fields.split(","))
    signed = parts["SignedHeaders"].split(";")
    aws_request = AWSRequest(method=request.method, url=str(request.url), headers={name: request.headers[name] for name in signed}, data=request.content)
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(AWS["aws_access_key"], AWS["aws_secret_key"]), "bedrock", AWS["aws_region"])
    string_to_sign = signer.string_to_sign(aws_request, signer.canonical_request(aws_request))
    return scheme == "AWS4-HMAC-SHA256" and signer.signature(string_to_sign, aws_request) == parts["Signature"], signed


@pytest.mark.parametrize("outer", [True, False], ids=["in-app-span", "no-app-span"])
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_bedrock_request_with_the_apps_traceparent_is_signed_as_bare(setting, outer, send, bedrock_server):
    pytest.importorskip("botocore", reason="AnthropicBedrock signs with botocore (anthropic[bedrock])")

    def code(client):
        client.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=PROMPT, extra_headers={"traceparent": APP_TRACEPARENT})

    runs = {}
    for governed in (False, True):
        server = bedrock_server(BEDROCK_MODEL)
        sent = send(code, anthropic.AnthropicBedrock, setting, governed=governed, outer=outer, server=server, **AWS)
        (request,) = server.requests
        holds, signed = _signature_holds(request)
        assert holds, "the signature does not cover the request as sent"
        (method, path, headers, body, current), = sent
        timeless = {key: value for key, value in headers.items() if key not in ("x-amz-date", "authorization")}
        runs[governed] = (method, path, timeless, body, current, signed)
    assert runs[True] == runs[False]
