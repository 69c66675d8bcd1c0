"""The wrappers around the SDK's resource methods: one recorded call per application call.

An :class:`Endpoint` says how to describe a request and read its response; :func:`sync_wrapper`
and :func:`async_wrapper` turn it into wrapt wrappers. Results reach the application unchanged:
plain objects as they are, streams inside a ``RecordedStream`` proxy, and raw responses
(``with_raw_response`` / ``with_streaming_response``) as the very same object, observed through
its ``parse``/``close``.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from genops_autoinstrument import config
from genops_autoinstrument.engine.call import Call, CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.api.streams import RecordedAsyncStream, RecordedStream, StreamAccumulator

from . import _request, _response
from ._errors import block_factory
from ._streams import ChatStreamAccumulator, ResponsesStreamAccumulator

log = logging.getLogger("genops")

STREAM_USAGE_VARIABLE = "GENOPS_OPENAI_STREAM_USAGE"
STREAM_USAGE = config.plugin_variable(
    STREAM_USAGE_VARIABLE, "bool", True, "`false` stops the OpenAI plugin from asking streamed calls for their usage chunk (tokens then unknown)."
)
_RAW_HEADER = "x-stainless-raw-response"  # openai._constants.RAW_RESPONSE_HEADER, lower-cased


@dataclass(frozen=True)
class Endpoint:
    """How one SDK method maps onto the call-recording API."""

    path: str  # for the synthetic request of a blocked call
    describe: Callable[[_request.Server, Mapping[str, Any], bool], CallRequest]
    finish: _response.Finisher
    accumulator: Callable[[bool, bool], StreamAccumulator] | None = None  # (hide_usage_chunk, capture)
    usage_option: bool = False  # supports stream_options={"include_usage": True}
    always_streams: bool = False


CHAT = Endpoint("chat/completions", _request.chat_request, _response.finish_chat, lambda hide, capture: ChatStreamAccumulator(hide, capture), True)
CHAT_PARSE = Endpoint("chat/completions", _request.chat_request, _response.finish_chat)
RESPONSES = Endpoint("responses", _request.responses_request, _response.finish_responses, lambda hide, capture: ResponsesStreamAccumulator())
RESPONSES_PARSE = Endpoint("responses", _request.responses_request, _response.finish_responses)
COMPLETIONS = Endpoint(
    "completions", _request.completions_request, _response.finish_completion, lambda hide, capture: ChatStreamAccumulator(hide, capture, "text"), True
)
EMBEDDINGS = Endpoint("embeddings", _request.embeddings_request, _response.finish_embeddings)


_warned_variable = False


def stream_usage_enabled() -> bool:
    """``GENOPS_OPENAI_STREAM_USAGE`` (default true): ask streamed calls for their usage chunk."""
    global _warned_variable
    try:
        return bool(config.read_plugin_variable(STREAM_USAGE))
    except config.ConfigError as error:  # only outside genops-run, which validates at start-up
        if not _warned_variable:
            _warned_variable = True
            log.warning("%s; using the default (true)", error)
        return True


@dataclass(slots=True)
class Plan:
    """One call, prepared: its description and the keyword arguments actually sent."""

    endpoint: Endpoint
    request: CallRequest
    block: Callable[[Any], BaseException]
    streaming: bool
    raw: str | None  # "true" (with_raw_response), "stream" (with_streaming_response) or None
    hide_usage_chunk: bool = False


def _raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    headers = kwargs.get("extra_headers")
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == _RAW_HEADER and isinstance(value, str):
            return value
    return None


_READ_KEYS = ("messages", "input", "prompt")
_NOT_ITERATORS = frozenset({list, tuple, str, bytes, dict})


def _materialize(kwargs: dict[str, Any]) -> None:
    """A one-shot iterator of messages would be used up by GenOps reading it; pass the SDK a list."""
    for key in _READ_KEYS:
        value = kwargs.get(key)
        if value is None or type(value) in _NOT_ITERATORS:
            continue
        if hasattr(value, "__next__") and not isinstance(value, (str, bytes, list, tuple, Mapping)):
            kwargs[key] = list(value)


_BLOCKS: dict[tuple[str | None, str], Callable[[Any], BaseException]] = {}


def _block(base_url: str | None, path: str) -> Callable[[Any], BaseException]:
    """The block-error factory for one endpoint of one server (built once, they are pure)."""
    key = (base_url, path)
    factory = _BLOCKS.get(key)
    if factory is None:
        if len(_BLOCKS) >= 256:
            _BLOCKS.clear()
        factory = _BLOCKS[key] = block_factory(base_url, path)
    return factory


def _plan(endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> Plan | None:
    try:
        _materialize(kwargs)
        streaming = endpoint.always_streams or kwargs.get("stream") is True
        server = _request.server_of(instance)
        return Plan(endpoint, endpoint.describe(server, kwargs, streaming), _block(server.base_url, endpoint.path), streaming, _raw_mode(kwargs))
    except Exception as error:
        internal_error("openai request", error)
        return None


def _send_kwargs(plan: Plan, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Ask for the usage chunk of a stream when the app did not (and it is not a raw response)."""
    if not (plan.streaming and plan.endpoint.usage_option and plan.raw is None):
        return kwargs
    try:
        options = kwargs.get("stream_options")
        options = options if isinstance(options, Mapping) else {}
        if options.get("include_usage") is True or not stream_usage_enabled():
            return kwargs
        plan.hide_usage_chunk = True
        return {**kwargs, "stream_options": {**options, "include_usage": True}}
    except Exception as error:
        internal_error("openai stream usage", error)
        return kwargs


def _capture() -> bool:
    return bool(config.current().capture_content)


def _accumulator(plan: Plan) -> StreamAccumulator:
    factory = plan.endpoint.accumulator
    return factory(plan.hide_usage_chunk, _capture()) if factory is not None else StreamAccumulator()


def _deliver(plan: Plan, call: Call, result: Any, is_async: bool) -> Any:
    """Report or observe ``result``; return what the application gets (never raises)."""
    try:
        if plan.raw is not None and hasattr(result, "http_response"):
            if plan.raw == "true" and not plan.streaming:
                _finish_from_body(plan, call, result.http_response)
                return result
            _RawObserver(plan, call, is_async).attach(result)
            return result
        if plan.streaming:
            proxy = RecordedAsyncStream if is_async else RecordedStream
            return proxy(result, call, _accumulator(plan))
        plan.endpoint.finish(call, result)
    except Exception as error:
        internal_error("openai response", error)
        call.finish()
    return result


def _finish_from_body(plan: Plan, call: Call, http_response: Any) -> None:
    """Read the facts from a response body the application (or the SDK) already read."""
    if call.ended:
        return
    try:
        http_response.content  # raises when the body was never read
        data = http_response.json()
    except Exception:
        call.finish()
        return
    plan.endpoint.finish(call, data)


class _RawObserver:
    """Observes a raw response object without replacing it: its ``parse`` and ``close``, and its end."""

    def __init__(self, plan: Plan, call: Call, is_async: bool) -> None:
        self.plan = plan
        self.call = call
        self.is_async = is_async
        self.proxy: Any = None
        self.http_response: Any = None

    def attach(self, response: Any) -> None:
        self.http_response = response.http_response
        if self.plan.streaming:
            original_parse = response.parse
            if inspect.iscoroutinefunction(original_parse):

                async def aparse(*args: Any, **kwargs: Any) -> Any:
                    return self.wrap(await original_parse(*args, **kwargs))

                response.parse = aparse
            else:

                def parse(*args: Any, **kwargs: Any) -> Any:
                    return self.wrap(original_parse(*args, **kwargs))

                response.parse = parse
        original_close = getattr(response, "close", None)
        if original_close is not None:
            if inspect.iscoroutinefunction(original_close):

                async def aclose(*args: Any, **kwargs: Any) -> Any:
                    try:
                        return await original_close(*args, **kwargs)
                    finally:
                        self.ended()

                response.close = aclose
            else:

                def close(*args: Any, **kwargs: Any) -> Any:
                    try:
                        return original_close(*args, **kwargs)
                    finally:
                        self.ended()

                response.close = close
        finalizer = weakref.finalize(response, self.abandoned)
        finalizer.atexit = False

    def wrap(self, parsed: Any) -> Any:
        try:
            if self.proxy is not None and self.proxy.__wrapped__ is parsed:
                return self.proxy
            if self.proxy is None and not self.call.ended and (hasattr(parsed, "__next__") or hasattr(parsed, "__anext__")):
                proxy_cls = RecordedAsyncStream if self.is_async else RecordedStream
                self.proxy = proxy_cls(parsed, self.call, _accumulator(self.plan))
                return self.proxy
        except Exception as error:
            internal_error("openai raw stream", error)
        return parsed

    def ended(self) -> None:
        """The response was closed: report what was seen."""
        try:
            if self.call.ended:
                return
            if self.proxy is not None:
                self.proxy._self_accumulator.finish(self.call)
            elif self.plan.streaming:
                self.call.finish()
            else:
                _finish_from_body(self.plan, self.call, self.http_response)
        except Exception as error:
            internal_error("openai raw close", error)
            self.call.finish()

    def abandoned(self) -> None:
        """The raw response was garbage-collected; a stream taken from it ends on its own."""
        if self.proxy is None:
            self.ended()


def sync_wrapper(endpoint: Endpoint) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        plan = _plan(endpoint, instance, kwargs)
        if plan is None:
            return wrapped(*args, **kwargs)
        call = begin_call(plan.request, block=plan.block)
        if call.ended:
            return wrapped(*args, **kwargs)
        send = _send_kwargs(plan, kwargs)
        with call:
            result = wrapped(*args, **send)
        return _deliver(plan, call, result, False)

    return wrapper


def async_wrapper(endpoint: Endpoint) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        plan = _plan(endpoint, instance, kwargs)
        if plan is None:
            return await wrapped(*args, **kwargs)
        call = begin_call(plan.request, block=plan.block)
        if call.ended:
            return await wrapped(*args, **kwargs)
        send = _send_kwargs(plan, kwargs)
        with call:
            result = await wrapped(*args, **send)
        return _deliver(plan, call, result, True)

    return wrapper


def helper_close(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """``ChatCompletionStream.close``/``ResponseStream.close`` close the HTTP response, not the
    stream they read; end the recorded stream too, so a ``with ….stream()`` block that breaks
    early is recorded when the block exits."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if isinstance(raw, RecordedStream):
            try:
                raw.close()
            except Exception as error:
                internal_error("openai stream helper close", error)


async def async_helper_close(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Async counterpart of :func:`helper_close`."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if isinstance(raw, RecordedAsyncStream):
            try:
                await raw.close()
            except Exception as error:
                internal_error("openai stream helper close", error)
