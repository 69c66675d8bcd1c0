"""Through ``genops-run``: the wire layer activates on ``import requests`` (or httpx), blocks a
refused model natively, records an allowed call, and ``--check`` lists it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

APP = """
import json, sys, requests
response = requests.post(sys.argv[1] + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]})
print(json.dumps({"status": response.status_code, "body": response.json(), "retry": response.headers.get("x-should-retry")}))
"""


def _run(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
    environ.update(XDG_CACHE_HOME=str(tmp_path / "cache"), OTEL_METRICS_EXPORTER="none", OTEL_TRACES_EXPORTER="none", GENOPS_LEDGER_URL=f"sqlite:///{tmp_path}/ledger.db")
    environ.update(env)
    return subprocess.run([str(BIN / "genops-run"), *argv], env=environ, capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.fixture
def app(tmp_path: Path) -> str:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(APP))
    return str(path)


def test_a_blocked_model_never_leaves_the_process_under_genops_run(tmp_path, providers, app):
    result = _run(tmp_path, sys.executable, app, providers.url, GENOPS_BLOCKED_MODELS="gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    assert '"status": 403' in result.stdout and '"retry": "false"' in result.stdout
    assert providers.requests == []


def test_an_allowed_call_is_recorded_with_the_apis_provider(tmp_path, providers, app):
    result = _run(tmp_path, sys.executable, app, providers.url, OTEL_TRACES_EXPORTER="console")
    assert result.returncode == 0, result.stderr
    assert '"status": 200' in result.stdout
    assert '"gen_ai.provider.name": "openai"' in result.stdout
    assert '"gen_ai.usage.input_tokens": 1234' in result.stdout
    assert len(providers.requests) == 1


def test_check_lists_the_wire_layer(tmp_path):
    result = _run(tmp_path, "--check")
    assert result.returncode == 0, result.stderr
    assert "http [genops] from genops-instrumentation-http" in result.stdout
    assert "will activate on import of httpx, httpx2, requests" in result.stdout
    # ...and says which protocols it recognises, so a user can tell what is covered.
    assert "protocol OpenAI-compatible: /chat/completions, /completions, /embeddings, /responses" in result.stdout
    assert "protocol Anthropic: /v1/messages" in result.stdout and "protocol Cohere v2: /v2/chat, /v2/embed" in result.stdout
