"""Start-up cost of `genops-run`, the finder's cost per unwatched import, and idle memory.

Measured side by side in one run, rounds interleaved, medians reported as ratios:

- `genops-run python -c pass` vs bare `python -c pass`, with 10 plugins installed (their targets
  installed but not imported) and OTLP configured; `opentelemetry-instrument` as a reference
  when it is installed.
- the finder's `find_spec` for names nobody watches (the cost it adds to every import), and
  1,000 real imports of fresh modules with and without the finder.
- peak RSS of `python -c pass` with and without the bootstrap.

    python benchmarks/bench_startup.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PLUGIN = """
from genops_autoinstrument import GenOpsInstrumentor
class Plugin(GenOpsInstrumentor):
    def instrumentation_dependencies(self):
        return ("{target} >= 1",)
    def patch(self):
        import {target}
"""


def build_site(root: Path, plugins: int = 10) -> Path:
    """A folder with `plugins` fake plugin distributions and their (installed, unimported) targets."""
    site = root / "site"
    site.mkdir()
    for index in range(plugins):
        target, package = f"benchtarget{index}", f"genops_bench_plugin{index}"
        (site / target).mkdir()
        (site / target / "__init__.py").write_text("VALUE = 1\n")
        (site / package).mkdir()
        (site / package / "__init__.py").write_text(PLUGIN.format(target=target))
        for name, top, extra in ((target, target, ""), (f"genops-bench-plugin{index}", package, f'Requires-Dist: {target}>=1; extra == "instruments"\n')):
            info = site / f"{name.replace('-', '_')}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{extra}")
            (info / "top_level.txt").write_text(top + "\n")
            if top == package:
                (info / "entry_points.txt").write_text(f"[genops_instrumentor]\nbench{index} = {package}:Plugin\n")
    return site


def environment(site: Path, cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(site),
        XDG_CACHE_HOME=str(cache),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        OTEL_SERVICE_NAME="bench",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
        GENOPS_TEAM="bench",
    )
    return env


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure_startup(rounds: int, env: dict[str, str]) -> dict[str, list[float]]:
    python = str(BIN / "python")
    commands = {"python -c pass": [python, "-c", "pass"], "genops-run python -c pass": [str(BIN / "genops-run"), python, "-c", "pass"]}
    otel = BIN / "opentelemetry-instrument"
    if otel.exists():
        commands["opentelemetry-instrument python -c pass"] = [str(otel), python, "-c", "pass"]
    for command in commands.values():  # warm the file cache and GenOps' start-up cache
        wall(command, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(wall(command, env))
    return samples


def peak_rss_kib(command: list[str], env: dict[str, str]) -> int:
    probe = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    output = subprocess.run([*command, "-c", probe], env=env, check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1])


def traced_kib(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(current, peak) KiB that Python allocated by the end of start-up, traced from the very start."""
    probe = "import tracemalloc; current, peak = tracemalloc.get_traced_memory(); print(current / 1024, peak / 1024)"
    output = subprocess.run([*command, "-X", "tracemalloc", "-c", probe], env=env, check=True, capture_output=True, text=True).stdout
    current, peak = output.strip().splitlines()[-1].split()
    return float(current), float(peak)


def finder_microbenchmark(loops: int = 200_000) -> tuple[float, float]:
    """ns per find_spec of an unwatched name: GenOps' finder vs an empty method (the floor)."""
    from genops_autoinstrument.launch.finder import WatchingFinder

    finder = WatchingFinder()
    for index in range(10):
        finder.watch(f"benchtarget{index}", lambda module: None)

    class Empty:
        def find_spec(self, fullname, path=None, target=None):
            return None

    empty = Empty()
    results = []
    for candidate in (finder, empty):
        find = candidate.find_spec
        best = []
        for _ in range(7):
            start = time.perf_counter_ns()
            for _ in range(loops):
                find("some.unwatched.module", None, None)
            best.append((time.perf_counter_ns() - start) / loops)
        results.append(statistics.median(best))
    return results[0], results[1]


IMPORTER = """
import sys, time
sys.path.insert(0, {folder!r})
if {with_finder}:
    from genops_autoinstrument.launch.finder import WatchingFinder
    finder = WatchingFinder()
    finder.watch("benchtarget0", lambda module: None)
    finder.install()
start = time.perf_counter()
for index in range(1000):
    __import__(f"m{{index}}")
print(time.perf_counter() - start)
"""


def imports_end_to_end(root: Path, rounds: int) -> tuple[float, float]:
    folder = root / "modules"
    folder.mkdir()
    for index in range(1000):
        (folder / f"m{index}.py").write_text("")
    subprocess.run([sys.executable, "-c", f"import compileall; compileall.compile_dir({str(folder)!r}, quiet=1)"], check=True)
    samples = {True: [], False: []}
    for _ in range(rounds):
        for with_finder in (False, True):
            code = IMPORTER.format(folder=str(folder), with_finder=with_finder)
            samples[with_finder].append(float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout))
    return statistics.median(samples[False]), statistics.median(samples[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="genops-bench-"))
    try:
        site = build_site(root)
        env = environment(site, root / "cache")
        samples = measure_startup(arguments.rounds, env)
        bare = statistics.median(samples["python -c pass"])
        print(f"Start-up, {arguments.rounds} interleaved rounds, 10 plugins installed, OTLP configured (median wall time)\n")
        print("| command | median ms | ratio to bare python |")
        print("|---|---:|---:|")
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"| `{name}` | {median * 1000:.1f} | {median / bare:.2f}× |")
        python = str(BIN / "python")
        bare_rss = peak_rss_kib([python], env)
        genops_rss = peak_rss_kib([str(BIN / "genops-run"), python], env)
        print(f"\nPeak RSS of an idle process: bare {bare_rss} KiB, under genops-run {genops_rss} KiB (+{genops_rss - bare_rss} KiB)")
        bare_traced = traced_kib([python], env)
        genops_traced = traced_kib([str(BIN / "genops-run"), python], env)
        print(
            f"Python allocations at the end of start-up (tracemalloc from interpreter start): bare {bare_traced[0]:.0f} KiB "
            f"(peak {bare_traced[1]:.0f}), under genops-run {genops_traced[0]:.0f} KiB (peak {genops_traced[1]:.0f}): "
            f"the idle bootstrap holds {genops_traced[0] - bare_traced[0]:+.0f} KiB, peak {genops_traced[1] - bare_traced[1]:+.0f} KiB"
        )
        finder_ns, floor_ns = finder_microbenchmark()
        print(f"\nFinder cost per unwatched import (find_spec, median of 7 × 200k calls): {finder_ns:.0f} ns (an empty find_spec: {floor_ns:.0f} ns)")
        without, with_finder = imports_end_to_end(root, max(5, arguments.rounds // 4))
        print(f"1,000 fresh imports, median: {without * 1000:.2f} ms bare, {with_finder * 1000:.2f} ms with the finder ({(with_finder - without) * 1e6 / 1000:+.2f} µs per import, noise included)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
