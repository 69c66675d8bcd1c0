"""A stream whose SDK sends while it is read (``sends_while_pulling``) keeps its call the active one
while the SDK pulls a chunk (so a lower layer does not record that request again), and not once the
call ended; any other stream pulls its chunks without activating anything (the per-chunk cost).
Through ``next()`` (the proxy's ``__next__``) and through a ``for`` loop alike."""

from __future__ import annotations

from typing import Any

import pytest

from genops_autoinstrument.api import CallRequest, RecordedStream, StreamAccumulator, Usage, in_recorded_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.runtime import begin_call


class SdkStream:
    """An SDK's stream of three chunks that notes, at each pull, whether a GenOps call is active."""

    def __init__(self) -> None:
        self.chunks = iter(["a", "b", "c"])
        self.active_at_pull: list[bool] = []

    def __iter__(self) -> "SdkStream":
        return self

    def __next__(self) -> str:
        self.active_at_pull.append(in_recorded_call())
        return next(self.chunks)


class Tokens(StreamAccumulator):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def add(self, chunk: Any) -> bool:
        self.seen.append(chunk)
        return False

    def finish(self, call: Any) -> None:
        call.finish(response_model="gpt-4o-mini", usage=Usage(input_tokens=3, output_tokens=len(self.seen)))


class SendingStream(RecordedStream):
    sends_while_pulling = True


def _recorded_stream(proxy: type = SendingStream) -> tuple[SdkStream, Any, Any]:
    sdk = SdkStream()
    call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini", streaming=True))
    return sdk, call, proxy(sdk, call, Tokens())


@pytest.mark.parametrize("reading", ["next", "for"])
def test_a_stream_that_sends_while_pulling_has_its_call_active_then_and_not_after_it_ended(reading: str) -> None:
    with capture() as recorded:
        sdk, call, stream = _recorded_stream()
        if reading == "next":
            chunks = [next(stream) for _ in range(3)]
            with pytest.raises(StopIteration):
                next(stream)
        else:
            chunks = list(stream)
        assert chunks == ["a", "b", "c"]
        assert call.ended and not in_recorded_call()
        assert sdk.active_at_pull == [True, True, True, True]  # the fourth pull is the one that stops
        sdk.chunks = iter(["late"])
        if reading == "next":
            assert next(stream) == "late"  # pulled after the call ended: not active
            assert sdk.active_at_pull[-1] is False
        (span,) = recorded.spans()
        assert span.attributes["gen_ai.usage.output_tokens"] == 3


@pytest.mark.parametrize("reading", ["next", "for"])
def test_any_other_stream_pulls_without_activating_its_call(reading: str) -> None:
    with capture() as recorded:
        sdk, call, stream = _recorded_stream(RecordedStream)
        chunks = [next(stream) for _ in range(3)] if reading == "next" else list(stream)
        if reading == "next":
            with pytest.raises(StopIteration):
                next(stream)
        assert chunks == ["a", "b", "c"] and call.ended
        assert sdk.active_at_pull == [False, False, False, False]
        (span,) = recorded.spans()
        assert span.attributes["gen_ai.usage.output_tokens"] == 3


def _sdk_generator(sdk: SdkStream) -> Any:
    """An SDK whose stream is a lazy generator (ollama's, cohere's): nothing is sent before a pull."""
    yield from sdk


def test_a_generator_stream_is_taken_to_send_while_pulling_unless_the_plugin_says_otherwise() -> None:
    class Declared(RecordedStream):
        sends_while_pulling = False

    with capture():
        for proxy, expected in ((RecordedStream, True), (Declared, False)):
            sdk = SdkStream()
            call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini", streaming=True))
            assert list(proxy(_sdk_generator(sdk), call, Tokens())) == ["a", "b", "c"]
            assert sdk.active_at_pull == [expected] * 4
