"""CPU time of importing each provider SDK, bare vs under `genops-run`.

Under the launcher, importing an SDK activates its GenOps plugin (OpenTelemetry, the plugin, its
wrappers): a one-off cost every short-lived program or CLI pays on top of the SDK's import. For
`openai`, `anthropic`, `google.genai` and `boto3`, `python -c "import SDK"` and `genops-run python
-c "import SDK"` run in interleaved rounds (order shuffled each round), after warm-up runs that
fill the bytecode caches and GenOps' start-up cache. Measured: the child's CPU time (user + sys,
`getrusage(RUSAGE_CHILDREN)` deltas around `subprocess.run`), which waiting for a core on a shared
machine does not inflate; wall time beside it. Goal: median ratio ≤ 1.15 for each SDK. Exporters
are `none`, no `GENOPS_*` variable is set, caches live in a temporary folder. Prints only;
`--write` also writes `benchmarks/results/sdk_import.md`.

    python benchmarks/bench_sdk_import.py [--rounds 30] [--write]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, environment, markdown_table, progress, publish  # noqa: E402

BIN = Path(sys.executable).parent
GOAL = 1.15
#: module imported -> (its distribution, the GenOps plugin distribution that instruments it)
SDKS = {
    "openai": ("openai", "genops-instrumentation-openai"),
    "anthropic": ("anthropic", "genops-instrumentation-anthropic"),
    "google.genai": ("google-genai", "genops-instrumentation-google-genai"),
    "boto3": ("boto3", "genops-instrumentation-bedrock"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (`google`)
        return False


def child_environment(cache: Path) -> dict[str, str]:
    """The caller's environment minus GENOPS_*/OTEL_*/PYTHON*, with exporters off and a private cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        XDG_CACHE_HOME=str(cache),
        OTEL_SERVICE_NAME="bench",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    return env


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds user + sys, wall seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def active_plugins(env: dict[str, str], cwd: Path) -> list[str]:
    """One line per plugin from `genops-run --check`: name, kind and verdict."""
    output = subprocess.run([str(BIN / "genops-run"), "--check"], env=env, cwd=cwd, capture_output=True, text=True).stdout
    lines, plugin = [], ""
    for line in output.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            plugin = line.strip().split(" from ")[0]
        elif plugin and line.strip().startswith(("will activate", "skipped")):
            lines.append(f"`{plugin}`: {line.strip()}")
    return lines


def measure(commands: dict[str, list[str]], rounds: int, warmup: int, seed: int, env: dict[str, str], cwd: Path) -> tuple[Series, Series]:
    for _ in range(warmup):
        for command in commands.values():
            run(command, env, cwd)
    cpu, wall = Series(), Series()
    order, shuffle = list(commands), random.Random(seed).shuffle
    for index in range(rounds):
        progress(f"round {index + 1}/{rounds}")
        shuffle(order)
        for name in order:
            seconds, elapsed = run(commands[name], env, cwd)
            cpu.add(name, seconds)
            wall.add(name, elapsed)
    return cpu, wall


def report(modules: list[str], missing: list[str], cpu: Series, wall: Series, rounds: int, plugins: list[str]) -> str:
    header = ["SDK", "bare CPU ms", "genops-run CPU ms", "ratio", f"≤ {GOAL}", "IQR bare / genops ms", "bare wall ms", "genops-run wall ms", "wall ratio"]
    rows = []
    for module in modules:
        pair = (f"{module} bare", f"{module} genops")
        ratio = cpu.median(pair[1]) / cpu.median(pair[0])
        rows.append([f"`{module}`", *(f"{cpu.median(v) * 1e3:.1f}" for v in pair), f"**{ratio:.2f}×**", "met" if ratio <= GOAL else "not met",
                     " / ".join(f"{cpu.spread(v) * 1e3:.1f}" for v in pair), *(f"{wall.median(v) * 1e3:.1f}" for v in pair), f"{wall.median(pair[1]) / wall.median(pair[0]):.2f}×"])
    lines = [
        "# SDK import: bare `python -c \"import SDK\"` vs `genops-run python -c \"import SDK\"`",
        "",
        markdown_table(header, rows),
        "",
        f"Medians over {rounds} interleaved rounds (order shuffled each round) after warm-up runs (bytecode and start-up "
        f"caches warm). CPU = user + sys time of the child process (`getrusage(RUSAGE_CHILDREN)`); ratio = median under "
        f"`genops-run` / median bare; goal: ratio ≤ {GOAL} for each SDK. IQR: interquartile range over rounds (noise). "
        "Exporters `none`, no `GENOPS_*` variable set.",
        "",
        "Plugins (`genops-run --check`):",
        *[f"- {line}" for line in plugins],
        *[f"- `{module}` not measured: not installed" for module in missing],
        "",
        "Environment: " + environment(["genops-autoinstrument", *(name for pair in SDKS.values() for name in pair)]) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each command first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--note", help="a line to append to the report (how this run was set up)")
    parser.add_argument("--write", action="store_true", help="also write benchmarks/results/sdk_import.md (default: print only)")
    args = parser.parse_args(argv)
    launcher = BIN / "genops-run"
    if not launcher.exists():
        sys.exit(f"{launcher} not found: install the project into this interpreter's environment")
    modules = [module for module in SDKS if installed(module)]
    missing = [module for module in SDKS if module not in modules]
    for module in missing:
        progress(f"skipping {module}: not installed")
    python = str(BIN / "python")
    commands = {f"{module} {variant}": [*prefix, python, "-c", f"import {module}"] for module in modules for variant, prefix in (("bare", []), ("genops", [str(launcher)]))}
    with tempfile.TemporaryDirectory(prefix="genops-bench-") as folder:
        root = Path(folder)  # the children's working directory too: nothing local shadows an import
        env = child_environment(root / "cache")
        plugins = active_plugins(env, root)
        cpu, wall = measure(commands, args.rounds, args.warmup, args.seed, env, root)
    args.quick, args.no_write, args.results = False, not args.write, "sdk_import.md"  # what publish() reads
    publish(report(modules, missing, cpu, wall, args.rounds, plugins), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
