"""Span completion and metrics recorded off the application's thread: complete at every collection
and span flush, same values, context (exemplars) and timestamps, sampled-out spans included, a
forked child on its own, nothing lost at exit; synchronous where it must be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from genops_autoinstrument import config, semconv
from genops_autoinstrument.engine.deferred import deferred_queue
from genops_autoinstrument.api.testing import capture

MESSAGES = [{"role": "user", "content": "Say hello"}]


def points(recorded: Any, name: str) -> list[tuple[dict[str, Any], Any]]:
    return recorded.metrics().get(name, [])


def test_metrics_are_recorded_off_the_calling_thread_and_complete_at_collection(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    engine = rec.engine
    recorders: list[tuple[str, bool]] = []
    calling = threading.Event()

    class Spy:
        """Delegates to the real histogram, noting which thread records and when."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def record(self, *args: Any, **kwargs: Any) -> None:
            recorders.append((threading.current_thread().name, calling.is_set()))
            self.real.record(*args, **kwargs)

    engine._tokens = Spy(engine._tokens)
    main = threading.current_thread().name
    for _ in range(3):
        calling.set()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        calling.clear()
    tokens = points(rec, semconv.METRIC_TOKEN_USAGE)  # the collection flushes the queue first
    assert not [entry for entry in recorders if entry == (main, True)], "a metric was recorded on the application thread during a call"
    assert len(recorders) == 6
    by_type = {dims[semconv.GEN_AI_TOKEN_TYPE]: point for dims, point in tokens}
    assert (by_type["input"].count, by_type["input"].sum) == (3, 3 * 1234)
    assert (by_type["output"].count, by_type["output"].sum) == (3, 3 * 56)
    [(dims, cost)] = points(rec, semconv.METRIC_COST)
    assert dims == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.SERVER_ADDRESS: "api.openai.com",
    }
    span_cost = rec.spans()[0].attributes[semconv.GENOPS_COST_TOTAL]
    assert cost.value == pytest.approx(3 * span_cost, rel=1e-12)
    [(_, duration)] = points(rec, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 3


class EndingThreads(SpanProcessor):
    """Notes on which thread each span ends."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def on_end(self, span: Any) -> None:
        self.threads.append(threading.current_thread().name)


def test_spans_are_completed_off_the_calling_thread_with_the_call_s_times(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    before = time.time_ns()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    after = time.time_ns()
    time.sleep(0.05)  # completing later does not move the span's end
    span = h.one_span(rec)
    assert before <= span.start_time <= span.end_time <= after
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED


def test_the_call_does_not_end_its_span_on_the_application_thread(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    ending = EndingThreads()
    rec.tracer_provider.add_span_processor(ending)
    with deferred_queue._busy:  # the worker cannot run; nothing flushes during the call
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert ending.threads == [] and rec.span_exporter.get_finished_spans() == ()
    assert len(rec.spans()) == 1


def test_a_failed_call_is_completed_in_order_with_its_exception_event(rec, server, h):
    import openai

    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    server.error("/v1/chat/completions", 400, {"message": "bad", "type": "invalid_request_error"})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    ok, failed = rec.spans()
    assert ok.status.status_code.name == "UNSET" and failed.status.status_code.name == "ERROR"
    assert failed.attributes[semconv.ERROR_TYPE] == "openai.BadRequestError"
    [event] = failed.events
    assert event.name == "exception" and event.timestamp == failed.end_time


def test_a_failure_is_recorded_as_it_was_when_the_call_failed(rec, server, h):
    """The application may change the exception once it has it (args, notes); the span keeps what
    the call raised, even though the span is completed later."""
    import openai

    server.error("/v1/chat/completions", 400, {"message": "bad request", "type": "invalid_request_error"})
    with deferred_queue._busy:  # the completion cannot run before the application changes the error
        try:
            server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except openai.BadRequestError as error:
            original = str(error)
            error.args = ("changed by the application",)
            if hasattr(error, "add_note"):  # Python 3.11+
                error.add_note("a note added later")
    [span] = rec.spans()
    assert span.status.description == original[:256]
    [event] = span.events
    assert event.attributes["exception.message"] == original
    assert "a note added later" not in event.attributes["exception.stacktrace"]


def test_the_plugin_s_lists_are_copied_when_the_call_ends(rec):
    """Completed later, a call still records the finish reasons and attributes it was given."""
    from genops_autoinstrument.engine.call import CallRequest
    from genops_autoinstrument.engine.runtime import begin_call
    from genops_autoinstrument.pricing.usage import Usage

    reasons, extra = ["stop"], {"openai.response.service_tier": "default"}
    with deferred_queue._busy:
        call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini"))
        with call:
            pass
        call.finish(response_model="gpt-4o-mini", finish_reasons=reasons, usage=Usage(input_tokens=3, output_tokens=4), attributes=extra)
        reasons.append("length")
        extra["openai.response.service_tier"] = "changed"
    [span] = rec.spans()
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.attributes["openai.response.service_tier"] == "default"


def test_a_tracer_provider_flush_completes_queued_spans(rec, server, h):
    """``force_flush`` (a Lambda handler's last step) exports the calls made so far."""
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    with deferred_queue._busy:  # held by this thread: the worker cannot complete them first
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert rec.span_exporter.get_finished_spans() == ()
        assert rec.tracer_provider.force_flush()
        assert len(rec.span_exporter.get_finished_spans()) == 3


def test_a_provider_without_the_flusher_gets_its_spans_ended_during_the_call(instrumentor, server, h):
    """A tracer provider GenOps did not set up (the application's own): ending spans late into it
    could lose them at its shutdown, so they end on the application's thread, as the call returns."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine

    server.json("/v1/chat/completions", h.chat_completion())
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_engine(Engine(config.Settings(), tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()])))
    try:
        with deferred_queue._busy:
            server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            [span] = exporter.get_finished_spans()
    finally:
        set_engine(None)
    assert span.attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED


def test_calls_from_many_threads_are_all_in_the_next_collection(rec, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()

    def work() -> None:
        for _ in range(25):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    [(_, duration)] = points(rec, semconv.METRIC_OPERATION_DURATION)
    assert duration.count == 100
    assert len(rec.spans()) == 100


def test_a_sampled_out_call_still_records_its_metrics(instrumentor, settings, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    with capture(settings, sampler=ALWAYS_OFF) as recorded:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert recorded.spans() == []
        tokens = {dims[semconv.GEN_AI_TOKEN_TYPE]: point.sum for dims, point in points(recorded, semconv.METRIC_TOKEN_USAGE)}
    assert tokens == {"input": 1234, "output": 56}


def test_metrics_keep_the_application_context_for_exemplars(rec, server, h):
    """Recorded on another thread, a measurement still carries the context of the call's end: the
    SDK's default trace-based exemplar filter samples it with the application's span."""
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    app_tracer = TracerProvider().get_tracer("app")
    with app_tracer.start_as_current_span("handle request") as parent:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [(_, duration)] = points(rec, semconv.METRIC_OPERATION_DURATION)
    assert duration.exemplars, "no exemplar: the measurement lost the application's context"
    assert {exemplar.trace_id for exemplar in duration.exemplars} == {parent.get_span_context().trace_id}
    assert {exemplar.span_id for exemplar in duration.exemplars} == {parent.get_span_context().span_id}
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_an_empty_queue_and_records_its_own_calls(instrumentor, settings, server, h):
    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    parent_records: list[int] = []
    with capture(settings) as recorded:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # the worker is running
        with deferred_queue._busy:  # hold the worker: these stay queued across the fork
            for number in range(3):
                deferred_queue.submit(parent_records.append, number)
            pid = os.fork()
            if pid == 0:  # the child: its own queue, its own worker, its own engine's metrics
                status = 1
                try:
                    inherited = len(deferred_queue._items)
                    with capture(settings) as child:
                        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                        [(_, duration)] = points(child, semconv.METRIC_OPERATION_DURATION)
                    status = 0 if (inherited, duration.count, parent_records) == (0, 2, []) else 3
                finally:
                    os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(wait_status) == 0
        [(_, duration)] = points(recorded, semconv.METRIC_OPERATION_DURATION)
        assert duration.count == 1
    assert parent_records == [0, 1, 2]


def test_spans_and_metrics_of_the_last_calls_are_exported_at_exit(tmp_path):
    """The production path: providers configured from OTEL_* on the first call, console exporters,
    no periodic export before exit; the last calls' spans and metrics still reach the exporters."""
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import httpx, openai
            from genops_instrumentation_openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument()
            body = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            }
            transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
            client = openai.OpenAI(api_key="sk-x", max_retries=0, http_client=httpx.Client(transport=transport))
            for _ in range(5):
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOPS_", "OTEL_"))}
    env.update(
        OTEL_METRICS_EXPORTER="console",
        OTEL_TRACES_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="600000",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRIC_EXPORT_INTERVAL="600000",
        GENOPS_TEAM="search",
    )
    result = subprocess.run([sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tokens: dict[str, tuple[int, float]] = {}
    span_costs: list[str] = []
    decoder = json.JSONDecoder()
    text = result.stdout
    index = text.find("{")
    while index != -1:
        document, end = decoder.raw_decode(text, index)
        index = text.find("{", end)
        if "resource_metrics" not in document:  # a span
            assert document["name"] == "chat gpt-4o-mini" and document["end_time"]
            span_costs.append(document["attributes"][semconv.GENOPS_COST_STATUS])
            continue
        for resource_metrics in document["resource_metrics"]:
            for scope_metrics in resource_metrics["scope_metrics"]:
                for metric in scope_metrics["metrics"]:
                    assert metric["name"] != "genops.internal.metric_flush"  # observes nothing, exports nothing
                    if metric["name"] == semconv.METRIC_TOKEN_USAGE:
                        for point in metric["data"]["data_points"]:
                            assert point["attributes"][semconv.GENOPS_TEAM] == "search"
                            tokens[point["attributes"][semconv.GEN_AI_TOKEN_TYPE]] = (point["count"], point["sum"])
    assert tokens == {"input": (5, 100), "output": (5, 35)}
    assert span_costs == [semconv.COST_STATUS_PRICED] * 5


def test_engine_without_deferred_metrics_records_on_the_calling_thread(instrumentor, server, h):
    """``Engine(defer=False)``: the SDK's instruments are called during ``finish``."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine

    server.json("/v1/chat/completions", h.chat_completion())
    client = server.client()
    reader = InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    engine = Engine(config.Settings(), tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]), defer=False)
    set_engine(engine)
    try:
        with deferred_queue._busy:  # the metric thread cannot run: a deferred record would wait
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            names = {metric.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for metric in sm.metrics}
    finally:
        set_engine(None)
    assert {semconv.METRIC_TOKEN_USAGE, semconv.METRIC_OPERATION_DURATION, semconv.METRIC_COST} <= names
