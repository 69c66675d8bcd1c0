"""Fixtures for the telemetry-ownership tests: real applications run bare and under ``genops-run``.

The local provider endpoint (``examples/local_provider``, realistic OpenAI and Anthropic answers)
runs in a thread of the test process and records the headers of every request it is sent.
GenOps' exporter is a tiny exporter distribution on a temporary PYTHONPATH (real dist-info, real
``opentelemetry_traces_exporter`` / ``opentelemetry_metrics_exporter`` entry points) selected with
``OTEL_TRACES_EXPORTER=ownfile``: it writes what GenOps exports as JSON lines to files. What the
application's own OpenTelemetry SDK records, it prints itself (in-memory exporter, then stdout).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVER_PY = REPO / "examples" / "local_provider" / "server.py"

FILE_EXPORTER = '''
"""Writes what GenOps exports as JSON lines to $OWN_TELEMETRY_DIR/<kind>-<pid>.jsonl."""
import json, os
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult


def _write(kind, lines):
    with open(os.path.join(os.environ["OWN_TELEMETRY_DIR"], "%s-%d.jsonl" % (kind, os.getpid())), "a") as handle:
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

# What an application with OpenTelemetry of its own prints of its in-memory exporter.
APP_SPANS = '''
def app_spans(exporter):
    """The spans in the application's own exporter, as the test reads them."""
    return [
        {
            "name": span.name,
            "scope": span.instrumentation_scope.name,
            "span_id": span.context.span_id,
            "trace_id": span.context.trace_id,
            "parent_id": span.parent.span_id if span.parent else None,
            "attributes": dict(span.attributes),
        }
        for span in exporter.get_finished_spans()
    ]
'''


def _load_server() -> Any:
    name = "_telemetry_ownership_local_provider"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SERVER_PY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Recorder:
    """The headers of every request the endpoint was sent, in order (thread-safe)."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def wrap(self, handler: Any) -> Any:
        def recording(body: Any, headers: dict[str, str], **params: Any) -> Any:
            with self._lock:
                self.headers.append({key: value for key, value in headers.items() if not key.startswith(":")})
            return handler(body, headers, **params)

        return recording

    def take(self) -> list[dict[str, str]]:
        with self._lock:
            taken, self.headers = self.headers, []
        return taken


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Any]:
    """The local provider endpoint; ``endpoint.recorder`` holds the headers it was sent."""
    server_module = _load_server()
    recorder = Recorder()
    routes = [server_module.Route(r.method, r.pattern, recorder.wrap(r.handler), r.provider) for r in server_module.load_routes()]
    with server_module.running(routes=routes) as server:
        server.recorder = recorder
        yield server


class Apps:
    """One test's folder: GenOps' exporter distribution, the applications and what was exported."""

    def __init__(self, root: Path, endpoint: Any) -> None:
        self.root = root
        self.endpoint = endpoint
        self.site = root / "site"
        self.telemetry = root / "telemetry"
        self.site.mkdir()
        self.telemetry.mkdir()
        (self.site / "own_file_exporter.py").write_text(FILE_EXPORTER)
        info = self.site / "own_file_exporter-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: own-file-exporter\nVersion: 0.1\n")
        (info / "top_level.txt").write_text("own_file_exporter\n")
        (info / "entry_points.txt").write_text(
            "[opentelemetry_traces_exporter]\nownfile = own_file_exporter:FileSpanExporter\n"
            "[opentelemetry_metrics_exporter]\nownfile = own_file_exporter:FileMetricExporter\n"
        )

    def env(self, **extra: str) -> dict[str, str]:
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON", "OPENAI_", "ANTHROPIC_"))}
        environ.update(
            PYTHONPATH=str(self.site),
            PYTHONUNBUFFERED="1",
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_STATE_HOME=str(self.root / "state"),
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            OPENAI_BASE_URL=self.endpoint.url + "/v1",
            OPENAI_API_KEY="sk-test-ownership",
            ANTHROPIC_BASE_URL=self.endpoint.url,
            ANTHROPIC_API_KEY="sk-ant-test-ownership",
            OWN_TELEMETRY_DIR=str(self.telemetry),
            OTEL_TRACES_EXPORTER="ownfile",
            OTEL_METRICS_EXPORTER="ownfile",
            OTEL_LOGS_EXPORTER="none",
            OTEL_BSP_SCHEDULE_DELAY="60000",  # exported once, at exit
            OTEL_METRIC_EXPORT_INTERVAL="60000",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",  # GenOps' spans name their prompt
            GENOPS_EXIT_FLUSH_SECONDS="10",
        )
        environ.update(extra)
        return environ

    def run(self, source: str, launcher: str = "genops-run", **extra: str) -> "Result":
        """Run ``source`` as ``app.py``, bare (``launcher="python"``) or under ``genops-run``."""
        for stale in self.telemetry.glob("*.jsonl"):
            stale.unlink()
        self.endpoint.recorder.take()
        path = self.root / "app.py"
        path.write_text(APP_SPANS + textwrap.dedent(source))
        python = str(VENV_BIN / "python")
        argv = [python, str(path)] if launcher == "python" else [str(VENV_BIN / "genops-run"), python, str(path)]
        done = subprocess.run(argv, env=self.env(**extra), cwd=self.root, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return Result(done.stdout, done.stderr, self._exported("spans"), self._exported("metrics"), self.endpoint.recorder.take())

    def _exported(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(line) for path in sorted(self.telemetry.glob(f"{kind}-*.jsonl")) for line in path.read_text().splitlines()]


class Result:
    """What one run printed, what GenOps exported and the headers the endpoint received."""

    def __init__(self, stdout: str, stderr: str, spans: list[dict[str, Any]], metrics: list[dict[str, Any]], headers: list[dict[str, str]]) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.exported = spans  # by GenOps' exporter
        self.metrics = metrics
        self.headers = headers

    def printed(self, label: str) -> Any:
        """The JSON the application printed after ``label:``."""
        (line,) = [line for line in self.stdout.splitlines() if line.startswith(label + ":")]
        return json.loads(line.split(":", 1)[1])

    def exported_names(self) -> list[tuple[str, str]]:
        """(scope, name) of every span GenOps' exporter carried, in start order."""
        spans = sorted(self.exported, key=lambda span: span["start_time"])
        return [("genops" if span["scope"].startswith("genops") else span["scope"], span["name"]) for span in spans]

    def metric_sum(self, name: str, scope: str = "genops") -> float:
        """The last exported value of a GenOps counter, summed over its data points."""
        points: dict[str, float] = {}
        for document in self.metrics:
            for resource_metrics in document["resource_metrics"]:
                for scope_metrics in resource_metrics["scope_metrics"]:
                    if not scope_metrics["scope"]["name"].startswith(scope):
                        continue
                    for metric in scope_metrics["metrics"]:
                        if metric["name"] == name:
                            for point in metric["data"]["data_points"]:
                                points[json.dumps(point["attributes"], sort_keys=True)] = point.get("value", point.get("count", 0))
        return sum(points.values())


@pytest.fixture
def apps(tmp_path: Path, endpoint: Any) -> Apps:
    return Apps(tmp_path, endpoint)
