"""GenOps plugin for the Anthropic SDK: maps Messages calls onto the engine's call-recording API.

Patched (sync and async, first-party and beta, Anthropic/Bedrock/Vertex clients): ``messages.create``
(plain, ``stream=True``, ``with_raw_response``, ``with_streaming_response``), ``messages.stream()``
and ``messages.parse``. ``count_tokens`` is left alone. The SDK's own OpenTelemetry span for a
recorded call is replaced by the GenOps span (see ``_sdk_spans``).

Must not import the SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument import GenOpsInstrumentor
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.diagnostics import internal_error

from . import _sdk_spans
from ._errors import blocker
from ._request import build_request
from ._sdk_spans import nested_in_genops_call, replacing_sdk_span
from ._streams import hook_stream_manager, report
from .package import _instruments, _watched_modules

__all__ = ["AnthropicInstrumentor"]


def _describe(instance: Any, kwargs: dict, streaming: bool) -> Any:
    """(request, block factory) for a resource method call, or None when it cannot be described."""
    try:
        client = getattr(instance, "_client", None)
        return build_request(client, kwargs, streaming=streaming), blocker(client)
    except Exception as error:
        internal_error("anthropic request", error)
        return None


def _create(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Sync ``create`` / ``parse``: the decision first, then the SDK call with the GenOps span current."""
    described = _describe(instance, kwargs, kwargs.get("stream") is True)
    if described is None:
        return wrapped(*args, **kwargs)
    nested = nested_in_genops_call()
    call = begin_call(described[0], block=described[1])
    with call, replacing_sdk_span(call, nested):
        result = wrapped(*args, **kwargs)
    return report(call, result)


async def _acreate(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Async ``create`` / ``parse``."""
    described = _describe(instance, kwargs, kwargs.get("stream") is True)
    if described is None:
        return await wrapped(*args, **kwargs)
    nested = nested_in_genops_call()
    call = begin_call(described[0], block=described[1])
    with call, replacing_sdk_span(call, nested):
        result = await wrapped(*args, **kwargs)
    return report(call, result)


def _stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``messages.stream()`` (sync and async): the SDK's manager, whose request runs through GenOps on entry."""
    manager = wrapped(*args, **kwargs)
    described = _describe(instance, kwargs, True)
    if described is not None:
        try:
            if not hook_stream_manager(manager, described[0], described[1]):
                internal_error("anthropic stream manager", TypeError(f"unknown stream manager {type(manager).__name__}"))
        except Exception as error:
            internal_error("anthropic stream manager", error)
    return manager


# (module, class) pairs whose Messages methods are patched; a class missing in this SDK is skipped.
_SYNC_CLASSES = (
    ("anthropic.resources.messages.messages", "Messages"),
    ("anthropic.resources.beta.messages.messages", "Messages"),
    ("anthropic.lib.bedrock._beta_messages", "Messages"),
    ("anthropic.lib.vertex._beta_messages", "Messages"),
)
_ASYNC_CLASSES = (
    ("anthropic.resources.messages.messages", "AsyncMessages"),
    ("anthropic.resources.beta.messages.messages", "AsyncMessages"),
    ("anthropic.lib.bedrock._beta_messages", "AsyncMessages"),
    ("anthropic.lib.vertex._beta_messages", "AsyncMessages"),
)


class AnthropicInstrumentor(GenOpsInstrumentor):
    """Records every Anthropic Messages call (tokens, cost, policy) as one GenAI span."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        for module, cls in _SYNC_CLASSES:
            self.wrap(module, f"{cls}.create", _create)
            self.wrap(module, f"{cls}.parse", _create)
            self.wrap(module, f"{cls}.stream", _stream)
        for module, cls in _ASYNC_CLASSES:
            self.wrap(module, f"{cls}.create", _acreate)
            self.wrap(module, f"{cls}.parse", _acreate)
            self.wrap(module, f"{cls}.stream", _stream)
        self.wrap("anthropic._base_client", "start_api_call_span", _sdk_spans.start_api_call_span)
