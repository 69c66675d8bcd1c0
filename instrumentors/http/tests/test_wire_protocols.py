"""requests and httpx posting each protocol's JSON to a local server: a call, a stream, blocks."""

from __future__ import annotations

import httpx
import pytest
import requests

from genops_autoinstrument import semconv

NAMES = ("anthropic", "gemini", "ollama", "cohere")


def _tokens(span):
    return span.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), span.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)


def _post(client: str, url: str, body: dict, stream: bool = False) -> tuple[int, bytes]:
    if client == "requests":
        response = requests.post(url, json=body, stream=stream)
        content = b"".join(response.iter_content(chunk_size=7)) if stream else response.content
        return response.status_code, content
    if stream:
        with httpx.Client() as session, session.stream("POST", url, json=body) as response:
            return response.status_code, b"".join(response.iter_bytes())
    response = httpx.post(url, json=body)
    return response.status_code, response.content


@pytest.mark.parametrize("client", ["requests", "httpx"])
@pytest.mark.parametrize("name", NAMES)
def test_a_call_is_recorded_with_the_apis_provider_and_usage(providers, rec, h, name, client):
    spec = h.PROTOCOLS[name]
    providers.json(spec["path"], spec["answer"])
    status, content = _post(client, providers.url + spec["path"], spec["body"])
    assert status == 200 and content
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == spec["provider"]
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == spec["model"]
    assert _tokens(span) == spec["usage"]
    assert providers.requests[0]["json"] == spec["body"]


@pytest.mark.parametrize("client", ["requests", "httpx"])
@pytest.mark.parametrize("name", NAMES)
def test_a_stream_is_read_with_the_application_and_priced_from_its_final_event(providers, rec, h, name, client):
    spec = h.PROTOCOLS[name]
    path = spec.get("stream_path", spec["path"])
    providers.stream(path, spec["stream"], spec.get("content_type", "text/event-stream"))
    status, content = _post(client, providers.url + path, {**spec["body"], **spec["stream_body"]}, stream=True)
    assert content == b"".join(spec["stream"]), "the application reads exactly what the server sent"
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert _tokens(span) == spec["stream_usage"]


@pytest.mark.parametrize("name", NAMES)
def test_a_blocked_model_gets_the_providers_403_and_nothing_is_sent(providers, governed, h, name):
    spec = h.PROTOCOLS[name]
    with governed({"GENOPS_BLOCKED_MODELS": spec["model"]}) as recorded:
        response = requests.post(providers.url + spec["path"], json=spec["body"])
        with pytest.raises(requests.HTTPError):
            response.raise_for_status()
    assert providers.requests == []
    assert response.status_code == 403
    assert spec["error"](response.json()), response.json()
    assert h.one_span(recorded).attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED


@pytest.mark.parametrize("name", NAMES)
def test_an_exhausted_budget_gets_429_with_retry_after(providers, governed, h, name):
    spec = h.PROTOCOLS[name]
    with governed({"GENOPS_BUDGETS": "team=0.000001/day", "GENOPS_UNPRICED_POLICY": "block"}):
        with httpx.Client() as client:
            response = client.post(providers.url + spec["path"], json=spec["body"])
    assert providers.requests == []
    assert response.status_code == spec.get("budget_status", 429)  # Cohere's clients retry any 429: 402
    assert response.headers["x-should-retry"] == "false"
    if spec["priced"]:  # over budget: retry when the period ends
        assert 0 < int(response.headers["retry-after"]) <= 86400
    else:  # a call no price covers, refused under a budget: no point in retrying
        assert "retry-after" not in response.headers


def test_requests_stream_of_an_openai_chat_hides_the_usage_chunk(providers, rec, h):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
    response = requests.post(providers.url + "/v1/chat/completions", json=body, stream=True)
    lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == b"data: [DONE]" and len(lines) == 7
    assert not any(b'"usage"' in line for line in lines)
    assert _tokens(h.one_span(rec)) == (21, 4)


def test_requests_that_are_not_model_calls_pass_unrecorded(providers, rec):
    assert requests.get(providers.url + "/v1/chat/completions").status_code == 200
    assert requests.post(providers.url + "/api/chat", data=b"plain text").status_code == 404
    assert rec.spans() == []


def test_hiding_holds_across_any_chunk_boundary(providers, rec, h):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
    response = requests.post(providers.url + "/v1/chat/completions", json=body, stream=True)
    content = b"".join(response.iter_content(chunk_size=5))
    expected = b"".join(h.sse_events(h.chat_chunks()))
    assert content == expected, "byte for byte what the server sends when not asked for usage"
    assert _tokens(h.one_span(rec)) == (21, 4)


def test_provider_names_come_from_known_hosts_never_from_unknown_ones():
    from genops_autoinstrument.api import provider_for_host

    assert provider_for_host("api.groq.com", "openai") == "groq"
    assert provider_for_host("my-resource.openai.azure.com", "openai") == "azure.ai.openai"
    assert provider_for_host("llm-gateway.internal", "openai") == "openai"
    assert provider_for_host("10.0.0.7", "anthropic") == "anthropic"
    assert provider_for_host("s3.amazonaws.com", "openai") == "openai"
