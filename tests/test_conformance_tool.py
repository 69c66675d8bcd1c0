"""The conformance job's comparison (.ci/conformance/compare.py), on real pytest runs of a tiny suite.

The synthetic suite reads `SIMULATED_GENOPS` to stand in for instrumentation that changes an
outcome; the job's verdict must name exactly those tests, excuse only allow-listed failures at
their stated assertion, and tell a difference that does not repeat (flaky) from one that does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TOOL_DIR = Path(__file__).resolve().parents[1] / ".ci" / "conformance"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", TOOL_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare_tool = _load("compare")

SUITE = '''
import os
from pathlib import Path
import pytest

INSTRUMENTED = os.environ.get("SIMULATED_GENOPS") == "1"


def test_same_pass():
    assert 1 + 1 == 2


def test_same_fail():
    assert "bare" == "fails too"


def test_broken_by_genops():
    headers = {"traceparent": "00-abc"} if INSTRUMENTED else {}
    assert headers == {}


def test_fixed_by_genops():
    assert INSTRUMENTED


@pytest.mark.skip(reason="never runs")
def test_same_skip():
    pass


@pytest.mark.xfail(reason="known", strict=True)
def test_same_xfail():
    assert False


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_param(mode):
    assert not (INSTRUMENTED and mode == "async")


class TestOpenTelemetry:
    def test_calls_nothing(self):
        called = ["get_current_span"] if INSTRUMENTED else []
        result = "msg_1"
        assert result == "msg_1"
        assert called == []

    def test_calls_nothing_but_result_changes(self):
        result = "other" if INSTRUMENTED else "msg_1"
        assert result == "msg_1"


def test_flaky():
    """Fails the first time it runs, bare: a test that varies without any instrumentation."""
    marker = Path(os.environ["FLAKY_MARKER"])
    first = not marker.exists()
    marker.write_text("ran")
    assert not first


def test_unrepeated():
    """Fails the first time it runs instrumented only: an intermittent effect of the instrumentation."""
    marker = Path(os.environ["FLAKY_MARKER"] + "-instrumented")
    first = not marker.exists()
    if INSTRUMENTED:
        marker.write_text("ran")
    assert not (INSTRUMENTED and first)
'''


def _run(suite: Path, xml: Path, instrumented: bool, *args: str) -> None:
    env = {**os.environ, "SIMULATED_GENOPS": "1" if instrumented else "0", "FLAKY_MARKER": str(suite / "flaky")}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={xml}", *args]
    subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    assert xml.is_file(), f"pytest wrote no report at {xml}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic suite, run bare and 'instrumented' like the job runs an SDK's suite."""
    suite = tmp_path_factory.mktemp("suite")
    (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (suite / "tests").mkdir()
    (suite / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (suite / "tests" / "test_synthetic.py").write_text(SUITE, encoding="utf-8")
    _run(suite, suite / "bare.xml", False, "tests")
    _run(suite, suite / "genops.xml", True, "tests")
    return {"suite": suite, "bare": suite / "bare.xml", "genops": suite / "genops.xml"}


def _allow(tmp_path: Path, *lines: str) -> list:
    path = tmp_path / "allowed.txt"
    path.write_text("# comment\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return compare_tool.read_allow_list(path)


KEY = "tests.test_synthetic"


def test_outcomes_are_read_per_test(runs: dict[str, Path]) -> None:
    bare = compare_tool.read_junit(runs["bare"])

    assert bare[f"{KEY}::test_same_pass"].outcome == "passed"
    assert bare[f"{KEY}::test_same_fail"].outcome == "failed"
    assert bare[f"{KEY}::test_same_skip"].outcome == "skipped"
    assert bare[f"{KEY}::test_same_xfail"].outcome == "xfailed"
    assert bare[f"{KEY}.TestOpenTelemetry::test_calls_nothing"].outcome == "passed"
    assert len(bare) == 12


def test_every_changed_test_is_named_and_the_rest_counted_same(runs: dict[str, Path]) -> None:
    bare = compare_tool.read_junit(runs["bare"])
    instrumented = compare_tool.read_junit(runs["genops"])

    result = compare_tool.compare("synthetic", bare, instrumented)

    changed = {test: (before.outcome, after.outcome) for test, before, after in result.changed}
    assert changed == {
        f"{KEY}::test_broken_by_genops": ("passed", "failed"),
        f"{KEY}::test_fixed_by_genops": ("failed", "passed"),
        f"{KEY}::test_param[async]": ("passed", "failed"),
        f"{KEY}.TestOpenTelemetry::test_calls_nothing": ("passed", "failed"),
        f"{KEY}.TestOpenTelemetry::test_calls_nothing_but_result_changes": ("passed", "failed"),
        f"{KEY}::test_flaky": ("failed", "passed"),
        f"{KEY}::test_unrepeated": ("passed", "failed"),
    }
    assert (result.total, len(result.same), result.ok) == (12, 5, False)
    assert "traceparent" in dict((t, a.message) for t, _, a in result.changed)[f"{KEY}::test_broken_by_genops"]


def test_an_allow_list_entry_excuses_only_its_failure_at_its_assertion(runs: dict[str, Path], tmp_path: Path) -> None:
    bare = compare_tool.read_junit(runs["bare"])
    instrumented = compare_tool.read_junit(runs["genops"])
    allow = _allow(
        tmp_path,
        f"synthetic | {KEY}.TestOpenTelemetry::test_calls_nothing | assert called == \\[\\] | GenOps calls the API",
        # Same kind of entry, but the result changed: its failure is at another assertion.
        f"synthetic | {KEY}.TestOpenTelemetry::test_calls_nothing_but_result_changes | assert called == \\[\\] | no",
        # A test that failed bare, then passed, is never excused.
        f"synthetic | {KEY}::test_fixed_by_genops | .* | no",
        f"other-suite | {KEY}::test_broken_by_genops | .* | another suite's entry",
    )

    result = compare_tool.compare("synthetic", bare, instrumented, allow)

    assert [test for test, *_ in result.allowed] == [f"{KEY}.TestOpenTelemetry::test_calls_nothing"]
    changed = {test for test, *_ in result.changed}
    assert f"{KEY}.TestOpenTelemetry::test_calls_nothing_but_result_changes" in changed
    assert f"{KEY}::test_fixed_by_genops" in changed
    assert f"{KEY}::test_broken_by_genops" in changed
    assert len(result.unused_allowances) == 2


def test_an_entry_without_parameters_covers_each_parametrization(runs: dict[str, Path], tmp_path: Path) -> None:
    allow = _allow(tmp_path, f"synthetic | {KEY}::test_param | assert not | parametrized")

    result = compare_tool.compare(
        "synthetic", compare_tool.read_junit(runs["bare"]), compare_tool.read_junit(runs["genops"]), allow
    )

    assert [test for test, *_ in result.allowed] == [f"{KEY}::test_param[async]"]


@pytest.mark.parametrize(
    "line",
    ["synthetic | test | regex", "synthetic | test | regex | ", "synthetic | test | ( | reason"],
    ids=["three-fields", "no-reason", "bad-regex"],
)
def test_a_malformed_allow_list_is_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ValueError, match="allowed.txt:3"):
        _allow(tmp_path, line)


def test_a_test_missing_from_one_run_has_changed() -> None:
    passed = compare_tool.Result("passed")

    result = compare_tool.compare("s", {"a::x": passed, "a::y": passed}, {"a::x": passed, "a::z": passed})

    assert [(t, b.outcome, a.outcome) for t, b, a in result.changed] == [
        ("a::y", "passed", "missing"),
        ("a::z", "missing", "passed"),
    ]


def test_changed_tests_run_again_by_node_id_and_only_a_test_that_varies_bare_is_flaky(
    runs: dict[str, Path],
) -> None:
    suite = runs["suite"]
    bare = compare_tool.read_junit(runs["bare"])
    instrumented = compare_tool.read_junit(runs["genops"])
    result = compare_tool.compare("synthetic", bare, instrumented)
    ids = [compare_tool.node_id(test, [suite]) for test, *_ in result.changed]
    assert "tests/test_synthetic.py::TestOpenTelemetry::test_calls_nothing" in ids
    assert "tests/test_synthetic.py::test_param[async]" in ids

    _run(suite, suite / "bare-again.xml", False, *ids)
    _run(suite, suite / "genops-again.xml", True, *ids)
    compare_tool.recheck(
        result, compare_tool.read_junit(suite / "bare-again.xml"), compare_tool.read_junit(suite / "genops-again.xml")
    )

    assert [test for test, *_ in result.flaky] == [f"{KEY}::test_flaky"]
    assert len(result.changed) == 5  # a change that does not repeat is reported, not failing
    assert result.unrepeated == {f"{KEY}::test_unrepeated"}
    assert [test for test, *_ in result.timing] == [f"{KEY}::test_unrepeated"]
    assert f"did not repeat {KEY}::test_unrepeated: passed -> failed once" in compare_tool.report(
        result, bare, instrumented
    )


def test_the_command_line_reports_counts_and_exits_by_verdict(runs: dict[str, Path], tmp_path: Path) -> None:
    def main(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(TOOL_DIR / "compare.py"), "--suite", "synthetic", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    changed = main("--bare", str(runs["bare"]), "--instrumented", str(runs["genops"]), "--root", str(runs["suite"]),
                   "--nodeids-out", str(tmp_path / "ids.txt"))
    same = main("--bare", str(runs["bare"]), "--instrumented", str(runs["bare"]))
    (tmp_path / "empty.xml").write_text("<testsuites><testsuite/></testsuites>", encoding="utf-8")
    empty = main("--bare", str(tmp_path / "empty.xml"), "--instrumented", str(runs["bare"]))

    assert changed.returncode == 1, changed.stderr
    assert "12 tests, 5 same outcome, 7 changed, 0 allowed" in changed.stdout
    assert f"CHANGED {KEY}::test_broken_by_genops: passed -> failed" in changed.stdout
    assert len((tmp_path / "ids.txt").read_text(encoding="utf-8").splitlines()) == 7
    assert same.returncode == 0 and "12 same outcome, 0 changed" in same.stdout
    assert empty.returncode == 2 and "collected nothing" in empty.stderr


def test_the_otlp_sink_accepts_exports_and_counts_them(tmp_path: Path) -> None:
    port_file, counts_file = tmp_path / "port", tmp_path / "counts.json"
    sink = subprocess.Popen([sys.executable, str(TOOL_DIR / "otlp_sink.py"), str(port_file), str(counts_file)])
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            assert sink.poll() is None, "the sink exited before listening"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        for path in ("/v1/traces", "/v1/traces", "/v1/metrics"):
            request = urllib.request.Request(url + path, data=b"\x0a\x00", method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)

    assert json.loads(counts_file.read_text(encoding="utf-8")) == {"/v1/metrics": 1, "/v1/traces": 2}
