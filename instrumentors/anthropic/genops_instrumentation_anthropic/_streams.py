"""Streams and raw responses: the application keeps the SDK's objects, GenOps reads along.

* ``create(stream=True)`` returns the SDK ``Stream`` inside a :class:`RecordedStream` proxy.
* ``messages.stream()`` returns the SDK's own stream manager; only its pending request is swapped
  for one that runs the policy decision and wraps the raw stream, so ``with``/``async with``,
  ``text_stream`` and ``get_final_message()`` are the SDK's code reading a recorded stream.
* ``with_raw_response`` / ``with_streaming_response`` return the SDK's ``APIResponse`` (0.x:
  ``LegacyAPIResponse`` for the former); a response whose body is not read yet is proxied so that
  ``parse()``/``json()``/``close()`` report the call.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import wrapt

from genops_autoinstrument.api import (
    Call,
    Prepared,
    RecordedAsyncStream,
    RecordedMethod,
    RecordedStream,
    capture_content,
    internal_error,
)

from ._compat import legacy_response_class
from ._response import MessageEvents, finish_message


def is_stream(value: Any) -> bool:
    from anthropic import AsyncStream, Stream

    return isinstance(value, (Stream, AsyncStream))


def recorded_stream(call: Call, stream: Any) -> Any:
    """The SDK stream in a proxy that reports its events (sync or async by the SDK's class)."""
    from anthropic import AsyncStream

    proxy = RecordedAsyncStream if isinstance(stream, AsyncStream) else RecordedStream
    return proxy(stream, call, MessageEvents(capture_content()))


def read(call: Call, result: Any, prepared: Prepared, is_async: bool) -> Any:
    """The kit's ``read``: report what a messages call returned and hand the application the same
    object, or a proxy of it that reports the call once its body is read."""
    from anthropic._response import AsyncAPIResponse, BaseAPIResponse

    if is_stream(result):
        return recorded_stream(call, result)
    legacy = legacy_response_class()
    if isinstance(result, BaseAPIResponse) or (legacy is not None and isinstance(result, legacy)):
        http = result.http_response
        if http.is_closed and not getattr(result, "_is_sse_stream", False):
            finish_message(call, http.json())
            return result
        return (AsyncRawResponse if isinstance(result, AsyncAPIResponse) else RawResponse)(result, call)
    finish_message(call, result)
    return result


# --- with_raw_response / with_streaming_response: the call ends when the body is read -----------


def _body_read(proxy: Any, body: Any) -> Any:
    """Report what ``parse()`` / ``json()`` returned: a Message, its JSON, or a stream to proxy."""
    call: Call = proxy._self_call
    if call.ended:
        return body
    cached = proxy._self_parsed
    if cached is not None and cached[0] is body:
        return cached[1]
    try:
        if is_stream(body):
            wrapped = recorded_stream(call, body)
            proxy._self_parsed = (body, wrapped)
            return wrapped
        finish_message(call, body)
    except Exception as error:
        internal_error("anthropic raw response", error)
        call.finish()
    return body


def _response_closed(proxy: Any) -> None:
    """End a call whose body was never parsed; a parsed stream's own proxy ends it instead."""
    if proxy._self_parsed is None:
        proxy._self_call.finish()


class _UnreadResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """An SDK response whose call ends at parse()/json()/close() or, at the latest, at GC."""

    def __init__(self, response: Any, call: Call) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_parsed: tuple[Any, Any] | None = None

    def __del__(self) -> None:
        try:
            _response_closed(self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class RawResponse(_UnreadResponse):
    """An unread ``APIResponse`` of a messages call."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _body_read(self, self.__wrapped__.parse(*args, **kwargs))

    def json(self) -> Any:
        return _body_read(self, self.__wrapped__.json())

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _response_closed(self)


class AsyncRawResponse(_UnreadResponse):
    """An unread ``AsyncAPIResponse`` of a messages call."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _body_read(self, await self.__wrapped__.parse(*args, **kwargs))

    async def json(self) -> Any:
        return _body_read(self, await self.__wrapped__.json())

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _response_closed(self)


# --- messages.stream(): swap the manager's pending request ---------------------------------------


def _prepare_entered(described: Prepared, args: tuple, kwargs: dict) -> Prepared:
    """The request described at ``stream()``, decided when the manager is entered."""
    return described


# The manager's pending request through the kit: "instance" is the call described at stream().
_ENTERED = RecordedMethod("anthropic", _prepare_entered, read)
_recorded_sync, _recorded_async = _ENTERED.sync, _ENTERED.async_


def _request_attribute(manager: Any) -> str | None:
    """The name-mangled attribute holding the manager's request (``_MessageStreamManager__api_request``)."""
    for name in vars(manager):
        if name.endswith("__api_request"):
            return name
    return None


def hook_stream_manager(manager: Any, described: Prepared) -> bool:
    """Make the manager's request run through GenOps when it is entered; False when the shape is unknown."""
    name = _request_attribute(manager)
    if name is None:
        return False
    original = getattr(manager, name)
    if callable(original):
        setattr(manager, name, lambda: _recorded_sync(original, described, (), {}))
        return True
    if hasattr(original, "__await__"):
        setattr(manager, name, _run_async(original, described))
        return True
    return False


async def _run_async(original: Awaitable[Any], described: Prepared) -> Any:
    """The async manager's request coroutine, run through the kit; closed unsent if blocked."""
    sent = False

    def send() -> Awaitable[Any]:
        nonlocal sent
        sent = True
        return original

    try:
        return await _recorded_async(send, described, (), {})
    finally:
        close: Callable[[], Any] | None = getattr(original, "close", None)
        if not sent and close is not None:
            close()  # a blocked request coroutine is never sent: no "never awaited" warning
