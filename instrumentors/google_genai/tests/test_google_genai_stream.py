"""generate_content_stream (sync, SSE): full, early exit, error mid-stream, chats, AFC, blocks."""

from __future__ import annotations

import gc
import types as pytypes

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api import PolicyViolation
from genops_autoinstrument.api.testing import capture

STREAM_USAGE = {"promptTokenCount": 25, "candidatesTokenCount": 6, "thoughtsTokenCount": 20, "cachedContentTokenCount": 16, "totalTokenCount": 51}


def test_full_stream_records_final_usage_once(client, server, settings, gemini):
    server.script(gemini.Reply(events=gemini.stream_bodies(["Hello", " there", ", friend."], STREAM_USAGE)))
    with capture(settings) as recorded:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="Greet me")
        assert isinstance(stream, pytypes.GeneratorType)
        assert server.requests == []  # the SDK sends the request on the first next(), as before
        texts = [chunk.text for chunk in stream]
    assert texts == ["Hello", " there", ", friend."]
    assert "streamGenerateContent?alt=sse" in server.requests[0]["path"]
    span = gemini.one_span(recorded)
    attrs = dict(span.attributes)
    assert span.name == "generate_content gemini-2.5-flash"
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 26
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 16
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 20
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == gemini.MODEL_VERSION
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == gemini.RESPONSE_ID
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_stream_chunks_are_the_sdk_types(client, server, settings, gemini):
    from google.genai import types

    server.script(gemini.Reply(events=gemini.stream_bodies(["a", "b"], STREAM_USAGE)))
    with capture(settings):
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    assert all(type(chunk) is types.GenerateContentResponse for chunk in chunks)
    assert chunks[-1].usage_metadata.total_token_count == 51


def test_early_exit_records_the_partial_stream_once(client, server, settings, gemini):
    server.script(gemini.Reply(events=gemini.stream_bodies(["one", " two", " three"], STREAM_USAGE)))
    with capture(settings) as recorded:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="count")
        for chunk in stream:
            assert chunk.text == "one"
            break
        assert recorded.spans() == []  # still open: the application may continue
        stream.close()
        del stream
        gc.collect()
    attrs = dict(gemini.one_span(recorded).attributes)
    # The first chunk carried the running prompt total only.
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 25
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in attrs
    assert semconv.ERROR_TYPE not in attrs


def test_abandoned_stream_ends_on_garbage_collection(client, server, settings, gemini):
    server.script(gemini.Reply(events=gemini.stream_bodies(["one", " two"], STREAM_USAGE)))
    with capture(settings) as recorded:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="count")
        next(stream)
        del stream
        gc.collect()
    assert len(recorded.spans()) == 1


def test_error_mid_stream_is_reraised_unchanged_and_recorded(client, server, settings, gemini):
    from google.genai import errors

    events = gemini.stream_bodies(["partial", " answer"], STREAM_USAGE)[:1]
    events.append({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}})
    server.script(gemini.Reply(events=events))
    received = []
    with capture(settings) as recorded:
        with pytest.raises(errors.ServerError) as raised:
            for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"):
                received.append(chunk.text)
    assert received == ["partial"]
    assert type(raised.value) is errors.ServerError and raised.value.code == 500
    span = gemini.one_span(recorded)
    assert span.attributes[semconv.ERROR_TYPE] == "google.genai.errors.ServerError"
    assert span.status.status_code.name == "ERROR"


def test_http_error_before_streaming(client, server, settings, gemini):
    from google.genai import errors

    server.script(gemini.Reply.error(404, "models/gemini-9 is not found for API version v1beta", "NOT_FOUND"))
    with capture(settings) as recorded:
        with pytest.raises(errors.ClientError):
            list(client.models.generate_content_stream(model="gemini-9", contents="x"))
    assert gemini.one_span(recorded).attributes[semconv.ERROR_TYPE] == "google.genai.errors.ClientError"


def test_chat_stream(client, server, settings, gemini):
    server.script(gemini.Reply(events=gemini.stream_bodies(["Hi", " you"], {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5})))
    with capture(settings) as recorded:
        chat = client.chats.create(model="gemini-2.5-flash")
        assert "".join(chunk.text for chunk in chat.send_message_stream("Hello")) == "Hi you"
    # The SDK keeps each streamed chunk's content as its own history entry: unchanged.
    assert [content.role for content in chat.get_history()] == ["user", "model", "model"]
    attrs = dict(gemini.one_span(recorded).attributes)
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 2)


def test_stream_automatic_function_calling_sums_rounds(client, server, settings, gemini):
    from google.genai import types

    def get_time(city: str) -> str:
        """Local time of a city."""
        return "12:00"

    call = gemini.generate_body(parts=[{"functionCall": {"name": "get_time", "args": {"city": "Oslo"}}}], usage={"promptTokenCount": 30, "candidatesTokenCount": 5, "totalTokenCount": 35}, response_id="a")
    server.script(
        gemini.Reply(events=[call]),
        gemini.Reply(events=gemini.stream_bodies(["It is", " noon."], {"promptTokenCount": 50, "candidatesTokenCount": 4, "totalTokenCount": 54}, response_id="b")),
    )
    with capture(settings) as recorded:
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Time in Oslo?", config=types.GenerateContentConfig(tools=[get_time])))
    assert len(server.requests) == 2
    assert chunks[-1].text == " noon."
    attrs = dict(gemini.one_span(recorded).attributes)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 80
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "b"


def test_blocked_stream_raises_on_first_next_and_sends_nothing(client, server, settings, gemini, budget_block):
    from google.genai import errors

    with capture(settings, governor=budget_block) as recorded:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="x")
        assert budget_block.decided == []  # nothing is sent before iteration, nothing is decided
        with pytest.raises(errors.ClientError) as raised:
            next(stream)
        assert list(stream) == []
    assert isinstance(raised.value, PolicyViolation) and raised.value.code == 429
    assert server.requests == []
    assert gemini.one_span(recorded).attributes[semconv.ERROR_TYPE] == "BUDGET_EXCEEDED"


def test_unstarted_stream_records_nothing(client, server, settings):
    with capture(settings) as recorded:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="x")
        del stream
        gc.collect()
    assert recorded.spans() == []
    assert server.requests == []


def test_a_round_keeps_its_last_usage_that_carries_counts():
    """Chunks carry running totals: the last one with any count wins, an empty one does not erase
    it, and SDK objects and dicts (with camelCase counts) read alike."""
    from google.genai import types

    from genops_instrumentation_google_genai._response import GenerateAccumulator

    def chunk(usage: dict) -> types.GenerateContentResponse:
        return types.GenerateContentResponse.model_validate({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}}], "usageMetadata": usage})

    seen: dict = {}

    class Call:
        def finish(self, **facts):
            seen.update(facts)

    accumulator = GenerateAccumulator()
    for item in (chunk({"promptTokenCount": 7}), chunk({"promptTokenCount": 7, "candidatesTokenCount": 5, "thoughtsTokenCount": 2}), chunk({})):
        accumulator.add(item)
    accumulator.finish(Call())
    usage = seen["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (7, 7, 2)

    raw = GenerateAccumulator()
    for item in ({"usage_metadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}}, {"usage_metadata": {}}):
        raw.add(item)
    raw.finish(Call())
    assert (seen["usage"].input_tokens, seen["usage"].output_tokens) == (3, 1)
