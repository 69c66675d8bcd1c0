"""An unreachable collector costs dropped telemetry and one line of complaint per process (checklist 28)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("openai")

APP = '''
import os, openai
with openai.OpenAI(max_retries=0) as client:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=int(os.environ["FLEET_MAX_TOKENS"]))
print("done")
'''


def test_an_unreachable_collector_is_reported_once_per_process(fleet: Any) -> None:
    app = fleet.app("app.py", APP)
    env = fleet.env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # discard port: nothing listens
        GENOPS_EXIT_FLUSH_SECONDS="5",  # long enough for the exporter to retry at least twice
    )
    result = fleet.run([fleet.genops_run(), "python", str(app)], env)
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
    complaints = [line for line in result.stderr.splitlines() if "encountered while exporting" in line]
    assert len(complaints) <= 1, result.stderr
