"""One model call seen at the HTTP layer, whatever the client library: recognise, describe,
decide (or answer a refused call as the provider would), then read the response.

The client adapters (:mod:`._httpx`, :mod:`._requests`) only translate their request and response
objects; everything else is here, once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from genops_autoinstrument.api import CallRequest, PolicyViolation, begin_call, internal_error
from genops_autoinstrument.api.wire import BlockedReply, blocked_reply, http_status_error, provider_for_host
from genops_autoinstrument.api.wire_streams import WireBody, framing_of

from ._apis import ENDPOINTS, GEMINI, REQUIRED_FIELDS
from ._endpoints import Endpoint

# Every suffix, for the one cheap test an HTTP request that is not a model call pays.
SUFFIXES: tuple[str, ...] = tuple(endpoint.suffix for endpoint in ENDPOINTS)
# The ``"usage":null`` a server asked for usage adds to every chunk, however it spaces its JSON
# (a JSON string cannot hold an unescaped quote, so this never matches inside one).
_USAGE_NULL = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|(?<=\{)\s*"usage"\s*:\s*null\s*,\s*')
# OpenAI-compatible providers known to reject stream_options; their streams report usage unasked.
_NO_USAGE_OPTION = frozenset({"mistral_ai"})
RETRY_HEADER = "x-stainless-retry-count"
ATTEMPT_NUMBER = "genops.attempt.number"


def endpoint_of(path: str) -> Endpoint | None:
    """The endpoint a request path ends with, or None (the common case, one ``endswith``)."""
    if not path.endswith(SUFFIXES):
        return None
    for endpoint in ENDPOINTS:
        if path.endswith(endpoint.suffix):
            return endpoint
    return None  # pragma: no cover - SUFFIXES holds exactly these


@dataclass(slots=True)
class Outgoing:
    """A recognised model call about to be sent."""

    endpoint: Endpoint
    request: CallRequest
    streaming: bool
    body: bytes | None = None  # what is sent instead of the application's body (usage asked for)
    hide: bool = False  # GenOps asked for the usage chunk: the application never sees it
    decoded: bool = False  # the client hands the response body on already decompressed (aiohttp)


def prepare(endpoint: Endpoint, scheme: str, host: str | None, port: int | None, path: str, raw: Any, retry: str | None = None) -> Outgoing | None:
    """Describe the call from its JSON body; None when the body is not a model request."""
    try:
        if isinstance(raw, dict):  # a client's JSON argument, serialised by the client itself
            body: Any = raw
        elif isinstance(raw, (bytes, bytearray, memoryview, str)):
            try:
                body = json.loads(bytes(raw) if not isinstance(raw, (bytes, str)) else raw) if raw else None
            except ValueError:  # not JSON: not a model call
                return None
        else:
            return None  # a streamed or file body: not read
        if not isinstance(body, dict) or any(key not in body for key in REQUIRED_FIELDS[endpoint.suffix]):
            return None
        if endpoint.api is not GEMINI and not isinstance(body.get("model"), str):
            return None
        described = endpoint.describe(body, path)
        streaming = endpoint.always_streams or endpoint.streams(body)
        provider = provider_for_host(host, endpoint.api.provider)
        default_port = 443 if scheme == "https" else 80
        authority = host if port in (None, default_port) else f"{host}:{port}"
        parameters = dict(described.parameters)
        if described.max_output_tokens is not None:
            parameters["gen_ai.request.max_tokens"] = described.max_output_tokens
        if retry and retry.isdigit() and int(retry) > 0:
            parameters[ATTEMPT_NUMBER] = int(retry) + 1
        request = CallRequest(
            provider=provider,
            operation=endpoint.operation,
            request_model=described.model,
            server_address=host,
            server_port=port or default_port,
            api_base_url=f"{scheme}://{authority}{path[: len(path) - len(endpoint.suffix)]}",
            parameters=parameters,
            max_output_tokens=described.max_output_tokens,
            streaming=streaming,
            prompt_text=described.prompt_text,
            input_messages=described.input_messages,
        )
        outgoing = Outgoing(endpoint, request, streaming)
        if streaming and endpoint.usage_option and provider not in _NO_USAGE_OPTION:
            options = body.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage") is True):
                asked = {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}
                outgoing.body = json.dumps(asked, ensure_ascii=False, separators=(",", ":")).encode()
                outgoing.hide = True
        return outgoing
    except Exception as error:
        internal_error("wire request", error)
        return None


_READABLE_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})


def readable_encodings(value: str | None) -> str | None:
    """The ``accept-encoding`` of a request GenOps changed to ask for usage: only the codings it can
    read and hide the usage event in (gzip, deflate), so that the answer is never one it cannot
    filter (brotli, zstd). None: the header stays as it was."""
    if not value:
        return None
    parts = [part.strip() for part in value.split(",")]
    kept = [part for part in parts if part.split(";")[0].strip().lower() in _READABLE_CODINGS]
    return None if len(kept) == len(parts) else (", ".join(kept) or "identity")


def narrow_accept_encoding(headers: Any, name: str = "accept-encoding", sent: str | None = None) -> bool:
    """Narrow the ``accept-encoding`` of the (case-insensitive, mutable) ``headers`` of a request
    GenOps changed to ask for usage to :func:`readable_encodings`; ``sent``: what the client sends
    when the header is absent. True when the header was changed."""
    value = headers.get(name)
    encodings = readable_encodings(sent if value is None else value)
    if encodings is None:
        return False
    headers[name] = encodings
    return True


def begin(outgoing: Outgoing) -> Any:
    """The call (recording), or the :class:`BlockedReply` to answer instead of sending it."""
    try:
        return begin_call(outgoing.request)
    except PolicyViolation as violation:
        api = outgoing.endpoint.api
        return blocked_reply(violation.decision, api.error_body, api.budget_status)


def response_body(outgoing: Outgoing, content_type: str | None, encoding: str | None) -> WireBody:
    """How to read this call's response body as the application reads it."""
    default = outgoing.endpoint.framing if outgoing.streaming else "json"
    framing = framing_of(content_type, default)
    hide = outgoing.hide and framing == "sse"
    return WireBody(outgoing.endpoint.reader(hide), framing, encoding, hide=hide, strip=_USAGE_NULL if hide else None)


def failed(call: Any, status: int, reason: str | None) -> bool:
    """End the call for an HTTP error status; True when it was one."""
    if status < 400:
        return False
    call.fail(http_status_error(status, reason or ""))
    return True


def read_whole(call: Any, outgoing: Outgoing, content_type: str | None, content: bytes) -> bytes | None:
    """Report a body the client already read in full; the bytes the application must get
    instead, when GenOps hid its own usage event from them (else None)."""
    body = response_body(outgoing, content_type, None)
    kept = body.feed(content, encoded=False)
    kept += body.flush()
    body.accumulator.finish(call)
    return kept if outgoing.hide and kept != content else None


__all__ = ["BlockedReply", "Outgoing", "SUFFIXES", "begin", "endpoint_of", "narrow_accept_encoding", "readable_encodings", "failed", "prepare", "read_whole", "response_body"]
