"""Reading model responses at the HTTP layer as the application reads them.

:class:`WireBody` turns the bytes an HTTP client hands the application into events (SSE, NDJSON)
or one JSON body, and gives them to the plugin's :class:`WireAccumulator`. It never reads ahead of
the application: it only sees bytes the application asked for. When GenOps itself asked the server
for something the application did not (the OpenAI usage chunk), the accumulator can hide that
event: the body then passes on whole events only, holding back a partial one until it completes.

The proxies keep the client's own objects (``isinstance`` still holds) and end the call exactly
once, as :class:`~genops_autoinstrument.api.streams.RecordedStream` does: when the body is
exhausted, closed, fails or is garbage-collected, or when the process stops.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any, AsyncIterator, Iterator

from genops_autoinstrument.api.streams import RecordedAsyncStream, RecordedStream, StreamAccumulator, _end
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.call import Call

__all__ = ["WireAccumulator", "WireBody", "WireByteStream", "WireAsyncByteStream", "WireRawResponse", "framing_of"]

MAX_BODY = 32 * 1024 * 1024  # a JSON body larger than this is passed on unread (usage unknown)
_SSE_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class WireAccumulator(StreamAccumulator):
    """What a protocol reads from a response: stream events, or the whole JSON body."""

    def event(self, name: str | None, data: Any) -> bool:
        """One SSE event (``name`` from its ``event:`` line) or NDJSON line; True hides it."""
        return False

    def body(self, data: Any) -> None:
        """The whole JSON body of a response that is not an event stream."""


def framing_of(content_type: str | None, default: str) -> str:
    """``sse``, ``ndjson`` or ``json`` from a response's content type (``default`` when it says none)."""
    kind = (content_type or "").lower()
    if "event-stream" in kind:
        return "sse"
    if "ndjson" in kind or "jsonl" in kind:
        return "ndjson"
    if "json" in kind:
        return "json"
    return default


def _decoder(encoding: str | None) -> Any:
    """A decompressor for an encoded body GenOps reads a copy of; False when it cannot read it."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return False


class WireBody(StreamAccumulator):
    """The bytes of one response, read along with the application, reported at the end.

    ``hide``: the accumulator may hide events, so whole events are passed on. A gzip or deflate
    body the client decodes after this point is decompressed, filtered and compressed again (each
    piece flushed, so nothing is delayed): the client decodes what the server would have sent
    unasked. ``strip``: bytes removed from each event passed on while hiding (the
    ``"usage":null`` the server adds to every chunk once asked for usage).
    """

    def __init__(self, accumulator: WireAccumulator, framing: str, encoding: str | None = None, hide: bool = False, strip: bytes | None = None) -> None:
        self.accumulator = accumulator
        self.framing = framing
        self._decoder = _decoder(encoding)
        self._readable = self._decoder is not False
        self._hide = hide and self._readable and framing == "sse"
        self._strip = strip if self._hide else None
        self._encoding = (encoding or "").strip().lower()
        self._encoder: Any = None  # re-compresses what is passed on of an encoded body GenOps hides from
        self._pending = b""  # our copy of an incomplete event (or the JSON body so far)
        self._size = 0

    def feed(self, chunk: bytes, encoded: bool = True) -> bytes:
        """Read ``chunk`` as the application gets it; return the bytes to pass on."""
        if not self._readable or not chunk:
            return chunk
        try:
            if self._hide:
                if encoded and self._decoder:
                    return self._encode(self._whole_events(self._decoder.decompress(chunk)))
                return self._whole_events(chunk)
            data = self._decoder.decompress(chunk) if (encoded and self._decoder) else chunk
            self._read(data)
            return chunk
        except Exception as error:
            internal_error("wire body", error)
            self._readable = False
            held, self._pending = (self._pending if self._hide else b""), b""
            return held + chunk

    def _read(self, data: bytes) -> None:
        if self.framing == "json":
            self._size += len(data)
            if self._size > MAX_BODY:
                self._readable = False
                self._pending = b""
                return
            self._pending += data
            return
        buffer = self._pending + data
        start = 0
        for end in self._boundaries(buffer):
            self._event(buffer[start:end])
            start = end
        self._pending = buffer[start:]

    def _boundaries(self, buffer: bytes) -> Iterator[int]:
        if self.framing == "sse":
            for match in _SSE_END.finditer(buffer):
                yield match.end()
            return
        position = buffer.find(b"\n")
        while position >= 0:
            yield position + 1
            position = buffer.find(b"\n", position + 1)

    def _whole_events(self, chunk: bytes) -> bytes:
        buffer = self._pending + chunk
        kept = []
        start = 0
        for end in self._boundaries(buffer):
            raw = buffer[start:end]
            start = end
            if not self._event(raw):
                kept.append(raw.replace(self._strip, b"") if self._strip else raw)
        self._pending = buffer[start:]
        return b"".join(kept)

    def _event(self, raw: bytes) -> bool:
        """Parse one event or line and give it to the accumulator; True: hide it."""
        if self.framing == "ndjson":
            line = raw.strip()
            return bool(line) and self.accumulator.event(None, json.loads(line))
        name = None
        data: list[bytes] = []
        for line in raw.splitlines():
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        if not data:
            return False
        text = b"\n".join(data)
        if text.strip() == b"[DONE]":
            return False
        try:
            payload = json.loads(text)
        except ValueError:
            return False
        return self.accumulator.event(name, payload)

    def flush(self) -> bytes:
        """At the end of the body: read what is left; return what was held back."""
        pending, self._pending = self._pending, b""
        held = b""
        if self._readable and pending:
            held = pending if self._hide else b""
            try:
                if self.framing == "json":
                    self.accumulator.body(json.loads(pending))
                elif pending.strip() and self._event(pending):
                    held = b""
            except Exception as error:
                internal_error("wire body end", error)
        if self._encoder is not None:  # the end of the re-compressed body
            encoder, self._encoder = self._encoder, None
            return encoder.compress(held) + encoder.flush()
        return held

    def _encode(self, data: bytes) -> bytes:
        """``data`` compressed as the body's encoding, flushed so the client can decode it now."""
        if self._encoder is None:
            gzip = self._encoding in ("gzip", "x-gzip")
            self._encoder = zlib.compressobj(wbits=16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        if not data:
            return b""
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, call: Call) -> None:
        self.flush()
        self.accumulator.finish(call)


class _Feeding:
    """The byte-level reading shared by the proxies: feed, pass on, flush at the end."""

    _self_accumulator: WireBody

    def _filtered(self, chunks: Iterator[bytes], encoded: bool = True) -> Iterator[bytes]:
        body = self._self_accumulator
        for chunk in chunks:
            out = body.feed(chunk, encoded)
            if out or not chunk:
                yield out
        tail = body.flush()
        if tail:
            yield tail


class WireByteStream(_Feeding, RecordedStream):
    """An HTTP client's sync byte stream (httpx ``response.stream``), read along with the application."""

    def _chunks(self, chunks: Any) -> Any:
        try:
            yield from self._filtered(chunks)
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                _end(self, error)
            raise
        _end(self)


class WireAsyncByteStream(RecordedAsyncStream):
    """An HTTP client's async byte stream (httpx ``response.stream``)."""

    def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        body: WireBody = self._self_accumulator
        try:
            async for chunk in self.__wrapped__:
                out = body.feed(chunk)
                if out or not chunk:
                    yield out
            tail = body.flush()
            if tail:
                yield tail
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                _end(self, error)
            raise
        _end(self)


class WireRawResponse(_Feeding, RecordedStream):
    """A urllib3 ``HTTPResponse`` (requests' ``response.raw``), read along with the application
    through ``stream()`` (what ``iter_content``/``iter_lines`` use) and ``read()``."""

    def stream(self, amt: Any = 2**16, decode_content: Any = None) -> Iterator[bytes]:
        encoded = not (decode_content if decode_content is not None else getattr(self.__wrapped__, "decode_content", False))
        try:
            yield from self._filtered(self.__wrapped__.stream(amt, decode_content=decode_content), encoded)
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                _end(self, error)
            raise
        _end(self)

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        data = self.__wrapped__.read(*args, **kwargs)
        decode = kwargs.get("decode_content", args[1] if len(args) > 1 else None)
        encoded = not (decode if decode is not None else getattr(self.__wrapped__, "decode_content", False))
        body = self._self_accumulator
        if data:
            body._hide = False  # a read() must return what was read: nothing is held back here
            body.feed(data, encoded)
        elif not args or args[0] is None or args[0]:
            _end(self)
        return data
