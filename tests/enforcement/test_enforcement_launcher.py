"""Through `genops-run`: the default SQLite ledger in the state folder keeps a budget across restarts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = '''
from genops_autoinstrument import PolicyViolation
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage

request = CallRequest("openai", "chat", "gpt-4o-mini", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])
for n in range(3):
    try:
        call = begin_call(request)
    except PolicyViolation as blocked:
        print("blocked", blocked.reason_code)
        continue
    with call:
        pass
    call.finish(response_model="gpt-4o-mini", usage=Usage(input_tokens=100, output_tokens=1000))
    print("ok")
'''


def _launcher() -> str:
    candidate = Path(sys.executable).parent / "genops-run"
    found = str(candidate) if candidate.exists() else shutil.which("genops-run")
    if found is None:  # pragma: no cover - the test command installs the package first
        pytest.fail("genops-run is not installed")
    return found


def test_budget_is_kept_across_restarts_in_the_default_ledger(tmp_path):
    from genops_autoinstrument.pricing.prices import price_call
    from genops_autoinstrument.pricing.usage import Usage

    per_call = price_call("openai", "gpt-4o-mini", Usage(input_tokens=100, output_tokens=1000)).total
    assert per_call
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        GENOPS_TEAM="search",
        GENOPS_BUDGETS=f"team={per_call * 4:.9f}/day",  # room for four calls: three in the first run, one in the second
    )
    runs = [subprocess.run([_launcher(), sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split("\n")[:3] == ["ok", "ok", "ok"]
    assert runs[1].stdout.split("\n")[:3] == ["ok", "blocked BUDGET_EXCEEDED", "blocked BUDGET_EXCEEDED"]
    assert (tmp_path / "state" / "genops" / "ledger.db").is_file()


def test_fail_closed_with_an_unusable_state_folder_blocks_and_never_crashes(tmp_path):
    (tmp_path / "state").write_text("not a folder")
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        GENOPS_BUDGETS="global=10/day",
        GENOPS_FAIL_MODE="closed",
    )
    run = subprocess.run([_launcher(), sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["blocked BUDGET_RESERVATION_FAILED"] * 3
    assert run.stderr.count("GenOps ledger") == 1  # one warning line, no traceback
    assert "Traceback" not in run.stderr
