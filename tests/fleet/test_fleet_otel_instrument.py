"""GenOps under `opentelemetry-instrument`, and beside the official OpenAI instrumentor (checklist 25, 30).

`opentelemetry-instrument python app.py` loads GenOps through the `genops` distro and configurator
entry points and activates the GenOps OpenAI plugin from the `opentelemetry_instrumentor` group:
the same spans, metrics, pricing and budget enforcement as `genops-run`, configured by the same
variables. The official `opentelemetry-instrumentation-openai-v2` registers its instrumentor under
the entry-point name `openai`:

- under `genops-run` it is not activated, because the GenOps plugin owns the `openai` module:
  one GenAI span per call;
- under `opentelemetry-instrument` both run: the official instrumentor wraps the SDK over GenOps'
  plugin and starts its inference span first; GenOps finds it and enriches it (cost, policy,
  attribution) instead of a span of its own, and records only `genops.cost`: one GenAI span per
  call, tokens counted once (the official instrumentor's histogram), cost counted once (GenOps').
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytest.importorskip("openai")

APP = '''
import json, os
import openai

client = openai.OpenAI(max_retries=0)
results = []
for tag in ("first", "second"):
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "request %s pid %d" % (tag, os.getpid())}], max_tokens=int(os.environ["FLEET_MAX_TOKENS"])
        )
        results.append("ok")
    except openai.RateLimitError as error:
        results.append(type(error).__name__)
print(json.dumps(results))
'''

def _contrib_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value.startswith("opentelemetry.instrumentation.openai_v2") for ep in entry_points(group="opentelemetry_instrumentor"))


def _run(fleet: Any, launcher: str, **extra: str) -> tuple[list[str], str]:
    app = fleet.app("app.py", APP)
    env = fleet.env(GENOPS_BUDGETS="global=0.015/total", GENOPS_SUMMARY="1", GENOPS_TEAM="search", **extra)
    argv = [fleet.genops_run(), "python", str(app)] if launcher == "genops-run" else [str(fleet.venv_bin / "opentelemetry-instrument"), "python", str(app)]
    result = fleet.run(argv, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def _check_genops_telemetry(fleet: Any, results: list[str], stderr: str, spans: list[dict[str, Any]] | None = None) -> None:
    """The first call ran and cost $0.01; the budget blocked the second; cost counted once.
    ``spans``: the calls' spans (default: GenOps' own)."""
    assert results == ["ok", "GenOpsRateLimitError"]
    spans = sorted(fleet.genai_spans() if spans is None else spans, key=lambda span: span["start_time"])
    assert [span["attributes"]["genops.policy.result"] for span in spans] == ["ALLOWED", "BLOCKED"]
    assert [fleet.prompt_of(span).split(" pid")[0] for span in spans] == ["request first", "request second"]
    assert spans[0]["attributes"]["genops.cost.total"] == pytest.approx(fleet.call_cost)
    assert spans[0]["attributes"]["genops.team"] == "search"
    assert spans[1]["attributes"]["genops.policy.reason_code"] == "BUDGET_EXCEEDED"
    assert sum(fleet.metric_totals("genops.cost").values()) == pytest.approx(fleet.call_cost)
    summaries = re.findall(r"total cost: \$([0-9.]+) over (\d+) calls", stderr)
    assert summaries == [("0.010000", "1")], stderr


# openai-v2 records through opentelemetry-util-genai (scope opentelemetry.util.genai.handler) or,
# in older versions, under its own scope.
OPENAI_V2_SCOPE = ("opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai")


def _token_sums(fleet: Any) -> dict[str, list[int]]:
    """gen_ai.client.token.usage sums by scope: "genops", "openai-v2", or another instrumentation's
    scope name (another OpenAI instrumentation installed on the machine, such as OpenLLMetry)."""
    sums: dict[str, list[int]] = {}
    for point in fleet.metric_points("gen_ai.client.token.usage"):
        scope = "genops" if point["scope"].startswith("genops") else "openai-v2" if point["scope"].startswith(OPENAI_V2_SCOPE) else point["scope"]
        sums.setdefault(scope, []).append(point["sum"])
    return {scope: sorted(values) for scope, values in sums.items()}


def _ran_tokens(fleet: Any, spans: list[dict[str, Any]] | None = None) -> list[int]:
    (ran,) = [span for span in (fleet.genai_spans() if spans is None else spans) if span["attributes"]["genops.policy.result"] == "ALLOWED"]
    return sorted([ran["attributes"]["gen_ai.usage.input_tokens"], ran["attributes"]["gen_ai.usage.output_tokens"]])


def test_genops_run_leaves_the_official_openai_instrumentor_off(fleet: Any) -> None:
    results, stderr = _run(fleet, "genops-run")
    _check_genops_telemetry(fleet, results, stderr)
    assert not fleet.genai_spans(genops=False)
    assert _token_sums(fleet) == {"genops": _ran_tokens(fleet)}


def test_opentelemetry_instrument_gives_the_same_governance(fleet: Any) -> None:
    # The official instrumentor's entry point is also named `openai`: disabling it leaves GenOps alone.
    results, stderr = _run(fleet, "opentelemetry-instrument", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai")
    _check_genops_telemetry(fleet, results, stderr)
    assert not fleet.genai_spans(genops=False)
    assert _token_sums(fleet) == {"genops": _ran_tokens(fleet)}


@pytest.mark.skipif(not _contrib_installed(), reason="opentelemetry-instrumentation-openai-v2 is not installed")
def test_opentelemetry_instrument_with_the_official_instrumentor_counts_once(fleet: Any) -> None:
    results, stderr = _run(fleet, "opentelemetry-instrument")
    # One GenAI span per call: the official instrumentor's, enriched with GenOps' cost and policy.
    assert not fleet.genai_spans()
    theirs = [span for span in fleet.genai_spans(genops=False) if span.get("scope", "").startswith(OPENAI_V2_SCOPE)]
    assert len(theirs) == 2 and len(fleet.genai_spans(genops=False)) == 2
    assert all(span["kind"] in ("SpanKind.CLIENT", "CLIENT", 3) for span in theirs), theirs[0].get("kind")
    _check_genops_telemetry(fleet, results, stderr, theirs)
    # The blocked call reached the official instrumentor as the SDK's own error type.
    (failed,) = [span for span in theirs if span["status"]["status_code"] == "ERROR"]
    assert "GenOpsRateLimitError" in failed["attributes"]["error.type"]
    # Tokens counted once, by the official instrumentor's histogram; cost once, by GenOps.
    assert _token_sums(fleet) == {"openai-v2": _ran_tokens(fleet, theirs)}


OTHER_DISTRO = '''
import sys
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator


class OtherDistro(BaseDistro):
    def _configure(self, **kwargs):
        pass


class OtherConfigurator(_BaseConfigurator):
    """Stands in for another vendor's configurator: providers with no exporter at all."""

    def _configure(self, **kwargs):
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        metrics.set_meter_provider(MeterProvider())
        sys.stderr.write("other configurator ran\\n")
'''


def _install_other_distro(fleet: Any) -> None:
    """A second distro and configurator, found before GenOps' (its folder is first on sys.path)."""
    (fleet.site / "other_distro.py").write_text(OTHER_DISTRO)
    info = fleet.site / "other_distro-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-distro\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_distro]\nother = other_distro:OtherDistro\n[opentelemetry_configurator]\nother = other_distro:OtherConfigurator\n"
    )


def test_with_another_distro_installed_otel_python_distro_and_configurator_select_genops(fleet: Any) -> None:
    _install_other_distro(fleet)
    # Unselected, opentelemetry-instrument takes the first distro and configurator it finds: the other
    # vendor's. GenOps still governs (the call is blocked) but records into that vendor's providers.
    results, stderr = _run(fleet, "opentelemetry-instrument", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai")
    assert results == ["ok", "GenOpsRateLimitError"]
    assert "other configurator ran" in stderr
    assert not fleet.genai_spans()
    # Selected by name, GenOps configures the SDK from OTEL_* exactly as genops-run does.
    results, stderr = _run(
        fleet,
        "opentelemetry-instrument",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai",
        OTEL_PYTHON_DISTRO="genops",
        OTEL_PYTHON_CONFIGURATOR="genops",
        GENOPS_LEDGER_URL=f"sqlite:///{fleet.root / 'second.db'}",
    )
    assert "other configurator ran" not in stderr
    _check_genops_telemetry(fleet, results, stderr)


def test_opentelemetry_instrument_rejects_invalid_genops_variables_before_the_app_starts(fleet: Any) -> None:
    app = fleet.app("app.py", "print('the application ran')\n")
    env = fleet.env(GENOPS_BUDGETS="team=lots/day", OTEL_PYTHON_DISTRO="genops")
    result = fleet.run([str(fleet.venv_bin / "opentelemetry-instrument"), "python", str(app)], env)
    assert result.returncode == 2
    assert "the application ran" not in result.stdout
    assert "GENOPS_BUDGETS" in result.stderr and "'team=lots/day'" in result.stderr
