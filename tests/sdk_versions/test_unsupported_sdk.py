"""An SDK installed outside its plugin's declared range: `--check` says so, the program says once
which configured rules its calls escape, and `GENOPS_FAIL_MODE=closed` refuses to start.

Real subprocesses through `genops-run`; the SDKs are real installs (a package plus its
``*.dist-info/METADATA``) on a folder on PYTHONPATH, at a version outside the range.
"""

from __future__ import annotations

from genops_autoinstrument.launch import bootstrap
from genops_autoinstrument.launch.discovery import PluginInfo

RULES = {"GENOPS_BLOCKED_MODELS": "gpt-4*", "GENOPS_BUDGETS": "team=5/day", "GENOPS_LEDGER_URL": "memory://", "GENOPS_TEAM": "search"}
OUTSIDE = "fakesdk 0.5.0 is outside genops-genops-fake-plugin's range fakesdk >= 1.0, < 2"
ESCAPES = "its calls are not governed: GENOPS_BUDGETS and GENOPS_BLOCKED_MODELS do not apply to them"
SKIPPED = "genops: WARNING: plugin fake (genops-genops-fake-plugin 0.1.0) skipped: "
APP = "import fakesdk; import fakesdk.client; print('app ran', fakesdk.Client().call(1))"


def _old_sdk(fake_site, version: str = "0.5.0") -> None:
    """Install fakesdk's metadata at ``version`` in place of the fixture's 1.2.0."""
    for stale in fake_site.site.glob("fakesdk-*.dist-info"):
        for path in stale.iterdir():
            path.unlink()
        stale.rmdir()
    fake_site.dist("fakesdk", version, ["fakesdk"])


def test_check_names_the_version_the_range_and_the_rules_that_do_not_apply(fake_site):
    _old_sdk(fake_site)
    result = fake_site.run("--check", env=fake_site.env(**RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fake [genops]" in result.stdout
    assert f"skipped: unsupported version: {OUTSIDE}: {ESCAPES}" in result.stdout

    closed = fake_site.run("--check", env=fake_site.env(GENOPS_FAIL_MODE="closed", **RULES))
    assert closed.returncode == 2
    assert "GENOPS_FAIL_MODE=closed: genops-run refuses to start programs here" in closed.stdout


def test_the_program_runs_ungoverned_and_says_so_once_on_stderr(fake_site):
    _old_sdk(fake_site)
    app = fake_site.app(APP + "\nimport importlib; importlib.reload(fakesdk)")
    for attempt in ("scan", "start-up cache"):
        result = fake_site.run("python", app, env=fake_site.env(**RULES))
        assert result.returncode == 0, (attempt, result.stderr)
        assert result.stdout == "app ran 2\n"  # the SDK was not patched
        assert result.stderr.splitlines() == [f"{SKIPPED}{OUTSIDE}: {ESCAPES} (GENOPS_FAIL_MODE=closed would refuse to start)"], attempt
    assert fake_site.log_lines() == []  # the plugin never patched


def test_without_rules_the_line_says_the_calls_are_not_instrumented(fake_site):
    _old_sdk(fake_site)
    result = fake_site.run("python", fake_site.app(APP))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"{SKIPPED}{OUTSIDE}: its calls are not instrumented (no GenOps span, cost or policy)"]


def test_a_program_that_never_imports_the_sdk_says_nothing(fake_site):
    _old_sdk(fake_site)
    result = fake_site.run("python", fake_site.app("print('no sdk here')"), env=fake_site.env(**RULES))
    assert result.returncode == 0 and result.stdout == "no sdk here\n" and result.stderr == ""


def test_fail_closed_refuses_to_start_even_when_the_sdk_would_be_imported_later(fake_site):
    _old_sdk(fake_site)
    # The SDK is imported lazily (never, here): the refusal is decided at start, from metadata.
    app = fake_site.app("print('the app ran')\ndef later():\n    import fakesdk\n")
    result = fake_site.run("python", app, env=fake_site.env(GENOPS_FAIL_MODE="closed", **RULES))
    assert result.returncode == 2
    assert "the app ran" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"genops-run: {OUTSIDE}: {ESCAPES}; GENOPS_FAIL_MODE=closed refuses"), lines
    assert "GENOPS_DISABLED_INSTRUMENTATIONS=fake" in lines[0]
    assert "Traceback" not in result.stderr


def test_fail_closed_starts_when_the_plugin_is_disabled_or_the_sdk_is_in_range(fake_site):
    _old_sdk(fake_site)
    closed = dict(GENOPS_FAIL_MODE="closed", **RULES)
    disabled = fake_site.run("python", fake_site.app(APP), env=fake_site.env(GENOPS_DISABLED_INSTRUMENTATIONS="fake", **closed))
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout == "app ran 2\n" and disabled.stderr == ""
    # Upgrading the SDK in place is seen at the next start (the start-up cache follows sys.path).
    _old_sdk(fake_site, "1.2.0")
    upgraded = fake_site.run("python", fake_site.app(APP), env=fake_site.env(**closed))
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "app ran ('patched', 2)\n" and upgraded.stderr == ""


def test_a_real_plugin_names_its_own_distribution_and_range(fake_site):
    """The Bedrock plugin, with a botocore older than its range installed first on the path."""
    fake_site.module("botocore/__init__.py", "")
    fake_site.module("botocore/client.py", "class BaseClient:\n    pass\n")
    fake_site.dist("botocore", "1.20.0", ["botocore"])
    env = fake_site.env(GENOPS_ALLOWED_MODELS="anthropic.*")
    check = fake_site.run("--check", env=env)
    assert "bedrock [genops]" in check.stdout
    assert "botocore 1.20.0 is outside genops-instrumentation-bedrock's range botocore >= " in check.stdout
    assert "its calls are not governed: GENOPS_ALLOWED_MODELS does not apply to them" in check.stdout
    result = fake_site.run("python", fake_site.app("import botocore.client; print('ok')"), env=env)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    lines = [line for line in result.stderr.splitlines() if "botocore" in line]
    assert len(lines) == 1 and lines[0].startswith("genops: WARNING: plugin bedrock (genops-instrumentation-bedrock 0.1.0) skipped: botocore 1.20.0 is outside genops-instrumentation-bedrock's range"), result.stderr


def test_cached_records_hold_every_discovery_field():
    # The bootstrap reads the conflicts from cached PluginInfo tuples without importing discovery.
    assert bootstrap.RECORD_LENGTH == len(PluginInfo.__slots__)
    assert PluginInfo.__slots__[bootstrap._CONFLICTS] == "conflicts"
