"""The wire layer when things go wrong or look unusual: a compressed body that stops decompressing,
GenOps' own reading failing, a server spacing its JSON, a body read in one ``read()``, aiohttp
reading undecoded bytes, a client installed outside its range."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from typing import Any

import aiohttp
import httpx
import pytest
import requests

try:
    import zstandard
except ImportError:  # the server then answers gzip, the coding it can produce
    zstandard = None

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api import CallRequest, begin_call, is_refusal
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.api.wire_streams import WireAccumulator, WireBody
from genops_instrumentation_http import HTTPInstrumentor, _supported
from genops_instrumentation_http._flow import _USAGE_NULL
from genops_instrumentation_http._httpx import HttpxAdapter
from genops_instrumentation_http._wrappers import async_wrapper, sync_wrapper

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}
PATH = "/v1/chat/completions"


def _tokens(span: Any) -> tuple[Any, Any]:
    return span.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), span.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)


def _gzip_chunks(chunks: list[bytes]) -> list[bytes]:
    """``chunks`` gzip-compressed as a server streams them: each flushed (byte-aligned), then the trailer."""
    encoder = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return [encoder.compress(chunk) + encoder.flush(zlib.Z_SYNC_FLUSH) for chunk in chunks] + [encoder.flush()]


def _corrupt_gzip(providers: Any, at: int) -> None:
    """OpenAI's stream, gzip-compressed in pieces of half an event (so that an event is incomplete
    at the end of one), with piece ``at`` corrupted: the gzip magic for the first one, else the
    type of the deflate block it starts with set to the reserved 3 (zlib rejects it)."""
    original = providers.routes[PATH]

    def route(request: dict[str, Any]) -> Any:
        status, headers, chunks = original(request)
        out = _gzip_chunks([half for chunk in chunks for half in (chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :])])
        out[at] = (b"\x00" + out[at][1:]) if at == 0 else bytes([out[at][0] | 0x06]) + out[at][1:]
        return status, {**headers, "content-encoding": "gzip"}, out

    providers.routes[PATH] = route


def _httpx_stream(url: str) -> tuple[bytes, str | None]:
    """What an application streaming with httpx gets: the decoded bytes, and the error it ends with."""
    got = []
    try:
        with httpx.Client() as client, client.stream("POST", url + PATH, json={**CHAT, "stream": True}) as response:
            for chunk in response.iter_bytes():
                got.append(chunk)
    except httpx.DecodingError as error:
        return b"".join(got), type(error).__name__
    return b"".join(got), None


@pytest.mark.parametrize("at", [0, 7], ids=["first-chunk", "midway"])
def test_a_gzip_stream_that_stops_decompressing_fails_for_the_client_as_it_would_bare(providers, wire, rec, h, at):
    providers.pause = 0.01  # each piece read as it comes
    _corrupt_gzip(providers, at)
    wire.uninstrument()
    bare = _httpx_stream(providers.url)
    wire.instrument()
    governed = _httpx_stream(providers.url)
    assert providers.requests[0]["json"] == {**CHAT, "stream": True}
    assert providers.requests[1]["json"]["stream_options"] == {"include_usage": True}, "usage asked for: the body is re-encoded"
    if not at:  # nothing passed on yet: the server's bytes as they came
        assert governed == bare == (b"", "DecodingError")
    else:  # the whole events before, what came of the cut one (as sent: it was incomplete), the error
        events, asked = h.sse_events(h.chat_chunks()), h.sse_events([dict(chunk, usage=None) for chunk in h.chat_chunks()])
        assert bare == (b"".join(events[:3]) + events[3][: len(events[3]) // 2], "DecodingError")
        assert governed == (b"".join(events[:3]) + asked[3][: len(asked[3]) // 2], "DecodingError")
    span = h.one_span(rec)
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert span.attributes[semconv.ERROR_TYPE] == "zlib.error", "the body did not decompress: the call failed"


class _FailsAt(WireAccumulator):
    """Reading that fails at the ``n``-th event (an unexpected event shape GenOps cannot read)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def event(self, name: str | None, data: Any) -> bool:
        self.seen += 1
        if self.seen == self.n:
            raise KeyError("unexpected event")
        return "usage" in data and not data.get("choices")


def test_reading_that_fails_after_the_encoder_started_still_passes_on_one_valid_compressed_body(h):
    events = [dict(chunk, usage=None) for chunk in h.chat_chunks()]
    sent = h.sse_events(events)
    body = WireBody(_FailsAt(3), "sse", "gzip", hide=True, strip=_USAGE_NULL)
    out = b"".join(body.feed(chunk) for chunk in _gzip_chunks(sent)) + body.flush()
    decoded = gzip.decompress(out)  # one consistent gzip stream, whatever happened inside
    bare = h.sse_events(h.chat_chunks())
    assert decoded == b"".join(bare[:2]) + b"".join(sent[2:]), "stripped while reading, passed on whole after"


def test_a_server_that_spaces_its_json_gets_its_usage_null_removed_too(providers, rec, h):
    def spaced(request: dict[str, Any]) -> Any:
        include = (request["json"].get("stream_options") or {}).get("include_usage") is True
        chunks = h.chat_chunks()
        events = [dict(chunk, usage=None) for chunk in chunks] if include else chunks
        if include:
            events.append({**{k: v for k, v in chunks[0].items() if k != "choices"}, "choices": [], "usage": h.STREAM_USAGE})
        return 200, {"content-type": "text/event-stream"}, [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]

    providers.routes[PATH] = spaced
    with httpx.Client() as client, client.stream("POST", providers.url + PATH, json={**CHAT, "stream": True}) as response:
        content = b"".join(response.iter_bytes())
    assert b'"usage": null' not in content
    assert content == b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in h.chat_chunks()) + b"data: [DONE]\n\n"
    assert _tokens(h.one_span(rec)) == (21, 4)


def test_a_raw_body_read_whole_ends_its_call_when_read(providers, rec, h):
    response = requests.post(providers.url + PATH, json=CHAT, stream=True)
    body = response.raw.read()
    assert json.loads(body)["usage"]["prompt_tokens"] == 1234
    assert len(rec.spans()) == 1, "ended by the read, not when the response is collected"
    assert _tokens(rec.spans()[0]) == (1234, 56)
    response.close()


def _zstd_or_gzip(providers: Any, h: Any) -> None:
    """OpenAI's stream in the first coding the request accepts that this server can produce
    (zstd when the ``zstandard`` module is there, else gzip), as real servers negotiate."""
    original = providers.routes[PATH]

    def route(request: dict[str, Any]) -> Any:
        status, headers, chunks = original(request)
        for coding in (part.split(";")[0].strip() for part in request["headers"].get("accept-encoding", "").split(",")):
            if coding == "gzip":
                return status, {**headers, "content-encoding": "gzip"}, _gzip_chunks(chunks)
            if coding == "zstd" and zstandard is not None:
                return status, {**headers, "content-encoding": "zstd"}, [zstandard.ZstdCompressor().compress(b"".join(chunks))]
        return status, headers, chunks

    providers.routes[PATH] = route


@pytest.mark.parametrize("where", ["request", "session"])
def test_aiohttp_reading_undecoded_bytes_accepts_only_codings_genops_can_hide_the_usage_chunk_in(providers, rec, h, where):
    _zstd_or_gzip(providers, h)
    accept = {"Accept-Encoding": "zstd, gzip"}

    async def main() -> bytes:
        async with aiohttp.ClientSession(headers=accept if where == "session" else None) as client:
            async with client.post(providers.url + PATH, json={**CHAT, "stream": True}, auto_decompress=False, headers=accept if where == "request" else None) as response:
                return await response.read()

    content = asyncio.run(main())
    assert providers.requests[0]["headers"]["accept-encoding"] == "gzip"
    assert gzip.decompress(content) == b"".join(h.sse_events(h.chat_chunks())), "the usage chunk GenOps asked for never reaches the application"
    assert _tokens(h.one_span(rec)) == (21, 4)


def test_aiohttp_decoding_itself_keeps_the_codings_the_application_accepts(providers, rec, h):
    async def main() -> bytes:
        async with aiohttp.ClientSession() as client:
            async with client.post(providers.url + PATH, json={**CHAT, "stream": True}, headers={"Accept-Encoding": "zstd, gzip"}) as response:
                return await response.read()

    assert asyncio.run(main()) == b"".join(h.sse_events(h.chat_chunks()))
    assert providers.requests[0]["headers"]["accept-encoding"] == "zstd, gzip"


def test_a_wire_refusal_through_aiohttp_is_final_for_retry_predicates(providers, governed):
    async def main() -> BaseException:
        async with aiohttp.ClientSession(raise_for_status=True) as client:
            try:
                await client.post(providers.url + PATH, json=CHAT)
            except aiohttp.ClientResponseError as error:
                return error
        raise AssertionError("not refused")

    with governed({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}):
        error = asyncio.run(main())
    assert is_refusal(error)
    assert not is_refusal(aiohttp.ClientResponseError(error.request_info, (), status=403, headers=error.headers.copy()))


class _Failing(HttpxAdapter):
    """The httpx adapter with its reading and attempt accounting failing (a bug of GenOps')."""

    def observe(self, call: Any, outgoing: Any, response: Any, is_async: bool) -> None:
        raise RuntimeError("observe")

    def attempt(self, response: Any) -> None:
        raise RuntimeError("attempt")


def test_a_failing_observe_or_attempt_never_reaches_the_application(providers, h):
    send, asend = sync_wrapper(_Failing("httpx")), async_wrapper(_Failing("httpx"))

    async def async_send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        response = await asend(client.send, client, (request,), {})
        await response.aread()
        return response

    with capture(config.load({})) as recorded, httpx.Client() as client:
        request = client.build_request("POST", providers.url + PATH, json=CHAT)
        assert send(client.send, client, (request,), {}).json()["usage"]["prompt_tokens"] == 1234
        other = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini"))
        with other:  # a call another plugin records: only the attempt is accounted
            assert send(client.send, client, (request,), {}).status_code == 200
        other.finish()

        async def both() -> list[int]:
            async with httpx.AsyncClient() as aclient:
                first = await async_send(aclient, aclient.build_request("POST", providers.url + PATH, json=CHAT))
                with begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini")) as inner:
                    second = await async_send(aclient, aclient.build_request("POST", providers.url + PATH, json=CHAT))
                inner.finish()
                return [first.status_code, second.status_code]

        assert asyncio.run(both()) == [200, 200]
    assert len(providers.requests) == 4
    assert len(recorded.spans()) == 4, "every call ended, none left open by the failure"


def test_a_client_outside_its_range_is_left_unpatched_and_does_not_disable_the_others(monkeypatch):
    import genops_instrumentation_http as plugin

    assert _supported("aiohttp >= 3.13, < 3.15") is True
    assert _supported("aiohttp >= 99") is False
    assert _supported("no-such-client-installed >= 1") is None
    monkeypatch.setattr(plugin, "_instruments", ("httpx >= 0.27", "aiohttp >= 99"))
    instrumentor = HTTPInstrumentor()
    assert instrumentor.instrumentation_dependencies() == ("httpx >= 0.27",)
    wrapped: list[str] = []
    monkeypatch.setattr(instrumentor, "wrap", lambda module, name, wrapper: wrapped.append(module))
    instrumentor.patch()
    assert "aiohttp.client" not in wrapped and "httpx" in wrapped and "requests.sessions" in wrapped
