"""The OpenAI SDK's resource methods as recorded calls: one :class:`Endpoint` per kind of method.

Each endpoint is a kit :class:`RecordedMethod`: ``prepare`` describes the request (and asks a
stream for its usage chunk), ``read`` reports the response. Results reach the application
unchanged: plain objects as they are, streams inside a ``RecordedStream`` proxy, and raw responses
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

from genops_autoinstrument.api import (
    BlockFactory,
    Call,
    CallRequest,
    ConfigError,
    Prepared,
    RecordedAsyncStream,
    RecordedMethod,
    RecordedStream,
    StreamAccumulator,
    capture_content,
    given,
    internal_error,
    is_mapping,
    plugin_variable,
    read_plugin_variable,
)

from . import _request, _response
from ._errors import block_factory
from ._streams import ChatStreamAccumulator, ResponsesStreamAccumulator, answers_unmarked

log = logging.getLogger("genops")

STREAM_USAGE_VARIABLE = "GENOPS_OPENAI_STREAM_USAGE"
STREAM_USAGE = plugin_variable(
    STREAM_USAGE_VARIABLE, "bool", True, "`false` stops the OpenAI plugin from asking streamed calls for their usage chunk (tokens then unknown)."
)
_RAW_HEADER = "x-stainless-raw-response"  # openai._constants.RAW_RESPONSE_HEADER, lower-cased

_warned_variable = False


def stream_usage_enabled() -> bool:
    """``GENOPS_OPENAI_STREAM_USAGE`` (default true): ask streamed calls for their usage chunk."""
    global _warned_variable
    try:
        return bool(read_plugin_variable(STREAM_USAGE))
    except ConfigError as error:  # only outside genops-run, which validates at start-up
        if not _warned_variable:
            _warned_variable = True
            log.warning("%s; using the default (true)", error)
        return True


@dataclass(frozen=True, slots=True)
class Plan:
    """How to read one call's result (``Prepared.state``); the common plans are shared constants."""

    streaming: bool
    raw: str | None  # "true" (with_raw_response), "stream" (with_streaming_response) or None
    asked: str | None = None  # GenOps asked this server (base URL) for the usage chunk; None: it did not


_NOT_STREAMING = Plan(False, None)
_STREAMING = Plan(True, None)


def _plan(streaming: bool, raw: str | None, asked: str | None) -> Plan:
    if raw is not None:
        return Plan(streaming, raw)
    if asked is not None:
        return Plan(True, None, asked)
    return _STREAMING if streaming else _NOT_STREAMING


def _raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    headers = kwargs.get("extra_headers")
    if headers is None or not is_mapping(headers):
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


def _block(server: _request.Server, path: str) -> BlockFactory:
    """The block-error factory for one endpoint of one server (built once, they are pure)."""
    factory = server.blocks.get(path)
    if factory is None:
        factory = server.blocks[path] = block_factory(server.base_url, path)
    return factory


def _with_usage_chunk(kwargs: dict[str, Any], server: _request.Server) -> dict[str, Any] | None:
    """The kwargs asking a stream for its usage chunk, or None when the application asked for usage
    itself in any way (``stream_options`` or ``extra_body``), set ``include_usage`` at all, or when
    asking is off. The one change to the body: ``stream_options.include_usage`` added, nothing else."""
    try:
        if not stream_usage_enabled() or answers_unmarked(server.base_url):
            return None
        extra = kwargs.get("extra_body")
        if is_mapping(extra) and "stream_options" in extra:  # it replaces the argument's in the body
            options = extra["stream_options"]
            if not is_mapping(options) or "include_usage" in options:
                return None
            return {**kwargs, "extra_body": {**extra, "stream_options": {**options, "include_usage": True}}}
        options = kwargs.get("stream_options")
        if is_mapping(options):
            if "include_usage" in options:
                return None
            return {**kwargs, "stream_options": {**options, "include_usage": True}}
        if given(options):  # something the SDK sends as it is: leave it
            return None
        return {**kwargs, "stream_options": {"include_usage": True}}
    except Exception as error:
        internal_error("openai stream usage", error)
        return None


@dataclass(frozen=True)
class Endpoint:
    """How one kind of SDK method maps onto a recorded call; :meth:`recorded` is its kit method."""

    path: str  # for the synthetic request of a blocked call
    describe: Callable[[_request.Server, Mapping[str, Any], bool], CallRequest]
    finish: _response.Finisher
    accumulator: Callable[[str | None, bool], StreamAccumulator] | None = None  # (Plan.asked, capture)
    usage_option: bool = False  # supports stream_options={"include_usage": True}
    always_streams: bool = False

    def prepare(self, instance: Any, args: tuple, kwargs: dict[str, Any]) -> Prepared:
        """Describe the call; a stream that did not ask for its usage chunk is sent asking for it."""
        _materialize(kwargs)
        streaming = self.always_streams or kwargs.get("stream") is True
        server = _request.server_of(instance)
        request = self.describe(server, kwargs, streaming)
        raw = _raw_mode(kwargs)
        send = _with_usage_chunk(kwargs, server) if streaming and self.usage_option and raw is None else None
        asked = (server.base_url or "") if send is not None else None
        return Prepared(request, _block(server, self.path), kwargs=send, state=_plan(streaming, raw, asked))

    def read(self, call: Call, result: Any, prepared: Prepared, is_async: bool) -> Any:
        """Report or observe ``result``; return what the application gets."""
        plan: Plan = prepared.state
        if plan.raw is not None and hasattr(result, "http_response"):
            if plan.raw == "true" and not plan.streaming:
                _finish_from_body(self, call, result.http_response)
            else:
                _RawObserver(self, plan, call, is_async).attach(result)
            return result
        if plan.streaming:
            proxy = RecordedAsyncStream if is_async else RecordedStream
            return proxy(result, call, self.stream_accumulator(plan))
        self.finish(call, result)
        return result

    def stream_accumulator(self, plan: Plan) -> StreamAccumulator:
        factory = self.accumulator
        return factory(plan.asked, capture_content()) if factory is not None else StreamAccumulator()

    def recorded(self) -> RecordedMethod:
        return RecordedMethod("openai", self.prepare, self.read)


CHAT = Endpoint("chat/completions", _request.chat_request, _response.finish_chat, lambda asked, capture: ChatStreamAccumulator(asked, capture), True).recorded()
CHAT_PARSE = Endpoint("chat/completions", _request.chat_request, _response.finish_chat).recorded()
RESPONSES = Endpoint("responses", _request.responses_request, _response.finish_responses, lambda asked, capture: ResponsesStreamAccumulator()).recorded()
RESPONSES_PARSE = Endpoint("responses", _request.responses_request, _response.finish_responses).recorded()
COMPLETIONS = Endpoint(
    "completions", _request.completions_request, _response.finish_completion, lambda asked, capture: ChatStreamAccumulator(asked, capture, "text"), True
).recorded()
EMBEDDINGS = Endpoint("embeddings", _request.embeddings_request, _response.finish_embeddings).recorded()


def _finish_from_body(endpoint: Endpoint, call: Call, http_response: Any) -> None:
    """Read the facts from a response body the application (or the SDK) already read."""
    if call.ended:
        return
    try:
        http_response.content  # raises when the body was never read
        data = http_response.json()
    except Exception:
        call.finish()
        return
    endpoint.finish(call, data)


class _RawObserver:
    """Observes a raw response object without replacing it: its ``parse`` and ``close``, and its end."""

    def __init__(self, endpoint: Endpoint, plan: Plan, call: Call, is_async: bool) -> None:
        self.endpoint = endpoint
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
                self.proxy = proxy_cls(parsed, self.call, self.endpoint.stream_accumulator(self.plan))
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
                _finish_from_body(self.endpoint, self.call, self.http_response)
        except Exception as error:
            internal_error("openai raw close", error)
            self.call.finish()

    def abandoned(self) -> None:
        """The raw response was garbage-collected; a stream taken from it ends on its own."""
        if self.proxy is None:
            self.ended()


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
