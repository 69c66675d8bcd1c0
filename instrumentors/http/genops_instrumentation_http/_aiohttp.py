"""``aiohttp``: ``ClientSession._request``, through which every request of a session goes
(``get``, ``post``, ``request``; redirects and connection retries happen inside it). aiohttp's
public extension points cannot answer a request in its place (trace configs only observe; client
middlewares belong to one session), so this one method is wrapped.

A model response's body is read where aiohttp hands it to ``response.content`` (after it has
decompressed it): every way the application reads it (``read``/``json``/``text``,
``iter_chunked``, ``iter_any``, ``readline``, ``async for line in response.content``) then sees
the same bytes, nothing is read ahead of aiohttp's own buffer, and the usage event GenOps asked
for is removed before the application can read it. The reader is switched, for this response
only, to a subclass of aiohttp's ``StreamReader`` (``isinstance`` holds) that passes its data
through the call's :class:`WireBody`.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from genops_autoinstrument.api import internal_error, remember_refusal
from genops_autoinstrument.api.wire import BlockedReply, note_attempt
from genops_autoinstrument.api.wire_streams import WireBody

from . import _flow
from ._endpoints import Endpoint
from ._wrappers import Wrapper, call_async

_SUFFIXES = _flow.SUFFIXES
_endpoint_of = _flow.endpoint_of


@dataclass(slots=True)
class AiohttpRequest:
    """What ``_request`` was called with, once its path looked like a model endpoint."""

    session: Any
    url: Any  # yarl.URL, absolute
    kwargs: dict


def request_wrapper(adapter: "AiohttpAdapter") -> Wrapper:
    """The wrapt wrapper of ``ClientSession._request(method, str_or_url, **kwargs)``."""

    async def request(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if len(args) < 2:
            return await wrapped(*args, **kwargs)
        method, url = args[0], args[1]
        if method != "POST" and (not isinstance(method, str) or method.upper() != "POST"):
            return await wrapped(*args, **kwargs)
        path = url.partition("?")[0] if isinstance(url, str) else getattr(url, "path", "")
        if not path.endswith(_SUFFIXES):
            return await wrapped(*args, **kwargs)
        resolved = adapter.resolve(instance, url, kwargs)
        endpoint = _endpoint_of(resolved.url.path) if resolved is not None else None
        if endpoint is None:
            return await wrapped(*args, **kwargs)
        return await call_async(adapter, endpoint, resolved, wrapped, args, kwargs)

    return request


class AiohttpAdapter:
    """``aiohttp.ClientSession`` / ``aiohttp.ClientResponse``."""

    @staticmethod
    def resolve(session: Any, url: Any, kwargs: dict) -> AiohttpRequest | None:
        try:
            from yarl import URL

            absolute = URL(url)
            base = getattr(session, "_base_url", None)
            if not absolute.absolute and base is not None:
                absolute = base.join(absolute)
            return AiohttpRequest(session, absolute, kwargs) if absolute.absolute else None
        except Exception:  # not a URL aiohttp accepts: it says so itself
            return None

    @staticmethod
    def endpoint(request: Any) -> Endpoint | None:  # pragma: no cover - the wrapper tests the path itself
        return None

    @staticmethod
    def prepare(endpoint: Endpoint, request: AiohttpRequest) -> _flow.Outgoing | None:
        kwargs = request.kwargs
        raw = kwargs.get("json")
        if raw is None:
            raw = kwargs.get("data")  # bytes or str; a dict here is a form, FormData or a stream: not read
            if isinstance(raw, dict):
                return None
        url = request.url
        headers = kwargs.get("headers")
        retry = headers.get(_flow.RETRY_HEADER) if hasattr(headers, "get") else None
        outgoing = _flow.prepare(endpoint, url.scheme, url.host, url.explicit_port, url.path, raw, retry)
        if outgoing is not None:
            outgoing.decoded = _decodes(request)
        return outgoing

    @staticmethod
    def resend(request: AiohttpRequest, body: bytes, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """GenOps' body in place of the application's (its own kwargs are left as they were). When
        the application reads the body undecoded, the codings accepted are narrowed to those GenOps
        can hide its usage event in, as for the other clients."""
        import json

        from multidict import CIMultiDict

        changed = dict(kwargs)
        if "json" in changed:
            changed["json"] = json.loads(body)  # serialised by the session, as the application's was
        else:
            changed["data"] = body
        if not _decodes(request):
            headers: Any = CIMultiDict(kwargs.get("headers") or {})
            if _flow.narrow_accept_encoding(headers, "Accept-Encoding", _sent_accept_encoding(request)):
                changed["headers"] = headers
        return args, changed

    def answer(self, request: AiohttpRequest, reply: BlockedReply) -> Any:
        """A ``ClientResponse`` as aiohttp builds it from the provider's error; nothing was sent."""
        return refused_response(request, reply)

    @staticmethod
    async def answered(request: AiohttpRequest, response: Any) -> None:
        """``raise_for_status`` (the request's, else the session's) applies to the refusal too."""
        check = request.kwargs.get("raise_for_status")
        if check is None:
            check = getattr(request.session, "_raise_for_status", None)
        if callable(check):
            await check(response)
        elif check:
            response.raise_for_status()

    @staticmethod
    def observe(call: Any, outgoing: _flow.Outgoing, response: Any, is_async: bool) -> None:
        try:
            if _flow.failed(call, response.status, response.reason):
                return
            headers = response.headers
            encoding = None if outgoing.decoded else headers.get("content-encoding")
            read_along(call, _flow.response_body(outgoing, headers.get("content-type"), encoding), response, not outgoing.decoded)
        except Exception as error:
            internal_error("wire response", error)
            call.finish()

    @staticmethod
    def attempt(response: Any) -> None:
        note_attempt(response.status, response.headers.get("retry-after"))


def _decodes(request: AiohttpRequest) -> bool:
    """Whether aiohttp decompresses the body before the application (and GenOps) reads it."""
    decompress = request.kwargs.get("auto_decompress")
    return getattr(request.session, "_auto_decompress", True) if decompress is None else bool(decompress)


def _sent_accept_encoding(request: AiohttpRequest) -> str | None:
    """The ``accept-encoding`` aiohttp sends when the request's own ``headers`` have none: the
    session's, else its automatic one (unless skipped)."""
    from aiohttp import ClientRequest, hdrs

    session = request.session
    value = session.headers.get(hdrs.ACCEPT_ENCODING)
    if value is not None:
        return value
    skipped = {str(name).lower() for name in (*(request.kwargs.get("skip_auto_headers") or ()), *session.skip_auto_headers)}
    if "accept-encoding" in skipped:
        return None
    cls = getattr(session, "_request_class", None) or ClientRequest
    return cls.DEFAULT_HEADERS.get(hdrs.ACCEPT_ENCODING)


# --- the response body, read where aiohttp feeds it ---------------------------------------------------
class _Reading:
    """One response being read: its call, its body, and how its bytes arrive."""

    __slots__ = ("call", "body", "encoded", "__weakref__")

    def __init__(self, call: Any, body: WireBody, encoded: bool) -> None:
        self.call, self.body, self.encoded = call, body, encoded

    def feed(self, data: bytes) -> bytes:
        return self.body.feed(data, self.encoded)

    def end(self, error: BaseException | None = None) -> None:
        if self.call.ended:
            return
        if error is not None:
            self.call.fail(error)
            return
        try:
            self.body.finish(self.call)
        except Exception as internal:
            internal_error("wire finish", internal)
            self.call.finish()


_READING: dict[int, _Reading] = {}  # id(reader) -> its reading (aiohttp's reader has no room for more)
_reader_class: Any = None


def _wire_reader() -> Any:
    """The ``StreamReader`` subclass a model response's reader is switched to (made once, lazily)."""
    global _reader_class
    if _reader_class is not None:
        return _reader_class
    from aiohttp import client_reqrep
    from aiohttp.streams import StreamReader

    closed = getattr(client_reqrep, "_CONNECTION_CLOSED_EXCEPTION", None)

    class WireStreamReader(StreamReader):  # type: ignore[misc, valid-type]
        """aiohttp's reader, passing what it is fed through the call's body first."""

        __slots__ = ()

        def feed_data(self, data: bytes, *args: Any) -> Any:
            reading = _READING.get(id(self))
            if reading is not None and data:
                data = reading.feed(data)
                if not data:
                    return False
            return StreamReader.feed_data(self, data, *args)

        def feed_eof(self) -> None:
            reading = _READING.pop(id(self), None)
            if reading is not None:
                tail = reading.body.flush()
                if tail:
                    StreamReader.feed_data(self, tail)
            StreamReader.feed_eof(self)
            if reading is not None:
                reading.end()

        def set_exception(self, exc: BaseException, *args: Any) -> None:
            reading = _READING.pop(id(self), None)
            StreamReader.set_exception(self, exc, *args)
            if reading is not None:  # released before the end: what was read is what was used
                reading.end(None if exc is closed else exc)

    _reader_class = WireStreamReader
    return WireStreamReader


def read_along(call: Any, body: WireBody, response: Any, encoded: bool) -> None:
    """Read ``response``'s body as aiohttp hands it on: what it already holds now, the rest as fed."""
    from aiohttp.streams import StreamReader

    reader = response.content
    reading = _Reading(call, body, encoded)
    if type(reader) is not StreamReader:  # no body (EmptyStreamReader) or a reader of the app's own
        reading.end()
        return
    if reader._buffer:
        _read_buffered(reader, reading)
    if reader._exception is not None:
        reading.end(reader._exception)
        return
    if reader._eof:  # the whole body came with the headers
        tail = body.flush()
        if tail:  # what GenOps held back, at the end of the buffer aiohttp has closed
            reader._buffer.append(tail)
            reader._size += len(tail)
            reader.total_bytes += len(tail)
        reading.end()
        return
    key = id(reader)
    _READING[key] = reading
    reader.__class__ = _wire_reader()
    weakref.finalize(response, _abandoned, key, reading)


def _read_buffered(reader: Any, reading: _Reading) -> None:
    """Read what aiohttp buffered before the response was returned; if GenOps hides part of it,
    the buffer holds the rest (the application has read nothing yet)."""
    chunks = list(reader._buffer)
    if reader._buffer_offset:
        chunks[0] = chunks[0][reader._buffer_offset :]
    raw = b"".join(chunks)
    kept = reading.feed(raw)
    if kept == raw:
        return
    if reader._cursor:  # pragma: no cover - a raise_for_status callback read it: nothing to take back
        return
    reader._buffer.clear()
    reader._buffer_offset = 0
    if kept:
        reader._buffer.append(kept)
    reader._size = reader.total_bytes = len(kept)
    if reader._http_chunk_splits is not None:  # aiohttp >= 3.14 keeps a deque, older releases a list
        reader._http_chunk_splits = type(reader._http_chunk_splits)([len(kept)] if kept else [])


def _abandoned(key: int, reading: _Reading) -> None:
    """The response was dropped before its body ended: what was read is what was used."""
    if _READING.get(key) is reading:
        del _READING[key]
    reading.end()


# --- a refused call's answer ------------------------------------------------------------------------------
class _Answered:
    """The protocol of an answer nothing was received for: reading never waits on it."""

    connected = False
    _reading_paused = False  # read by aiohttp < 3.14's StreamReader

    def pause_reading(self) -> None:
        return None

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        return None


def refused_response(request: AiohttpRequest, reply: BlockedReply) -> Any:
    """The session's own response class, with the provider's status, headers and body."""
    from aiohttp import ClientResponse, RequestInfo
    from aiohttp.helpers import TimerNoop
    from aiohttp.http import HttpVersion11
    from aiohttp.streams import StreamReader
    from multidict import CIMultiDict, CIMultiDictProxy

    session, url = request.session, request.url
    loop = asyncio.get_running_loop()
    sent = CIMultiDictProxy(CIMultiDict(request.kwargs.get("headers") or {}))
    cls = getattr(session, "_response_class", None) or ClientResponse
    options: dict[str, Any] = {
        "writer": None, "continue100": None, "timer": TimerNoop(), "request_info": RequestInfo(url, "POST", sent, url),
        "traces": [], "loop": loop, "session": session, "stream_writer": SimpleNamespace(output_size=0),
    }
    accepted = inspect.signature(cls.__init__).parameters
    response = cls("POST", url, **{name: value for name, value in options.items() if name in accepted})
    response.version = HttpVersion11
    response.status = reply.status
    response.reason = reply.reason
    response._headers = CIMultiDictProxy(CIMultiDict(reply.headers))
    response._raw_headers = tuple((name.encode(), value.encode()) for name, value in reply.headers.items())
    content = StreamReader(_Answered(), 2**16, loop=loop)  # type: ignore[arg-type]
    content.feed_data(reply.body)
    content.feed_eof()
    response.content = content
    remember_refusal(response.headers, reply.decision)  # what aiohttp's ClientResponseError keeps
    return response
