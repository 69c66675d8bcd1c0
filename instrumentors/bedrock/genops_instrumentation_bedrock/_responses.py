"""Turning Bedrock Runtime responses into ``call.finish(...)``, leaving the application's view intact.

InvokeModel's body is a one-shot ``StreamingBody``: it is read here and replaced by an equivalent
unread body over the same bytes. The two streaming operations return a botocore ``EventStream``,
which is wrapped in the kit's ``RecordedStream``: it reads every event on its way to the application.
An internal failure while reading is left to the kit: the call finishes without facts.
"""

from __future__ import annotations

import io
from typing import Any, Callable

from genops_autoinstrument.api import Call, StreamAccumulator

from ._models import BodyFacts, Tally, parse_json


# --- Converse --------------------------------------------------------------------------------
def _assistant(text: str, reasons: list[str]) -> list[dict[str, Any]]:
    message: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    if reasons:
        message["finish_reason"] = reasons[0]
    return [message]


def finish_converse(call: Call, response: Any, capture: bool) -> None:
    """Converse: ``usage`` and ``stopReason`` of the parsed response."""
    from ._models import converse_messages

    tally = Tally()
    tally.take(response.get("usage"))
    reason = response.get("stopReason")
    reasons = [reason] if isinstance(reason, str) else []
    output: Callable[[], Any] | None = None
    if capture:
        message = (response.get("output") or {}).get("message")

        def output() -> Any:
            messages = converse_messages([message] if message else [])
            for item in messages:
                if reasons:
                    item["finish_reason"] = reasons[0]
            return messages

    call.finish(finish_reasons=reasons, usage=tally.usage(), output_messages=output)


class ConverseStreamAccumulator(StreamAccumulator):
    """ConverseStream events: ``messageStop.stopReason`` and ``metadata.usage``."""

    def __init__(self, capture: bool) -> None:
        self.tally = Tally()
        self.reasons: list[str] = []
        self.capture = capture
        self.text: list[str] = []

    def add(self, event: Any) -> bool:
        if "contentBlockDelta" in event:
            if self.capture:
                text = event["contentBlockDelta"].get("delta", {}).get("text")
                if isinstance(text, str):
                    self.text.append(text)
        elif "messageStop" in event:
            reason = event["messageStop"].get("stopReason")
            if isinstance(reason, str):
                self.reasons.append(reason)
        elif "metadata" in event:
            self.tally.take(event["metadata"].get("usage"))
        return False

    def finish(self, call: Call) -> None:
        output = (lambda: _assistant("".join(self.text), self.reasons)) if self.capture else None
        call.finish(finish_reasons=self.reasons, usage=self.tally.usage(), output_messages=output)


# --- InvokeModel ------------------------------------------------------------------------------
class _ReplayError(io.RawIOBase):
    """A raw stream that raises the read error the original body raised, when the app reads it."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise self._error

    def readinto(self, buffer: Any) -> int:
        raise self._error


def _facts(facts: BodyFacts, call: Call) -> None:
    call.finish(
        response_id=facts.response_id,
        finish_reasons=facts.finish_reasons,
        usage=facts.usage(),
        output_messages=(lambda: _assistant("".join(facts.text), facts.finish_reasons)) if facts.collect_text else None,
        attributes=facts.attributes(),
    )


def finish_invoke(call: Call, response: Any, capture: bool) -> None:
    """InvokeModel: read the body, hand back an equivalent unread one, report body or header counts."""
    from botocore.response import StreamingBody

    body = response.get("body")
    data: Any = None
    if type(body) is StreamingBody:  # anything else (a test double's BytesIO…) is left alone
        try:
            data = body.read()
        except Exception as error:  # a network failure the app must still meet when it reads
            response["body"] = StreamingBody(_ReplayError(error), None)
            call.fail(error)
            return
        response["body"] = StreamingBody(io.BytesIO(data), len(data))
    elif isinstance(body, (bytes, bytearray)):
        data = body
    facts = BodyFacts(collect_text=capture)
    facts.add(parse_json(data))
    headers = Tally()
    headers.take_headers((response.get("ResponseMetadata") or {}).get("HTTPHeaders"))
    facts.tally.fill(headers)
    _facts(facts, call)


class InvokeStreamAccumulator(StreamAccumulator):
    """InvokeModelWithResponseStream ``chunk`` events: each carries one JSON body of the model family."""

    def __init__(self, capture: bool) -> None:
        self.facts = BodyFacts(collect_text=capture)

    def add(self, event: Any) -> bool:
        chunk = event.get("chunk") if isinstance(event, dict) else None
        if isinstance(chunk, dict):
            self.facts.add(parse_json(chunk.get("bytes")))
        return False

    def finish(self, call: Call) -> None:
        _facts(self.facts, call)
