"""Compares the per-test outcomes of an SDK's own test suite run bare and under `genops-run`.

The conformance job's verdict: instrumentation must not change what an application sees, so every
test of the SDK's suite must end the same way in both runs, whatever that is (a test that fails bare
must fail the same way, not be fixed). Outcomes are read from pytest's JUnit XML, which needs no
plugin inside the runs under comparison.

    python compare.py --suite NAME --bare bare.xml --instrumented genops.xml [--allow FILE]
        [--root DIR ... --nodeids-out FILE] [--recheck-bare XML --recheck-instrumented XML]

A changed test runs again alone in both modes; one shown to vary bare (its bare rerun ends otherwise
than its first bare run, and as its instrumented rerun) is reported as flaky and does not fail the
job (the suites hold a few timing-dependent tests). Any other change fails it.
Exit status: 0 when nothing changed outside the allow-list, 1 when something did, 2 on bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# Outcomes as this tool names them; a test missing from one run counts as changed.
MISSING = "missing"


@dataclass(frozen=True)
class Result:
    """One test's outcome and, when it did not pass, the first line of pytest's message and its full text."""

    outcome: str
    message: str = ""
    text: str = ""


@dataclass(frozen=True)
class Allowed:
    """An allow-list entry: a test whose instrumented run may fail, only with a failure text matching `pattern`."""

    suite: str
    test: str
    pattern: re.Pattern[str]
    reason: str


@dataclass
class Comparison:
    suite: str
    total: int
    same: list[str]
    changed: list[tuple[str, Result, Result]]
    allowed: list[tuple[str, Result, Result, Allowed]]
    unused_allowances: list[Allowed]
    flaky: list[tuple[str, Result, Result]] = field(default_factory=list)
    unrepeated: set[str] = field(default_factory=set)
    timing: list[tuple[str, Result, Result]] = field(default_factory=list)  # changed once, as bare when run again

    @property
    def ok(self) -> bool:
        return not self.changed


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def _testcase_result(case: ET.Element) -> Result:
    """The outcome pytest wrote for one <testcase>: error/failure beat skip, which beats a pass."""
    for tag in ("error", "failure"):
        found = case.find(tag)
        if found is not None:
            message = found.get("message") or _first_line(found.text)
            text = f"{found.get('message') or ''}\n{found.text or ''}"
            return Result("error" if tag == "error" else "failed", _first_line(message), text)
    skipped = case.find("skipped")
    if skipped is not None:
        kind = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        return Result(kind, _first_line(skipped.get("message")))
    return Result("passed")


def _merge(old: Result, new: Result) -> Result:
    """One test reported twice (a teardown error after a pass): the worse outcome wins."""
    rank = ["passed", "xfailed", "skipped", "failed", "error"]
    return new if rank.index(new.outcome) > rank.index(old.outcome) else old


def read_junit(path: Path) -> dict[str, Result]:
    """Per-test outcomes from a pytest JUnit XML report, keyed by `classname::name`."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise ValueError(f"cannot read JUnit report {path}: {error}") from error
    results: dict[str, Result] = {}
    for case in root.iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        result = _testcase_result(case)
        results[key] = _merge(results[key], result) if key in results else result
    return results


def read_allow_list(path: Path | None) -> list[Allowed]:
    """Entries of `suite | test | failure regex | reason`, one a line; `#` starts a comment line.

    `test` is a `classname::name` key as the report prints it; without its `[parameters]` it covers
    every parametrization. The regex must match the instrumented run's failure text.
    """
    if path is None or not path.exists():
        return []
    entries: list[Allowed] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|", 3)]
        if len(fields) != 4 or not all(fields):
            raise ValueError(f"{path}:{number}: expected `suite | test | message regex | reason`, each non-empty")
        suite, test, pattern, reason = fields
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{path}:{number}: bad regex {pattern!r}: {error}") from error
        entries.append(Allowed(suite, test, compiled, reason))
    return entries


def _allowance(entries: list[Allowed], test: str, bare: Result, instrumented: Result) -> Allowed | None:
    """The entry that excuses this change: it names the test, the test passed bare, and failed as the entry says."""
    if bare.outcome != "passed" or instrumented.outcome != "failed":
        return None
    for entry in entries:
        names_it = entry.test == test or test.startswith(entry.test + "[")
        if names_it and entry.pattern.search(instrumented.text):
            return entry
    return None


def compare(
    suite: str, bare: dict[str, Result], instrumented: dict[str, Result], allow: list[Allowed] = ()
) -> Comparison:
    """Every test of either run, classified as same, changed or allowed."""
    entries = [entry for entry in allow if entry.suite == suite]
    used: set[int] = set()
    same: list[str] = []
    changed: list[tuple[str, Result, Result]] = []
    allowed: list[tuple[str, Result, Result, Allowed]] = []
    for test in sorted(bare.keys() | instrumented.keys()):
        before = bare.get(test, Result(MISSING))
        after = instrumented.get(test, Result(MISSING))
        if before.outcome == after.outcome:
            same.append(test)
            continue
        entry = _allowance(entries, test, before, after)
        if entry is None:
            changed.append((test, before, after))
        else:
            used.add(id(entry))
            allowed.append((test, before, after, entry))
    unused = [entry for entry in entries if id(entry) not in used]
    return Comparison(suite, len(same) + len(changed) + len(allowed), same, changed, allowed, unused)


def recheck(result: Comparison, bare_again: dict[str, Result], instrumented_again: dict[str, Result]) -> None:
    """Moves to `flaky` each changed test shown to vary bare: its bare rerun ended otherwise than its
    first bare run and as the instrumented rerun did. A change that only the first instrumented run
    showed, and that does not repeat (run again alone, the test ends as bare in both modes), is moved
    to `unrepeated`: reported, not failing. On a loaded 2-core machine the slower instrumented run
    trips timing-bound tests (deadlines, timeouts) at random; a change GenOps causes repeats.
    """
    kept: list[tuple[str, Result, Result]] = []
    for test, before, after in result.changed:
        bare, instrumented = bare_again.get(test), instrumented_again.get(test)
        if bare is None or instrumented is None:
            kept.append((test, before, after))
        elif bare.outcome != before.outcome and bare.outcome == instrumented.outcome:
            result.flaky.append((test, before, after))
        elif bare.outcome == before.outcome and instrumented.outcome == before.outcome:
            result.unrepeated.add(test)
            result.timing.append((test, before, after))
        else:
            kept.append((test, before, after))
    result.changed = kept


def node_id(test: str, roots: list[Path]) -> str | None:
    """The pytest node id of a `classname::name` key: the longest dotted prefix that is a file under a root."""
    classname, _, name = test.partition("::")
    parts = classname.split(".")
    for root in roots:
        for end in range(len(parts), 0, -1):
            path = root.joinpath(*parts[:end]).with_suffix(".py")
            if path.is_file():
                inner = [*parts[end:], name]
                shown = path.relative_to(root) if root == roots[0] else path
                return "::".join([str(shown), *inner])
    return None


def _counts(results: dict[str, Result]) -> str:
    tally: dict[str, int] = {}
    for result in results.values():
        tally[result.outcome] = tally.get(result.outcome, 0) + 1
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(tally.items())) or "no tests"


def report(result: Comparison, bare: dict[str, Result], instrumented: dict[str, Result]) -> str:
    """The summary the job prints: counts, then every changed test with both outcomes and the message."""
    lines = [
        f"== {result.suite}: {result.total} tests, {len(result.same)} same outcome, "
        f"{len(result.changed)} changed, {len(result.allowed)} allowed, {len(result.flaky)} flaky, "
        f"{len(result.timing)} did not repeat",
        f"   bare:        {_counts(bare)}",
        f"   genops-run:  {_counts(instrumented)}",
    ]
    for test, before, after in result.changed:
        note = " (did not repeat when run again alone)" if test in result.unrepeated else ""
        lines.append(f"   CHANGED {test}: {before.outcome} -> {after.outcome}{note}")
        if after.message or before.message:
            lines.append(f"       {after.message or before.message}")
    for test, before, after, entry in result.allowed:
        reason = entry.reason if len(entry.reason) <= 90 else entry.reason[:87] + "..."
        lines.append(f"   allowed {test}: {before.outcome} -> {after.outcome} ({reason})")
    for test, before, after in result.flaky:
        lines.append(f"   flaky   {test}: {before.outcome} -> {after.outcome}; varies bare, the same in both modes again")
    for test, before, after in result.timing:
        lines.append(f"   did not repeat {test}: {before.outcome} -> {after.outcome} once; run again alone it ended as bare in both modes")
        if after.message:
            lines.append(f"       {after.message}")
    for entry in result.unused_allowances:
        lines.append(f"   note: allow-list entry not needed this run: {entry.test}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--bare", required=True, type=Path)
    parser.add_argument("--instrumented", required=True, type=Path)
    parser.add_argument("--allow", type=Path, default=None)
    parser.add_argument("--root", type=Path, action="append", default=[], help="where the tests' files are")
    parser.add_argument("--nodeids-out", type=Path, default=None, help="write the changed tests' node ids here")
    parser.add_argument("--recheck-bare", type=Path, default=None)
    parser.add_argument("--recheck-instrumented", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        bare = read_junit(args.bare)
        instrumented = read_junit(args.instrumented)
        allow = read_allow_list(args.allow)
        again = None
        if args.recheck_bare and args.recheck_instrumented:
            again = _read_if_there(args.recheck_bare), _read_if_there(args.recheck_instrumented)
    except ValueError as error:
        print(f"conformance: {error}", file=sys.stderr)
        return 2
    if not bare:
        print(f"conformance: {args.bare} holds no test: the bare run collected nothing", file=sys.stderr)
        return 2
    result = compare(args.suite, bare, instrumented, allow)
    if again is not None:
        recheck(result, *again)
    print(report(result, bare, instrumented))
    if args.nodeids_out is not None:
        ids = [node_id(test, args.root) for test, _, _ in result.changed]
        args.nodeids_out.write_text("".join(f"{found}\n" for found in ids if found), encoding="utf-8")
    return 0 if result.ok else 1


def _read_if_there(path: Path) -> dict[str, Result]:
    """A recheck's report; none (nothing rechecked) when the rerun wrote no report."""
    return read_junit(path) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
