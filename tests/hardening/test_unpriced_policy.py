"""Unpriced calls under a budget (issue 14, item 5): ``GENOPS_UNPRICED_POLICY=warn|block|allow``.

A model no price table knows reserves and is charged $0, so a budget cannot hold it. With the real
OpenAI SDK (its requests answered by a local httpx transport that counts them), the real
OpenTelemetry SDK and a real SQLite ledger file: ``warn`` (default) sends the call, records
``WARNING`` / ``UNPRICED_USAGE`` and names the model once per process on stderr; ``block`` raises
the SDK's own 429 error and sends nothing; ``allow`` is the old silence. Without a budget nothing
changes; ``check()`` answers as the call would be told.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from typing import Any, Iterator

import httpx
import openai
import pytest

from genops_autoinstrument import PolicyViolation, attribution, check, config, semconv
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance import budgets as budgets_module
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_instrumentation_openai import OpenAIInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
UNPRICED_MODEL = "acme-private-llm-7b"  # self-hosted: genai-prices does not know it
OTHER_UNPRICED_MODEL = "acme-private-llm-70b"
PRICED_MODEL = "gpt-4o-mini"
BUDGET = "team=0.0001/day"
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
WARNING_TEXT = "GenOps cannot price"


class Endpoint:
    """A local /v1/chat/completions that answers each request and keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = USAGE

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        completion = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
        }
        if self.usage is not None:
            completion["usage"] = self.usage
        return httpx.Response(200, json=completion)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=API_KEY, max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(self.handler)))


def chat(client: openai.OpenAI, model: str = UNPRICED_MODEL) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient GENOPS_* variable, and no model already named by an earlier test."""
    for name in list(os.environ):
        if name.startswith("GENOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(budgets_module, "_warned", set())


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def ledger_path(tmp_path: Any) -> str:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    return str(folder / "ledger.db")


@pytest.fixture
def governed(ledger_path: str) -> Any:
    """``with governed(GENOPS_...=...) as recorded:`` the OpenAI plugin and an EnforcingGovernor on a SQLite file."""

    @contextlib.contextmanager
    def make(**env: str) -> Iterator[Any]:
        settings = config.load({"GENOPS_LEDGER_URL": f"sqlite:///{ledger_path}", "GENOPS_TEAM": "search", **env})
        governor = EnforcingGovernor(settings)
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument()
        try:
            with capture(settings, governor=governor) as recorded:
                yield recorded
        finally:
            instrumentor.uninstrument()
            governor.close()

    return make


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "genops" and WARNING_TEXT in record.getMessage()]


def evaluated(span: Any) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in span.events if event.name == semconv.EVENT_POLICY_EVALUATED]


def ledger_rows(path: str, table: str, columns: str = "*") -> list[tuple]:
    """A table of the SQLite ledger file, read-only (no file: the ledger was never touched)."""
    if not os.path.exists(path):
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT {columns} FROM {table}").fetchall()
    finally:
        conn.close()


def spent(path: str) -> int:
    """Nano-dollars the ledger holds as spent, over every bucket."""
    return sum(row[0] for row in ledger_rows(path, "buckets", "spent"))


# --- warn (the default) --------------------------------------------------------------------------
def test_warn_sends_the_call_records_a_warning_and_names_the_model_once(governed, endpoint, caplog, ledger_path):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=BUDGET) as recorded:
        answers = [chat(client) for _ in range(5)]
        spans = recorded.spans()
        decisions = recorded.metrics()[semconv.METRIC_POLICY_DECISIONS]
    assert all(answer.choices[0].message.content == "Hello!" for answer in answers)
    assert len(endpoint.requests) == 5
    assert len(spans) == 5
    for span in spans:
        attributes = span.attributes
        assert attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_WARNING
        assert attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_UNPRICED_USAGE == "UNPRICED_USAGE"
        assert attributes[semconv.GENOPS_POLICY_NAME] == BUDGET
        assert attributes[semconv.GENOPS_POLICY_MODE] == "warn"
        assert attributes[semconv.GENOPS_ACCOUNTING_ESTIMATE_STATUS] == "unpriced"
        assert attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
        assert [(e[semconv.GENOPS_POLICY_NAME], e[semconv.GENOPS_POLICY_RESULT], e[semconv.GENOPS_POLICY_REASON_CODE]) for e in evaluated(span)] == [
            (BUDGET, semconv.RESULT_WARNING, semconv.REASON_UNPRICED_USAGE)
        ]
    [(dims, point)] = decisions
    assert dims[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_WARNING
    assert dims[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_UNPRICED_USAGE
    assert point.value == 5
    [line] = warnings_of(caplog)
    assert UNPRICED_MODEL in line and BUDGET in line and "GENOPS_PRICING_FILE" in line and "GENOPS_UNPRICED_POLICY=block" in line
    assert "\n" not in line
    assert spent(ledger_path) == 0, "still charged $0: the warning says so, it does not guess a price"


def test_warn_names_every_budget_escaped_and_each_model_once(governed, endpoint, caplog):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=f"{BUDGET};global=100/month:audit") as recorded:
        for _ in range(3):
            chat(client)
            chat(client, OTHER_UNPRICED_MODEL)
        span = recorded.spans()[0]
    lines = warnings_of(caplog)
    assert len(lines) == 2
    assert UNPRICED_MODEL in lines[0] and OTHER_UNPRICED_MODEL in lines[1]
    assert all(BUDGET in line and "global=100/month" in line for line in lines)
    assert [(e[semconv.GENOPS_POLICY_NAME], e[semconv.GENOPS_POLICY_REASON_CODE]) for e in evaluated(span)] == [
        (BUDGET, semconv.REASON_UNPRICED_USAGE),
        ("global=100/month", semconv.REASON_UNPRICED_USAGE),
    ]
    assert len(endpoint.requests) == 6


def test_warn_is_one_stderr_line_per_model_in_a_real_process_through_genops_run(fake_site, tmp_path):
    """5 calls to one unpriced model and 2 to another under genops-run: two stderr lines in all."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    app = fake_site.app(
        f"""
        import json, httpx, openai
        sent = []
        def answer(request):
            body = json.loads(request.content)
            sent.append(body["model"])
            return httpx.Response(200, json={{"id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{{"index": 0, "message": {{"role": "assistant", "content": "hi"}}, "finish_reason": "stop"}}],
                "usage": {USAGE!r}}})
        client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(answer)))
        for model in ["{UNPRICED_MODEL}"] * 5 + ["{OTHER_UNPRICED_MODEL}"] * 2:
            client.chat.completions.create(model=model, messages=[{{"role": "user", "content": "Say hello"}}], max_tokens=20)
        print("sent", len(sent))
        """
    )
    env = fake_site.env(GENOPS_BUDGETS=BUDGET, GENOPS_TEAM="search", GENOPS_LEDGER_URL=f"sqlite:///{state / 'ledger.db'}")
    result = fake_site.run("python", app, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sent", "7"]
    lines = [line for line in result.stderr.splitlines() if WARNING_TEXT in line]
    assert len(lines) == 2, result.stderr
    assert UNPRICED_MODEL in lines[0] and OTHER_UNPRICED_MODEL in lines[1]
    assert all(BUDGET in line and "GENOPS_PRICING_FILE" in line for line in lines)


def test_a_priced_model_and_a_call_without_a_budget_are_not_warned_about(governed, endpoint, caplog):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=BUDGET) as recorded:
        chat(client, PRICED_MODEL)
        [priced] = recorded.spans()
    with governed(GENOPS_BLOCKED_MODELS="gpt-3.5-*", GENOPS_RATE_LIMITS="team=100/min") as recorded:  # governed, no budget
        chat(client)
        [unbudgeted] = recorded.spans()
    with capture(config.load({})) as recorded, _instrumented():  # nothing configured at all
        chat(client)
        [plain] = recorded.spans()
    assert priced.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert unbudgeted.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert semconv.GENOPS_POLICY_REASON_CODE not in unbudgeted.attributes
    assert semconv.GENOPS_POLICY_RESULT not in plain.attributes
    assert [record for record in caplog.records if record.name == "genops"] == []
    assert len(endpoint.requests) == 3


@contextlib.contextmanager
def _instrumented() -> Iterator[None]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize("policy", ["warn", "block", "allow"])
def test_an_exhausted_budget_refuses_an_unpriced_call_as_exceeded_under_warn_and_allow(governed, endpoint, policy):
    client = endpoint.client()
    with governed(GENOPS_BUDGETS=BUDGET, GENOPS_UNPRICED_POLICY=policy) as recorded:
        recorded.engine.governor.charge({semconv.GENOPS_TEAM: "search"}, 0.0001)  # used up
        with pytest.raises(openai.RateLimitError) as caught:
            chat(client)
    expected = semconv.REASON_UNPRICED_USAGE if policy == "block" else semconv.REASON_BUDGET_EXCEEDED
    assert caught.value.reason_code == expected
    assert endpoint.requests == []


# --- block ---------------------------------------------------------------------------------------
def test_block_raises_the_sdks_rate_limit_error_and_sends_nothing(governed, endpoint, caplog, ledger_path):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=BUDGET, GENOPS_UNPRICED_POLICY="block") as recorded:
        with pytest.raises(openai.RateLimitError) as caught:
            chat(client)
        allowed = chat(client, PRICED_MODEL)
        blocked_span, priced_span = recorded.spans()
    error = caught.value
    assert isinstance(error, PolicyViolation)
    assert error.status_code == 429 and error.reason_code == semconv.REASON_UNPRICED_USAGE
    assert error.decision.blocks and error.decision.is_budget and error.policy_name == BUDGET
    assert UNPRICED_MODEL in str(error) and "GENOPS_PRICING_FILE" in str(error)
    assert [body["model"] for body in endpoint.requests] == [PRICED_MODEL], "the unpriced call never left the process"
    assert allowed.choices[0].message.content == "Hello!"
    assert blocked_span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert blocked_span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_UNPRICED_USAGE
    assert blocked_span.attributes[semconv.ERROR_TYPE] == semconv.REASON_UNPRICED_USAGE
    assert semconv.GENOPS_ACCOUNTING_RESERVED not in blocked_span.attributes, "nothing was reserved"
    assert priced_span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert ledger_rows(ledger_path, "reservations") == []
    assert warnings_of(caplog) == [], "the error says it: no stderr line"


def test_block_under_a_budget_that_only_warns_lets_the_call_run_with_a_warning(governed, endpoint):
    client = endpoint.client()
    with governed(GENOPS_BUDGETS="team=0.0001/day:warn", GENOPS_UNPRICED_POLICY="block") as recorded:
        chat(client)
        [span] = recorded.spans()
    assert len(endpoint.requests) == 1
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_WARNING
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_UNPRICED_USAGE


# --- allow ---------------------------------------------------------------------------------------
def test_allow_is_the_old_behaviour(governed, endpoint, caplog, ledger_path):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=BUDGET, GENOPS_UNPRICED_POLICY="allow") as recorded:
        for _ in range(5):
            chat(client)
        spans = recorded.spans()
    assert len(endpoint.requests) == 5
    for span in spans:
        assert span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
        assert semconv.GENOPS_POLICY_REASON_CODE not in span.attributes
        assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0
        assert span.attributes[semconv.GENOPS_ACCOUNTING_ESTIMATE_STATUS] == "unpriced"
        assert span.attributes[semconv.GENOPS_ACCOUNTING_CHARGED] == 0.0
        assert span.attributes[semconv.GENOPS_ACCOUNTING_CHARGED_BASIS] == "estimate"
    assert warnings_of(caplog) == []
    assert spent(ledger_path) == 0


# --- a priced model whose response had no usage: charged its estimate, no warning -----------------
@pytest.mark.parametrize("policy", ["warn", "block", "allow"])
def test_a_priced_call_whose_response_has_no_usage_is_charged_its_estimate(governed, endpoint, caplog, ledger_path, policy):
    client = endpoint.client()
    endpoint.usage = None
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS="team=1/day", GENOPS_UNPRICED_POLICY=policy) as recorded:
        chat(client, PRICED_MODEL)
        [span] = recorded.spans()
    attributes = span.attributes
    assert attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED
    [reservation] = [dict(event.attributes) for event in span.events if event.name == semconv.EVENT_BUDGET_RESERVATION]
    assert reservation[semconv.GENOPS_ACCOUNTING_ESTIMATE_STATUS] == "priced"
    assert attributes[semconv.GENOPS_ACCOUNTING_CHARGED_BASIS] == "estimate"
    assert attributes[semconv.GENOPS_ACCOUNTING_CHARGED] == attributes[semconv.GENOPS_ACCOUNTING_RESERVED] > 0
    assert spent(ledger_path) == round(attributes[semconv.GENOPS_ACCOUNTING_RESERVED] * 1e9)
    assert warnings_of(caplog) == []


# --- check() answers as the call is told ----------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "result"),
    [("warn", semconv.RESULT_WARNING), ("block", semconv.RESULT_BLOCKED), ("allow", semconv.RESULT_ALLOWED)],
)
def test_check_gives_the_decision_the_call_gets(governed, endpoint, caplog, ledger_path, policy, result):
    client = endpoint.client()
    caplog.set_level(logging.WARNING, logger="genops")
    with governed(GENOPS_BUDGETS=BUDGET, GENOPS_UNPRICED_POLICY=policy) as recorded, attribution(team="search"):
        answer = check(UNPRICED_MODEL, provider="openai")
        assert ledger_rows(ledger_path, "reservations") == []
        assert warnings_of(caplog) == [], "a check logs nothing"
        with contextlib.suppress(openai.RateLimitError):
            chat(client)
        [span] = recorded.spans()
        modelless = check()
    assert answer.result == span.attributes[semconv.GENOPS_POLICY_RESULT] == result
    assert answer.blocks == (policy == "block")
    if policy != "allow":
        assert answer.reason_code == span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == semconv.REASON_UNPRICED_USAGE
        assert answer.policy_name == BUDGET
    assert modelless.result == semconv.RESULT_ALLOWED, "without a model, check asks only whether anything is left"
