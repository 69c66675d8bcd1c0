"""``requests``: ``Session.send``, through which every request goes (``requests.post``, sessions,
adapters' retries happen below it, on the one request it sends)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from genops_autoinstrument.api import internal_error
from genops_autoinstrument.api.wire import BlockedReply, note_attempt
from genops_autoinstrument.api.wire_streams import WireRawResponse

from . import _flow
from ._endpoints import Endpoint

_endpoint_of = _flow.endpoint_of
_SUFFIXES = _flow.SUFFIXES


class RequestsAdapter:
    """``requests.PreparedRequest`` / ``requests.Response``."""

    @staticmethod
    def endpoint(request: Any) -> Endpoint | None:
        try:
            if request.method != "POST":
                return None
            url = request.url
            if "?" in url:
                url = url.partition("?")[0]
            return _endpoint_of(url) if url.endswith(_SUFFIXES) else None
        except Exception:
            return None

    @staticmethod
    def prepare(endpoint: Endpoint, request: Any) -> _flow.Outgoing | None:
        parts = urlsplit(request.url)
        return _flow.prepare(endpoint, parts.scheme, parts.hostname, parts.port, parts.path, request.body, request.headers.get(_flow.RETRY_HEADER))

    @staticmethod
    def resend(request: Any, body: bytes, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        copy = request.copy()
        copy.body = body
        copy.headers["Content-Length"] = str(len(body))
        _flow.narrow_accept_encoding(copy.headers, "Accept-Encoding")
        if args:
            return (copy, *args[1:]), kwargs
        return args, {**kwargs, "request": copy}

    @staticmethod
    def answer(request: Any, reply: BlockedReply) -> Any:
        """A ``requests.Response`` as the adapter would build it from the provider's error."""
        from requests.models import Response
        from requests.structures import CaseInsensitiveDict

        response = Response()
        response.status_code = reply.status
        response.reason = reply.reason
        response.headers = CaseInsensitiveDict(reply.headers)
        response._content = reply.body
        response._content_consumed = True
        response.raw = io.BytesIO(reply.body)
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        response.elapsed = timedelta(0)
        return response

    @staticmethod
    def observe(call: Any, outgoing: _flow.Outgoing, response: Any, is_async: bool) -> None:
        try:
            if _flow.failed(call, response.status_code, response.reason):
                return
            headers = response.headers
            if response._content is not False:  # read by send() (stream=False)
                replaced = _flow.read_whole(call, outgoing, headers.get("content-type"), response._content or b"")
                if replaced is not None:
                    response._content = replaced
                return
            body = _flow.response_body(outgoing, headers.get("content-type"), headers.get("content-encoding"))
            response.raw = WireRawResponse(response.raw, call, body)
        except Exception as error:
            internal_error("wire response", error)
            call.finish()

    @staticmethod
    def attempt(response: Any) -> None:
        note_attempt(response.status_code, response.headers.get("retry-after"))
