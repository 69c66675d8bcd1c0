"""``genops.ledger.failures`` is recorded where a call made at that moment is: an application that
sets up its meter provider after GenOps started (after the engine was built) gets the counter, as
it gets the calls' metrics, instead of it staying in GenOps' own provider.

The global slot is set with ``monkeypatch`` (restored after the test), as
``metrics.set_meter_provider`` would set it, which the API allows only once per process.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genops_autoinstrument import check, config, semconv
from genops_autoinstrument.engine import telemetry
from genops_autoinstrument.engine.engine import Engine
from genops_autoinstrument.engine.runtime import set_engine
from genops_autoinstrument.governance.enforcing import EnforcingGovernor


@pytest.fixture
def unreadable_ledger(tmp_path: Any) -> str:
    (tmp_path / "not-a-folder").write_text("")
    return f"sqlite:///{tmp_path / 'not-a-folder' / 'ledger.db'}"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, unreadable_ledger: str) -> Iterator[Engine]:
    """An engine with no providers given, built before the application set up any."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(metrics_api, "_METER_PROVIDER", None)
    telemetry.reset_for_tests()
    settings = config.load({"GENOPS_LEDGER_URL": unreadable_ledger, "GENOPS_BUDGETS": "customer_id=0.00003/total", "GENOPS_FAIL_MODE": "open"})
    previous = config._current
    config.set_current(settings)
    engine = Engine(settings, governor=EnforcingGovernor(settings), defer=False)
    set_engine(engine)
    try:
        yield engine
    finally:
        set_engine(None)
        config.set_current(previous)
        telemetry.shutdown(5.0)
        telemetry.reset_for_tests()


def _failures(reader: InMemoryMetricReader) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == semconv.METRIC_LEDGER_FAILURES
        for point in metric.data.data_points
    ]


def test_the_ledger_failure_counter_follows_the_applications_meter_provider(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = InMemoryMetricReader()
    application = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(metrics_api, "_METER_PROVIDER", application)  # the application sets its provider now
    try:
        assert check("gpt-4o-mini", max_output_tokens=20).result == semconv.RESULT_ALLOWED  # fail mode open
        assert engine.governor.ledger_failures == 1
        assert [point.value for point in _failures(reader)] == [1]
        assert engine.providers()[1] is application
    finally:
        application.shutdown()
