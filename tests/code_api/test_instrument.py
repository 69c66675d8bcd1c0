"""``genops_autoinstrument.instrument()``: the one-line start gives what the launchers give.

One small program makes one chat completion against the local OpenAI-compatible endpoint inside
``track("job")`` and ``attribution(customer_id="acme")``. It runs as a real subprocess under
``genops-run``, under ``opentelemetry-instrument`` (GenOps' distro and configurator) and as plain
``python`` calling ``instrument()`` before or after ``import openai``; the console exporters'
spans and metrics must be the same. Then the contract of ``instrument()`` itself: True once,
False when something else already started GenOps, thread-safe, a raised ``ConfigError`` (the
interpreter survives it), ``GENOPS_ENABLED=false`` and the disabled-instrumentations variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("openai")

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVER_PY = REPO / "examples" / "local_provider" / "server.py"

PRICES = """
[[price]]
model = "gpt-4o-mini*"
api_base_url = "http://127.0.0.1:*"
input_per_mtok = 150.0
output_per_mtok = 600.0
"""

# PROG_INSTRUMENT: "" (never called), "before" or "after" `import openai` (and after the chat
# module was loaded through the client), "threads" (8 threads at once, before the import).
PROG = '''
import os, sys, threading
import genops_autoinstrument
from genops_autoinstrument.config import ConfigError

WHEN = os.environ.get("PROG_INSTRUMENT", "")
results = []


def start():
    try:
        results.append(genops_autoinstrument.instrument())
    except ConfigError as error:
        print("config error:", error.variable, "|", error)
        os.environ[error.variable] = os.environ["PROG_FIX"]  # the notebook's user fixes it...
        if not os.environ[error.variable]:
            del os.environ[error.variable]
        results.append(("fixed", genops_autoinstrument.instrument()))  # ...and runs the cell again


if WHEN == "before":
    start()
    start()
elif WHEN == "threads":
    barrier = threading.Barrier(8)
    def racer():
        barrier.wait()
        results.append(genops_autoinstrument.instrument())
    threads = [threading.Thread(target=racer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

import openai

client = openai.OpenAI(max_retries=0)
if WHEN == "after":
    client.chat.completions  # the SDK's chat module is loaded before instrument() is called
    print("chat module loaded first:", "openai.resources.chat.completions" in sys.modules)
    start()
    start()
print("instrument:", sorted(results, key=repr) if WHEN == "threads" else results)

with genops_autoinstrument.track("job"):
    with genops_autoinstrument.attribution(customer_id="acme"):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}], max_tokens=8
        )
print("reply:", reply.choices[0].message.content)
from genops_autoinstrument.api.instrumentor import is_genops_wrapped
print("patched:", is_genops_wrapped(openai.resources.chat.completions.Completions.create))
'''


def _load_server() -> Any:
    name = "_code_api_instrument_local_provider"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SERVER_PY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def provider() -> Iterator[Any]:
    with _load_server().running() as server:
        yield server


class Program:
    """The program, its prices and an isolated start-up cache in one test's folder."""

    def __init__(self, root: Path, provider: Any) -> None:
        self.root = root
        self.provider = provider
        self.path = root / "prog.py"
        self.path.write_text(textwrap.dedent(PROG))
        (root / "prices.toml").write_text(PRICES)

    def env(self, **extra: str) -> dict[str, str]:
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON", "OPENAI_"))}
        environ.update(
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_STATE_HOME=str(self.root / "state"),
            OPENAI_BASE_URL=self.provider.url + "/v1",
            OPENAI_API_KEY="sk-test",
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="console",
            OTEL_LOGS_EXPORTER="none",
            OTEL_BSP_SCHEDULE_DELAY="60000",  # everything is exported once, at exit
            OTEL_METRIC_EXPORT_INTERVAL="60000",
            GENOPS_PRICING_FILE=str(self.root / "prices.toml"),
        )
        environ.update(extra)
        return environ

    def run(self, launcher: str, when: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        python = str(VENV_BIN / "python")
        argv = {
            "genops-run": [str(VENV_BIN / "genops-run"), python],
            "opentelemetry-instrument": [str(VENV_BIN / "opentelemetry-instrument"), python],
            "python": [python],
        }[launcher] + [str(self.path)]
        if launcher == "opentelemetry-instrument":
            # The official OpenAI instrumentor is registered as `openai` too; GenOps' is `genops_openai`.
            extra.setdefault("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "openai")
        result = subprocess.run(argv, env=self.env(PROG_INSTRUMENT=when, **extra), cwd=self.root, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result


@pytest.fixture
def program(tmp_path: Path, provider: Any) -> Program:
    return Program(tmp_path, provider)


def _documents(stdout: str, first_key: str) -> list[dict[str, Any]]:
    """The console exporters' JSON documents (indented by 4) whose first key is ``first_key``."""
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while (start := stdout.find('{\n    "%s"' % first_key, index)) >= 0:
        document, index = decoder.raw_decode(stdout, start)
        documents.append(document)
    return documents


def _line(stdout: str, prefix: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith(prefix)]
    return line[len(prefix) :].strip()


def _metric_totals(stdout: str) -> dict[str, float]:
    """Final value of every GenOps and GenAI metric but durations, summed over its attribute sets
    (histograms: their sum)."""
    totals: dict[str, dict[str, float]] = {}
    for document in _documents(stdout, "resource_metrics"):
        for resource_metrics in document["resource_metrics"]:
            for scope in resource_metrics["scope_metrics"]:
                for metric in scope["metrics"]:
                    if metric["name"].startswith(("genops.", "gen_ai.")) and not metric["name"].endswith(".duration"):
                        for point in metric["data"]["data_points"]:
                            key = json.dumps(point["attributes"], sort_keys=True)
                            totals.setdefault(metric["name"], {})[key] = point.get("value", point.get("sum"))
    return {name: round(sum(points.values()), 12) for name, points in totals.items()}


UNIT_KEYS = ("genops.cost.total", "genops.unit.calls", "genops.unit.unpriced_calls", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
CALL_KEYS = ("genops.customer_id", "genops.cost.total", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "genops.cost.status", "genops.unit.name")


def telemetry(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """What the program recorded, without ids and times: the unit, its one call, the metrics."""
    spans = _documents(result.stdout, "name")
    (unit,) = [span for span in spans if span["name"] == "job"]
    (call,) = [span for span in spans if span["name"].startswith("chat ")]
    assert len(spans) == 2, [span["name"] for span in spans]
    assert call["parent_id"] == unit["context"]["span_id"]
    assert call["context"]["trace_id"] == unit["context"]["trace_id"]
    return {
        "unit": {key: unit["attributes"].get(key) for key in UNIT_KEYS},
        "call": {"name": call["name"], "kind": call["kind"], **{key: call["attributes"].get(key) for key in CALL_KEYS}},
        "metrics": _metric_totals(result.stdout),
    }


@pytest.fixture
def reference(program: Program) -> dict[str, Any]:
    """The telemetry of the program under genops-run, checked once in full."""
    result = program.run("genops-run")
    assert _line(result.stdout, "instrument:") == "[]"
    recorded = telemetry(result)
    call, unit = recorded["call"], recorded["unit"]
    assert call["name"] == "chat gpt-4o-mini" and call["kind"] == "SpanKind.CLIENT"
    assert call["genops.customer_id"] == "acme" and call["genops.cost.status"] == "priced"
    assert call["genops.cost.total"] > 0 and call["gen_ai.usage.input_tokens"] > 0 and call["gen_ai.usage.output_tokens"] == 8
    assert call["genops.unit.name"] == "job" and unit["genops.unit.calls"] == 1 and unit["genops.unit.unpriced_calls"] == 0
    assert unit["genops.cost.total"] == pytest.approx(call["genops.cost.total"])
    assert (unit["gen_ai.usage.input_tokens"], unit["gen_ai.usage.output_tokens"]) == (call["gen_ai.usage.input_tokens"], call["gen_ai.usage.output_tokens"])
    assert recorded["metrics"]["genops.unit.cost"] == pytest.approx(unit["genops.cost.total"])
    assert recorded["metrics"]["genops.cost"] == pytest.approx(call["genops.cost.total"])
    return recorded


@pytest.mark.parametrize(
    ("launcher", "when", "returned"),
    [
        ("opentelemetry-instrument", "", "[]"),
        ("python", "before", "[True, False]"),
        ("python", "after", "[True, False]"),
        ("genops-run", "before", "[False, False]"),
        ("opentelemetry-instrument", "before", "[False, False]"),
    ],
)
def test_the_same_telemetry_three_ways(program: Program, reference: dict[str, Any], launcher: str, when: str, returned: str) -> None:
    result = program.run(launcher, when)
    assert _line(result.stdout, "instrument:") == returned
    assert _line(result.stdout, "patched:") == "True"
    if when == "after":
        assert _line(result.stdout, "chat module loaded first:") == "True"
    assert telemetry(result) == reference
    assert "genops: warning" not in result.stderr and "Traceback" not in result.stderr


def test_concurrent_calls_start_once(program: Program, reference: dict[str, Any]) -> None:
    result = program.run("python", "threads")
    assert _line(result.stdout, "instrument:") == "[False, False, False, False, False, False, False, True]"
    assert telemetry(result) == reference


def test_without_instrument_nothing_is_patched(program: Program) -> None:
    result = program.run("python")
    assert _line(result.stdout, "patched:") == "False"
    assert [span["name"] for span in _documents(result.stdout, "name")] == ["job"]  # the unit only: no call recorded


def test_an_invalid_variable_is_raised_and_the_interpreter_survives(program: Program, reference: dict[str, Any]) -> None:
    result = program.run("python", "before", GENOPS_BUDGET_ALERT_THRESHOLD="2", PROG_FIX="0.8")
    message = _line(result.stdout, "config error:")
    assert message.startswith("GENOPS_BUDGET_ALERT_THRESHOLD | ") and "'2'" in message
    # Nothing was started by the failed call; the second attempt, with the value fixed, starts.
    assert _line(result.stdout, "instrument:") == "[('fixed', True), False]"
    assert telemetry(result) == reference


def test_a_misspelt_variable_is_raised_without_its_value(program: Program) -> None:
    result = program.run("python", "before", GENOPS_BUDGET="global=1/total", PROG_FIX="")
    message = _line(result.stdout, "config error:")
    assert message.startswith("GENOPS_BUDGET | ") and "GENOPS_BUDGETS" in message and "global=1" not in message
    assert _line(result.stdout, "instrument:") == "[('fixed', True), False]"


def test_an_unknown_variable_is_one_warning(program: Program, reference: dict[str, Any]) -> None:
    result = program.run("python", "before", GENOPS_SOMETHING_UNRELATED="1")
    assert _line(result.stdout, "instrument:") == "[True, False]"
    assert result.stderr.count("unknown variable GENOPS_SOMETHING_UNRELATED") == 1, result.stderr
    assert telemetry(result) == reference


def test_genops_enabled_false_records_nothing(program: Program) -> None:
    result = program.run("python", "before", GENOPS_ENABLED="false")
    assert _line(result.stdout, "instrument:") == "[False, False]"
    assert _line(result.stdout, "reply:")  # the application got its answer
    assert _line(result.stdout, "patched:") == "False"
    assert _documents(result.stdout, "name") == [] and _metric_totals(result.stdout) == {}


@pytest.mark.parametrize("variable", ["GENOPS_DISABLED_INSTRUMENTATIONS", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"])
def test_disabled_instrumentations_are_respected(program: Program, variable: str) -> None:
    # The wire layer (genops-instrumentation-http) would record the same call once the SDK plugin
    # is off: a user who wants this traffic left alone disables both.
    result = program.run("python", "after", **{variable: "openai,http"})
    assert _line(result.stdout, "instrument:") == "[True, False]"
    assert _line(result.stdout, "patched:") == "False"
    assert [span["name"] for span in _documents(result.stdout, "name")] == ["job"]
