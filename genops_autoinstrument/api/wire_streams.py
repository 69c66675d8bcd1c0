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
# A deflate block of the reserved type 3, after a flush (byte-aligned): every inflater rejects it.
_INVALID_BLOCK = b"\x06"


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
    unasked; a body that stops decompressing fails the client's decoder and the call there.
    ``strip``: a pattern removed from each event passed on while hiding (the ``"usage":null`` the
    server adds to every chunk once asked for usage).
    """

    def __init__(self, accumulator: WireAccumulator, framing: str, encoding: str | None = None, hide: bool = False, strip: re.Pattern[bytes] | None = None) -> None:
        self.accumulator = accumulator
        self.framing = framing
        self._decoder = _decoder(encoding)
        self._readable = self._decoder is not False
        self._hide = hide and self._readable and framing == "sse"
        self._strip = strip if self._hide else None
        self._encoding = (encoding or "").strip().lower()
        self._encoder: Any = None  # re-compresses what is passed on of an encoded body GenOps hides from
        self._unsent: list[bytes] | None = []  # the server's bytes, until the encoder passes anything on
        self._recoding = False  # reading failed after the encoder started: still decoded and encoded again
        self._reencoding = False  # GenOps' own compressed stream is what the client gets (ended by flush)
        self._dropping = False  # the server's body did not decompress: GenOps' stream ends broken
        self._tail = b""  # what is still to pass on of that broken stream
        self._failure: BaseException | None = None  # why the body did not decompress: the call fails with it
        self._pending = b""  # our copy of an incomplete event (or the JSON body so far)
        self._size = 0

    def feed(self, chunk: bytes, encoded: bool = True) -> bytes:
        """Read ``chunk`` as the application gets it; return the bytes to pass on."""
        if not chunk or self._dropping:
            tail, self._tail = self._tail, b""
            return tail
        if self._hide and encoded and self._decoder and (self._readable or self._recoding):
            return self._feed_encoded(chunk)
        if not self._readable:
            return chunk
        try:
            if self._hide:
                return self._whole_events(chunk)
            self._read(self._decoder.decompress(chunk) if (encoded and self._decoder) else chunk)
            return chunk
        except Exception as error:
            internal_error("wire body", error)
            self._readable = False
            held, self._pending = (self._pending if self._hide else b""), b""
            return held + chunk

    def _feed_encoded(self, chunk: bytes) -> bytes:
        """An encoded body GenOps hides from: decompressed, filtered, compressed again. Once it has
        passed on bytes of its own stream, it never falls back to the server's (the client would
        decode a mix): reading stops but the body is still re-encoded, and a body that cannot be
        decompressed makes the client's decoder fail there, as the server's bytes would have."""
        self._reencoding = True
        if self._unsent is not None:
            self._unsent.append(chunk)
        try:
            data = self._decoder.decompress(chunk)
        except Exception as error:  # the body is broken (the client's decoder fails on it too)
            self._failure = error
            return self._undecodable()
        if self._recoding:
            return self._encode(data)
        try:
            kept = self._whole_events(data)
        except Exception as error:
            internal_error("wire body", error)
            self._readable, self._recoding = False, True
            kept, self._pending = self._pending + data, b""
        return self._encode(kept)

    def _undecodable(self) -> bytes:
        """The server's body does not decompress: what the client gets instead, ending in the same failure."""
        self._readable = self._recoding = self._reencoding = False
        unsent, self._unsent = self._unsent, None
        pending, self._pending = self._pending, b""
        if self._encoder is None:  # nothing of GenOps' own stream passed on yet: the server's bytes, as they came
            return b"".join(unsent or ())
        self._dropping = True  # nothing of the server's follows: the client's decoder stops at the invalid block
        encoder, self._encoder = self._encoder, None  # and no trailer
        if not pending:
            return _INVALID_BLOCK
        # What the client had decoded of the incomplete event; the invalid block comes with the next
        # piece (or at the end), or a decoder failing on the piece would lose it.
        self._tail = _INVALID_BLOCK
        return encoder.compress(pending) + encoder.flush(zlib.Z_SYNC_FLUSH)

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
                kept.append(self._strip.sub(b"", raw) if self._strip else raw)
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
        if self._dropping:
            tail, self._tail = self._tail, b""
            return tail
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
        if self._reencoding:  # the end of GenOps' re-compressed body (its trailer)
            self._reencoding = False
            out = self._encode(held)
            encoder, self._encoder = self._encoder or self._new_encoder(), None
            return out + encoder.flush()
        return held

    def _encode(self, data: bytes) -> bytes:
        """``data`` compressed as the body's encoding, flushed so the client can decode it now."""
        if not data:
            return b""
        if self._encoder is None:
            self._encoder = self._new_encoder()
            self._unsent = None
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)

    def _new_encoder(self) -> Any:
        gzip = self._encoding in ("gzip", "x-gzip")
        return zlib.compressobj(wbits=16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)

    def finish(self, call: Call) -> None:
        self.flush()
        if self._failure is not None:
            call.fail(self._failure)
            return
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
        """urllib3's ``read``; the call ends when the body is read to its end (``read()`` without
        ``amt`` reads it whole) or the read fails."""
        try:
            data = self.__wrapped__.read(*args, **kwargs)
        except BaseException as error:
            _end(self, error)
            raise
        amount = kwargs.get("amt", args[0] if args else None)
        decode = kwargs.get("decode_content", args[1] if len(args) > 1 else None)
        encoded = not (decode if decode is not None else getattr(self.__wrapped__, "decode_content", False))
        body = self._self_accumulator
        if data:
            body._hide = False  # a read() must return what was read: nothing is held back here
            body.feed(data, encoded)
        if amount is None or (amount and not data):
            _end(self)
        return data
