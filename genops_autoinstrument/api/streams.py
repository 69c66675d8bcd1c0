"""Stream proxies for plugins: the application keeps the SDK's stream, the engine sees every chunk.

:class:`RecordedStream` and :class:`RecordedAsyncStream` are ``wrapt.ObjectProxy`` subclasses, so
``isinstance`` checks, attributes and methods of the SDK's stream still hold. The plugin gives a
:class:`StreamAccumulator` that reads each chunk (and may hide one GenOps itself asked for, such as
a usage-only chunk) and reports the outcome. The call ends exactly once: when the stream is
exhausted, closed, exited as a context manager, fails, or is garbage-collected unfinished; or, if
the process stops first (exit, SIGTERM), as interrupted (see :mod:`genops_autoinstrument.engine.signals`).
"""

from __future__ import annotations

import inspect
from typing import Any

import wrapt

from genops_autoinstrument.engine.call import Call, activate, deactivate
from genops_autoinstrument.diagnostics import internal_error


class StreamAccumulator:
    """Collects what a plugin needs from chunks; subclass per SDK."""

    def add(self, chunk: Any) -> bool:
        """Read one chunk; return True to hide it from the application."""
        return False

    def finish(self, call: Call) -> None:
        """Report the collected response facts with ``call.finish(...)``."""
        call.finish()


def _track(proxy: Any, call: Call) -> None:
    """Let a stop of the process (exit, SIGTERM) find this stream while it is open."""
    try:
        if not call.ended:
            from genops_autoinstrument.engine.signals import track_stream  # loaded with the engine

            track_stream(proxy, call)
    except Exception as internal:
        internal_error("stream tracking", internal)


def _end(proxy: Any, error: BaseException | None = None) -> None:
    call: Call = proxy._self_call
    if call.ended:
        return
    if error is not None:
        call.fail(error)
        return
    try:
        proxy._self_accumulator.finish(call)
    except Exception as internal:
        internal_error("stream finish", internal)
        call.finish()


def _pull(proxy: Any, pull: Any) -> Any:
    """One chunk from ``pull`` with the proxy's call active while the SDK produces it (streams that
    set ``sends_while_pulling``). The call is read at each pull: a plugin may begin it at the first
    chunk. A plain function, not a closure kept on the proxy: no allocation per chunk, no cycle."""
    call = proxy._self_call
    if call.ended:
        return pull()
    token = activate(call)
    try:
        return pull()
    finally:
        deactivate(token)


def _sends_while_pulling(proxy: Any, stream: Any) -> bool:
    """The proxy class's ``sends_while_pulling``, or, left at None, whether the stream is lazy."""
    declared = type(proxy).sends_while_pulling
    if declared is not None:
        return bool(declared)
    return inspect.isgenerator(stream) or inspect.isasyncgen(stream)


class RecordedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A synchronous SDK stream that reports its chunks to the engine."""

    #: True for an SDK whose stream sends its requests while it is read (google-genai sends at the
    #: first chunk, and again for each function-calling round): the call is then the active one
    #: during each pull, so the wire layer counts those requests as its attempts, not as calls of
    #: their own. ``None`` (the default): True when the SDK's stream is a generator (a lazy stream
    #: sends nothing before it is pulled), else False: SDK stream objects (OpenAI's, Anthropic's,
    #: Bedrock's) have sent their request before they exist, and activating a call around every
    #: chunk is the largest part of the per-chunk cost.
    sends_while_pulling: bool | None = None

    def __init__(self, stream: Any, call: Call, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator
        # Bound once: the per-chunk path is the stream's own __next__ (with the call active while
        # it pulls) plus the accumulator's add.
        self._self_next = getattr(stream, "__next__", None)
        self._self_add = accumulator.add
        self._self_active = _sends_while_pulling(self, stream)
        _track(self, call)

    def __iter__(self) -> Any:
        if type(self).__next__ is not RecordedStream.__next__:
            return self  # a subclass reads chunks its own way: through __next__
        # A ``for`` loop over the bare stream iterates ``iter(stream)``; so does this one, reading
        # each chunk on the way (a generator resume per chunk, cheaper than a __next__ call). This
        # also serves streams that are iterable without being iterators (botocore's EventStream).
        return self._chunks(iter(self.__wrapped__))

    def _chunks(self, chunks: Any) -> Any:
        add = self._self_add
        pull = chunks.__next__
        active = self._self_active
        try:
            while True:
                try:
                    chunk = _pull(self, pull) if active else pull()
                except StopIteration:
                    break
                try:
                    hide = add(chunk)
                except Exception as internal:
                    internal_error("stream chunk", internal)
                    hide = False
                if not hide:
                    yield chunk
        except GeneratorExit:  # the application stopped iterating: the stream ends on close/exit/GC
            raise
        except BaseException as error:
            _end(self, error)
            raise
        _end(self)

    def __next__(self) -> Any:
        if self._self_next is None:  # not an iterator: next() fails as on the SDK object itself
            raise TypeError(f"{type(self.__wrapped__).__name__!r} object is not an iterator")
        next_chunk = self._self_next
        add = self._self_add
        active = self._self_active
        while True:
            try:
                chunk = _pull(self, next_chunk) if active else next_chunk()
            except StopIteration:
                _end(self)
                raise
            except BaseException as error:
                _end(self, error)
                raise
            try:
                if not add(chunk):
                    return chunk
            except Exception as internal:
                internal_error("stream chunk", internal)
                return chunk

    def __enter__(self) -> "RecordedStream":
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _end(self, exc if isinstance(exc, Exception) and not isinstance(exc, GeneratorExit) else None)

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _end(self)

    def __del__(self) -> None:
        try:
            _end(self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class RecordedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """An asynchronous SDK stream that reports its chunks to the engine."""

    sends_while_pulling: bool | None = None  #: as on :class:`RecordedStream` (auto: an async generator)

    def __init__(self, stream: Any, call: Call, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator
        self._self_add = accumulator.add
        self._self_active = _sends_while_pulling(self, stream)
        _track(self, call)

    def __aiter__(self) -> "RecordedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        wrapped = self.__wrapped__
        add = self._self_add
        call = self._self_call
        active = self._self_active
        while True:
            token = activate(call) if active and not call.ended else None
            try:
                chunk = await wrapped.__anext__()
            except StopAsyncIteration:
                _end(self)
                raise
            except BaseException as error:
                _end(self, error)
                raise
            finally:
                if token is not None:
                    deactivate(token)
            try:
                if not add(chunk):
                    return chunk
            except Exception as internal:
                internal_error("stream chunk", internal)
                return chunk

    async def __aenter__(self) -> "RecordedAsyncStream":
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _end(self, exc if isinstance(exc, Exception) else None)

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _end(self)

    async def aclose(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            return await closer()
        finally:
            _end(self)

    def __del__(self) -> None:
        try:
            _end(self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
