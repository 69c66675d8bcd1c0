"""The call-recording API: what every plugin uses around one provider call.

A plugin describes the request (:class:`CallRequest`), calls
:func:`~genops_autoinstrument.engine.runtime.begin_call`, runs the SDK call
with the returned :class:`Call` active, and reports the response with :meth:`Call.finish` or the
error with :meth:`Call.fail`. "Active" is GenOps' own context (:func:`in_recorded_call`): the
call's span is never made OpenTelemetry's current span, so the SDK sends no trace header it
would not send bare and the spans it opens keep their bare parent. The engine does everything else, once, for every provider: the
policy decision and budget reservation before the call (which may raise the plugin's native
policy error), the span, attribution, pricing, metrics, budget reconciliation and the summary.

Usage in a plugin::

    call = begin_call(request, block=to_native_error)
    with call:                      # recorded; an exception ends it as an error and re-raises
        response = wrapped(*args, **kwargs)
    call.finish(response_model=..., response_id=..., finish_reasons=..., usage=Usage(...))

Every method is safe: an internal failure is logged once and the call goes ahead unrecorded.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.pricing.usage import Usage

__all__ = ["CallRequest", "Call", "NULL_CALL", "in_recorded_call", "current_call_span"]


@dataclass
class CallRequest:
    """What a plugin knows about one call before it is sent.

    ``prompt_text`` and ``input_messages`` are callables so that nothing is serialised unless a
    policy or content capture needs it.
    """

    provider: str  # gen_ai.provider.name: "openai", "anthropic", "aws.bedrock", "gcp.gen_ai", …
    operation: str  # gen_ai.operation.name: "chat", "text_completion", "embeddings", …
    request_model: str | None
    server_address: str | None = None
    server_port: int | None = None
    api_base_url: str | None = None  # used to find the price list of OpenAI-compatible servers
    parameters: Mapping[str, Any] = field(default_factory=dict)  # semconv gen_ai.request.* attributes
    max_output_tokens: int | None = None  # for the budget reservation estimate
    streaming: bool = False
    prompt_text: Callable[[], Iterable[str]] | None = None  # the outgoing text, for content rules and estimates
    input_messages: Callable[[], Any] | None = None  # JSON-able messages, recorded only on opt-in
    # The application turned the SDK's own OpenTelemetry off for this client: GenOps records the call
    # into its own providers, never into the application's (which gets no telemetry of it, as bare).
    own_telemetry: bool = False


# The span of the GenOps-recorded call running in this context (None: none), so that a nested
# instrumented call (an SDK calling itself, a framework on a provider, two plugins for one library)
# is recorded once, by the outermost, and the code API finds the call it runs in. GenOps' own
# context: the span is never made OpenTelemetry's current span.
_active: contextvars.ContextVar[Any] = contextvars.ContextVar("genops_call_active", default=None)


class Call:
    """One recorded provider call. Ends exactly once, whichever of finish/fail/close comes first."""

    __slots__ = ("_request", "_engine", "_span", "_attribution", "_ticket", "_start", "_ended", "_token", "_sink", "_unit", "_held", "_foreign", "_shared", "_shared_token")

    def __init__(self, request: CallRequest, engine: Any, span: Any, attribution: Mapping[str, str], ticket: Any, start: float, sink: Any = None) -> None:
        self._request = request
        self._engine = engine
        self._span = span
        self._attribution = attribution
        self._ticket = ticket
        self._start = start
        self._ended = False
        self._token: Any = None
        self._sink = sink  # where the call is recorded (the engine's choice of providers at its start)
        self._unit: Any = None  # the innermost unit of work (genops_autoinstrument.track), if any
        self._held: float | None = None  # the estimate held against a unit's cost cap (None: no cap)
        self._foreign: Any = None  # another layer's inference span GenOps enriches (engine.inference.Foreign)
        self._shared: Any = None  # util-genai's InferenceData GenOps set for the layers below it
        self._shared_token: Any = None

    @property
    def request(self) -> CallRequest:
        return self._request

    @property
    def span(self) -> Any:
        """The call's span (for plugins that add provider-specific attributes)."""
        return self._span

    @property
    def ended(self) -> bool:
        return self._ended

    def __enter__(self) -> "Call":
        try:
            self._token = _active.set(self._span)
            if self._foreign is None and not self._ended:
                self._set_shared_key()
        except Exception as error:  # pragma: no cover - defensive
            internal_error("Call.__enter__", error)
        return self

    def _set_shared_key(self) -> None:
        """Where the process loaded a util-genai that defines OpenTelemetry's shared inference key,
        GenOps' call is the inference under it while the SDK runs, so util-genai instrumentations
        below publish into it instead of recording a span and metrics of their own."""
        from genops_autoinstrument.engine.inference import shared_key

        shared = shared_key()
        if shared is None:
            return
        from opentelemetry import context

        key, data_class = shared
        if self._shared is None:
            self._shared = data_class()
        self._shared_token = context.attach(context.set_value(key, self._shared))

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if self._token is not None:
                _active.reset(self._token)
                self._token = None
            if self._shared_token is not None:
                from opentelemetry import context

                token, self._shared_token = self._shared_token, None
                context.detach(token)
        except Exception as error:  # pragma: no cover - defensive
            internal_error("Call.__exit__", error)
        if exc is not None:
            self.fail(exc)

    def finish(
        self,
        *,
        response_model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        usage: Usage | None = None,
        output_messages: Callable[[], Any] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the response: tokens, cost, budget reconciliation; end the span."""
        if self._ended:
            return
        self._ended = True
        try:
            self._engine.finish(self, response_model, response_id, finish_reasons, usage, output_messages, attributes)
        except Exception as error:
            internal_error("Call.finish", error)

    def fail(self, error: BaseException) -> None:
        """Record an SDK error (or cancellation): error.type, ERROR status, reservation released."""
        if self._ended:
            return
        self._ended = True
        try:
            self._engine.fail(self, error)
        except Exception as internal:
            internal_error("Call.fail", internal)


class _NullCall(Call):
    """Stands in when nothing must be recorded (nested call, suppressed, or an internal failure)."""

    def __init__(self) -> None:  # noqa: D107 - shares no state
        self._ended = True
        self._span = None
        self._foreign = None

    def __enter__(self) -> "Call":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def finish(self, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def fail(self, error: BaseException) -> None:
        return None


NULL_CALL: Call = _NullCall()


def in_recorded_call() -> bool:
    """True inside a call GenOps is recording (plugins use it to leave nested SDK work alone)."""
    return _active.get() is not None


def current_call_span() -> Any:
    """The span of the call GenOps is recording in this context (an SDK hook running inside it), or None."""
    return _active.get()


def activate(call: Call) -> Any:
    """Make ``call`` the recorded call of this context again (a stream pulling its next chunk, when
    the SDK sends its request lazily); returns the token for :func:`deactivate`."""
    return _active.set(call._span)


def deactivate(token: Any) -> None:
    _active.reset(token)
