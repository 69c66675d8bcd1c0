"""One GenAI span per call: the GenOps span replaces the SDK's own `anthropic.messages.create` span.

anthropic 2.x traces every API call itself (``anthropic._tracing``, on by default, off with
``ANTHROPIC_OPEN_TELEMETRY=false`` or ``open_telemetry=False``). For a call GenOps records, the
SDK's ``start_api_call_span`` is answered with a *non-recording* span that carries the GenOps
span's context: the SDK then records nothing (every recording path checks ``is_recording()``),
while its trace-context propagation and HTTP-client child spans still hang off the GenOps span.
Every other API call (count_tokens, models, batches…) keeps the SDK's span untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

from genops_autoinstrument.api import Call, Prepared, internal_error

MESSAGES_SPAN_NAME = "anthropic.messages.create"

_replacing: contextvars.ContextVar[Any] = contextvars.ContextVar("genops_anthropic_replacing", default=None)


@contextlib.contextmanager
def replacing_sdk_span(call: Call, prepared: Prepared) -> Iterator[None]:
    """The kit's ``scope``: while active, the SDK's messages span is replaced by the call's span or,
    for a call nested in another recorded call (``prepared.state``), by the enclosing span."""
    from opentelemetry import trace

    span = call.span
    if span is None and prepared.state:
        span = trace.get_current_span()
    context = span.get_span_context() if span is not None else None
    if context is None:
        yield
        return
    token = _replacing.set(context)
    try:
        yield
    finally:
        _replacing.reset(token)


def start_api_call_span(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper of ``anthropic._base_client.start_api_call_span`` (a module function)."""
    context = _replacing.get()
    if context is None:
        return wrapped(*args, **kwargs)
    try:
        options = args[2] if len(args) > 2 else kwargs.get("options")
        if getattr(options, "span_name", None) == MESSAGES_SPAN_NAME:
            from opentelemetry.trace import NonRecordingSpan

            return NonRecordingSpan(context)
    except Exception as error:  # pragma: no cover - defensive: fall back to the SDK's own span
        internal_error("anthropic SDK span", error)
    return wrapped(*args, **kwargs)
