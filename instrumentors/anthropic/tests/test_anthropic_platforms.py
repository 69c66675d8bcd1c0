"""The SDK's Bedrock and Vertex clients: provider names aws.bedrock / gcp.vertex_ai, same recording."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types import Message

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

BEDROCK_MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
VERTEX_MODEL = "claude-haiku-4-5@20251001"
PROMPT = [{"role": "user", "content": "Say hello"}]
AWS = {"aws_access_key": "AKIAIOSFODNN7EXAMPLE", "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_region": "us-east-1"}


def test_bedrock_create(make_client, bedrock_server, settings, one_span):
    server = bedrock_server(BEDROCK_MODEL, input_tokens=1000, output_tokens=100)
    client = make_client(server, anthropic.AnthropicBedrock, **AWS)
    with capture(settings) as recorded:
        message = client.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=PROMPT)
    assert type(message) is Message
    assert server.requests[0].url.path == f"/model/{BEDROCK_MODEL}/invoke"
    assert "AWS4-HMAC-SHA256" in server.requests[0].headers["authorization"]
    span = one_span(recorded)
    attrs = dict(span.attributes)
    assert span.name == f"chat {BEDROCK_MODEL}"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attrs[semconv.SERVER_ADDRESS] == "bedrock-runtime.us-east-1.amazonaws.com"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 100
    expected = price_call("aws.bedrock", BEDROCK_MODEL, Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=0, cache_write_tokens=0))
    assert expected.priced
    assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(expected.total)
    assert attrs[semconv.GENOPS_COST_PROVIDER] == "aws.bedrock"


def test_bedrock_streams(make_client, bedrock_server, settings):
    server = bedrock_server(BEDROCK_MODEL, input_tokens=30, output_tokens=8)
    client = make_client(server, anthropic.AnthropicBedrock, **AWS)
    with capture(settings) as recorded:
        stream = client.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=PROMPT, stream=True)
        assert isinstance(stream, anthropic.Stream)
        kinds = [event.type for event in stream]
        with client.messages.stream(model=BEDROCK_MODEL, max_tokens=64, messages=PROMPT) as helper:
            assert helper.get_final_text() == "Hello world!"
    assert kinds[-1] == "message_stop"
    spans = recorded.spans()
    assert [span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans] == ["aws.bedrock"] * 2
    assert [(span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) for span in spans] == [(30, 8)] * 2


def test_bedrock_beta_and_async(make_client, bedrock_server, settings):
    import asyncio

    server = bedrock_server(BEDROCK_MODEL, input_tokens=5, output_tokens=2)
    client = make_client(server, anthropic.AnthropicBedrock, **AWS)
    async_client = make_client(server, anthropic.AsyncAnthropicBedrock, **AWS)

    async def main():
        return await async_client.beta.messages.create(model=BEDROCK_MODEL, max_tokens=8, messages=PROMPT)

    with capture(settings) as recorded:
        client.beta.messages.create(model=BEDROCK_MODEL, max_tokens=8, messages=PROMPT)
        asyncio.run(main())
    assert [span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in recorded.spans()] == ["aws.bedrock"] * 2


def test_bedrock_budget_block(make_client, bedrock_server, settings, governor_for, decisions):
    server = bedrock_server(BEDROCK_MODEL)
    client = make_client(server, anthropic.AnthropicBedrock, **AWS)
    with capture(settings, governor=governor_for(decisions["budget"])):
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=BEDROCK_MODEL, max_tokens=8, messages=PROMPT)
    assert isinstance(caught.value, PolicyViolation)
    assert server.requests == []


def test_vertex_create_and_stream(make_client, json_server, sse_server, settings):
    json_client = make_client(json_server(model="claude-haiku-4-5", input_tokens=200, output_tokens=20), anthropic.AnthropicVertex, region="us-east5", project_id="acme-ml", access_token="ya29.test")
    sse_client = make_client(sse_server(model="claude-haiku-4-5", input_tokens=12, output_tokens=4), anthropic.AnthropicVertex, region="us-east5", project_id="acme-ml", access_token="ya29.test")
    with capture(settings) as recorded:
        message = json_client.messages.create(model=VERTEX_MODEL, max_tokens=64, messages=PROMPT)
        with sse_client.beta.messages.stream(model=VERTEX_MODEL, max_tokens=64, messages=PROMPT) as stream:
            stream.until_done()
    assert type(message) is Message
    spans = recorded.spans()
    assert [span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans] == ["gcp.vertex_ai"] * 2
    assert spans[0].attributes[semconv.SERVER_ADDRESS] == "us-east5-aiplatform.googleapis.com"
    assert spans[0].attributes[semconv.GEN_AI_REQUEST_MODEL] == VERTEX_MODEL
    assert (spans[0].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], spans[1].attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (200, 4)
    expected = price_call("gcp.vertex_ai", "claude-haiku-4-5", Usage(input_tokens=200, output_tokens=20, cache_read_tokens=0, cache_write_tokens=0))
    assert expected.priced
    assert spans[0].attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(expected.total)
