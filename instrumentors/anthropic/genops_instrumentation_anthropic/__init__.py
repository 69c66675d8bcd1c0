"""GenOps plugin for the Anthropic SDK: maps Messages calls onto the engine's call-recording API.

Patched (sync and async, first-party and beta, Anthropic/Bedrock/Vertex clients): ``messages.create``
(plain, ``stream=True``, ``with_raw_response``, ``with_streaming_response``), ``messages.stream()``
and ``messages.parse``. ``count_tokens`` is left alone.

anthropic 1.14+ traces its own calls with OpenTelemetry (on by default) and propagates their trace
context. The plugin leaves that alone: the SDK's spans go where they go bare (the application's
provider, or nowhere), its requests carry exactly the headers they carry bare, and GenOps records
its own span beside them, counting each call once in its metrics and budgets.

Must not import the SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, RecordedMethod, internal_error

from ._compat import STREAM_INSTANCE_CHECKS, stream_instancecheck
from ._request import describe, prepare
from ._streams import hook_stream_manager, read
from .package import _instruments, _watched_modules

__all__ = ["AnthropicInstrumentor"]

# ``create`` / ``parse``, sync and async: the decision first, then the SDK's own call, unchanged.
MESSAGES = RecordedMethod("anthropic", prepare, read)


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
        for module, check in STREAM_INSTANCE_CHECKS:  # anthropic 0.x only
            self.wrap(module, check, stream_instancecheck)
