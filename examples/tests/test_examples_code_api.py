"""The code-API examples run as a user runs them, against the local provider, their spans read back.

The web app runs under ``genops-run`` (uvicorn, real HTTP requests): each request is attributed to
the customer the app authenticated and capped by its unit of work; the notebook script runs with
its one-line ``instrument()`` and under ``genops-run``, with the same telemetry. Spans come from
the console exporter on the app's stdout; a counting copy of the local provider shows that a
refused call was never sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("genops_instrumentation_openai")

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PRICES = REPO / "examples" / "demo_prices.toml"
CAP = 0.0001  # the web app's default ANSWER_MAX_COST_USD

pytestmark = pytest.mark.skipif(not (VENV_BIN / "genops-run").exists(), reason="genops-run is not installed next to this interpreter")


class Counted:
    """The local provider with every OpenAI route counting the requests it answers."""

    def __init__(self, server_module: Any) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self.routes = [
            server_module.Route(route.method, route.pattern, self._counting(route.handler), route.provider)
            for route in server_module.load_routes(names=["openai"])
        ]

    def _counting(self, handler: Any) -> Any:
        def handle(body: Any, headers: Any, **params: Any) -> Any:
            with self._lock:
                self.paths.append(headers[":path"])
            return handler(body, headers, **params)

        return handle

    def sent(self) -> int:
        with self._lock:
            return len(self.paths)


@pytest.fixture()
def provider(server_module: Any) -> Iterator[tuple[Any, Counted]]:
    counted = Counted(server_module)
    with server_module.running(routes=counted.routes) as server:
        yield server, counted


def _env(provider: tuple[Any, Counted], tmp_path: Path, **extra: str) -> dict[str, str]:
    server, _ = provider
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=server.url + "/v1",
        OPENAI_API_KEY="sk-test",
        PYTHONUNBUFFERED="1",
        GENOPS_PRICING_FILE=str(PRICES),
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


def spans_of(text: str) -> list[dict[str, Any]]:
    """The console exporter's spans: JSON objects one after another, other lines in between."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := text.find("{\n", index)) != -1:
        span, index = decoder.raw_decode(text, start)
        spans.append(span)
    return spans


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [span for span in spans if span["parent_id"] == parent["context"]["span_id"]]


# --- the web app ------------------------------------------------------------------------------
class WebApp:
    """``genops-run python examples/code_api_web.py`` on a free port; stdout/stderr in files."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.out, self.err, port_file = folder / "web.out", folder / "web.err", folder / "web.port"
        command = [str(VENV_BIN / "genops-run"), sys.executable, str(REPO / "examples" / "code_api_web.py"), "--port", "0", "--port-file", str(port_file)]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, "the web app never wrote its port file"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def ask(self, key: str, question: str, steps: int, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"question": question, "steps": steps}).encode()
        sent = {"authorization": f"Bearer {key}", "content-type": "application/json", **(headers or {})}
        request = urllib.request.Request(self.url + "/answer", data=body, headers=sent, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> tuple[str, str]:
        """SIGTERM, as a process manager stops it: uvicorn shuts down, GenOps flushes its spans."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        assert self.process.returncode in (0, -signal.SIGTERM), self.err.read_text()
        return self.out.read_text(), self.err.read_text()


@pytest.fixture()
def web_app(provider: tuple[Any, Counted], tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    apps: list[WebApp] = []

    def start(**extra: str) -> WebApp:
        apps.append(WebApp(_env(provider, tmp_path, OTEL_SERVICE_NAME="code-api-web", **extra), tmp_path))
        return apps[-1]

    yield start
    for app in apps:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait(10)


def test_web_app_attributes_each_request_to_its_customer_and_caps_it(web_app: Any, provider: tuple[Any, Counted]) -> None:
    _, counted = provider
    app = web_app(GENOPS_BAGGAGE_KEYS="customer_id")  # baggage trusted for the customer: the code still wins
    status, small = app.ask("key-acme", "What is a token budget?", steps=2)
    assert (status, small["customer"], small["steps"]) == (200, "acme", 2)
    assert small["answer"] == "Hello from the local provider. You said: Refine your answer (step 2)."
    # A client cannot buy itself another customer's attribution: the app's own auth wins over baggage.
    status, other = app.ask("key-globex", "Who pays for this?", steps=1, headers={"baggage": "genops.customer_id=acme"})
    assert (status, other["customer"]) == (200, "globex")
    assert counted.sent() == 3
    # A runaway request: refused by its unit's cap with the app's own 402, partway through the loop.
    status, refused = app.ask("key-acme", "What is a token budget?", steps=30)
    assert status == 402, refused
    assert (refused["customer"], refused["error"], refused["policy"]) == ("acme", "BUDGET_EXCEEDED", "unit:answer")
    assert refused["cap_usd"] == pytest.approx(CAP)
    assert 0 < refused["spent_usd"] <= CAP
    assert "would exceed its cost cap of $0.000100" in refused["message"]
    runaway_sent = counted.sent() - 3
    assert 1 <= runaway_sent < 30  # the call that would pass the cap was never sent, nor any after it
    assert app.ask("key-nobody", "x", steps=1)[0] == 401
    assert counted.sent() == 3 + runaway_sent

    out, err = app.stop()
    assert "Traceback" not in err
    spans = spans_of(out)
    units = [span for span in spans if span["attributes"].get("genops.unit.name") == "answer" and span["kind"] == "SpanKind.INTERNAL"]
    assert [(unit["attributes"]["genops.customer_id"], unit["attributes"]["genops.unit.calls"]) for unit in units] == [
        ("acme", 2),
        ("globex", 1),
        ("acme", runaway_sent),  # priced calls that ran; the refused one counts as blocked
    ]
    for unit in units:
        calls = children(spans, unit)
        assert all(call["kind"] == "SpanKind.CLIENT" and call["attributes"]["genops.customer_id"] == unit["attributes"]["genops.customer_id"] for call in calls)
        priced = [call["attributes"]["genops.cost.total"] for call in calls if call["attributes"].get("genops.cost.status") == "priced"]
        assert unit["attributes"]["genops.cost.total"] == pytest.approx(sum(priced), abs=1e-12)
        assert unit["attributes"]["genops.unit.max_cost"] == pytest.approx(CAP)
        assert unit["attributes"]["genops.feature"] == "answer"
    runaway = units[2]
    assert runaway["attributes"]["genops.unit.blocked_calls"] == 1
    assert runaway["attributes"]["genops.cost.total"] == pytest.approx(refused["spent_usd"], abs=1e-12)
    assert runaway["status"]["status_code"] == "ERROR"
    blocked = [call for call in children(spans, runaway) if call["attributes"].get("genops.policy.result") == "BLOCKED"]
    assert len(blocked) == 1
    assert blocked[0]["attributes"]["genops.policy.name"] == "unit:answer"
    assert "genops.cost.total" not in blocked[0]["attributes"]


def test_web_app_with_genops_disabled_answers_uncapped_and_unrecorded(web_app: Any, provider: tuple[Any, Counted]) -> None:
    _, counted = provider
    app = web_app(GENOPS_ENABLED="false")
    status, body = app.ask("key-acme", "What is a token budget?", steps=30)
    assert (status, body["customer"], body["steps"]) == (200, "acme", 30)
    assert counted.sent() == 30
    out, err = app.stop()
    assert "Traceback" not in err
    assert spans_of(out) == []


# --- the notebook script ----------------------------------------------------------------------
def _notebook(provider: tuple[Any, Counted], tmp_path: Path, launcher: list[str], **extra: str) -> tuple[list[str], list[dict[str, Any]]]:
    env = _env(provider, tmp_path, GENOPS_TEAM="research", **extra)
    command = [*launcher, sys.executable, str(REPO / "examples" / "code_api_notebook.py")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith((" ", "{", "}"))]
    return lines, spans_of(result.stdout)


def _shape(spans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must be the same whichever way GenOps was started: names, parents, attribution, cost, events."""
    ids = {span["context"]["span_id"]: span["name"] for span in spans}
    keys = ("genops.team", "genops.feature", "genops.unit.name", "genops.cost.total", "genops.unit.calls", "gen_ai.usage.input_tokens")
    return sorted(
        (span["name"], ids.get(span["parent_id"]), tuple(span["attributes"].get(key) for key in keys), tuple(event["name"] for event in span["events"]))
        for span in spans
    )


@pytest.mark.parametrize("launcher", [[], ["genops-run"]], ids=["one-line-start", "genops-run"])
def test_notebook_one_line_start_unit_and_evaluation(provider: tuple[Any, Counted], tmp_path: Path, launcher: list[str]) -> None:
    lines, spans = _notebook(provider, tmp_path, [str(VENV_BIN / name) for name in launcher])
    assert lines[0] == f"instrument() started GenOps: {not launcher}"  # a no-op under genops-run
    assert lines[1] == "answer: Hello from the local provider. You said: Summarise why unit-level cost caps matter."
    assert lines[2] == "relevance 0.82 against 0.7: pass"
    assert lines[3].startswith("unit cost: $")
    printed = float(lines[3].removeprefix("unit cost: $"))

    (unit,) = [span for span in spans if span["name"] == "summarise"]
    (call,) = children(spans, unit)
    assert call["name"] == "chat gpt-4o-mini" and call["attributes"]["genops.cost.status"] == "priced"
    for span in (unit, call):
        assert (span["attributes"]["genops.team"], span["attributes"]["genops.feature"]) == ("research", "notebook")
    assert unit["attributes"]["genops.cost.total"] == pytest.approx(call["attributes"]["genops.cost.total"], abs=1e-12)
    assert printed == pytest.approx(unit["attributes"]["genops.cost.total"], abs=5e-9)  # printed to 8 decimals
    (evaluation,) = [event for event in unit["events"] if event["name"] == "genops.eval"]
    assert evaluation["attributes"] == {"genops.eval.metric": "relevance", "genops.eval.score": 0.82, "genops.eval.threshold": 0.7, "genops.eval.result": "pass"}


def test_notebook_telemetry_is_the_same_with_either_start(provider: tuple[Any, Counted], tmp_path: Path) -> None:
    _, one_line = _notebook(provider, tmp_path, [])
    _, launched = _notebook(provider, tmp_path, [str(VENV_BIN / "genops-run")])
    assert _shape(one_line) == _shape(launched)
    assert len(one_line) == 2


def test_notebook_with_genops_disabled_runs_unrecorded(provider: tuple[Any, Counted], tmp_path: Path) -> None:
    lines, spans = _notebook(provider, tmp_path, [], GENOPS_ENABLED="false")
    assert lines[0] == "instrument() started GenOps: False"
    assert lines[1].startswith("answer: Hello from the local provider.")
    assert lines[3] == "unit cost: not recorded"
    assert spans == []
