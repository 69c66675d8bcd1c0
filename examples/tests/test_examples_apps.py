"""The examples as a user runs them: the endpoint's CLI, the unmodified apps, the README demo."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 15.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the endpoint never wrote its port file")


@pytest.mark.parametrize(
    "command, cwd",
    [
        ([str(REPO / "examples" / "local_provider" / "server.py")], "tmp"),  # a script, from anywhere
        (["-m", "examples.local_provider"], "repo"),  # a package module, from the repo root
    ],
)
def test_cli_port_file_health_and_sigterm(command: list[str], cwd: str, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--port-file", str(port_file)],
        cwd=tmp_path if cwd == "tmp" else REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _wait_for(port_file, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.read() == b"ok\n"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    found = re.fullmatch(rf"local provider listening on http://127\.0\.0\.1:{port} \((.+)\)", out.strip())
    assert found is not None, out
    assert "openai" in found.group(1).split(", ")
    assert not port_file.exists()


@pytest.mark.parametrize(
    "app, expected",
    [
        ("openai_chat.py", ["A: Hello from the local provider. You said: What is a token budget?", "embedded 2 texts into 1536 dimensions"]),
        (
            "openai_streaming.py",
            [
                "chat: Hello from the local provider. You said: Stream a short greeting to the GenOps demo.",
                "responses: Hello from the local provider. You said: Stream an answer from the Responses API.",
                "(12 input / 17 output tokens)",
            ],
        ),
        ("openai_async.py", ["spans: Hello from the local provider. You said: One line about spans.", "stream used 24 tokens"]),
    ],
)
def test_example_apps_run_unmodified(app: str, expected: list[str], app_env: dict[str, str]) -> None:
    source = (REPO / "examples" / app).read_text()
    assert not re.search(r"^\s*(import|from)\s+genops", source, re.MULTILINE)  # an ordinary app
    result = subprocess.run([sys.executable, str(REPO / "examples" / app)], env=app_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for line in expected:
        assert line in lines


def _port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(not (VENV_BIN / "genops-run").exists(), reason="genops-run is not installed next to this interpreter")
def test_readme_demo(tmp_path: Path) -> None:
    pytest.importorskip("genops_instrumentation_openai")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_STATE_HOME"] = str(tmp_path)  # never touch the developer's own state
    result = subprocess.run(["bash", str(REPO / "examples" / "run_demo.sh")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out, err = result.stdout, result.stderr
    port = int(re.search(r"endpoint on http://127\.0\.0\.1:(\d+)/v1", out).group(1))
    assert _port_is_closed(port)  # the trap stopped the endpoint
    assert "Q: What is a token budget?" in out and "chat: Hello from the local provider." in out
    # Spans on stdout (console exporter): one per model call, attributed and priced.
    assert out.count('"kind": "SpanKind.CLIENT"') == 5
    assert out.count('"genops.team": "demo"') == 5
    assert out.count('"genops.cost.status": "priced"') == 5
    assert '"service.name": "genops-demo"' in out
    assert '"name": "genops.budget.reconciliation"' in out
    # The cost summary of each app on stderr, priced from examples/demo_prices.toml.
    assert err.count("GenOps summary") == 2
    assert "total cost: $0.000025 over 3 calls" in err  # 46 in/30 out gpt-4o-mini + 12 embedding tokens
    assert "total cost: $0.000045 over 2 calls" in err  # 16/18 gpt-4o-mini + 12/17 gpt-4.1-mini
    assert "Traceback" not in err


def test_benchmark_smoke() -> None:
    pytest.importorskip("genops_instrumentation_openai")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_openai_overhead.py"), "--quick"], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert "| non-streaming call (per call) |" in result.stdout
    assert "GenOps adds" in result.stdout
