"""GENOPS_OTEL_INSTRUMENTORS: contrib server instrumentors carry W3C baggage to the LLM call.

`genops-run` activates installed OpenTelemetry contrib instrumentors lazily (here
`opentelemetry-instrumentation-fastapi`, when the app imports `fastapi`). The server span extracts
the incoming `traceparent` and `baggage` headers, so a `baggage: genops.customer_id=acme` header
attributes, prices and budgets the request's LLM call to customer `acme` with no application code
when `GENOPS_BAGGAGE_KEYS=customer_id` trusts that key (both tests set it).
`GENOPS_OTEL_INSTRUMENTORS=false` leaves the contrib instrumentors off.

FastAPI 0.16x also traces requests by itself (scope `fastapi`) as soon as any TracerProvider is
set; with the contrib instrumentor active it steps aside. GenOps sets the provider at the first LLM
call (or when it activates a contrib instrumentor), so with `GENOPS_OTEL_INSTRUMENTORS=false` and
FastAPI's own tracing left on, baggage is honoured from the second request on only: the "off" test
turns FastAPI's own tracing off to isolate the switch.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("opentelemetry.instrumentation.fastapi")

FASTAPI_APP = '''
import inspect, os
import openai
from fastapi import FastAPI

if os.environ.get("FLEET_NO_NATIVE_TRACING") and "telemetry" in inspect.signature(FastAPI).parameters:
    app = FastAPI(telemetry={"tracing": False})  # FastAPI's own OpenTelemetry tracing (0.16x) off
else:
    app = FastAPI()
client = openai.AsyncOpenAI(max_retries=0)


@app.get("/health")
async def health():
    return {"ok": True}


@app.get("/chat")
async def chat(tag: str):
    try:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "request %s pid %d" % (tag, os.getpid())}], max_tokens=int(os.environ["FLEET_MAX_TOKENS"])
        )
        return {"pid": os.getpid(), "result": "ok"}
    except openai.RateLimitError as error:
        return {"pid": os.getpid(), "result": type(error).__name__}
'''

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ASKS = [("a1", "acme"), ("b1", "beta"), ("a2", "acme"), ("n1", None)]


def _serve(fleet: Any, ran: int, server_spans: int, **extra: str) -> list[dict[str, Any]]:
    """Run the app under genops-run + uvicorn, send ASKS in order, wait for the telemetry, stop.

    uvicorn dies by the SIGTERM it re-raises, so nothing is flushed at exit: the test waits until
    the spans and the cost of the ``ran`` calls that ran have been exported while serving.
    """
    fleet.app("fastapi_app.py", FASTAPI_APP)
    port = fleet.free_port()
    env = fleet.env(
        GENOPS_BUDGETS="customer_id=0.015/day",  # one $0.01 call per customer per day
        OTEL_BSP_SCHEDULE_DELAY="100",  # uvicorn dies by SIGTERM at stop: export while serving
        OTEL_METRIC_EXPORT_INTERVAL="300",
        **extra,
    )
    argv = [fleet.genops_run(), "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "fastapi_app:app"]
    server = fleet.serve(argv, env, port)
    server.wait_ready()
    answers = []
    for tag, customer in ASKS:
        headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        if customer:
            headers["baggage"] = f"genops.customer_id={customer},other=1"
        answers.append({**server.get(f"/chat?tag={tag}", headers), "tag": tag})
    fleet.wait_for(lambda: len(fleet.genai_spans()) >= len(ASKS), what="the GenOps spans")
    fleet.wait_for(lambda: len([s for s in fleet.spans() if s["name"] == "GET /chat"]) >= server_spans, what="the server spans")
    fleet.wait_for(lambda: sum(p["value"] for p in fleet.metric_points("genops.cost")) >= ran * fleet.call_cost - 1e-9, what="genops.cost")
    server.stop()
    return answers


def _genops_span(fleet: Any, tag: str) -> dict[str, Any]:
    (span,) = [span for span in fleet.genai_spans() if fleet.prompt_of(span).startswith(f"request {tag} ")]
    return span


def test_incoming_baggage_attributes_and_budgets_the_llm_call_with_no_app_code(fleet: Any) -> None:
    answers = _serve(fleet, ran=3, server_spans=len(ASKS), GENOPS_BAGGAGE_KEYS="customer_id")
    # customer_id budgets are per customer: acme's second call is blocked, beta's first is not.
    assert [answer["result"] for answer in answers] == ["ok", "ok", "GenOpsRateLimitError", "ok"]
    for tag, customer in ASKS:
        span = _genops_span(fleet, tag)
        assert span["attributes"].get("genops.customer_id") == customer
        assert span["context"]["trace_id"] == "0x" + TRACE_ID  # joined the caller's trace
        assert span["parent_id"] is not None  # under the FastAPI server span
    assert _genops_span(fleet, "a2")["attributes"]["genops.policy.reason_code"] == "BUDGET_EXCEEDED"
    assert _genops_span(fleet, "n1")["attributes"]["genops.budget.name"] == "customer_id=0.015/day"
    server_spans = [span for span in fleet.spans() if span["kind"] == "SpanKind.SERVER" and span["name"] == "GET /chat"]
    assert [span["scope"] for span in server_spans] == ["opentelemetry.instrumentation.fastapi"] * len(ASKS)

    costs: dict[Any, float] = {}
    for point in fleet.metric_points("genops.cost"):
        customer = point["attributes"].get("genops.customer_id")
        costs[customer] = costs.get(customer, 0.0) + point["value"]
    assert costs == {"acme": pytest.approx(0.01), "beta": pytest.approx(0.01), None: pytest.approx(0.01)}


def test_genops_otel_instrumentors_false_leaves_the_server_uninstrumented(fleet: Any) -> None:
    # FastAPI 0.16x traces requests itself once any TracerProvider is set (GenOps sets one at the first
    # LLM call); the app turns that off here so that only the switch under test is in play.
    answers = _serve(fleet, ran=1, server_spans=0, GENOPS_OTEL_INSTRUMENTORS="false", FLEET_NO_NATIVE_TRACING="1", GENOPS_BAGGAGE_KEYS="customer_id")
    # Nothing reads the headers: no customer attribution, so the (none) bucket's budget blocks.
    assert [answer["result"] for answer in answers] == ["ok", "GenOpsRateLimitError", "GenOpsRateLimitError", "GenOpsRateLimitError"]
    for tag, _ in ASKS:
        span = _genops_span(fleet, tag)
        assert "genops.customer_id" not in span["attributes"]
        assert span["parent_id"] is None and span["context"]["trace_id"] != "0x" + TRACE_ID
    assert [span for span in fleet.spans() if not span["scope"].startswith("genops")] == []
