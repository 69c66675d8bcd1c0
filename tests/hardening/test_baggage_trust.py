"""Baggage is untrusted input (issue 14, item 1), through a real FastAPI app under `genops-run` +
uvicorn with OpenTelemetry's FastAPI instrumentor extracting the headers, a real HTTP client, the
local OpenAI-compatible endpoint and a real SQLite ledger.

- Without `GENOPS_BAGGAGE_KEYS` a `baggage: genops.customer_id=victim` header changes nothing: the
  call is attributed and budgeted to the environment's customer, and the victim's budget is whole.
- With `GENOPS_BAGGAGE_KEYS=customer_id` the header attributes the customer, never the team.
- Of duplicate entries (one header or two) the first wins, the one an edge gateway prepends.
- The application's own `baggage.get_all()` stays what OpenTelemetry gives it, either way.

Every call costs exactly $0.01 and `customer_id=0.015/day` allows one call per customer.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from genops_autoinstrument import config, semconv
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine import baggage as first_entries
from genops_autoinstrument.engine.attribution import Attribution
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage

CUSTOMER = semconv.GENOPS_CUSTOMER_ID
TEAM = semconv.GENOPS_TEAM


def _fleet_support() -> Any:
    """The fleet tests' fixtures (tests/fleet/conftest.py): exporter, local endpoint, servers."""
    name = "_genops_fleet_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "fleet" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_support = _fleet_support()
provider = _support.provider  # fixtures, used by this module's tests
fleet = _support.fleet

APP = '''
import os
import openai
from fastapi import FastAPI
from opentelemetry import baggage

app = FastAPI()
client = openai.AsyncOpenAI(max_retries=0)


@app.get("/health")
async def health():
    return {"ok": True}


@app.get("/chat")
async def chat(tag: str):
    seen = dict(baggage.get_all())  # what the application sees of the request's baggage
    try:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "request %s pid %d" % (tag, os.getpid())}], max_tokens=int(os.environ["FLEET_MAX_TOKENS"])
        )
        result = "ok"
    except openai.RateLimitError as error:
        result = type(error).__name__
    return {"result": result, "baggage": seen}
'''

VICTIM = '''
import os
import openai

try:
    openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "request victim pid %d" % os.getpid()}], max_tokens=int(os.environ["FLEET_MAX_TOKENS"])
    )
    print("victim: ok")
except openai.RateLimitError as error:
    print("victim: " + type(error).__name__)
'''

BLOCKED = "GenOpsRateLimitError"


def _needs_server() -> None:
    for module in ("openai", "fastapi", "uvicorn", "opentelemetry.instrumentation.fastapi"):
        pytest.importorskip(module)


def _env(fleet: Any, **extra: str) -> dict[str, str]:
    settings = {
        "GENOPS_BUDGETS": "customer_id=0.015/day",
        "GENOPS_CUSTOMER_ID": "house",
        "GENOPS_TEAM": "platform",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # uvicorn dies by SIGTERM at stop: export while serving
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }
    return fleet.env(**{**settings, **extra})


def _ask(port: int, tag: str, baggage_headers: list[str]) -> dict[str, Any]:
    """GET /chat with each ``baggage`` header sent as a header line of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest("GET", f"/chat?tag={tag}")
        for value in baggage_headers:
            connection.putheader("baggage", value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 200
        return {**json.loads(response.read()), "tag": tag}
    finally:
        connection.close()


def _serve(fleet: Any, asks: list[tuple[str, list[str]]], ran: int, **extra: str) -> dict[str, dict[str, Any]]:
    """Serve the app, send ``asks`` in order (the first one first of all), wait for the telemetry of
    the ``ran`` calls that ran, stop; the answers by tag."""
    _needs_server()
    fleet.app("baggage_app.py", APP)
    port = fleet.free_port()
    argv = [fleet.genops_run(), "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "baggage_app:app"]
    server = fleet.serve(argv, _env(fleet, **extra), port)
    server.wait_ready()
    answers = {tag: _ask(port, tag, headers) for tag, headers in asks}
    fleet.wait_for(lambda: len(fleet.genai_spans()) >= len(asks), what="the GenOps spans")
    fleet.wait_for(lambda: sum(p["value"] for p in fleet.metric_points("genops.cost")) >= ran * fleet.call_cost - 1e-9, what="genops.cost")
    server.stop()
    return answers


def _span(fleet: Any, tag: str) -> dict[str, Any]:
    (span,) = [span for span in fleet.genai_spans() if fleet.prompt_of(span).startswith(f"request {tag} ")]
    return span["attributes"]


def _costs(fleet: Any) -> dict[Any, float]:
    costs: dict[Any, float] = {}
    for point in fleet.metric_points("genops.cost"):
        customer = point["attributes"].get(CUSTOMER)
        costs[customer] = costs.get(customer, 0.0) + point["value"]
    return costs


def _opentelemetry_view(headers: list[str]) -> dict[str, Any]:
    """What OpenTelemetry's own propagator gives an application for these header lines."""
    return dict(baggage.get_all(W3CBaggagePropagator().extract({"baggage": headers}, context.Context())))


# --- through a real server ----------------------------------------------------------------------


def test_without_trusted_keys_baggage_moves_no_spend_onto_another_customer(fleet: Any) -> None:
    attack = ["genops.customer_id=victim,genops.team=x"]
    answers = _serve(fleet, [("v1", attack), ("v2", attack)], ran=1)
    # The environment's customer pays, and its own budget (one call) blocks the second request.
    assert [answers[tag]["result"] for tag in ("v1", "v2")] == ["ok", BLOCKED]
    for tag in ("v1", "v2"):
        attributes = _span(fleet, tag)
        assert (attributes[CUSTOMER], attributes[TEAM]) == ("house", "platform")
        assert answers[tag]["baggage"] == {CUSTOMER: "victim", TEAM: "x"} == _opentelemetry_view(attack)
    assert _span(fleet, "v2")["genops.policy.reason_code"] == "BUDGET_EXCEEDED"
    assert _costs(fleet) == {"house": pytest.approx(0.01)}
    with sqlite3.connect(fleet.ledger) as ledger:
        keys = [key for (key,) in ledger.execute("SELECT key FROM buckets")]
    assert keys and not [key for key in keys if "victim" in key]
    # The victim's budget is whole: its own process still gets its one call.
    fleet.app("victim.py", VICTIM)
    victim = fleet.run([fleet.genops_run(), "python", "victim.py"], _env(fleet, GENOPS_CUSTOMER_ID="victim"))
    assert victim.stdout.strip() == "victim: ok", victim.stderr


def test_a_trusted_key_attributes_the_call_and_an_untrusted_one_in_the_same_header_does_not(fleet: Any) -> None:
    header = ["genops.customer_id=acme%20corp;ttl=60,genops.team=x"]
    asks = [("a1", header), ("a2", ["genops.customer_id=acme%20corp"]), ("n1", [])]
    answers = _serve(fleet, asks, ran=2, GENOPS_BAGGAGE_KEYS="customer_id")
    # acme corp's budget is its own: its second call is blocked, the house's call is not.
    assert [answers[tag]["result"] for tag in ("a1", "a2", "n1")] == ["ok", BLOCKED, "ok"]
    assert (_span(fleet, "a1")[CUSTOMER], _span(fleet, "a1")[TEAM]) == ("acme corp", "platform")  # percent-decoded, no property
    assert (_span(fleet, "a2")[CUSTOMER], _span(fleet, "n1")[CUSTOMER]) == ("acme corp", "house")
    assert answers["a1"]["baggage"] == {CUSTOMER: "acme corp;ttl=60", TEAM: "x"} == _opentelemetry_view(header)
    assert _costs(fleet) == {"acme corp": pytest.approx(0.01), "house": pytest.approx(0.01)}


def test_of_duplicate_entries_the_first_wins_in_one_header_and_across_headers(fleet: Any) -> None:
    one_header = ["genops.customer_id=gateway,genops.customer_id=attacker"]
    two_headers = ["genops.customer_id=gateway", "genops.customer_id=attacker"]
    asks = [("d1", one_header), ("d2", two_headers), ("x1", ["genops.customer_id=attacker"])]
    answers = _serve(fleet, asks, ran=2, GENOPS_BAGGAGE_KEYS="customer_id")
    # d1 is the server's very first request: the propagator was already watched when it arrived.
    assert [_span(fleet, tag)[CUSTOMER] for tag in ("d1", "d2", "x1")] == ["gateway", "gateway", "attacker"]
    # The gateway's customer pays (and its budget blocks d2); the attacker's budget was never touched.
    assert [answers[tag]["result"] for tag in ("d1", "d2", "x1")] == ["ok", BLOCKED, "ok"]
    assert _costs(fleet) == {"gateway": pytest.approx(0.01), "attacker": pytest.approx(0.01)}
    # The application sees OpenTelemetry's own extraction: the last entry of the (first) header.
    assert answers["d1"]["baggage"] == {CUSTOMER: "attacker"} == _opentelemetry_view(one_header)
    assert answers["d2"]["baggage"] == {CUSTOMER: "gateway"} == _opentelemetry_view(two_headers)


# --- the parts, in process ----------------------------------------------------------------------


def test_first_entries_follow_the_w3c_format() -> None:
    parse = first_entries.first_entries
    assert parse(["genops.customer_id=a%2Cb%20c+d ; ttl=5 , genops.customer_id=z"]) == {CUSTOMER: "a,b c+d"}
    assert parse([" genops.team = t ", "genops.customer_id=c"]) == {TEAM: "t", CUSTOMER: "c"}
    assert parse(["genops.customer_id=caf%C3%A9,genops.team=%FF"]) == {CUSTOMER: "café", TEAM: "\ufffd"}
    # A key is a token, never decoded; a malformed or non-ASCII member is skipped, not a stopper.
    assert parse(["genops%2Ecustomer_id=x,genops.customer_id+=y,genops.customer_id=a b,genops.customer_id=é,genops.customer_id=ok"]) == {CUSTOMER: "ok"}
    assert parse(["genops.customer_id", "user.id=1"]) == {}
    assert parse(["genops.customer_id=,genops.customer_id=later"]) == {CUSTOMER: ""}  # an empty first entry wins too
    # Bounded like the propagator: an oversized header is dropped whole, members after 180 are not read.
    assert parse(["genops.customer_id=big," + "x=" + "1" * 8200, "genops.customer_id=next"]) == {CUSTOMER: "next"}
    assert parse([",".join(f"k{i}=v" for i in range(180)) + ",genops.customer_id=late"]) == {}
    assert parse([",".join(f"k{i}=v" for i in range(179)) + ",genops.customer_id=in"]) == {CUSTOMER: "in"}


def _attribution(**env: str) -> Attribution:
    return Attribution(config.load({"GENOPS_CUSTOMER_ID": "house", "GENOPS_TEAM": "platform", **env}))


def _current(attribution: Attribution, ctx: Any) -> dict[str, str]:
    token = context.attach(ctx)
    try:
        return dict(attribution.current())
    finally:
        context.detach(token)


def test_without_trusted_keys_baggage_is_not_even_read(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = []
    real = context.get_current
    monkeypatch.setattr(context, "get_current", lambda: lookups.append(1) or real())
    untrusted, trusted = _attribution(), _attribution(GENOPS_BAGGAGE_KEYS="customer_id")
    token = context.attach(baggage.set_baggage(CUSTOMER, "victim"))
    try:
        lookups.clear()
        assert untrusted.current() is untrusted.environment
        assert lookups == []  # not one context lookup
        assert trusted.current()[CUSTOMER] == "victim"
    finally:
        context.detach(token)
    lookups.clear()
    assert trusted.current() is trusted.environment  # no baggage at all: one lookup, nothing merged
    assert lookups == [1]


def test_keys_genops_would_not_read_as_trusted_never_attribute() -> None:
    # OpenTelemetry decodes keys (`unquote_plus`): `genops.customer_id+` and `genops%2Ecustomer_id`
    # become genops.customer_id in the application's baggage, past a gateway stripping the literal key.
    attribution = _attribution(GENOPS_BAGGAGE_KEYS="customer_id")
    propagator = W3CBaggagePropagator()
    for header in ("genops.customer_id+=victim", "genops%2Ecustomer_id=victim"):
        ctx = propagator.extract({"baggage": header}, context.Context())
        assert baggage.get_all(ctx) == {CUSTOMER: "victim"}
        assert _current(attribution, ctx)[CUSTOMER] == "house"
    ctx = propagator.extract({"baggage": "genops.customer_id=gateway,genops.customer_id+=victim"}, context.Context())
    assert _current(attribution, ctx)[CUSTOMER] == "gateway"


def test_baggage_the_application_sets_itself_is_trusted_code() -> None:
    attribution = _attribution(GENOPS_BAGGAGE_KEYS="customer_id,team")
    extracted = W3CBaggagePropagator().extract({"baggage": "genops.customer_id=gateway,genops.customer_id=attacker"}, context.Context())
    assert _current(attribution, extracted) == {CUSTOMER: "gateway", TEAM: "platform"}
    assert _current(attribution, baggage.set_baggage(CUSTOMER, "mine", extracted))[CUSTOMER] == "mine"
    assert _current(attribution, baggage.remove_baggage(CUSTOMER, extracted))[CUSTOMER] == "house"
    assert _current(attribution, baggage.set_baggage(TEAM, "search", extracted)) == {CUSTOMER: "gateway", TEAM: "search"}
    # A later extraction without the key keeps the first one; one with it replaces it.
    again = W3CBaggagePropagator().extract({"baggage": "genops.team=ads"}, extracted)
    assert _current(attribution, again) == {CUSTOMER: "gateway", TEAM: "ads"}
    again = W3CBaggagePropagator().extract({"baggage": "genops.customer_id=next,genops.customer_id=z"}, extracted)
    assert _current(attribution, again)[CUSTOMER] == "next"


def test_the_call_span_and_budget_scope_follow_the_trusted_keys_only() -> None:
    request = CallRequest("openai", "chat", "gpt-4o", server_address="api.openai.com", server_port=443, api_base_url="https://api.openai.com/v1/")
    ctx = baggage.set_baggage(TEAM, "x", baggage.set_baggage(CUSTOMER, "victim"))
    spans = []
    for keys in ("", "customer_id"):
        with capture(config.load({"GENOPS_CUSTOMER_ID": "house", "GENOPS_TEAM": "platform", "GENOPS_BAGGAGE_KEYS": keys})) as recorded:
            token = context.attach(ctx)
            try:
                call = begin_call(request)
                with call:
                    pass
                call.finish(usage=Usage(input_tokens=1, output_tokens=1))
            finally:
                context.detach(token)
            spans.extend(recorded.spans())
    assert [(span.attributes[CUSTOMER], span.attributes[TEAM]) for span in spans] == [("house", "platform"), ("victim", "platform")]
