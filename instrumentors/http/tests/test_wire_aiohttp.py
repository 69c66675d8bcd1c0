"""aiohttp posting JSON to a local server: a call, streams read every way aiohttp offers, blocks."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any, Awaitable, Callable

import aiohttp
import pytest

from genops_autoinstrument import policy_decision, semconv

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


def _run(main: Callable[[aiohttp.ClientSession], Awaitable[Any]], **session: Any) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession(**session) as client:
            return await main(client)

    return asyncio.run(go())


def _tokens(span: Any) -> tuple[Any, Any]:
    return span.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), span.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)


def test_a_json_call_is_recorded_once_with_usage_and_the_apis_provider(providers, rec, h):
    async def main(client: aiohttp.ClientSession) -> Any:
        async with client.post(f"{providers.url}/v1/chat/completions", json=CHAT) as response:
            return await response.json()

    answer = _run(main)
    assert answer["choices"][0]["message"]["content"].startswith("Hello")
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert _tokens(span) == (1234, 56)
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    assert providers.requests[0]["json"] == CHAT, "sent exactly as the application asked"


def test_a_relative_url_on_a_base_url_and_a_bytes_body(providers, rec, h):
    async def main(client: aiohttp.ClientSession) -> Any:
        response = await client.post("/v1/chat/completions", data=json.dumps(CHAT).encode(), headers={"content-type": "application/json"})
        return response.status, await response.read()

    status, body = _run(main, base_url=providers.url)
    assert status == 200 and json.loads(body)["usage"]["prompt_tokens"] == 1234
    assert h.one_span(rec).attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"


async def _lines(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([line async for line in response.content])


async def _readlines(response: aiohttp.ClientResponse) -> bytes:
    out = []
    while line := await response.content.readline():
        out.append(line)
    return b"".join(out)


READERS = {
    "async for": _lines,
    "readline": _readlines,
    "iter_chunked": lambda response: _join(response.content.iter_chunked(5)),
    "iter_any": lambda response: _join(response.content.iter_any()),
    "read": lambda response: response.read(),
}


async def _join(chunks: Any) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.mark.parametrize("pause", [0.0, 0.02], ids=["buffered", "as-it-comes"])
@pytest.mark.parametrize("reader", READERS)
def test_an_openai_stream_asks_for_usage_and_hides_the_extra_chunk_however_it_is_read(providers, rec, h, reader, pause):
    providers.pause = pause
    async def main(client: aiohttp.ClientSession) -> bytes:
        async with client.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            return await READERS[reader](response)

    content = _run(main)
    assert providers.requests[0]["json"]["stream_options"] == {"include_usage": True}
    assert content == b"".join(h.sse_events(h.chat_chunks())), "byte for byte what the server sends when not asked for usage"
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert _tokens(span) == (21, 4)


@pytest.mark.parametrize("name", ["anthropic", "gemini", "ollama", "cohere"])
def test_other_protocols_streams_are_priced_from_their_final_event(providers, rec, h, name):
    spec = h.PROTOCOLS[name]
    path = spec.get("stream_path", spec["path"])
    providers.stream(path, spec["stream"], spec.get("content_type", "text/event-stream"))

    async def main(client: aiohttp.ClientSession) -> bytes:
        async with client.post(providers.url + path, json={**spec["body"], **spec["stream_body"]}) as response:
            return await _lines(response)

    assert _run(main) == b"".join(spec["stream"])
    assert _tokens(h.one_span(rec)) == spec["stream_usage"]


def test_a_whole_stream_in_one_chunk_is_filtered_before_the_application_reads_it(providers, rec, h):
    original = providers.routes["/v1/chat/completions"]
    providers.routes["/v1/chat/completions"] = lambda request: (lambda status, headers, chunks: (status, headers, [b"".join(chunks)]))(*original(request))

    async def main(client: aiohttp.ClientSession) -> bytes:
        async with client.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            await asyncio.sleep(0.05)  # the whole body is in aiohttp's buffer before the first read
            return await _lines(response)

    assert _run(main) == b"".join(h.sse_events(h.chat_chunks()))
    assert _tokens(h.one_span(rec)) == (21, 4)


@pytest.mark.parametrize("decompress", [True, False])
def test_a_gzip_stream_is_read_and_the_usage_chunk_still_hidden(providers, rec, h, decompress):
    providers.gzip()

    async def main(client: aiohttp.ClientSession) -> bytes:
        async with client.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}, auto_decompress=decompress) as response:
            return await _lines(response)

    content = _run(main)
    assert (content if decompress else gzip.decompress(content)) == b"".join(h.sse_events(h.chat_chunks()))
    assert _tokens(h.one_span(rec)) == (21, 4)


def test_a_stream_released_early_ends_its_call(providers, rec, h):
    async def main(client: aiohttp.ClientSession) -> bytes:
        async with client.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            return await response.content.readline()

    assert _run(main).startswith(b"data: ")
    assert len(rec.spans()) == 1


def test_requests_that_are_not_model_calls_pass_unrecorded(providers, rec):
    async def main(client: aiohttp.ClientSession) -> list[int]:
        statuses = []
        for method, path, options in (("GET", "/v1/chat/completions", {}), ("POST", "/v1/chat/completions", {"data": b"plain"}), ("POST", "/v1/uploads", {"json": CHAT}), ("POST", "/api/chat", {"data": {"model": "x", "messages": "form"}})):
            async with client.request(method, providers.url + path, **options) as response:
                statuses.append(response.status)
        return statuses

    assert _run(main) == [200, 200, 404, 404]
    assert rec.spans() == []


def test_a_blocked_model_never_leaves_the_process_and_gets_the_providers_403(providers, governed, h):
    async def main(client: aiohttp.ClientSession) -> Any:
        async with client.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as streamed:
            lines = await _lines(streamed)  # an application that streams reads the error body the same way
        async with client.post(f"{providers.url}/v1/chat/completions", json=CHAT) as response:
            body = await response.json()
            with pytest.raises(aiohttp.ClientResponseError) as caught:
                response.raise_for_status()
            return response, body, caught.value, lines

    with governed({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}) as recorded:
        response, body, error, lines = _run(main)
    assert providers.requests == []
    assert isinstance(response, aiohttp.ClientResponse) and response.status == 403 and not response.ok
    assert body["error"]["type"] == "genops_policy_violation"
    assert json.loads(lines) == body
    assert error.status == 403 and error.headers["x-should-retry"] == "false"
    assert [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in recorded.spans()] == [semconv.RESULT_BLOCKED] * 2
    decision = policy_decision(error)  # aiohttp's error keeps the response's headers, registered with the refusal
    assert decision is not None and decision.reason_code == semconv.REASON_POLICY_DENY_MODEL


def test_a_session_that_raises_for_status_raises_for_a_refusal_too(providers, governed, h):
    async def main(client: aiohttp.ClientSession) -> None:
        await client.post(providers.url + "/api/chat", json=h.PROTOCOLS["ollama"]["body"])

    with governed({"GENOPS_BLOCKED_MODELS": "llama3.2"}) as recorded:
        with pytest.raises(aiohttp.ClientResponseError) as caught:
            _run(main, raise_for_status=True)
    assert caught.value.status == 403
    assert providers.requests == [] and len(recorded.spans()) == 1


def test_an_exhausted_budget_gets_429_with_retry_after_and_one_decision(providers, governed, h):
    spec = h.PROTOCOLS["anthropic"]

    async def main(client: aiohttp.ClientSession) -> Any:
        async with client.post(providers.url + spec["path"], json=spec["body"]) as response:
            return response.status, dict(response.headers), await response.json()

    with governed({"GENOPS_BUDGETS": "team=0.000001/day"}) as recorded:
        status, headers, body = _run(main)
    assert providers.requests == []
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert headers["x-should-retry"] == "false" and 0 < int(headers["retry-after"]) <= 86400
    assert len(recorded.spans()) == 1
