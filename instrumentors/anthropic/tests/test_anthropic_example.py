"""The example app, unchanged, under `genops-run` against the local provider's Anthropic routes."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LOCAL_PROVIDER = REPO / "examples" / "local_provider" / "server.py"
EXAMPLE = REPO / "examples" / "anthropic_chat.py"


def _server_module():
    spec = importlib.util.spec_from_file_location("_anthropic_test_local_provider", LOCAL_PROVIDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def provider_url():
    if not LOCAL_PROVIDER.exists():  # pragma: no cover - the examples helper ships it
        pytest.skip("examples/local_provider/server.py is missing")
    server = _server_module()
    routes = server.load_routes(names=["anthropic"])
    assert [route.pattern.pattern for route in routes][:2] == [r"/v1/messages", r"/v1/messages/count_tokens"]
    with server.running(routes=routes) as running:
        yield running.url


def _run(provider_url, **env):
    launcher = Path(sys.executable).parent / "genops-run"
    launcher = str(launcher) if launcher.exists() else shutil.which("genops-run")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "ANTHROPIC_"))
    }
    environment.update(
        ANTHROPIC_BASE_URL=provider_url,
        ANTHROPIC_API_KEY="sk-ant-demo",
        GENOPS_SUMMARY="1",
        GENOPS_LEDGER_URL="memory://",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **env,
    )
    return subprocess.run([launcher, sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=environment, cwd=REPO, timeout=120)


def test_example_runs_governed(provider_url):
    result = _run(provider_url, GENOPS_TEAM="search")
    assert result.returncode == 0, result.stderr
    assert "create: Hello from the local provider. You said: What is a token budget?" in result.stdout
    assert "[end_turn]" in result.stdout
    summary = [line.split() for line in result.stderr.splitlines() if "claude-sonnet-4-6" in line]
    # provider model calls failed in-tokens out-tokens …: three calls, all recorded
    assert summary and summary[0][:4] == ["anthropic", "claude-sonnet-4-6", "3", "0"]
    assert "genops.team=search" in result.stderr


def test_example_blocked_model_never_sent(provider_url):
    result = _run(provider_url, GENOPS_BLOCKED_MODELS="claude-sonnet-*")
    assert result.returncode == 1
    assert "request refused (403)" in result.stderr
    assert "create:" not in result.stdout
