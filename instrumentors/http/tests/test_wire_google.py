"""The Google GenAI SDK with both its plugin and the wire layer active: it sends through httpx
(sync) and aiohttp (async, when installed); each call is recorded once, by the SDK plugin, with
its HTTP attempt counted on that span."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genops_autoinstrument import semconv
from genops_instrumentation_google_genai import GoogleGenAIInstrumentor

MODEL = "gemini-2.5-flash"


@pytest.fixture
def both_layers(wire: Any) -> Any:
    plugin = GoogleGenAIInstrumentor()
    plugin.instrument()
    yield
    plugin.uninstrument()


@pytest.fixture
def gemini(providers: Any, h: Any, both_layers: Any) -> Any:
    from google import genai

    spec = h.PROTOCOLS["gemini"]
    for version in ("/v1/", "/v1beta/"):  # the SDK's default API version differs across releases
        providers.json(spec["path"].replace("/v1beta/", version), spec["answer"])
        providers.stream(spec["stream_path"].replace("/v1beta/", version), spec["stream"])
    return genai.Client(api_key="test-key", http_options={"base_url": providers.url})


def _one_span_per_call(recorded: Any, calls: int) -> list[Any]:
    spans = recorded.spans()
    assert len(spans) == calls, [span.name for span in spans]
    assert [span.attributes.get("genops.attempts") for span in spans] == [1] * calls, "the wire layer counted the attempt only"
    assert [span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for span in spans] == [8] * calls
    return spans


def test_sync_call_through_httpx_is_recorded_once(gemini, providers, rec):
    assert gemini.models.generate_content(model=MODEL, contents="Say hello").text == "Hello!"
    _one_span_per_call(rec, 1)
    assert len(providers.requests) == 1


def test_async_call_through_aiohttp_is_recorded_once(gemini, providers, rec):
    assert gemini.aio._api_client._use_aiohttp(), "google-genai sends async calls through aiohttp when it is installed"
    answer = asyncio.run(gemini.aio.models.generate_content(model=MODEL, contents="Say hello"))
    assert answer.text == "Hello!"
    _one_span_per_call(rec, 1)
    assert len(providers.requests) == 1


# google-genai sends a stream's request at the first chunk, after generate_content_stream returned:
# the kit's stream proxies make their call the active one while they pull, so the wire layer
# sees the request as recorded.
def test_sync_stream_is_recorded_once(gemini, providers, rec):
    assert "".join(chunk.text for chunk in gemini.models.generate_content_stream(model=MODEL, contents="Say hello")) == "Hello!"
    _one_span_per_call(rec, 1)


def test_async_stream_is_recorded_once(gemini, providers, rec):
    async def main() -> str:
        stream = await gemini.aio.models.generate_content_stream(model=MODEL, contents="Say hello")
        return "".join([chunk.text async for chunk in stream])

    assert asyncio.run(main()) == "Hello!"
    _one_span_per_call(rec, 1)


def test_a_blocked_call_is_refused_by_the_sdk_plugin_before_any_http(gemini, providers, governed):
    from google.genai import errors

    with governed({"GENOPS_BLOCKED_MODELS": MODEL}) as recorded:
        with pytest.raises(errors.ClientError):
            asyncio.run(gemini.aio.models.generate_content(model=MODEL, contents="Say hello"))
    assert providers.requests == []
    assert len(recorded.spans()) == 1

