"""``genops_autoinstrument.flush(timeout)`` keeps one deadline: the deferred queue and each of
GenOps' own providers get the time left, not ``timeout`` each (a serverless handler's last step
must not take several times what it asked for)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import genops_autoinstrument
from genops_autoinstrument.engine import telemetry


class SlowProcessor:
    """A real SDK span processor whose flush takes ``seconds`` (an exporter on a slow network)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.given: list[float] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.given.append(timeout_millis)
        time.sleep(min(self.seconds, timeout_millis / 1000))
        return True


def _provider(processor: SlowProcessor) -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


def test_each_provider_gets_the_time_left_of_one_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = SlowProcessor(0.6), SlowProcessor(0.0)
    monkeypatch.setattr(telemetry, "_owned", [_provider(first), _provider(second)])
    assert genops_autoinstrument.flush(1.0) is True
    assert first.given and first.given[0] <= 1000
    # The first took 0.6 s of the 1 s: the second is given what was left, not another second.
    assert second.given and 1 <= second.given[0] <= 400


def test_a_bad_timeout_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        genops_autoinstrument.flush(-1)
