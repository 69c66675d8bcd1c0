"""Per stream chunk: what GenOps' stream proxy adds to reading one OpenAI chat chunk, isolated.

    python benchmarks/bench_stream_chunk.py [--rounds 15] [--chunks 5000]

The end-to-end benchmark (``bench_openai_overhead.py``) times chunks through the SDK's SSE parsing,
where one chunk costs ~130 µs and the rounds spread by tens of µs per chunk, so a goal of < 1 µs
per chunk cannot be read there. This one reads pre-parsed ``ChatCompletionChunk`` objects (the
SDK's own types, from a realistic stream) from a list, so only the proxy's work differs:

* ``bare``: the application's ``for`` loop over the chunks;
* ``genops``: the same loop over GenOps' ``RecordedStream`` with the OpenAI plugin's accumulator;
* ``genops, call active while pulling``: the same with ``sends_while_pulling`` on (the behaviour
  before only google-genai's streams asked for it: the baseline of that change).

Interleaved rounds, order shuffled each round; each stream is ``--chunks`` long, so its begin and
end are spread thin. Reported: median ns per chunk and the median same-round difference from bare.
Writes ``benchmarks/results/stream_chunk.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

GOAL_NS = 1000.0


def _chunks(count: int) -> list[Any]:
    from openai.types.chat import ChatCompletionChunk

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Any:
        return ChatCompletionChunk.model_validate(
            {
                "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                "object": "chat.completion.chunk",
                "created": 1741569952,
                "model": "gpt-4o-mini-2024-07-18",
                "system_fingerprint": "fp_06737a9306",
                "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    words = [chunk({"content": f" word{i}"}) for i in range(count - 2)]
    return [chunk({"role": "assistant", "content": ""}), *words, chunk({}, "stop")]


def _variants() -> dict[str, Callable[[list[Any]], None]]:
    from genops_instrumentation_openai._streams import ChatStreamAccumulator

    from genops_autoinstrument.api import CallRequest, RecordedStream
    from genops_autoinstrument.engine.runtime import begin_call

    class ActiveWhilePulling(RecordedStream):
        sends_while_pulling = True

    def bare(chunks: list[Any]) -> None:
        for _ in iter(chunks):
            pass

    def proxied(proxy: type) -> Callable[[list[Any]], None]:
        def read(chunks: list[Any]) -> None:
            call = begin_call(CallRequest(provider="openai", operation="chat", request_model="gpt-4o-mini", streaming=True))
            for _ in proxy(iter(chunks), call, ChatStreamAccumulator(None, False)):
                pass

        return read

    return {"bare": bare, "genops": proxied(RecordedStream), "genops, call active while pulling": proxied(ActiveWhilePulling)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chunks", type=int, default=5000)
    args = parser.parse_args()

    from genops_autoinstrument.api.testing import capture

    chunks = _chunks(args.chunks)
    per_chunk: dict[str, list[float]] = {}
    with capture():  # GenOps' spans go to an in-memory exporter
        variants = _variants()
        for name in variants:
            per_chunk[name] = []
            variants[name](chunks)  # warm-up
        for _ in range(args.rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                began = time.thread_time_ns()
                variants[name](chunks)
                per_chunk[name].append((time.thread_time_ns() - began) / len(chunks))
    bare = per_chunk["bare"]
    lines = ["| variant | ns per chunk (median) | added vs bare, ns (median of same-round differences) |", "|---|---:|---:|"]
    added: dict[str, float] = {}
    for name, values in per_chunk.items():
        added[name] = statistics.median(v - b for v, b in zip(values, bare))
        lines.append(f"| {name} | {statistics.median(values):,.0f} | {'' if name == 'bare' else f'+{added[name]:,.0f}'} |")
    verdict = f"- GenOps adds **{added['genops']:,.0f} ns per chunk** (goal < {GOAL_NS:,.0f} ns: {'met' if added['genops'] < GOAL_NS else 'NOT met'}); with the call active while pulling (before): {added['genops, call active while pulling']:,.0f} ns."
    text = "\n".join(lines) + "\n\n" + verdict + "\n"
    print(text)
    import openai

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "stream_chunk.md"), "w") as handle:
        handle.write(
            "# Per stream chunk, isolated (benchmarks/bench_stream_chunk.py)\n\n"
            f"{args.rounds} interleaved rounds (order shuffled), streams of {args.chunks:,} pre-parsed openai {openai.__version__}"
            " `ChatCompletionChunk` objects read by a `for` loop; clock: the thread's CPU time. Content capture off, no"
            f" rules. Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s).\n\n" + text
        )


if __name__ == "__main__":
    main()
