"""A call ends exactly once: nesting, double finish/fail, and the GENOPS_SUMMARY table."""

from __future__ import annotations

import io
from typing import Any, Callable

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.config import Settings
from genops_autoinstrument.engine.call import NULL_CALL
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.engine.summary import Summary
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

USAGE = Usage(input_tokens=1000, output_tokens=200)


def test_nested_call_is_recorded_once_by_the_outermost(make_request: Callable, points: Callable) -> None:
    with capture(Settings()) as recorded:
        outer = begin_call(make_request())
        with outer:
            inner = begin_call(make_request(provider="azure.ai.openai", request_model="gpt-4o-mini"))
            assert inner is NULL_CALL
            with inner:
                pass
            inner.finish(usage=USAGE)
            inner.fail(RuntimeError("ignored"))
        outer.finish(usage=USAGE, response_model="gpt-4o")
        after = begin_call(make_request())  # once the outer call is over, calls are recorded again
        assert after is not NULL_CALL
        after.finish(usage=USAGE, response_model="gpt-4o")
    spans = recorded.spans()
    assert [span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans] == ["openai", "openai"]
    assert len({span.context.span_id for span in spans}) == 2
    [(dims, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert dims[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert duration.count == 2


@pytest.mark.parametrize(
    "ending",
    [
        ("finish", "finish"),
        ("fail", "fail"),
        ("finish", "fail"),
        ("fail", "finish"),
    ],
)
def test_a_call_ends_once(make_request: Callable, points: Callable, ending: tuple[str, str]) -> None:
    with capture(Settings()) as recorded:
        call = begin_call(make_request())
        with call:
            pass
        for how in ending:
            if how == "finish":
                call.finish(usage=USAGE, response_model="gpt-4o")
            else:
                call.fail(TimeoutError("late"))
        assert call.ended
    [span] = recorded.spans()
    [(dims, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    cost_points = points(recorded, semconv.METRIC_COST)
    if ending[0] == "finish":
        assert semconv.ERROR_TYPE not in span.attributes
        assert len(cost_points) == 1 and cost_points[0][1].value == pytest.approx(0.0045, abs=1e-15)
    else:
        assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"
        assert dims[semconv.ERROR_TYPE] == "TimeoutError"
        assert cost_points == []


def test_summary_render() -> None:
    summary = Summary()
    team = {semconv.GENOPS_TEAM: "search"}
    summary.add("openai", "gpt-4o", team, Usage(input_tokens=1000, output_tokens=200), 0.0045)
    summary.add("openai", "gpt-4o", team, Usage(input_tokens=500, output_tokens=100), 0.00225)
    summary.add("anthropic", "claude-sonnet-4-5", {}, Usage(input_tokens=10, output_tokens=5), None)
    summary.add("openai", "gpt-4o", team, None, None, failed=True)
    text = summary.render()
    lines = text.splitlines()
    assert "GenOps summary" in lines
    [gpt] = [line for line in lines if line.strip().startswith("openai gpt-4o")]
    assert gpt.split()[2:] == ["3", "1", "1500", "300", "0.006750", "0"]
    [claude] = [line for line in lines if line.strip().startswith("anthropic claude-sonnet-4-5")]
    assert claude.split()[2:] == ["1", "0", "10", "5", "0.000000", "1"]
    [by_team] = [line for line in lines if line.strip().startswith("genops.team=search")]
    assert by_team.split()[1:] == ["3", "1", "1500", "300", "0.006750", "0"]
    assert lines[-1] == " total cost: $0.006750 over 4 calls"
    out = io.StringIO()
    summary.print(out)
    assert out.getvalue() == text


def test_empty_summary_prints_nothing() -> None:
    out = io.StringIO()
    Summary().print(out)
    assert out.getvalue() == ""


@pytest.fixture
def fresh_summary() -> Any:
    """The engine installs a process-wide Summary printed at exit; keep this test's rows out of it."""
    previous = Summary._installed
    Summary._installed = None
    yield
    if Summary._installed is not None:
        Summary._installed.by_model.clear()  # its atexit print then prints nothing
        Summary._installed.by_attribution.clear()
    Summary._installed = previous


def test_engine_feeds_the_summary(make_request: Callable, run_call: Callable, fresh_summary: Any) -> None:
    with capture(Settings(summary=True, attribution={semconv.GENOPS_TEAM: "search"})) as recorded:
        run_call(usage=USAGE, response_model="gpt-4o-2024-08-06")
        run_call(make_request(request_model="in-house"), usage=USAGE)
        call = begin_call(make_request())
        call.fail(TimeoutError())
    summary = recorded.engine._summary
    assert summary is Summary._installed
    text = summary.render()
    [priced] = [line for line in text.splitlines() if "gpt-4o-2024-08-06" in line]
    assert priced.split()[2:] == ["1", "0", "1000", "200", "0.004500", "0"]
    [unpriced] = [line for line in text.splitlines() if "openai in-house" in line]
    assert unpriced.split()[-1] == "1" and unpriced.split()[-2] == "0.000000"
    [failed] = [line for line in text.splitlines() if line.strip().startswith("openai gpt-4o ")]
    assert failed.split()[2:4] == ["1", "1"]
    assert "total cost: $0.004500 over 3 calls" in text


# --- engine defects found while testing, now fixed ---


def test_response_model_dimension_only_when_the_provider_reported_one(make_request: Callable, run_call: Callable, points: Callable) -> None:
    with capture(Settings()) as recorded:
        run_call(usage=USAGE)  # the provider did not say which model answered
    [(dims, _)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
    assert semconv.GEN_AI_RESPONSE_MODEL not in dims


def test_a_failing_content_callback_still_ends_the_span(make_request: Callable) -> None:
    with capture(Settings(capture_content=True)) as recorded:
        call = begin_call(make_request())
        call.finish(usage=USAGE, output_messages=lambda: 1 / 0)
    [span] = recorded.spans()
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
