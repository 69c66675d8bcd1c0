"""Metrics of one call: cost counter, token and duration histograms, their dimensions, sampling."""

from __future__ import annotations

from typing import Callable

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from genops_autoinstrument import semconv
from genops_autoinstrument.config import Settings
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

ATTRIBUTION = {semconv.GENOPS_TEAM: "search", semconv.GENOPS_CUSTOMER_ID: "acme"}
BASE_DIMENSIONS = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
    semconv.SERVER_ADDRESS: "api.openai.com",
    semconv.GENOPS_TEAM: "search",
    semconv.GENOPS_CUSTOMER_ID: "acme",
}
USAGE = Usage(input_tokens=1000, output_tokens=200)
COST = (1000 * 2.5 + 200 * 10) / 1_000_000  # gpt-4o: $2.50 in, $10 out per million


def test_cost_token_and_duration_metrics(run_call: Callable, points: Callable, metric_units: Callable) -> None:
    with capture(Settings(attribution=ATTRIBUTION)) as recorded:
        run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
        run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
    [(cost_dims, cost)] = points(recorded, semconv.METRIC_COST)
    assert cost_dims == BASE_DIMENSIONS
    assert cost.value == pytest.approx(2 * COST, abs=1e-15)

    tokens = {dims[semconv.GEN_AI_TOKEN_TYPE]: (dims, point) for dims, point in points(recorded, semconv.METRIC_TOKEN_USAGE)}
    assert set(tokens) == {semconv.TOKEN_TYPE_INPUT, semconv.TOKEN_TYPE_OUTPUT}
    input_dims, input_point = tokens[semconv.TOKEN_TYPE_INPUT]
    assert input_dims == {**BASE_DIMENSIONS, semconv.GEN_AI_TOKEN_TYPE: "input"}
    assert (input_point.count, input_point.sum, input_point.min, input_point.max) == (2, 2000, 1000, 1000)
    output_dims, output_point = tokens[semconv.TOKEN_TYPE_OUTPUT]
    assert output_dims == {**BASE_DIMENSIONS, semconv.GEN_AI_TOKEN_TYPE: "output"}
    assert (output_point.count, output_point.sum) == (2, 400)
    assert list(input_point.explicit_bounds[:3]) == [1, 4, 16]

    [(duration_dims, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert duration_dims == BASE_DIMENSIONS
    assert duration.count == 2 and duration.sum >= 0
    assert list(duration.explicit_bounds[:2]) == [0.01, 0.02]

    assert points(recorded, semconv.METRIC_UNPRICED_CALLS) == []
    assert points(recorded, semconv.METRIC_POLICY_DECISIONS) == []  # no governor configured
    units = metric_units(recorded)
    assert units[semconv.METRIC_COST] == "USD"
    assert units[semconv.METRIC_TOKEN_USAGE] == "{token}"
    assert units[semconv.METRIC_OPERATION_DURATION] == "s"


def test_metrics_recorded_when_the_span_is_sampled_out(run_call: Callable, points: Callable) -> None:
    token = context.attach(baggage.set_baggage(semconv.GENOPS_FEATURE, "search-box"))
    try:
        with capture(Settings(attribution=ATTRIBUTION, baggage_keys=frozenset({semconv.GENOPS_FEATURE})), sampler=ALWAYS_OFF) as recorded:
            call = run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
            assert not call.span.is_recording()
    finally:
        context.detach(token)
    assert recorded.spans() == []
    expected = {**BASE_DIMENSIONS, semconv.GENOPS_FEATURE: "search-box"}
    [(cost_dims, cost)] = points(recorded, semconv.METRIC_COST)
    assert cost_dims == expected
    assert cost.value == pytest.approx(COST, abs=1e-15)
    assert sorted(p.sum for _, p in points(recorded, semconv.METRIC_TOKEN_USAGE)) == [200, 1000]
    [(duration_dims, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert duration_dims == expected and duration.count == 1


def test_customer_dimension_can_be_dropped(run_call: Callable, points: Callable) -> None:
    with capture(Settings(attribution=ATTRIBUTION, metrics_customer_dimension=False)) as recorded:
        run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
        run_call(usage=Usage(input_tokens=7))
    for name in (semconv.METRIC_COST, semconv.METRIC_TOKEN_USAGE, semconv.METRIC_OPERATION_DURATION):
        found = points(recorded, name)
        assert found, name
        for dims, _ in found:
            assert semconv.GENOPS_CUSTOMER_ID not in dims
            assert dims[semconv.GENOPS_TEAM] == "search"
    # The span keeps the customer: only metric cardinality is reduced.
    assert all(span.attributes[semconv.GENOPS_CUSTOMER_ID] == "acme" for span in recorded.spans())


def test_baggage_customer_also_dropped_from_metrics(run_call: Callable, points: Callable) -> None:
    token = context.attach(baggage.set_baggage(semconv.GENOPS_CUSTOMER_ID, "globex"))
    try:
        with capture(Settings(metrics_customer_dimension=False, baggage_keys=frozenset({semconv.GENOPS_CUSTOMER_ID}))) as recorded:
            run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
    finally:
        context.detach(token)
    [(dims, _)] = points(recorded, semconv.METRIC_COST)
    assert semconv.GENOPS_CUSTOMER_ID not in dims
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_CUSTOMER_ID] == "globex"


def test_unpriced_call_counts_as_unpriced_never_as_zero_cost(make_request: Callable, run_call: Callable, points: Callable) -> None:
    with capture(Settings(attribution=ATTRIBUTION)) as recorded:
        run_call(make_request(request_model="in-house-model"), usage=USAGE, response_model="in-house-model")
    assert points(recorded, semconv.METRIC_COST) == []
    [(dims, unpriced)] = points(recorded, semconv.METRIC_UNPRICED_CALLS)
    assert unpriced.value == 1
    assert dims[semconv.GEN_AI_RESPONSE_MODEL] == "in-house-model"
    assert dims[semconv.GENOPS_TEAM] == "search"
    # Tokens are still counted.
    assert sorted(p.sum for _, p in points(recorded, semconv.METRIC_TOKEN_USAGE)) == [200, 1000]


def test_failed_call_records_duration_with_error_type_only(make_request: Callable, points: Callable) -> None:
    with capture(Settings(attribution=ATTRIBUTION)) as recorded:
        call = begin_call(make_request())
        with pytest.raises(ConnectionError):
            with call:
                raise ConnectionError("reset by peer")
    [(dims, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert dims[semconv.ERROR_TYPE] == "ConnectionError"
    assert dims[semconv.GENOPS_TEAM] == "search"
    assert duration.count == 1
    assert points(recorded, semconv.METRIC_TOKEN_USAGE) == []
    assert points(recorded, semconv.METRIC_COST) == []
    assert points(recorded, semconv.METRIC_UNPRICED_CALLS) == []
