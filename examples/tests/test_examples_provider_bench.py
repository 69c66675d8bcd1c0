"""Smoke run of the provider overhead benchmark: it runs, fills its table, and --quick writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_provider_overhead.py"
RESULT = REPO / "benchmarks" / "results" / "provider_overhead.md"

ROWS = [
    "| Anthropic: messages.create (per call) |",
    "| Anthropic: messages.create(stream=True), 50 events (per call) |",
    "| Anthropic: … per chunk |",
    "| Bedrock: converse (per call) |",
    "| Bedrock: converse_stream, 50 events (per call) |",
    "| Bedrock: … per chunk |",
    "| Google Gen AI: models.generate_content (per call) |",
    "| Google Gen AI: models.generate_content_stream, 50 chunks (per call) |",
    "| Google Gen AI: … per chunk (chunks 2-50) |",
]


def test_provider_benchmark_smoke() -> None:
    for module in ("anthropic", "boto3", "google.genai", "genops_instrumentation_anthropic", "genops_instrumentation_bedrock", "genops_instrumentation_google_genai"):
        pytest.importorskip(module)
    before = RESULT.read_bytes() if RESULT.exists() else None
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for row in ROWS:
        (line,) = [line for line in lines if line.startswith(row)]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 6, line
        float(cells[1]), float(cells[2]), float(cells[3])  # bare, GenOps, added: numbers
    assert "GenOps adds: Anthropic **" in result.stdout
    assert "Anthropic priced, priced; Bedrock priced, priced; Google Gen AI priced, priced" in result.stdout
    assert "was not measured" not in result.stdout
    assert (RESULT.read_bytes() if RESULT.exists() else None) == before  # --quick publishes nothing
