"""Shared fixtures for the enforcement and ledger tests: a fixed price table, a movable clock, real ledgers."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import pytest

from genops_autoinstrument import config, semconv
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.memory import MemoryLedger
from genops_autoinstrument.governance.ledger.sqlite import SqliteLedger
from genops_autoinstrument.pricing.prices import Price
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

# USD per million tokens (input, output). "test-unpriced" is deliberately absent.
PRICES = {"test-model": (1.0, 2.0), "test-cheap": (0.1, 0.2)}
T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z, a Wednesday


def table_price(provider: str, model: str | None, usage: Usage | None, api_base_url: str | None = None, **_: Any) -> Price:
    """A deterministic stand-in for genops_autoinstrument.pricing.prices.price_call."""
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return Price(None, semconv.UNPRICED_UNKNOWN_USAGE)
    if model not in PRICES:
        return Price(None, semconv.UNPRICED_UNKNOWN_MODEL)
    per_in, per_out = PRICES[model]
    return Price(((usage.input_tokens or 0) * per_in + (usage.output_tokens or 0) * per_out) / 1_000_000, source="test")


class Clock:
    """An injectable clock that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def priced(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Price]:
    """Make the engine price actual calls with PRICES (the real pricing module is built separately)."""
    import genops_autoinstrument.engine.engine as engine_module

    monkeypatch.setattr(engine_module, "price_call", table_price)
    return table_price


@pytest.fixture
def settings_from() -> Callable[..., config.Settings]:
    def make(**env: str) -> config.Settings:
        return config.load(env)

    return make


@pytest.fixture
def governed(priced: Any, clock: Clock) -> Callable[..., Any]:
    """``with governed(settings, ledger=...) as (rec, gov):`` a capture with an EnforcingGovernor."""
    import contextlib

    @contextlib.contextmanager
    def make(settings: config.Settings, ledger: Any = None, **kwargs: Any) -> Iterator[tuple[Any, EnforcingGovernor]]:
        if "meter" not in kwargs:  # never fall back to the global (exporting) meter in tests
            from opentelemetry.sdk.metrics import MeterProvider

            kwargs["meter"] = MeterProvider().get_meter("test")
        governor = EnforcingGovernor(settings, ledger=ledger or MemoryLedger(), clock=clock, pricer=table_price, **kwargs)
        with capture(settings, governor=governor) as rec:
            yield rec, governor
        governor.close()

    return make


def _request(model: str = "test-model", prompt: str = "x" * 400, max_output_tokens: int | None = 1000, **kwargs: Any) -> CallRequest:
    return CallRequest("openai", "chat", model, max_output_tokens=max_output_tokens, prompt_text=lambda: [prompt], **kwargs)


@pytest.fixture
def make_request() -> Callable[..., CallRequest]:
    return _request


@pytest.fixture
def call() -> Callable[..., Any]:
    """Run one recorded call; returns the PolicyViolation if it was blocked, else None."""
    from genops_autoinstrument.governance.decisions import PolicyViolation

    def run(req: CallRequest | None = None, usage: Usage | None = Usage(input_tokens=100, output_tokens=1000), fail: BaseException | None = None) -> Any:
        try:
            recorded = begin_call(req or _request())
        except PolicyViolation as violation:
            return violation
        try:
            with recorded:
                if fail is not None:
                    raise fail
        except BaseException as error:
            if error is not fail:
                raise
            return None
        recorded.finish(response_model=(req or _request()).request_model, usage=usage)
        return None

    return run


def events(span: Any, name: str) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in span.events if event.name == name]


@pytest.fixture
def span_events() -> Callable[[Any, str], list[dict[str, Any]]]:
    return events


# --- real ledgers -----------------------------------------------------------------------------------
@pytest.fixture
def redis_ledger(redis_url: str) -> Iterator[Any]:
    import redis

    from genops_autoinstrument.governance.ledger.redis import RedisLedger

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    ledger = RedisLedger(redis_url, timeout_ms=2000)
    yield ledger
    ledger.close()


@pytest.fixture
def sqlite_ledger(tmp_path: Any) -> Iterator[SqliteLedger]:
    ledger = SqliteLedger(str(tmp_path / "state" / "ledger.db"), timeout_ms=2000)
    yield ledger
    ledger.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_ledger(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryLedger()
    return request.getfixturevalue(f"{request.param}_ledger")


@pytest.fixture(autouse=True)
def _no_ambient_genops(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)
