"""The budget demo under `genops-run`: the loop runs until the budget blocks it, with the decision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def test_budget_demo_is_stopped_at_its_limit(app_env, local_provider, tmp_path):
    env = dict(
        app_env,
        GENOPS_TEAM="demo",
        GENOPS_BUDGETS="team=0.0002/day",
        GENOPS_LEDGER_URL="memory://",
        GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PATH=f"{VENV_BIN}:{app_env.get('PATH', '')}",
    )
    result = subprocess.run(
        [str(VENV_BIN / "genops-run"), sys.executable, str(REPO / "examples" / "budget_demo.py")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    stopped = [line for line in lines if "stopped: insufficient_quota" in line]
    assert len(stopped) == 1, result.stdout
    allowed = [line for line in lines if line.startswith("call ") and "tokens:" in line]
    # Each call must fit its reservation (prompt + max_tokens) in what is left, so the loop stops
    # before the budget is passed.
    assert 5 <= len(allowed) < 20
    assert "result=BLOCKED reason=BUDGET_EXCEEDED" in result.stdout
    assert "budget team=0.0002/day: allocated $0.000200" in result.stdout
