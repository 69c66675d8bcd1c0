"""embed_content, policy blocks as the SDK's own ClientError, and pricing of Gemini calls."""

from __future__ import annotations

import pickle

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api import PolicyViolation
from genops_autoinstrument.api.testing import capture


def test_embed_content_records_input_tokens(client, server, settings, gemini, embedding_usage_reported):
    from google.genai import types

    server.script(
        gemini.Reply(
            body={
                "embeddings": [{"values": [0.1, -0.2, 0.3]}, {"values": [0.4, 0.5, -0.6]}],
                "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            }
        )
    )
    with capture(settings) as recorded:
        response = client.models.embed_content(model="gemini-embedding-001", contents=["What is your name?", "Favourite colour?"])
    assert type(response) is types.EmbedContentResponse
    assert [e.values for e in response.embeddings] == [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]
    assert server.requests[0]["path"].endswith("/models/gemini-embedding-001:batchEmbedContents")
    span = gemini.one_span(recorded)
    attrs = dict(span.attributes)
    assert span.name == "embeddings gemini-embedding-001"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gen_ai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs


def test_embed_without_usage_is_unpriced_not_zero(client, server, settings, gemini):
    server.script(gemini.Reply(body={"embeddings": [{"values": [0.1, 0.2]}]}))
    with capture(settings) as recorded:
        client.models.embed_content(model="text-embedding-004", contents="hello")
    attrs = dict(gemini.one_span(recorded).attributes)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert attrs[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_USAGE


def test_vertex_predict_embeddings_sum_statistics_token_counts(vertex_client, server, settings, gemini):
    server.script(
        gemini.Reply(
            body={
                "predictions": [
                    {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 4, "truncated": False}}},
                    {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 6, "truncated": False}}},
                ],
                "metadata": {"billableCharacterCount": 30},
            }
        )
    )
    with capture(settings) as recorded:
        response = vertex_client.models.embed_content(model="text-embedding-005", contents=["first text", "second one"])
    assert len(response.embeddings) == 2
    assert server.requests[0]["path"].endswith("/models/text-embedding-005:predict")
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 10


def test_budget_block_is_a_429_client_error_and_never_reaches_the_server(client, server, settings, gemini, budget_block):
    from google.genai import errors

    with capture(settings, governor=budget_block) as recorded:
        with pytest.raises(errors.ClientError) as raised:
            client.models.generate_content(model="gemini-2.5-flash", contents="x")
    error = raised.value
    assert isinstance(error, PolicyViolation) and isinstance(error, errors.APIError)
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    assert error.message == "team budget of $5.00/day is spent"
    assert error.reason_code == "BUDGET_EXCEEDED" and error.policy_name == "budget:team"
    assert str(error) == "team budget of $5.00/day is spent"
    copy = pickle.loads(pickle.dumps(error))  # crosses process pools and Celery
    assert type(copy) is type(error) and copy.decision == error.decision and str(copy) == str(error) and copy.code == 429
    assert server.requests == []
    assert len(budget_block.decided) == 1 and budget_block.decided[0].provider == "gcp.gen_ai"
    span = gemini.one_span(recorded)
    assert span.attributes[semconv.ERROR_TYPE] == "BUDGET_EXCEEDED"


def test_rule_block_is_a_403_client_error(client, server, settings, rule_block):
    from google.genai import errors

    with capture(settings, governor=rule_block):
        with pytest.raises(errors.ClientError) as raised:
            client.models.embed_content(model="gemini-embedding-001", contents="x")
    assert raised.value.code == 403 and raised.value.status == "PERMISSION_DENIED"
    assert isinstance(raised.value, PolicyViolation)
    assert raised.value.details["error"]["details"][0]["reason"] == "POLICY_DENY_MODEL"
    assert server.requests == []


def test_chat_block_keeps_history_untouched(client, server, settings, budget_block):
    from google.genai import errors

    chat = client.chats.create(model="gemini-2.5-flash")
    with capture(settings, governor=budget_block):
        with pytest.raises(errors.ClientError):
            chat.send_message("Hello")
    assert chat.get_history() == []
    assert server.requests == []


def test_gemini_generate_content_is_priced(client, server, settings, gemini):
    """Pricing of a Gemini model: 120 input (100 cache reads), 42 output at gemini-2.5-flash prices."""
    from genops_autoinstrument.pricing.prices import price_call
    from genops_autoinstrument.api import Usage

    usage = Usage(input_tokens=120, output_tokens=42, cache_read_tokens=100, reasoning_tokens=12)
    price = price_call("gcp.gen_ai", "gemini-2.5-flash", usage)
    if not price.priced:
        pytest.skip(f"core pricing does not price gcp.gen_ai yet ({price.unpriced_reason})")
    # $0.30/M input, $0.03/M cache read, $2.50/M output.
    expected = (20 * 0.30 + 100 * 0.03 + 42 * 2.50) / 1_000_000
    assert price.total == pytest.approx(expected, rel=1e-9)
    assert price_call("gcp.vertex_ai", "gemini-2.5-flash", usage).total == pytest.approx(expected, rel=1e-9)

    server.script(gemini.Reply(body=gemini.generate_body(usage=gemini.USAGE, model_version="gemini-2.5-flash")))
    with capture(settings) as recorded:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(expected, rel=1e-9)
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    cost = recorded.metrics()[semconv.METRIC_COST]
    assert sum(point.value for _, point in cost) == pytest.approx(expected, rel=1e-9)
