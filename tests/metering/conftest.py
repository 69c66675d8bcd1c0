"""Shared fixtures for the pricing and engine tests: clean settings, pricing files, one-call helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.pricing import prices as pricing
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Any:
    """No GENOPS_* from the developer's shell; fresh settings and pricing cache for each test."""
    import os

    for name in list(os.environ):
        if name.startswith("GENOPS_") or name == "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT":
            monkeypatch.delenv(name)
    previous = config._current
    config.set_current(config.Settings())
    pricing.reset_cache()
    yield
    pricing.reset_cache()
    config.set_current(previous)


@pytest.fixture
def use_settings() -> Callable[..., config.Settings]:
    """Make ``config.current()`` return settings with these fields (what price_call reads)."""

    def make(**fields: Any) -> config.Settings:
        settings = config.Settings(**fields)
        config.set_current(settings)
        return settings

    return make


@pytest.fixture
def pricing_file(tmp_path: Path) -> Callable[[str, str], str]:
    """Write a pricing file and return its path: ``pricing_file(text, suffix=".toml")``."""

    def write(text: str, suffix: str = ".toml") -> str:
        path = tmp_path / f"prices{suffix}"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def chat_request(**overrides: Any) -> CallRequest:
    fields: dict[str, Any] = dict(
        provider="openai",
        operation="chat",
        request_model="gpt-4o",
        server_address="api.openai.com",
        server_port=443,
        api_base_url="https://api.openai.com/v1/",
    )
    fields.update(overrides)
    return CallRequest(**fields)


@pytest.fixture
def make_request() -> Callable[..., CallRequest]:
    return chat_request


@pytest.fixture
def run_call() -> Callable[..., Any]:
    """Begin, run and finish one call the way a plugin does; returns the Call."""

    def run(request: CallRequest | None = None, *, usage: Usage | None = None, **finish: Any) -> Any:
        call = begin_call(request or chat_request())
        with call:
            pass
        call.finish(usage=usage, **finish)
        return call

    return run


def _points(recorded: Any, name: str) -> list[tuple[dict[str, Any], Any]]:
    return recorded.metrics().get(name, [])


def _metric_units(recorded: Any) -> dict[str, str]:
    units: dict[str, str] = {}
    data = recorded.metric_reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                units[metric.name] = metric.unit
    return units


@pytest.fixture
def points() -> Callable[[Any, str], list[tuple[dict[str, Any], Any]]]:
    """``points(recorded, name)``: data points of one metric ([] when nothing was recorded)."""
    return _points


@pytest.fixture
def metric_units() -> Callable[[Any], dict[str, str]]:
    """``metric_units(recorded)``: metric name -> unit."""
    return _metric_units
