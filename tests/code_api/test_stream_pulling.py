"""A recorded stream keeps its call the active one while the SDK pulls a chunk (an SDK that sends
its request at the first chunk must not be recorded again by a lower layer), and not once the call
ended: through ``next()`` (the proxy's ``__next__``) and through a ``for`` loop alike."""

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


def _recorded_stream() -> tuple[SdkStream, Any, Any]:
    sdk = SdkStream()
    call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini", streaming=True))
    return sdk, call, RecordedStream(sdk, call, Tokens())


@pytest.mark.parametrize("reading", ["next", "for"])
def test_the_call_is_active_while_pulling_and_not_after_it_ended(reading: str) -> None:
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
