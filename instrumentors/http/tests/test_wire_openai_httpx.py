"""httpx posting OpenAI-compatible chat requests to a local server: a call, a stream, blocks."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from genops_autoinstrument import semconv

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


def test_a_chat_call_is_recorded_once_with_usage_cost_and_the_provider(providers, rec, h):
    with httpx.Client() as client:
        response = client.post(f"{providers.url}/v1/chat/completions", json=CHAT)
    assert response.json()["choices"][0]["message"]["content"].startswith("Hello")
    span = h.one_span(rec)
    attributes = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"  # an address: the API's own provider, never the host
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 56
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 20
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert providers.requests[0]["json"] == CHAT, "sent exactly as the application asked"


def test_a_request_that_is_not_a_model_call_is_not_recorded(providers, rec):
    with httpx.Client() as client:
        client.get(f"{providers.url}/v1/chat/completions")
        client.post(f"{providers.url}/v1/chat/completions", content=b"not json")
        client.post(f"{providers.url}/v1/chat/completions", json={"hello": "world"})
        client.post(f"{providers.url}/upload", json=CHAT)
    assert rec.spans() == []
    assert len(providers.requests) == 3


def _lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line]


def test_a_stream_asks_for_usage_and_hides_the_extra_chunk(providers, rec, h):
    body = {**CHAT, "stream": True}
    with httpx.Client() as client, client.stream("POST", f"{providers.url}/v1/chat/completions", json=body) as response:
        lines = _lines(response)
    sent = providers.requests[0]["json"]
    assert sent["stream_options"] == {"include_usage": True}, "GenOps asked for the usage chunk"
    events = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    assert lines[-1] == "data: [DONE]"
    assert all(event["choices"] for event in events), "the usage-only chunk is hidden"
    assert all("usage" not in event for event in events), "and so are the usage marks the server added"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == "Hello there!"
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == h.STREAM_USAGE["prompt_tokens"]
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == h.STREAM_USAGE["completion_tokens"]
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED


def test_a_stream_that_asked_for_usage_itself_sees_the_usage_chunk(providers, rec, h):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.Client() as client, client.stream("POST", f"{providers.url}/v1/chat/completions", json=body) as response:
        events = [json.loads(line[6:]) for line in _lines(response) if line != "data: [DONE]"]
    assert events[-1]["choices"] == [] and events[-1]["usage"] == h.STREAM_USAGE
    assert providers.requests[0]["json"] == body
    assert h.one_span(rec).attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_a_stream_read_in_full_by_the_client_is_recorded_and_filtered(providers, rec, h):
    response = httpx.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True})
    assert b'"choices":[]' not in response.content and b'"usage"' not in response.content
    assert response.text.rstrip().endswith("data: [DONE]")
    assert h.one_span(rec).attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_a_stream_without_usage_is_recorded_as_unknown_usage(providers, rec, h):
    providers.stream("/v1/chat/completions", h.sse_events(h.chat_chunks()))  # a server that ignores stream_options
    with httpx.Client() as client, client.stream("POST", f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as response:
        assert len(_lines(response)) == 7
    span = h.one_span(rec)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.GENOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_UNKNOWN_USAGE


def test_async_call_and_stream(providers, rec):
    async def main() -> list[str]:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{providers.url}/v1/chat/completions", json=CHAT)
            assert response.status_code == 200
            async with client.stream("POST", f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}) as streamed:
                return [line async for line in streamed.aiter_lines() if line]

    lines = asyncio.run(main())
    assert all('"choices":[]' not in line for line in lines)
    first, second = rec.spans()
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1234
    assert second.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_an_http_error_fails_the_call_with_the_status_as_error_type(providers, rec, h):
    providers.json("/v1/chat/completions", {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}}, status=503)
    response = httpx.post(f"{providers.url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 503
    span = h.one_span(rec)
    assert span.attributes[semconv.ERROR_TYPE] == "503"


def test_a_blocked_model_is_answered_403_and_never_sent(providers, governed, h):
    with governed({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}) as recorded:
        response = httpx.post(f"{providers.url}/v1/chat/completions", json=CHAT)
        with pytest.raises(httpx.HTTPStatusError):
            response.raise_for_status()
    assert providers.requests == []
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "genops_policy_violation"
    assert response.headers["x-should-retry"] == "false"
    span = h.one_span(recorded)
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED


def test_an_exhausted_budget_is_answered_429_with_retry_after(providers, governed):
    async def main() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(f"{providers.url}/v1/chat/completions", json=CHAT)

    with governed({"GENOPS_BUDGETS": "team=0.000001/day"}):
        response = asyncio.run(main())
    assert providers.requests == []
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert response.headers["x-should-retry"] == "false"
    assert 0 < int(response.headers["retry-after"]) <= 86400


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_a_gzip_stream_has_the_usage_chunk_hidden_and_stays_gzip(providers, rec, h, client):
    import gzip

    import requests

    providers.gzip()
    body = {**CHAT, "stream": True}
    if client == "httpx":
        with httpx.Client() as session, session.stream("POST", f"{providers.url}/v1/chat/completions", json=body) as response:
            decoded = b"".join(response.iter_bytes(7))
        with httpx.Client() as session, session.stream("POST", f"{providers.url}/v1/chat/completions", json=body) as response:
            raw = b"".join(response.iter_raw())
    else:
        decoded = b"".join(requests.post(f"{providers.url}/v1/chat/completions", json=body, stream=True).iter_content(7))
        raw = b"".join(requests.post(f"{providers.url}/v1/chat/completions", json=body, stream=True).raw.stream(7, decode_content=False))
    expected = b"".join(h.sse_events(h.chat_chunks()))
    assert decoded == expected, "the client decodes what the server sends when not asked for usage"
    assert gzip.decompress(raw) == expected, "and the bytes it reads raw are still gzip"
    assert [span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] for span in rec.spans()] == [21, 21]


def test_a_request_genops_asks_usage_for_accepts_only_codings_genops_can_read(providers, rec):
    import requests

    headers = {"accept-encoding": "br, zstd, gzip;q=0.8"}
    with httpx.Client() as client, client.stream("POST", f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers) as response:
        response.read()
    requests.post(f"{providers.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers={"accept-encoding": "br"}).close()
    httpx.post(f"{providers.url}/v1/chat/completions", json=CHAT, headers=headers)  # not changed: sent as asked
    assert [request["headers"]["accept-encoding"] for request in providers.requests] == ["gzip;q=0.8", "identity", "br, zstd, gzip;q=0.8"]
