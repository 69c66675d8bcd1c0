"""The send wrapper every client library shares, sync and async, over a small adapter per library.

For each request: the adapter's cheap ``endpoint`` test; inside a call another plugin records,
only the attempt is accounted; otherwise the call is described and decided: a refused call is
answered with the provider's own error (nothing is sent), an allowed one is sent (with GenOps'
body when it asks for usage) and its response read as the application reads it.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from genops_autoinstrument.api import in_recorded_call, internal_error, remember_refusal
from genops_autoinstrument.api.wire import BlockedReply

from . import _flow
from ._endpoints import Endpoint

Wrapper = Callable[[Callable[..., Any], Any, tuple, dict], Any]


class Adapter(Protocol):
    """What the wrapper needs from one client library."""

    def endpoint(self, request: Any) -> Endpoint | None: ...
    def prepare(self, endpoint: Endpoint, request: Any) -> _flow.Outgoing | None: ...
    def resend(self, request: Any, body: bytes, args: tuple, kwargs: dict) -> tuple[tuple, dict]: ...
    def answer(self, request: Any, reply: BlockedReply) -> Any: ...
    def observe(self, call: Any, outgoing: _flow.Outgoing, response: Any, is_async: bool) -> None: ...
    def attempt(self, response: Any) -> None: ...


def sync_wrapper(adapter: Adapter) -> Wrapper:
    """The wrapt wrapper of a library's synchronous send."""
    endpoint_of = adapter.endpoint

    def send(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        endpoint = endpoint_of(request)
        if endpoint is None:
            return wrapped(*args, **kwargs)
        if in_recorded_call():  # another plugin records this call: account the attempt only
            response = wrapped(*args, **kwargs)
            _attempt(adapter, response)
            return response
        outgoing = adapter.prepare(endpoint, request)
        started = _flow.begin(outgoing) if outgoing is not None else None
        if isinstance(started, BlockedReply):
            return _refuse(adapter, request, started)
        if started is None or started.ended:
            return wrapped(*args, **kwargs)
        if outgoing.body is not None:
            args, kwargs = adapter.resend(request, outgoing.body, args, kwargs)
        with started:
            response = wrapped(*args, **kwargs)
        _observe(adapter, started, outgoing, response, False)
        return response

    return send


def _refuse(adapter: Adapter, request: Any, reply: BlockedReply) -> Any:
    """The provider's own error answer, registered so policy_decision() recognises the client's error."""
    response = adapter.answer(request, reply)
    remember_refusal(response, reply.decision)
    return response


def _attempt(adapter: Adapter, response: Any) -> None:
    """Account the attempt; a failure here never reaches the application."""
    try:
        adapter.attempt(response)
    except Exception as error:
        internal_error("wire attempt", error)


def _observe(adapter: Adapter, call: Any, outgoing: _flow.Outgoing, response: Any, is_async: bool) -> None:
    """Read the response along with the application; a failure here ends the call with what it has
    and never reaches the application."""
    try:
        adapter.observe(call, outgoing, response, is_async)
    except Exception as error:
        internal_error("wire response", error)
        try:
            if not call.ended:
                call.finish()
        except Exception as finishing:
            internal_error("wire finish", finishing)


def async_wrapper(adapter: Adapter) -> Wrapper:
    """The wrapt wrapper of a library's asynchronous send."""
    endpoint_of = adapter.endpoint

    async def send(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        endpoint = endpoint_of(request)
        if endpoint is None:
            return await wrapped(*args, **kwargs)
        return await call_async(adapter, endpoint, request, wrapped, args, kwargs)

    return send


async def call_async(adapter: Adapter, endpoint: Endpoint, request: Any, wrapped: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """An asynchronous send to a model endpoint: accounted, refused, or recorded."""
    if in_recorded_call():
        response = await wrapped(*args, **kwargs)
        _attempt(adapter, response)
        return response
    outgoing = adapter.prepare(endpoint, request)
    started = _flow.begin(outgoing) if outgoing is not None else None
    if isinstance(started, BlockedReply):
        response = _refuse(adapter, request, started)
        answered = getattr(adapter, "answered", None)  # what the client does with any answer (aiohttp's raise_for_status)
        if answered is not None:
            await answered(request, response)
        return response
    if started is None or started.ended:
        return await wrapped(*args, **kwargs)
    if outgoing.body is not None:
        args, kwargs = adapter.resend(request, outgoing.body, args, kwargs)
    with started:
        response = await wrapped(*args, **kwargs)
    _observe(adapter, started, outgoing, response, True)
    return response
