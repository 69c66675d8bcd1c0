"""The local provider endpoint, driven by the real openai SDK and by raw HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import struct
import textwrap
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")

PROMPT = "Say hi to GenOps, please!"  # 7 tokens: Say, hi, to, GenOps, ",", please, "!"
REPLY = "Hello from the local provider. You said: Say hi to GenOps, please!"  # 9 + 7 = 16 tokens


def raw(server: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    payload = json.dumps(body).encode() if body is not None else None
    sent = {"authorization": "Bearer sk-test", "content-type": "application/json", **(headers or {})}
    connection.request(method, path, body=payload, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


# --- chat completions ------------------------------------------------------------------------
def test_chat_completion_shape_and_exact_usage(openai_client: Any) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.system_fingerprint.startswith("fp_")
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3 + 4 + 7, 16, 30)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_completion_is_deterministic_and_truncates(openai_client: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    first = openai_client.chat.completions.create(model="gpt-4o", messages=messages, max_completion_tokens=5)
    second = openai_client.chat.completions.create(model="gpt-4o", messages=messages, max_completion_tokens=5)
    assert first.choices[0].message.content == second.choices[0].message.content == "Hello from the local provider"
    assert first.id != second.id
    assert first.choices[0].finish_reason == "length"
    assert first.model == "gpt-4o-2024-08-06"
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (3 + (4 + 3) + (4 + 7), 5)


def test_reasoning_model_reports_reasoning_tokens(openai_client: Any) -> None:
    completion = openai_client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": PROMPT}])
    assert completion.model == "o4-mini-2025-04-16"
    assert completion.usage.completion_tokens == 16 + 64
    assert completion.usage.completion_tokens_details.reasoning_tokens == 64


def test_chat_stream_with_usage(openai_client: Any) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert len(chunks) == 1 + 16 + 1 + 1  # role, one per token, finish, usage
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (14, 16)
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}


def test_chat_stream_without_usage_has_no_usage_chunk(openai_client: Any) -> None:
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True))
    assert len(chunks) == 1 + 16 + 1
    assert all(c.choices and c.usage is None for c in chunks)
    assert all("usage" not in c.model_fields_set for c in chunks)


def test_raw_sse_framing(local_provider: Any) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    status, headers, data = raw(local_provider, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    events = data.decode().split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert all(event.startswith("data: {") for event in events[:-2])
    assert json.loads(events[0][len("data: "):])["object"] == "chat.completion.chunk"


def test_n_choices_are_all_billed(openai_client: Any) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.usage.completion_tokens == 32


# --- responses -------------------------------------------------------------------------------
def test_responses_non_streaming(openai_client: Any) -> None:
    response = openai_client.responses.create(model="gpt-4.1-mini", input=PROMPT, instructions="Be kind.")
    assert isinstance(response, openai.types.responses.Response)
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "gpt-4.1-mini-2025-04-14"
    assert response.output_text == REPLY
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == ((3 + 4) + (4 + 7), 16, 34)
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_incomplete_and_reasoning(openai_client: Any) -> None:
    response = openai_client.responses.create(model="o3-mini", input=[{"role": "user", "content": PROMPT}], max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output_text == "Hello from the"
    assert response.usage.output_tokens == 3 + 64


def test_responses_stream_events(openai_client: Any) -> None:
    events = list(openai_client.responses.create(model="gpt-4o-mini", input=PROMPT, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[4:20] == ["response.output_text.delta"] * 16
    assert kinds[20:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == REPLY
    assert events[0].response.usage is None
    assert events[-1].response.usage.output_tokens == 16


def test_responses_stream_helper(openai_client: Any) -> None:
    with openai_client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == REPLY
    assert final.usage.input_tokens == 11


# --- embeddings and legacy completions ---------------------------------------------------------
def test_embeddings_float_and_base64_agree(openai_client: Any) -> None:
    floats = openai_client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 1536
    assert abs(sum(v * v for v in floats.data[0].embedding) - 1.0) < 1e-5
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)
    encoded = openai_client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=8, encoding_format="base64")
    values = encoded.data[0].embedding
    if isinstance(values, str):  # the SDK may hand base64 back as is
        values = list(struct.unpack("<8f", base64.b64decode(values)))
    assert len(values) == 8
    again = openai_client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=8)
    assert values == pytest.approx(again.data[0].embedding, abs=1e-6)


def test_embeddings_large_model_and_token_input(openai_client: Any) -> None:
    result = openai_client.embeddings.create(model="text-embedding-3-large", input=[101, 102, 103])
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 3072
    assert result.usage.prompt_tokens == 3


def test_legacy_completions(openai_client: Any) -> None:
    completion = openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT + " Thanks.")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == REPLY  # cut at the API's default max_tokens of 16
    assert completion.choices[0].finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 16)


def test_legacy_completions_stream(openai_client: Any) -> None:
    chunks = list(
        openai_client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="hi", max_tokens=50, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello from the local provider. You said: hi"
    assert chunks[-1].usage.completion_tokens == 10
    assert chunks[-2].choices[0].finish_reason == "stop"


# --- errors ----------------------------------------------------------------------------------
def test_fail_models_give_sdk_errors(openai_client: Any) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="fail-429", messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 429
    assert raised.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        openai_client.responses.create(model="fail-500", input="x")


def test_http_errors(local_provider: Any) -> None:
    status, _, body = raw(local_provider, "POST", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}, {"authorization": ""})
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    status, _, body = raw(local_provider, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]})
    assert (status, json.loads(body)["error"]["param"]) == (400, "model")
    assert raw(local_provider, "POST", "/v1/nothing", {})[0] == 404
    assert raw(local_provider, "GET", "/v1/chat/completions")[0] == 405
    assert raw(local_provider, "GET", "/health")[2] == b"ok\n"
    status, _, body = raw(local_provider, "GET", "/v1/models")
    assert "gpt-4o-mini" in [model["id"] for model in json.loads(body)["data"]]


# --- the route-module contract ---------------------------------------------------------------
def test_route_modules_are_discovered_with_path_params(server_module: Any, tmp_path: Path) -> None:
    (tmp_path / "acme_routes.py").write_text(
        textwrap.dedent(
            '''
            import json

            def echo(body, headers, model_id):
                payload = {"model_id": model_id, "body": body, "path": headers[":path"], "method": headers[":method"]}
                return 200, {"content-type": "application/json"}, json.dumps(payload).encode()

            def stream(body, headers, model_id):
                return 200, {"content-type": "text/plain"}, (piece.encode() for piece in ["a", "", "b", "c"])

            def broken(body, headers, model_id):
                raise RuntimeError("boom")

            ROUTES = [
                ("POST", r"/model/(?P<model_id>[^/]+)/invoke", echo),
                ("POST", r"/model/(?P<model_id>[^/]+)/stream", stream),
                ("POST", r"/model/(?P<model_id>[^/]+)/broken", broken),
            ]
            '''
        )
    )
    (tmp_path / "broken_routes.py").write_text("raise ImportError('not today')\n")
    (tmp_path / "helpers.py").write_text("ROUTES = 1/0\n")  # not a *_routes.py: never imported
    routes = server_module.load_routes(tmp_path)
    assert {route.provider for route in routes} == {"acme"}
    with server_module.running(routes=routes) as server:
        status, _, body = raw(server, "POST", "/model/anthropic.claude-v2/invoke?x=1", {"q": 1})
        assert status == 200
        assert json.loads(body) == {"model_id": "anthropic.claude-v2", "body": {"q": 1}, "path": "/model/anthropic.claude-v2/invoke?x=1", "method": "POST"}
        status, headers, body = raw(server, "POST", "/model/m/stream", {})
        assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"abc")
        assert raw(server, "POST", "/model/m/broken", {})[0] == 500
        status, _, body = raw(server, "POST", "/model/m/invoke", None, {"content-type": "application/octet-stream"})
        assert json.loads(body)["body"] == {}


def test_non_json_bodies_are_passed_raw(server_module: Any, tmp_path: Path) -> None:
    (tmp_path / "raw_routes.py").write_text(
        "def h(body, headers):\n    return 200, {}, repr(sorted(body.items())).encode()\nROUTES = [('POST', '/x', h)]\n"
    )
    with server_module.running(routes=server_module.load_routes(tmp_path)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/x", body=b"\x00\x01binary", headers={"content-type": "application/octet-stream"})
        assert connection.getresponse().read() == repr([("_raw", b"\x00\x01binary")]).encode()
        connection.request("POST", "/x", body=b"[1, 2]", headers={"content-type": "application/json"})
        assert connection.getresponse().read() == repr([("_json", [1, 2])]).encode()
        connection.close()


def test_token_counter(openai_routes: Any) -> None:
    assert openai_routes.pieces("Hi, you!") == ["Hi", ",", " you", "!"]
    assert openai_routes.count_tokens(PROMPT) == 7
    assert openai_routes.count_tokens(REPLY) == 16
