"""Transparency: the application sends and gets what it sends and gets bare (issue 13).

Each case runs the same application code twice against the same fake server: bare (the plugin not
instrumented) and instrumented (recording into in-memory telemetry). Every chunk is compared in
each of its dumps (``model_dump``, ``to_dict``, ``to_json``), and every request's headers and JSON
body field by field. The one difference allowed: ``stream_options.include_usage`` added to a chat
stream that did not ask for usage in any way. Every stream is still priced.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pydantic
import pytest
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_openai import OpenAIInstrumentor

MESSAGES = [{"role": "user", "content": "Say hello"}]
ADDED_USAGE_REQUEST = [("stream_options", "<absent>", {"include_usage": True})]
ADDED_TO_STREAM_OPTIONS = [("stream_options.include_usage", "<absent>", True)]


def differences(bare: Any, instrumented: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Field-by-field differences of two JSON values: (dotted path, bare value, instrumented value)."""
    if isinstance(bare, dict) and isinstance(instrumented, dict):
        found = []
        for key in list(bare) + [k for k in instrumented if k not in bare]:
            where = f"{path}.{key}" if path else key
            if key not in instrumented:
                found.append((where, bare[key], "<absent>"))
            elif key not in bare:
                found.append((where, "<absent>", instrumented[key]))
            else:
                found += differences(bare[key], instrumented[key], where)
        return found
    if isinstance(bare, list) and isinstance(instrumented, list) and len(bare) == len(instrumented):
        return [d for i, (b, n) in enumerate(zip(bare, instrumented)) for d in differences(b, n, f"{path}[{i}]")]
    return [] if bare == instrumented and type(bare) is type(instrumented) else [(path, bare, instrumented)]


def dumps(chunk: Any) -> tuple[Any, Any, str]:
    """Every way an application reads a chunk back as data."""
    return chunk.model_dump(), chunk.to_dict(), chunk.to_json()


class Twice:
    """The bare and the instrumented run of one piece of application code, and what each sent."""

    def __init__(self, server: Any, settings: Any, app: Callable[[Any], Any], client: str = "client") -> None:
        make = getattr(server, client)
        first = len(server.requests)
        self.bare = app(make())
        middle = len(server.requests)
        instance = OpenAIInstrumentor()
        instance.instrument()
        try:
            with capture(settings) as recorded:
                self.instrumented = app(make())
        finally:
            instance.uninstrument()
        self.recorded = recorded
        self.bare_requests = server.requests[first:middle]
        self.instrumented_requests = server.requests[middle:]
        assert len(self.bare_requests) == len(self.instrumented_requests) > 0

    def body_differences(self, index: int = 0) -> list[tuple[str, Any, Any]]:
        return differences(self.bare_requests[index]["json"], self.instrumented_requests[index]["json"])

    def assert_same_headers(self) -> None:
        for bare, instrumented in zip(self.bare_requests, self.instrumented_requests):
            found = differences(bare["headers"], instrumented["headers"])
            if bare["json"] != instrumented["json"]:  # the one body addition: its length, and only that
                assert found == [("content-length", str(bare["size"]), str(instrumented["size"]))]
            else:
                assert found == []
            assert (bare["method"], bare["host"], bare["path"]) == (instrumented["method"], instrumented["host"], instrumented["path"])

    def assert_priced(self, input_tokens: int = 21, output_tokens: int = 4) -> None:
        spans = self.recorded.spans()
        assert spans
        expected = calc_price(PricesUsage(input_tokens=input_tokens, cache_read_tokens=0, output_tokens=output_tokens), model_ref="gpt-4o-mini-2024-07-18", provider_id="openai").total_price
        for span in spans:
            attrs = span.attributes
            assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
            assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens
            assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
            assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(float(expected), rel=1e-12)


def _stream(**kwargs: Any) -> Callable[[Any], list[tuple[Any, Any, str]]]:
    return lambda client: [dumps(chunk) for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs)]


@pytest.mark.parametrize(
    "asked",
    [{"stream_options": {"include_usage": True}}, {"extra_body": {"stream_options": {"include_usage": True}}}],
    ids=["stream_options", "extra_body"],
)
def test_usage_the_application_asks_for_reaches_it_as_bare(server, settings, asked):
    server.chat_stream()
    run = Twice(server, settings, _stream(**asked))
    assert run.instrumented == run.bare
    model_dump, as_dict, _ = run.bare[-1]
    assert model_dump["choices"] == [] and model_dump["usage"]["prompt_tokens"] == 21  # the usage chunk
    assert as_dict["usage"] is not None and run.bare[0][1]["usage"] is None  # "usage": null kept
    assert run.body_differences() == []
    run.assert_same_headers()
    run.assert_priced()


def test_usage_genops_asks_for_is_hidden_and_the_only_change(server, settings):
    server.chat_stream()
    run = Twice(server, settings, _stream())
    assert run.instrumented == run.bare
    assert all(model_dump["choices"] for model_dump, _, _ in run.bare)
    assert all("usage" not in as_dict for _, as_dict, _ in run.instrumented)  # the server's marks unset
    assert run.body_differences() == ADDED_USAGE_REQUEST
    run.assert_same_headers()
    run.assert_priced()


def test_extra_body_stream_options_without_usage_gets_it_added_there(server, settings):
    """extra_body's stream_options replaces the argument's in the body: the one addition goes inside."""
    server.chat_stream()
    run = Twice(server, settings, _stream(extra_body={"stream_options": {"include_obfuscation": False}, "top_k": 3}))
    assert run.instrumented == run.bare
    assert run.instrumented_requests[0]["json"]["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert run.body_differences() == ADDED_TO_STREAM_OPTIONS  # extra_body's fields are the body's own
    run.assert_same_headers()
    run.assert_priced()


def test_usage_explicitly_declined_is_not_overridden(server, settings):
    server.chat_stream()
    run = Twice(server, settings, _stream(stream_options={"include_usage": False}))
    assert run.instrumented == run.bare
    assert run.body_differences() == []
    run.assert_same_headers()
    attrs = run.recorded.spans()[0].attributes
    assert attrs[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_USAGE


def test_usage_sent_unasked_reaches_the_application(server, settings):
    """A server that sends its usage chunk whatever the request says (the one in the SDK's own
    test recordings does): the chunk is the application's; that server is not asked again."""
    server.chat_stream(unasked=True)

    def app(client: Any) -> list[Any]:
        return [_stream()(client), _stream()(client)]

    run = Twice(server, settings, app)
    assert run.instrumented == run.bare
    assert run.bare[0][-1][0]["choices"] == [] and run.bare[0][-1][0]["usage"]["completion_tokens"] == 4
    assert run.body_differences(0) == ADDED_USAGE_REQUEST  # asked once: the answer cannot be told apart
    assert run.body_differences(1) == []  # then never again
    run.assert_same_headers()
    run.assert_priced()


def test_usage_answered_without_the_mark_is_shown_then_not_asked_again(server, settings):
    """A server that answers the request without marking its chunks ``"usage": null`` (vLLM, Ollama)
    looks like one that sends usage unasked: its usage chunk is shown rather than taken from the
    application, and the server is not asked again, so from then on the stream is exactly bare."""
    server.chat_stream(marks=False)

    def app(client: Any) -> list[Any]:
        return [_stream()(client), _stream()(client)]

    run = Twice(server, settings, app)
    assert run.instrumented[0][:-1] == run.bare[0] and run.instrumented[0][-1][0]["choices"] == []
    assert run.instrumented[1] == run.bare[1]
    assert run.body_differences(1) == []
    spans = run.recorded.spans()
    assert spans[0].attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in spans[1].attributes


class Location(pydantic.BaseModel):
    city: str


def _helper(**kwargs: Any) -> Callable[[Any], Any]:
    def app(client: Any) -> Any:
        resource = client.chat.completions if hasattr(client.chat.completions, "stream") else client.beta.chat.completions
        with resource.stream(model="gpt-4o-mini", messages=MESSAGES, **kwargs) as stream:
            events = [(event.type, dumps(event.chunk) if event.type == "chunk" else None) for event in stream]
            final = stream.get_final_completion()
        return events, final.model_dump(warnings=False), final.usage  # parsed: a model where the type says None

    return app


def test_stream_helper_that_asks_for_usage_keeps_it(server, settings):
    server.chat_stream()
    run = Twice(server, settings, _helper(stream_options={"include_usage": True}))
    assert run.instrumented[:2] == run.bare[:2]
    assert run.instrumented[2] is not None and run.instrumented[2].prompt_tokens == 21
    assert run.body_differences() == []
    run.assert_same_headers()
    run.assert_priced()


def test_stream_helper_parse_with_usage_sent_unasked(server, settings):
    """The SDK's own test_parse_pydantic_model: ``.stream(response_format=Model)`` from a server that
    sends usage unasked; ``get_final_completion().usage`` is the server's, as bare."""
    server.chat_stream(chunks=_location_chunks(), unasked=True)
    run = Twice(server, settings, _helper(response_format=Location))
    assert run.instrumented[:2] == run.bare[:2]
    assert run.bare[2] is not None and run.instrumented[2] == run.bare[2]
    assert run.bare[1]["choices"][0]["message"]["parsed"] == {"city": "Paris"}
    run.assert_same_headers()
    run.assert_priced()


def _location_chunks() -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-9tXji2y8kKxlOO3muVvfdJ7ECJVlD", "object": "chat.completion.chunk", "created": 1723024750, "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_845eaabc1f"}
    deltas = [{"role": "assistant", "content": "", "refusal": None}, {"content": '{"city":'}, {"content": '"Paris"}'}]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]} for delta in deltas]
    return chunks + [{**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}]


def test_async_streams_are_transparent(server, settings):
    server.chat_stream()

    def app(client: Any) -> list[Any]:
        async def main() -> list[Any]:
            seen = []
            for kwargs in ({}, {"extra_body": {"stream_options": {"include_usage": True}}}):
                stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs)
                seen.append([dumps(chunk) async for chunk in stream])
            return seen

        return asyncio.run(main())

    run = Twice(server, settings, app, client="async_client")
    assert run.instrumented == run.bare
    assert run.bare[1][-1][0]["choices"] == [] and len(run.bare[1]) == len(run.bare[0]) + 1
    assert run.body_differences(0) == ADDED_USAGE_REQUEST
    assert run.body_differences(1) == []
    run.assert_same_headers()
    run.assert_priced()


def test_legacy_completions_stream_asked_through_extra_body(server, settings):
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1738606833, "model": "gpt-3.5-turbo-instruct"}
    chunks = [{**base, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": None}]} for text in ("Hel", "lo")]
    server.chat_stream("/v1/completions", chunks=chunks, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    app = lambda client: [dumps(c) for c in client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True, extra_body={"stream_options": {"include_usage": True}})]  # noqa: E731
    run = Twice(server, settings, app)
    assert run.instrumented == run.bare and run.bare[-1][0]["usage"]["total_tokens"] == 7
    assert run.body_differences() == []
    run.assert_same_headers()
    assert run.recorded.spans()[0].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5
