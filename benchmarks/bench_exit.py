"""How long a program takes to exit under `genops-run`, from its last printed line to the end of the process.

The program uses the real OpenAI SDK for 3 chat completions against a local provider (a stdlib
HTTP server in this process answering a realistic ``chat.completion``), then prints ``last line``.
It runs bare (``python app.py``, the baseline) and under ``genops-run`` with the OTLP/HTTP
collector (1) down (connection refused on a closed loopback port), (2) hanging (a TCP server that
accepts and never answers) and (3) reachable (a stdlib receiver answering 200 to POST /v1/traces and
/v1/metrics). Rounds are interleaved, the variants shuffled each round; medians (min, max) of the
wall time from the last line to the exit, teardown included, and the median of per-round paired
differences against bare. Goal: the whole exit within ``GENOPS_EXIT_FLUSH_SECONDS`` (2 s) of the
last line, the collector down or hanging. This replaces the wall-clock assertions of
tests/hardening/test_exit_and_signals.py (tests never assert wall-clock time).

    python benchmarks/bench_exit.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, markdown_table, progress, write_result  # noqa: E402

BIN = Path(sys.executable).parent
GOAL_SECONDS = 2.0  # GENOPS_EXIT_FLUSH_SECONDS' default
STATES = ("down", "hanging", "reachable")
CHAT = {
    "id": "chatcmpl-BENCH0000000000000000000001", "object": "chat.completion", "created": 1760000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "- Spend rose 12%.\n- Search led.\n- Budgets held.", "refusal": None, "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_7c3d2a1b9e",
}
PROGRAM = """
import sys, time, openai
client = openai.OpenAI(api_key="sk-bench", base_url=sys.argv[1], max_retries=0)
for index in range(3):
    started = time.monotonic()
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Summarise the quarterly AI spend report, part %d." % index}])
    print("call %d %.3f %d" % (index, time.monotonic() - started, answer.usage.total_tokens))
print("last line")
"""


def serve(answer: Any) -> tuple[ThreadingHTTPServer, str]:
    """A loopback HTTP server whose POSTs are answered by ``answer(handler, path, body)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            answer(self, self.path, self.rfile.read(int(self.headers.get("content-length", 0))))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def reply(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def refused_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: connections are refused


def hanging_endpoint(held: list[socket.socket]) -> str:
    """A collector that accepts every connection and never answers (the connections kept in ``held``)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held.append(server)

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(seconds from the program's ``last line`` to the end of the process, its stderr)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("last line"):
            break
    last = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    elapsed = time.monotonic() - last
    if not lines or not lines[-1].startswith("last line") or process.returncode != 0:
        raise RuntimeError(f"{argv} failed ({process.returncode}): {lines} {stderr}")
    return elapsed, stderr


def load() -> str:
    """The 1-minute load average (other jobs share the cores)."""
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "unknown"


def normalised(line: str) -> str:
    """A stderr line without what differs between runs (ports, addresses, retry delays, the exception's text)."""
    line = re.sub(r" \(Caused by .*\)\)", "", line.strip())
    return re.sub(r"port=\d+|0x[0-9a-f]+|(?<=retrying in )[\d.]+(?=s)", "…", line)[:240]


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    received: Counter[str] = Counter()
    provider, provider_url = serve(lambda handler, path, body: reply(handler, json.dumps(CHAT).encode(), "application/json"))
    collector, collector_url = serve(lambda handler, path, body: (received.update([path]), reply(handler, b"", "application/x-protobuf")))
    held: list[socket.socket] = []
    root = Path(tempfile.mkdtemp(prefix="genops-bench-exit-"))
    app = root / "app.py"
    app.write_text(PROGRAM)
    base = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON", "OPENAI_"))}
    base.update(XDG_CACHE_HOME=str(root / "cache"), PYTHONUNBUFFERED="1", OTEL_SERVICE_NAME="bench-exit", OTEL_TRACES_EXPORTER="otlp",
                OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_ENDPOINT=refused_endpoint())
    endpoints = {"down": refused_endpoint, "hanging": lambda: hanging_endpoint(held), "reachable": lambda: collector_url}
    python, launcher = str(BIN / "python"), str(BIN / "genops-run")
    variants = ["bare", *STATES]
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    stderr_lines: dict[str, Counter[str]] = {variant: Counter() for variant in variants}
    load_before, rng = load(), random.Random(args.seed)
    try:
        for round_index in range(-1, args.rounds):  # round -1 warms the file cache, .pyc files and GenOps' start-up cache
            rng.shuffle(variants)
            for variant in variants:
                env = dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=endpoints.get(variant, refused_endpoint)())
                argv = [python, str(app), f"{provider_url}/v1"]
                elapsed, stderr = run_once(argv if variant == "bare" else [launcher, *argv], env)
                if round_index < 0:
                    received.clear()
                    continue
                samples[variant].append(elapsed)
                stderr_lines[variant].update(normalised(line) for line in stderr.splitlines() if line.strip())
            progress(f"round {round_index + 1}/{args.rounds}: " + ", ".join(f"{name} {samples[name][-1]:.2f}s" for name in ("bare", *STATES)) if samples["bare"] else "warmed up")
    finally:
        provider.shutdown()
        collector.shutdown()
        for sock in held:
            sock.close()
        shutil.rmtree(root, ignore_errors=True)
    rows = [["bare `python app.py` (baseline)", stats(samples["bare"]), "—", "—", "—"]]
    verdicts = []
    for state in STATES:
        values = samples[state]
        delta = statistics.median(v - b for v, b in zip(values, samples["bare"]))
        over = sum(value > GOAL_SECONDS for value in values)
        verdict = "met" if statistics.median(values) <= GOAL_SECONDS else "NOT met"
        verdicts.append(f"- collector {state}: median exit {statistics.median(values):.2f} s, worst {max(values):.2f} s: **{verdict}**")
        rows.append([f"`genops-run`, collector {state}", stats(values), f"{delta:+.2f}", f"{over}/{len(values)}", f"**{verdict}**"])
    per_run = {path: count / args.rounds for path, count in sorted(received.items())}
    notes = [f"- `{variant}` stderr (count over {args.rounds} runs): " + "; ".join(f"`{line}` ×{count}" for line, count in lines.most_common(6))
             for variant, lines in stderr_lines.items() if lines]
    text = f"""# Exit time under `genops-run` (benchmarks/bench_exit.py)

{environment(["openai", "opentelemetry-sdk", "genops-autoinstrument"])}; load average {load_before} at the start, {load()} at the end

The real OpenAI SDK makes 3 chat completions against a loopback provider, then prints `last line`;
seconds of wall time from that line to the end of the process (interpreter teardown included),
{args.rounds} interleaved rounds (variants shuffled each round), median (min–max); "added" is the median of
per-round paired differences against bare. OTLP/HTTP (protobuf), default `GENOPS_EXIT_FLUSH_SECONDS` (2 s).
Goal: the whole exit within 2 s of the last line (verdict on the median; the worst round is shown too).

{markdown_table(["variant", "exit s, median (min–max)", "added vs bare s", "rounds over 2 s", "goal ≤ 2 s"], rows)}

{chr(10).join(verdicts)}

Reachable collector, requests received per run: {", ".join(f"`{path}` {count:.1f}" for path, count in per_run.items()) or "none"}.
{chr(10).join(notes) or "No variant wrote to stderr."}
"""
    print(text)
    progress(f"written to {write_result('exit.md', text)}")


if __name__ == "__main__":
    main()
