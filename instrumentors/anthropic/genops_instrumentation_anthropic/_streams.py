"""Streams and raw responses: the application keeps the SDK's objects, GenOps reads along.

* ``create(stream=True)`` returns the SDK ``Stream`` inside a :class:`RecordedStream` proxy.
* ``messages.stream()`` returns the SDK's own stream manager; only its pending request is swapped
  for one that runs the policy decision and wraps the raw stream, so ``with``/``async with``,
  ``text_stream`` and ``get_final_message()`` are the SDK's code reading a recorded stream.
* ``with_raw_response`` / ``with_streaming_response`` return the SDK's ``APIResponse``; a response
  whose body is not read yet is proxied so that ``parse()``/``json()``/``close()`` report the call.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import wrapt

from genops_autoinstrument import config
from genops_autoinstrument.engine.call import Call, CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.api.streams import RecordedAsyncStream, RecordedStream

from ._response import MessageEvents, finish_message
from ._sdk_spans import nested_in_genops_call, replacing_sdk_span


def _capture() -> bool:
    try:
        return bool(config.current().capture_content)
    except Exception:  # pragma: no cover - defensive
        return False


def is_stream(value: Any) -> bool:
    from anthropic import AsyncStream, Stream

    return isinstance(value, (Stream, AsyncStream))


def recorded_stream(call: Call, stream: Any) -> Any:
    """The SDK stream in a proxy that reports its events (sync or async by the SDK's class)."""
    from anthropic import AsyncStream

    proxy = RecordedAsyncStream if isinstance(stream, AsyncStream) else RecordedStream
    return proxy(stream, call, MessageEvents(_capture()))


def report(call: Call, result: Any) -> Any:
    """Report what a messages call returned and hand the application the same object (or a proxy of it)."""
    if call.ended:
        return result
    try:
        from anthropic._response import AsyncAPIResponse, BaseAPIResponse

        if is_stream(result):
            return recorded_stream(call, result)
        if isinstance(result, BaseAPIResponse):
            http = result.http_response
            if http.is_closed and not getattr(result, "_is_sse_stream", False):
                finish_message(call, http.json())
                return result
            return (AsyncRawResponse if isinstance(result, AsyncAPIResponse) else RawResponse)(result, call)
        finish_message(call, result)
    except Exception as error:
        internal_error("anthropic response", error)
        call.finish()
    return result


def _after_parse(proxy: Any, parsed: Any) -> Any:
    call: Call = proxy._self_call
    if call.ended:
        return parsed
    cached = proxy._self_parsed
    if cached is not None and cached[0] is parsed:
        return cached[1]
    try:
        if is_stream(parsed):
            wrapped = recorded_stream(call, parsed)
            proxy._self_parsed = (parsed, wrapped)
            return wrapped
        finish_message(call, parsed)
    except Exception as error:
        internal_error("anthropic raw response", error)
        call.finish()
    return parsed


def _after_json(proxy: Any, data: Any) -> Any:
    call: Call = proxy._self_call
    if not call.ended:
        try:
            finish_message(call, data)
        except Exception as error:
            internal_error("anthropic raw response", error)
            call.finish()
    return data


def _response_closed(proxy: Any) -> None:
    """End a call whose body was never parsed; a parsed stream's own proxy ends it instead."""
    if proxy._self_parsed is None:
        proxy._self_call.finish()


class RawResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """An unread ``APIResponse`` of a messages call: the call ends at parse()/json()/close()/GC."""

    def __init__(self, response: Any, call: Call) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_parsed: tuple[Any, Any] | None = None

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _after_parse(self, self.__wrapped__.parse(*args, **kwargs))

    def json(self) -> Any:
        return _after_json(self, self.__wrapped__.json())

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _response_closed(self)

    def __del__(self) -> None:
        try:
            _response_closed(self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class AsyncRawResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """An unread ``AsyncAPIResponse`` of a messages call."""

    def __init__(self, response: Any, call: Call) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_parsed: tuple[Any, Any] | None = None

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _after_parse(self, await self.__wrapped__.parse(*args, **kwargs))

    async def json(self) -> Any:
        return _after_json(self, await self.__wrapped__.json())

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _response_closed(self)

    def __del__(self) -> None:
        try:
            _response_closed(self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


# --- messages.stream(): swap the manager's pending request ---------------------------------------


def _request_attribute(manager: Any) -> str | None:
    """The name-mangled attribute holding the manager's request (``_MessageStreamManager__api_request``)."""
    for name in vars(manager):
        if name.endswith("__api_request"):
            return name
    return None


def hook_stream_manager(manager: Any, request: CallRequest, block: Callable[..., BaseException]) -> bool:
    """Make the manager's request run through GenOps when it is entered; False when the shape is unknown."""
    name = _request_attribute(manager)
    if name is None:
        return False
    original = getattr(manager, name)
    if callable(original):
        setattr(manager, name, lambda: _run_sync(original, request, block))
        return True
    if hasattr(original, "__await__"):
        setattr(manager, name, _run_async(original, request, block))
        return True
    return False


def _run_sync(original: Callable[[], Any], request: CallRequest, block: Callable[..., BaseException]) -> Any:
    nested = nested_in_genops_call()
    call = begin_call(request, block=block)
    with call, replacing_sdk_span(call, nested):
        raw = original()
    return report(call, raw)


async def _run_async(original: Awaitable[Any], request: CallRequest, block: Callable[..., BaseException]) -> Any:
    nested = nested_in_genops_call()
    try:
        call = begin_call(request, block=block)
    except BaseException:
        close = getattr(original, "close", None)
        if close is not None:
            close()  # the request coroutine is never sent: no "never awaited" warning
        raise
    with call, replacing_sdk_span(call, nested):
        raw = await original
    return report(call, raw)
