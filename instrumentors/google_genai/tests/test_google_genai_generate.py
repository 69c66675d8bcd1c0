"""generate_content (sync): span, usage mapping, Vertex mode, chats, AFC rounds, errors, pricing."""

from __future__ import annotations

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture


def test_generate_content_records_exact_usage_and_response(client, server, settings, gemini):
    from google.genai import types

    with capture(settings) as recorded:
        response = client.models.generate_content(
            model="models/gemini-2.5-flash",
            contents="Say hello",
            config=types.GenerateContentConfig(temperature=0.2, max_output_tokens=256, top_p=0.9, stop_sequences=["END"]),
        )

    assert type(response) is types.GenerateContentResponse
    assert response.text == "Hello from Gemini."
    assert response.usage_metadata.prompt_token_count == 120
    assert len(server.requests) == 1
    assert server.requests[0]["path"].endswith("/models/gemini-2.5-flash:generateContent")

    span = gemini.one_span(recorded)
    attrs = dict(span.attributes)
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.kind.name == "CLIENT"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gen_ai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gemini-2.5-flash"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == gemini.MODEL_VERSION
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == gemini.RESPONSE_ID
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    # prompt 120 already includes the 100 cached tokens; output = 30 candidates + 12 thoughts.
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 42
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attrs[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.SERVER_PORT] == server.server_address[1]
    assert semconv.GEN_AI_REQUEST_STREAM not in attrs
    assert semconv.GEN_AI_INPUT_MESSAGES not in attrs  # content capture is off by default

    tokens = recorded.metrics()[semconv.METRIC_TOKEN_USAGE]
    by_type = {dims[semconv.GEN_AI_TOKEN_TYPE]: point.sum for dims, point in tokens}
    assert by_type == {"input": 120, "output": 42}


def test_usage_with_tool_use_prompt_tokens_and_missing_zero_counts(client, server, settings, gemini):
    # The API omits zero counts; toolUsePromptTokenCount is input outside promptTokenCount.
    server.script(gemini.Reply(body=gemini.generate_body(usage={"promptTokenCount": 50, "toolUsePromptTokenCount": 7, "totalTokenCount": 57}, finish_reason="MAX_TOKENS")))
    with capture(settings) as recorded:
        client.models.generate_content(model="gemini-2.0-flash", contents="x")
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 57
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in attrs
    assert semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_response_without_usage_is_unpriced_unknown_usage(client, server, settings, gemini):
    server.script(gemini.Reply(body=gemini.generate_body(usage=None)))
    with capture(settings) as recorded:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    attrs = dict(gemini.one_span(recorded).attributes)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    assert attrs[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_USAGE


def test_vertex_mode_reports_gcp_vertex_ai(vertex_client, server, settings, gemini):
    with capture(settings) as recorded:
        response = vertex_client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert response.text == "Hello from Gemini."
    assert "publishers/google/models/gemini-2.5-flash:generateContent" in server.requests[0]["path"]
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gemini-2.5-flash"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120


def test_vertex_resource_name_model_is_reduced_to_the_model_id(vertex_client, server, settings, gemini):
    with capture(settings) as recorded:
        vertex_client.models.generate_content(model="publishers/google/models/gemini-2.0-flash-001", contents="hi")
    span = gemini.one_span(recorded)
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gemini-2.0-flash-001"


def test_chat_turns_are_recorded_through_generate_content(client, server, settings, gemini):
    server.script(
        gemini.Reply(body=gemini.generate_body("Hi!", usage={"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}, response_id="r1")),
        gemini.Reply(body=gemini.generate_body("Fine.", usage={"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14}, response_id="r2")),
    )
    with capture(settings) as recorded:
        chat = client.chats.create(model="gemini-2.5-flash")
        assert chat.send_message("Hello").text == "Hi!"
        assert chat.send_message("How are you?").text == "Fine."
    assert len(chat.get_history()) == 4
    spans = recorded.spans()
    assert [s.attributes[semconv.GEN_AI_RESPONSE_ID] for s in spans] == ["r1", "r2"]
    assert [(s.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], s.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) for s in spans] == [(4, 2), (11, 3)]
    # The second turn sent the whole history: the SDK's behaviour is unchanged.
    assert len(server.requests[1]["body"]["contents"]) == 3


def test_automatic_function_calling_sums_usage_of_every_round(client, server, settings, gemini):
    from google.genai import types

    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"Sunny in {city}"

    call_part = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    server.script(
        gemini.Reply(body=gemini.generate_body(parts=[call_part], usage={"promptTokenCount": 40, "candidatesTokenCount": 8, "totalTokenCount": 48}, response_id="round1")),
        gemini.Reply(body=gemini.generate_body("It is sunny in Paris.", usage={"promptTokenCount": 70, "candidatesTokenCount": 9, "thoughtsTokenCount": 5, "totalTokenCount": 84}, response_id="round2")),
    )
    with capture(settings) as recorded:
        response = client.models.generate_content(
            model="gemini-2.5-flash", contents="Weather in Paris?", config=types.GenerateContentConfig(tools=[get_weather])
        )
    assert response.text == "It is sunny in Paris."
    assert len(server.requests) == 2
    # The application only sees the last round's usage; GenOps records what was billed.
    assert response.usage_metadata.prompt_token_count == 70
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 110
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 22
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 5
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "round2"


def test_provider_error_is_unchanged_and_recorded(client, server, settings, gemini):
    from google.genai import errors

    server.script(gemini.Reply.error(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"))
    with capture(settings) as recorded:
        with pytest.raises(errors.ClientError) as raised:
            client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert type(raised.value) is errors.ClientError
    assert raised.value.code == 429
    span = gemini.one_span(recorded)
    assert span.attributes[semconv.ERROR_TYPE] == "google.genai.errors.ClientError"
    assert span.status.status_code.name == "ERROR"


def test_content_capture_records_messages_on_opt_in(client, server, gemini):
    from genops_autoinstrument import config

    with capture(config.Settings(capture_content=True)) as recorded:
        client.models.generate_content(model="gemini-2.5-flash", contents="Say hello", config={"system_instruction": "Be brief."})
    attrs = dict(gemini.one_span(recorded).attributes)
    assert '"Be brief."' in attrs[semconv.GEN_AI_INPUT_MESSAGES]
    assert '"Say hello"' in attrs[semconv.GEN_AI_INPUT_MESSAGES]
    assert '"Hello from Gemini."' in attrs[semconv.GEN_AI_OUTPUT_MESSAGES]


def test_raw_http_response_mode_reads_usage_from_the_json_body(client, server, settings, gemini):
    from google.genai import types

    with capture(settings) as recorded:
        response = client.models.generate_content(
            model="gemini-2.5-flash", contents="x", config=types.GenerateContentConfig(should_return_http_response=True)
        )
    assert response.candidates is None and '"usageMetadata"' in response.sdk_http_response.body
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 42
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == gemini.RESPONSE_ID
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == gemini.MODEL_VERSION
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
