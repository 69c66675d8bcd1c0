"""GenOps plugin for the PROVIDER SDK: maps its calls onto the plugin kit.

The SDK this template assumes (adapt the readers to yours): ``provider_sdk.client.Client.create(
model=..., messages=[{"role", "content"}], max_tokens=..., stream=False)`` and its ``AsyncClient``
twin return a response with ``model`` and ``usage.input_tokens`` / ``usage.output_tokens``; with
``stream=True`` an iterator of chunks with the same fields (the usage in the last one). Its errors
``provider_sdk.RateLimitError`` and ``provider_sdk.PermissionDeniedError`` are what a policy block
raises, so the application's own error handling copes.

Imports only the plugin kit, and never the SDK at module level: discovery imports this module
without the target, and patching waits for the application to import the SDK.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import (
    Call,
    CallRequest,
    Decision,
    GenOpsInstrumentor,
    Prepared,
    RecordedAsyncStream,
    RecordedMethod,
    RecordedStream,
    StreamAccumulator,
    Usage,
    get,
    native_violation,
    semconv,
    server_of_url,
)

from .package import _instruments, _watched_modules

__all__ = ["PROVIDERInstrumentor"]


def _blocked(decision: Decision) -> BaseException:
    """A policy block as the SDK's own error (also a PolicyViolation): 429-like for budgets."""
    import provider_sdk  # loaded by now: the application is calling it

    native = provider_sdk.RateLimitError if decision.is_budget else provider_sdk.PermissionDeniedError
    return native_violation(native, decision, lambda cls: cls(decision.explanation))


def _prepare(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    """Describe the call before it is sent: what policies, budgets and the span need."""
    host, port = server_of_url(get(instance, "base_url"))
    messages = kwargs.get("messages") or ()
    request = CallRequest(
        provider="PROVIDER",
        operation=semconv.OPERATION_CHAT,
        request_model=kwargs.get("model"),
        server_address=host,
        server_port=port,
        max_output_tokens=kwargs.get("max_tokens"),  # the budget reservation's estimate
        streaming=kwargs.get("stream") is True,
        prompt_text=lambda: [str(get(message, "content", "")) for message in messages],  # content rules
    )
    return Prepared(request, block=_blocked)


def _finish(call: Call, model: Any, usage: Any) -> None:
    call.finish(
        response_model=model,
        usage=Usage(input_tokens=get(usage, "input_tokens"), output_tokens=get(usage, "output_tokens")),
    )


class _Chunks(StreamAccumulator):
    """Keeps the model and the usage from the chunks; reports them when the stream ends."""

    model: Any = None
    usage: Any = None

    def add(self, chunk: Any) -> bool:
        self.model = get(chunk, "model") or self.model
        self.usage = get(chunk, "usage") or self.usage
        return False  # hide nothing from the application

    def finish(self, call: Call) -> None:
        _finish(call, self.model, self.usage)


def _read(call: Call, response: Any, prepared: Prepared, is_async: bool) -> Any:
    """Report the response, or hand the application a stream proxy that reports it at its end."""
    if prepared.request.streaming:
        # If the SDK sends while its stream is read, the call must be active then (see the kit's
        # ``sends_while_pulling``: a generator stream is taken to send, an SDK stream object not).
        return (RecordedAsyncStream if is_async else RecordedStream)(response, call, _Chunks())
    _finish(call, get(response, "model"), get(response, "usage"))
    return response


CREATE = RecordedMethod("PROVIDER create", _prepare, _read)


class PROVIDERInstrumentor(GenOpsInstrumentor):
    """Records every PROVIDER ``create`` call (tokens, cost, policy) as one GenAI span."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        # Each target is patched when its own module is imported; a missing one is skipped.
        self.wrap("provider_sdk.client", "Client.create", CREATE.sync)
        self.wrap("provider_sdk.client", "AsyncClient.create", CREATE.async_)
