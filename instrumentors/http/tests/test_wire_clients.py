"""Client libraries no SDK plugin covers, against a local server answering as their APIs do: the
``ollama``, ``cohere`` (v2) and ``mistralai`` clients and ``langchain-mistralai`` — a call, a
stream, a blocked model (nothing sent, the client's own error, no retry) and an exhausted budget."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from genops_autoinstrument import semconv

KEY = "test-key-DO-NOT-RECORD-123456"
BLOCK = {"GENOPS_BLOCKED_MODELS": "llama3.2,command-a-03-2025,mistral-small-latest"}
BUDGET = {"GENOPS_BUDGETS": "team=0.000001/day", "GENOPS_UNPRICED_POLICY": "block"}


def _tokens(span: Any) -> tuple[Any, Any]:
    return span.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), span.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)


def _refused(providers: Any, recorded: Any, result: str = semconv.RESULT_BLOCKED) -> None:
    """Nothing reached the server, and the client asked once (one decision: it did not retry)."""
    assert providers.requests == []
    assert [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in recorded.spans()] == [result]


# --- ollama -----------------------------------------------------------------------------------------------
OLLAMA_GENERATE = {"model": "llama3.2", "created_at": "2025-05-01T10:00:00.000Z", "response": "Hello!", "done": True, "done_reason": "stop", "context": [1, 2, 3], "total_duration": 1200000000, "load_duration": 1000000, "prompt_eval_count": 11, "prompt_eval_duration": 100000000, "eval_count": 4, "eval_duration": 900000000}
OLLAMA_EMBED = {"model": "all-minilm", "embeddings": [[0.010071029, -0.0017594862, 0.05007221]], "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}


@pytest.fixture
def ollama_server(providers: Any, h: Any) -> Any:
    chat = h.PROTOCOLS["ollama"]

    def answer(request: dict[str, Any]) -> Any:
        streaming = request["json"].get("stream") is not False
        if request["path"] == "/api/chat":
            if streaming:
                return 200, {"content-type": "application/x-ndjson"}, chat["stream"]
            return 200, {"content-type": "application/json; charset=utf-8"}, json.dumps(chat["answer"]).encode()
        if request["path"] == "/api/generate":
            lines = [{**OLLAMA_GENERATE, "response": "Hel", "done": False}, {**OLLAMA_GENERATE, "response": "lo!"}]
            if streaming:
                return 200, {"content-type": "application/x-ndjson"}, h.ndjson(lines)
            return 200, {"content-type": "application/json; charset=utf-8"}, json.dumps(OLLAMA_GENERATE).encode()
        return 200, {"content-type": "application/json; charset=utf-8"}, json.dumps(OLLAMA_EMBED).encode()

    for path in ("/api/chat", "/api/generate", "/api/embed"):
        providers.routes[path] = answer
    return providers


def test_ollama_chat_generate_embed_and_streams(ollama_server, rec, h):
    import ollama

    client = ollama.Client(host=ollama_server.url)
    messages = [{"role": "user", "content": "Say hello"}]
    assert client.chat(model="llama3.2", messages=messages).message.content == "Hello!"
    assert "".join(part.message.content for part in client.chat(model="llama3.2", messages=messages, stream=True)) == "Hello!"
    assert client.generate(model="llama3.2", prompt="Say hello").response == "Hello!"
    assert "".join(part.response for part in client.generate(model="llama3.2", prompt="Say hello", stream=True)) == "Hello!"
    assert len(client.embed(model="all-minilm", input="Say hello").embeddings) == 1
    spans = rec.spans()
    assert [span.attributes[semconv.GEN_AI_OPERATION_NAME] for span in spans] == ["chat", "chat", "text_completion", "text_completion", "embeddings"]
    assert {span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans} == {"ollama"}
    assert [_tokens(span) for span in spans] == [(26, 7), (26, 7), (11, 4), (11, 4), (8, None)]
    assert [span.attributes.get(semconv.GEN_AI_REQUEST_STREAM, False) for span in spans[:4]] == [False, True, False, True]


def test_ollama_async_client_stream(ollama_server, rec, h):
    import ollama

    async def main() -> str:
        client = ollama.AsyncClient(host=ollama_server.url)
        parts = await client.chat(model="llama3.2", messages=[{"role": "user", "content": "Say hello"}], stream=True)
        return "".join([part.message.content async for part in parts])

    assert asyncio.run(main()) == "Hello!"
    assert _tokens(h.one_span(rec)) == (26, 7)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("env, status", [(BLOCK, 403), (BUDGET, 429)], ids=["blocked", "budget"])
def test_ollama_refusals_raise_its_response_error(ollama_server, governed, env, status, stream):
    import ollama

    with governed(env) as recorded:
        with pytest.raises(ollama.ResponseError) as caught:
            result = ollama.Client(host=ollama_server.url).chat(model="llama3.2", messages=[{"role": "user", "content": "Say hello"}], stream=stream)
            list(result) if stream else None
    assert caught.value.status_code == status and caught.value.error.startswith("GenOps ")
    _refused(ollama_server, recorded, semconv.RESULT_BLOCKED)


# --- cohere v2 --------------------------------------------------------------------------------------------
COHERE_EMBED = {"id": "5807ee2e-0cda-445a-9ec8-864c60a06606", "embeddings": {"float": [[0.016296387, -0.008354187, -0.04699707]]}, "texts": ["hello"], "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}}, "response_type": "embeddings_by_type"}


@pytest.fixture
def cohere_server(providers: Any, h: Any) -> Any:
    spec = h.PROTOCOLS["cohere"]

    def chat(request: dict[str, Any]) -> Any:
        if request["json"].get("stream"):
            return 200, {"content-type": "text/event-stream"}, spec["stream"]
        return 200, {"content-type": "application/json"}, json.dumps(spec["answer"]).encode()

    providers.routes["/v2/chat"] = chat
    providers.json("/v2/embed", COHERE_EMBED)
    return providers


def test_cohere_chat_stream_and_embed(cohere_server, rec, h):
    import cohere

    client = cohere.ClientV2(api_key=KEY, base_url=cohere_server.url)
    messages = [{"role": "user", "content": "Say hello"}]
    assert client.chat(model="command-a-03-2025", messages=messages).message.content[0].text == "Hello!"
    events = [event.type for event in client.chat_stream(model="command-a-03-2025", messages=messages)]
    assert events == ["message-start", "content-delta", "message-end"]
    assert client.embed(model="embed-v4.0", texts=["hello"], input_type="search_document", embedding_types=["float"]).embeddings.float_
    spans = rec.spans()
    assert {span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans} == {"cohere"}
    assert [_tokens(span) for span in spans] == [(5, 3), (5, 3), (1, None)]
    assert spans[1].attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert [span.attributes.get(semconv.GEN_AI_RESPONSE_ID) for span in spans[:2]] == [h.COHERE_CHAT["id"]] * 2


def test_cohere_blocked_model_raises_forbidden_without_retrying(cohere_server, governed):
    import cohere
    from cohere.errors import ForbiddenError

    with governed(BLOCK) as recorded:
        with pytest.raises(ForbiddenError) as caught:
            cohere.ClientV2(api_key=KEY, base_url=cohere_server.url).chat(model="command-a-03-2025", messages=[{"role": "user", "content": "Say hello"}])
    assert caught.value.status_code == 403 and caught.value.body["message"]
    _refused(cohere_server, recorded)


def test_cohere_exhausted_budget_raises_its_api_error_at_once(cohere_server, governed):
    import cohere
    from cohere.core.api_error import ApiError

    with governed(BUDGET) as recorded:
        with pytest.raises(ApiError) as caught:  # a 429 would be retried twice, sleeping up to a minute each
            cohere.ClientV2(api_key=KEY, base_url=cohere_server.url).chat_stream(model="command-a-03-2025", messages=[{"role": "user", "content": "Say hello"}]).__next__()
    assert caught.value.status_code == 402
    _refused(cohere_server, recorded)


# --- mistralai and langchain-mistralai ----------------------------------------------------------------------
MISTRAL_CHAT = {"id": "cmpl-e5cc70bb28c444948073e77776eb30ef", "object": "chat.completion", "model": "mistral-small-latest", "created": 1702256327, "usage": {"prompt_tokens": 16, "completion_tokens": 4, "total_tokens": 20}, "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "tool_calls": None, "prefix": False}, "finish_reason": "stop"}]}


def _mistral_chunks() -> list[dict[str, Any]]:
    base = {"id": "cmpl-3a3c4d6ec1c947a1b4e6a5b7b0d0c6a8", "object": "chat.completion.chunk", "created": 1702256327, "model": "mistral-small-latest"}
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Hello!"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 16, "completion_tokens": 4, "total_tokens": 20}},
    ]


@pytest.fixture
def mistral_server(providers: Any, h: Any) -> Any:
    def chat(request: dict[str, Any]) -> Any:  # Mistral reports usage on its last chunk, unasked
        if request["json"].get("stream"):
            return 200, {"content-type": "text/event-stream"}, h.sse_events(_mistral_chunks())
        return 200, {"content-type": "application/json"}, json.dumps(MISTRAL_CHAT).encode()

    providers.routes["/v1/chat/completions"] = chat
    return providers


def test_mistralai_complete_and_stream(mistral_server, rec, h):
    from mistralai.client import Mistral

    client = Mistral(api_key=KEY, server_url=mistral_server.url)
    messages = [{"role": "user", "content": "Say hello"}]
    assert client.chat.complete(model="mistral-small-latest", messages=messages).choices[0].message.content == "Hello!"
    events = list(client.chat.stream(model="mistral-small-latest", messages=messages))
    assert "".join(event.data.choices[0].delta.content or "" for event in events) == "Hello!"
    assert events[-1].data.usage.prompt_tokens == 16, "the application sees the usage it was sent"
    spans = rec.spans()
    assert [_tokens(span) for span in spans] == [(16, 4), (16, 4)]
    assert [span.attributes[semconv.GEN_AI_RESPONSE_MODEL] for span in spans] == ["mistral-small-latest"] * 2


@pytest.mark.parametrize("env, status", [(BLOCK, 403), (BUDGET, 429)], ids=["blocked", "budget"])
def test_mistralai_refusals_raise_its_sdk_error(mistral_server, governed, env, status):
    from mistralai.client import Mistral
    from mistralai.client.errors import SDKError

    with governed(env) as recorded:
        with pytest.raises(SDKError) as caught:
            Mistral(api_key=KEY, server_url=mistral_server.url).chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": "Say hello"}])
    assert caught.value.status_code == status
    _refused(mistral_server, recorded)


# On 3.10 the suite installs no langchain-core: the LangChain plugin's range (1.8+) needs Python 3.11, and
# an older langchain-core, out of its range, rightly makes every fail-closed run refuse to start.
@pytest.mark.skipif(sys.version_info < (3, 11), reason="langchain-mistralai needs langchain-core, installed only on Python 3.11+ (the LangChain plugin's range)")
def test_langchain_mistralai_invoke_stream_and_block(mistral_server, rec, governed, h):
    import httpx
    from langchain_mistralai import ChatMistralAI

    model = ChatMistralAI(model="mistral-small-latest", api_key=KEY, endpoint=mistral_server.url + "/v1", max_retries=3)
    assert model.invoke("Say hello").content == "Hello!"
    assert "".join(chunk.content for chunk in model.stream("Say hello")) == "Hello!"
    assert [_tokens(span) for span in rec.spans()] == [(16, 4), (16, 4)]
    mistral_server.requests.clear()
    with governed(BLOCK) as recorded:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            model.invoke("Say hello")
    assert caught.value.response.status_code == 403
    _refused(mistral_server, recorded)
