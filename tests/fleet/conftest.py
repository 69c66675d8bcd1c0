"""Fixtures for the fleet tests: real servers and worker pools started through ``genops-run`` (or
``opentelemetry-instrument``) against the local OpenAI-compatible endpoint.

Telemetry is read back through a tiny exporter distribution registered on a temporary PYTHONPATH
(real dist-info, real ``opentelemetry_traces_exporter`` / ``opentelemetry_metrics_exporter``
entry points) that writes one JSON-lines file per process id, chosen when it exports. Workers of
one server then never interleave their output, and a span or metric a child re-exported from its
parent's buffers shows up in the child's file under the parent's ``service.instance.id``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVER_PY = REPO / "examples" / "local_provider" / "server.py"

# Output tokens cost 1250 USD per million and input tokens nothing, and every call asks for
# max_tokens=8 while the endpoint's reply is always longer: each call costs exactly
# 8 * 1250e-6 = $0.01, and its budget reservation (estimate) is exactly the same $0.01.
CALL_COST = 0.01
MAX_TOKENS = 8
PRICES = """
[[price]]
model = "gpt-4o-mini*"
api_base_url = "http://127.0.0.1:*"
input_per_mtok = 0.0
output_per_mtok = 1250.0
"""

FILE_EXPORTER = '''
"""Writes spans and metrics as JSON lines to $FLEET_TELEMETRY_DIR/<kind>-<pid>.jsonl."""
import json, os
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult


def _write(kind, lines):
    path = os.path.join(os.environ["FLEET_TELEMETRY_DIR"], "%s-%d.jsonl" % (kind, os.getpid()))
    with open(path, "a") as handle:
        handle.write("".join(line + "\\n" for line in lines))


class FileSpanExporter(SpanExporter):
    def export(self, spans):
        lines = []
        for span in spans:
            document = json.loads(span.to_json(indent=None))
            document["scope"] = span.instrumentation_scope.name if span.instrumentation_scope else ""
            lines.append(json.dumps(document))
        _write("spans", lines)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


class FileMetricExporter(MetricExporter):
    def __init__(self):
        super().__init__()

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        _write("metrics", [metrics_data.to_json(indent=None)])
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs):
        pass
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load_server_module() -> Any:
    name = "_fleet_local_provider_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SERVER_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def provider() -> Iterator[Any]:
    """The local OpenAI-compatible endpoint, in a background thread of the test process."""
    with _load_server_module().running() as server:
        yield server


class Fleet:
    """One test's folder: the exporter distribution, prices, ledger, telemetry files and apps."""

    call_cost = CALL_COST
    max_tokens = MAX_TOKENS
    venv_bin = VENV_BIN

    def __init__(self, root: Path, provider: Any) -> None:
        self.servers: list[Server] = []
        self.root = root
        self.site = root / "site"
        self.telemetry = root / "telemetry"
        self.ledger = root / "ledger.db"
        self.prices = root / "prices.toml"
        self.provider = provider
        self.site.mkdir()
        self.telemetry.mkdir()
        self.prices.write_text(PRICES)
        (self.site / "fleet_file_exporter.py").write_text(FILE_EXPORTER)
        info = self.site / "fleet_file_exporter-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fleet-file-exporter\nVersion: 0.1\n")
        (info / "top_level.txt").write_text("fleet_file_exporter\n")
        (info / "entry_points.txt").write_text(
            "[opentelemetry_traces_exporter]\nfleetfile = fleet_file_exporter:FileSpanExporter\n"
            "[opentelemetry_metrics_exporter]\nfleetfile = fleet_file_exporter:FileMetricExporter\n"
        )

    # --- environment --------------------------------------------------------------------------
    def env(self, **extra: str | None) -> dict[str, str]:
        """The environment of a fleet process; ``NAME=None`` removes a default."""
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON", "OPENAI_"))}
        environ.update(
            PYTHONPATH=str(self.site),
            PYTHONUNBUFFERED="1",
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_STATE_HOME=str(self.root / "state"),
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            OPENAI_BASE_URL=self.provider.url + "/v1",
            OPENAI_API_KEY="sk-fleet-test",
            FLEET_TELEMETRY_DIR=str(self.telemetry),
            FLEET_MAX_TOKENS=str(MAX_TOKENS),
            OTEL_TRACES_EXPORTER="fleetfile",
            OTEL_METRICS_EXPORTER="fleetfile",
            OTEL_LOGS_EXPORTER="none",
            OTEL_BSP_SCHEDULE_DELAY="60000",  # spans stay buffered until exit (or fork) unless flushed
            OTEL_METRIC_EXPORT_INTERVAL="60000",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",  # the prompt names request and pid
            GENOPS_PRICING_FILE=str(self.prices),
            GENOPS_LEDGER_URL=f"sqlite:///{self.ledger}",
            GENOPS_LEDGER_TIMEOUT_MS="10000",  # a loaded 2-core machine: never fail open on a slow lock
            GENOPS_EXIT_FLUSH_SECONDS="10",
        )
        for key, value in extra.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        return environ

    def app(self, name: str, source: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(source))
        return path

    @staticmethod
    def genops_run() -> str:
        return str(VENV_BIN / "genops-run")

    @staticmethod
    def free_port() -> int:
        return free_port()

    @staticmethod
    def prompt_of(span: dict[str, Any]) -> str:
        return prompt_of(span)

    def serve(self, argv: Sequence[str], env: dict[str, str], port: int) -> "Server":
        """Start a server (stopped by the fixture's teardown whatever happens)."""
        server = Server(argv, env, self.root, port, self.root)
        self.servers.append(server)
        return server

    @staticmethod
    def wait_for(predicate: Any, seconds: float = 60.0, what: str = "condition") -> Any:
        """Poll until ``predicate()`` is truthy (telemetry exported by a background thread)."""
        deadline = time.monotonic() + seconds
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                assert value, f"timed out waiting for {what}"
                return value
            time.sleep(0.2)

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=env, cwd=self.root, capture_output=True, text=True, timeout=timeout)

    # --- telemetry read back ------------------------------------------------------------------
    def spans(self) -> list[dict[str, Any]]:
        """Every exported span, with ``"pid"`` = the process that exported it."""
        found = []
        for path in sorted(self.telemetry.glob("spans-*.jsonl")):
            pid = int(path.stem.split("-", 1)[1])
            for line in path.read_text().splitlines():
                span = json.loads(line)
                span["pid"] = pid
                found.append(span)
        return found

    def genai_spans(self, genops: bool = True) -> list[dict[str, Any]]:
        """GenAI client spans recorded by GenOps (or, with ``genops=False``, by any other instrumentation)."""
        return [span for span in self.spans() if span.get("attributes", {}).get("gen_ai.operation.name") and (_scope_of(span) == "genops") == genops]

    def metric_totals(self, metric_name: str) -> dict[tuple[int, str], float]:
        """Final cumulative value of a counter per (exporting pid, service.instance.id)."""
        totals: dict[tuple[int, str], dict[str, float]] = {}
        for path in sorted(self.telemetry.glob("metrics-*.jsonl")):
            pid = int(path.stem.split("-", 1)[1])
            for line in path.read_text().splitlines():
                for resource_metrics in json.loads(line)["resource_metrics"]:
                    instance = resource_metrics["resource"]["attributes"].get("service.instance.id", "?")
                    for scope in resource_metrics["scope_metrics"]:
                        for metric in scope["metrics"]:
                            if metric["name"] != metric_name:
                                continue
                            points = totals.setdefault((pid, instance), {})
                            for point in metric["data"]["data_points"]:
                                key = json.dumps(point["attributes"], sort_keys=True)
                                points[key] = point.get("value", point.get("sum"))  # cumulative: last wins
        return {key: sum(points.values()) for key, points in totals.items()}

    def metric_points(self, metric_name: str) -> list[dict[str, Any]]:
        """The last exported data point of each (process, scope, attribute set) of a metric; ``"scope"`` added."""
        last: dict[tuple[int, str, str], dict[str, Any]] = {}
        for path in sorted(self.telemetry.glob("metrics-*.jsonl")):
            pid = int(path.stem.split("-", 1)[1])
            for line in path.read_text().splitlines():
                for resource_metrics in json.loads(line)["resource_metrics"]:
                    for scope in resource_metrics["scope_metrics"]:
                        for metric in scope["metrics"]:
                            if metric["name"] == metric_name:
                                for point in metric["data"]["data_points"]:
                                    key = (pid, scope["scope"]["name"], json.dumps(point["attributes"], sort_keys=True))
                                    last[key] = {**point, "scope": scope["scope"]["name"]}
        return list(last.values())


def _scope_of(span: dict[str, Any]) -> str:
    name = span.get("scope", "")
    return "genops" if name.startswith("genops") else name


def prompt_of(span: dict[str, Any]) -> str:
    """The user text of a GenAI span (content capture is on in these tests)."""
    raw = span["attributes"].get("gen_ai.input.messages")
    if not raw:
        return ""
    messages = json.loads(raw)
    texts = []
    for message in messages:
        for part in message.get("parts", []) if isinstance(message, dict) else []:
            if isinstance(part, dict) and part.get("content"):
                texts.append(str(part["content"]))
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return " ".join(texts)


@pytest.fixture
def fleet(tmp_path: Path, provider: Any) -> Iterator[Fleet]:
    """A test's folder; every server it started is stopped at teardown (process group SIGKILL last)."""
    fleet = Fleet(tmp_path, provider)
    try:
        yield fleet
    finally:
        provider.latency = 0.0
        for server in fleet.servers:
            try:
                server.stop()
            finally:
                if server.process.poll() is None:  # pragma: no cover - stop() failed half-way
                    os.killpg(server.process.pid, signal.SIGKILL)


class Server:
    """A server process on a free 127.0.0.1 port; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = log_dir / f"server-{port}.out"
        self.stderr_path = log_dir / f"server-{port}.err"
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=self._out, stderr=self._err, start_new_session=True)

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def wait_ready(self, path: str = "/health", seconds: float = 90.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise AssertionError(f"server not ready after {seconds}s:\n{self.output()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self, seconds: float = 60.0) -> int:
        """SIGTERM (graceful: workers run their exit handlers), SIGKILL if it does not finish."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._out.close()
        self._err.close()
        return self.process.returncode
