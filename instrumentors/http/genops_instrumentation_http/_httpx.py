"""``httpx`` and ``httpx2`` (the OpenAI and Anthropic SDKs' HTTP library): ``Client.send`` and
``AsyncClient.send``, through which every request of these clients goes (``request``, ``post``,
``stream``, the module-level helpers, and the SDKs' low-level ``client.post``).
"""

from __future__ import annotations

import sys
from typing import Any

from genops_autoinstrument.api import internal_error
from genops_autoinstrument.api.wire import BlockedReply, note_attempt
from genops_autoinstrument.api.wire_streams import WireAsyncByteStream, WireByteStream

from . import _flow
from ._endpoints import Endpoint

_endpoint_of = _flow.endpoint_of
_SUFFIXES = _flow.SUFFIXES


class HttpxAdapter:
    """``httpx.Request`` / ``httpx.Response`` (and httpx2's, the same API)."""

    def __init__(self, library: str) -> None:
        self.library = library

    @staticmethod
    def endpoint(request: Any) -> Endpoint | None:
        """The cheap part every request pays: its method, then the end of its path."""
        try:
            if request.method != "POST":
                return None
            url = request.url
            reference = getattr(url, "_uri_reference", None)  # the parsed URL: no unquoting for the test
            path = reference.path if reference is not None else url.path
            if not path.endswith(_SUFFIXES):
                return None
            return _endpoint_of(url.path)
        except Exception:  # not an httpx request: not ours to read
            return None

    @staticmethod
    def prepare(endpoint: Endpoint, request: Any) -> _flow.Outgoing | None:
        try:
            content = request.content
        except Exception:  # a streamed request body, not read yet: passed on unread
            return None
        url = request.url
        return _flow.prepare(endpoint, url.scheme, url.host, url.port, url.path, content, request.headers.get(_flow.RETRY_HEADER))

    def resend(self, request: Any, body: bytes, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The same request with GenOps' body (the application's request object is left as it was)."""
        headers = request.headers.copy()
        headers.pop("content-length", None)
        _flow.narrow_accept_encoding(headers)
        copy = sys.modules[self.library].Request(request.method, request.url, headers=headers, content=body, extensions=request.extensions)
        if args:
            return (copy, *args[1:]), kwargs
        return args, {**kwargs, "request": copy}

    def answer(self, request: Any, reply: BlockedReply) -> Any:
        """The provider's own HTTP error for a refused call: nothing was sent."""
        return sys.modules[self.library].Response(reply.status, headers=list(reply.headers.items()), content=reply.body, request=request)

    @staticmethod
    def observe(call: Any, outgoing: _flow.Outgoing, response: Any, is_async: bool) -> None:
        """Read the response as the application will: now if the client read it, else along with it."""
        try:
            if _flow.failed(call, response.status_code, response.reason_phrase):
                return
            headers = response.headers
            if hasattr(response, "_content"):
                replaced = _flow.read_whole(call, outgoing, headers.get("content-type"), response.content)
                if replaced is not None:
                    response._content = replaced
                return
            body = _flow.response_body(outgoing, headers.get("content-type"), headers.get("content-encoding"))
            proxy = WireAsyncByteStream if is_async else WireByteStream
            response.stream = proxy(response.stream, call, body)
        except Exception as error:
            internal_error("wire response", error)
            call.finish()

    @staticmethod
    def attempt(response: Any) -> None:
        note_attempt(response.status_code, response.headers.get("retry-after"))
