"""GenOps plugin for the Anthropic SDK: maps Messages calls onto the engine's call-recording API.

Patched (sync and async, first-party and beta, Anthropic/Bedrock/Vertex clients): ``messages.create``
(plain, ``stream=True``, ``with_raw_response``, ``with_streaming_response``), ``messages.stream()``
and ``messages.parse``. ``count_tokens`` is left alone. The SDK's own OpenTelemetry span for a
recorded call is replaced by the GenOps span (see ``_sdk_spans``).

Must not import the SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, RecordedMethod, internal_error

from . import _sdk_spans
from ._request import describe, prepare
from ._sdk_spans import replacing_sdk_span
from ._streams import hook_stream_manager, read
from .package import _instruments, _watched_modules

__all__ = ["AnthropicInstrumentor"]

# ``create`` / ``parse``, sync and async: the decision first, then the SDK call with the GenOps span current.
MESSAGES = RecordedMethod("anthropic", prepare, read, replacing_sdk_span)


def _stream(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``messages.stream()`` (sync and async): the SDK's manager, whose request runs through GenOps on entry."""
    manager = wrapped(*args, **kwargs)
    try:
        described = describe(instance, kwargs, streaming=True)
    except Exception as error:
        internal_error("anthropic request", error)
        return manager
    try:
        if not hook_stream_manager(manager, described):
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
        for classes, recorded in ((_SYNC_CLASSES, MESSAGES.sync), (_ASYNC_CLASSES, MESSAGES.async_)):
            for module, cls in classes:
                self.wrap(module, f"{cls}.create", recorded)
                self.wrap(module, f"{cls}.parse", recorded)
                self.wrap(module, f"{cls}.stream", _stream)
        self.wrap("anthropic._base_client", "start_api_call_span", _sdk_spans.start_api_call_span)
