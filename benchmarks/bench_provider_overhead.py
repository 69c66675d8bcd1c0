"""Per-call and per-chunk overhead of the GenOps Anthropic, Bedrock and Google Gen AI plugins.

The same method as ``bench_openai_overhead.py``: two variants in one process, in interleaved
rounds whose order is shuffled each round:

* ``bare``: the provider SDKs, nothing instrumented;
* ``genops``: the three GenOps plugins, engine with a BatchSpanProcessor and a periodic metric
  reader whose exporters drop everything (the production path minus network I/O), attribution set.

Each variant is instrumented at the start of its turn and uninstrumented at the end. No socket is
opened: anthropic and google-genai talk to an in-process ``MockTransport`` (their ``http_client``
/ ``http_options.httpx_client``), and botocore answers from a ``before-send`` event hook that
returns an ``AWSResponse`` built from pre-encoded bytes (botocore's documented way to
short-circuit the HTTP layer; serialization, SigV4 signing and parsing still run). Reported:
medians of per-round means, and the median of per-round paired differences against ``bare``
(µs added). A stream call is split into its fixed part (create + end of stream) and its chunk
phase, giving µs per chunk (event).

    .venv/bin/python benchmarks/bench_provider_overhead.py            # ~1-2 minutes
    .venv/bin/python benchmarks/bench_provider_overhead.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import Series, environment, markdown_table, noop_telemetry, progress, timed  # noqa: E402

CHUNKS = 50  # items the application receives from one stream
SYSTEM = "You are a concise assistant."
PROMPT = "Summarise the quarterly AI spend report in three bullet points."
ANSWER = "- Spend rose 12%.\n- Search led.\n- Budgets held."


def _http() -> Any:
    """The HTTP library of the SDKs' mock transports: httpx2 when installed, else classic httpx."""
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - SDKs on classic httpx
        import httpx as http  # type: ignore[no-redef]
    return http


# --- providers: an SDK client answered in-process, one call and one stream ------------------------
class Provider:
    """One SDK: ``call()`` makes a non-streaming call; ``open_stream()`` returns the iterator the app reads."""

    key = ""
    label = ""
    call_label = ""
    stream_label = ""
    plugin = ""  # the genops_instrumentor entry point
    packages: tuple[str, ...] = ()
    #: items pulled while opening the stream, before the chunk phase (google-genai sends the
    #: request on the first ``next()``, so its first chunk belongs to the fixed part)
    primed = 0
    transport = ""
    available = True
    reason = ""

    def call(self) -> Any:
        raise NotImplementedError

    def open_stream(self) -> Iterator[Any]:
        raise NotImplementedError

    @property
    def chunk_items(self) -> int:
        return CHUNKS - self.primed


def _sse(data: list[Any], named: bool = False) -> list[bytes]:
    """One SSE event per body read; ``named`` adds Anthropic's ``event:`` line."""
    out = []
    for item in data:
        line = b"data: " + json.dumps(item, separators=(",", ":")).encode() + b"\n\n"
        out.append((f"event: {item['type']}\n".encode() + line) if named else line)
    return out


class Anthropic(Provider):
    key = "anthropic"
    label = "Anthropic"
    call_label = "messages.create"
    stream_label = f"messages.create(stream=True), {CHUNKS} events"
    plugin = "anthropic"
    packages = ("anthropic", "genops-instrumentation-anthropic")
    model = "claude-sonnet-4-6"

    def __init__(self) -> None:
        import anthropic

        http = _http()
        body = json.dumps(
            {
                "id": "msg_01BENCH00000000000000001",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 17, "service_tier": "standard"},
            }
        ).encode()
        events = self.stream_events()
        json_headers = {"content-type": "application/json", "request-id": "req_bench"}
        sse_headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_bench"}

        def answer(request: Any) -> Any:
            if b'"stream":true' in request.content:
                return http.Response(200, headers=sse_headers, content=iter(events))
            return http.Response(200, headers=json_headers, content=body)

        self.client = anthropic.Anthropic(api_key="sk-ant-bench", max_retries=0, http_client=http.Client(transport=http.MockTransport(answer)))
        self.transport = f"{http.__name__}.MockTransport"

    def stream_events(self) -> list[bytes]:
        """message_start, content_block_start, (a ping, not delivered), deltas, block stop, message_delta, message_stop: CHUNKS delivered."""
        deltas = CHUNKS - 5
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_01BENCH00000000000000002",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"},
            },
        }
        data: list[dict[str, Any]] = [start, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, {"type": "ping"}]
        data += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f" word{i}"}} for i in range(deltas)]
        data += [
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": deltas}},
            {"type": "message_stop"},
        ]
        return _sse(data, named=True)

    def call(self) -> Any:
        return self.client.messages.create(model=self.model, max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}])

    def open_stream(self) -> Iterator[Any]:
        stream = self.client.messages.create(model=self.model, max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": PROMPT}], stream=True)
        return iter(stream)


class _Raw:
    """The ``raw`` of an AWSResponse: what botocore reads (``stream()``) and closes, here pre-encoded frames."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        pass


def _frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message (prelude with CRC32, string headers, JSON payload, message CRC32)."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        headers += struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value.encode()
    body = json.dumps(payload, separators=(",", ":")).encode()
    prelude = struct.pack("!II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF) + headers + body
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


class Bedrock(Provider):
    key = "bedrock"
    label = "Bedrock"
    call_label = "converse"
    stream_label = f"converse_stream, {CHUNKS} events"
    plugin = "bedrock"
    packages = ("boto3", "botocore", "genops-instrumentation-bedrock")
    model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    transport = "botocore `before-send` hook returning an `AWSResponse`"

    def __init__(self) -> None:
        # Nothing from this machine's AWS configuration: fixed test credentials, no metadata service.
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        import boto3
        from botocore.awsrequest import AWSResponse
        from botocore.config import Config

        body = json.dumps(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 31, "outputTokens": 17, "totalTokens": 48},
                "metrics": {"latencyMs": 412},
            }
        ).encode()
        frames = self.stream_frames()
        json_headers = {"Content-Type": "application/json", "x-amzn-RequestId": "11111111-2222-3333-4444-555555555555", "Content-Length": str(len(body))}
        stream_headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "11111111-2222-3333-4444-555555555556"}

        def converse(request: Any, **kwargs: Any) -> Any:
            return AWSResponse(request.url, 200, json_headers, _Raw([body]))

        def converse_stream(request: Any, **kwargs: Any) -> Any:
            return AWSResponse(request.url, 200, stream_headers, _Raw(frames))

        session = boto3.session.Session(aws_access_key_id="AKIDBENCH0000000000", aws_secret_access_key="bench-secret", region_name="us-east-1")
        self.client = session.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))
        self.client.meta.events.register("before-send.bedrock-runtime.Converse", converse)
        self.client.meta.events.register("before-send.bedrock-runtime.ConverseStream", converse_stream)

    @staticmethod
    def stream_frames() -> list[bytes]:
        """messageStart, text deltas, contentBlockStop, messageStop, metadata: CHUNKS events, one frame per read."""
        deltas = CHUNKS - 4
        frames = [_frame("messageStart", {"role": "assistant", "p": "abcd"})]
        frames += [_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" word{i}"}, "p": "abcd"}) for i in range(deltas)]
        frames += [
            _frame("contentBlockStop", {"contentBlockIndex": 0, "p": "abcd"}),
            _frame("messageStop", {"stopReason": "end_turn", "p": "abcd"}),
            _frame("metadata", {"usage": {"inputTokens": 31, "outputTokens": deltas, "totalTokens": 31 + deltas}, "metrics": {"latencyMs": 377}, "p": "abcd"}),
        ]
        return frames

    def _params(self) -> dict[str, Any]:
        return {
            "modelId": self.model,
            "system": [{"text": SYSTEM}],
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {"maxTokens": 100},
        }

    def call(self) -> Any:
        return self.client.converse(**self._params())

    def open_stream(self) -> Iterator[Any]:
        return iter(self.client.converse_stream(**self._params())["stream"])


class Google(Provider):
    key = "google_genai"
    label = "Google Gen AI"
    call_label = "models.generate_content"
    stream_label = f"models.generate_content_stream, {CHUNKS} chunks"
    plugin = "google_genai"
    packages = ("google-genai", "genops-instrumentation-google-genai")
    model = "gemini-2.5-flash"
    primed = 1

    def __init__(self) -> None:
        from google import genai

        http = _http()
        usage = {"promptTokenCount": 31, "candidatesTokenCount": 17, "totalTokenCount": 48, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}
        body = json.dumps(self.body(ANSWER, usage, "STOP")).encode()
        events = self.stream_events()
        json_headers = {"content-type": "application/json; charset=UTF-8"}
        sse_headers = {"content-type": "text/event-stream"}

        def answer(request: Any) -> Any:
            if request.url.params.get("alt") == "sse":
                return http.Response(200, headers=sse_headers, content=iter(events))
            return http.Response(200, headers=json_headers, content=body)

        transport = http.MockTransport(answer)
        options = {"httpx_client": http.Client(transport=transport), "httpx_async_client": http.AsyncClient(transport=transport)}
        self.client = genai.Client(api_key="bench-key", http_options=options)
        self.transport = f"{http.__name__}.MockTransport"

    @staticmethod
    def body(text: str, usage: dict[str, Any], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "5dQwaPqgLq6Gz7IPh8u3kAg"}

    def stream_events(self) -> list[bytes]:
        """CHUNKS chunks with running usage, finishReason and final usage on the last, as the API sends them."""
        running = {"promptTokenCount": 31, "totalTokenCount": 31}
        final = {"promptTokenCount": 31, "candidatesTokenCount": CHUNKS, "totalTokenCount": 31 + CHUNKS}
        data = [self.body(f" word{i}", running, None) for i in range(CHUNKS - 1)]
        data.append(self.body(" done.", final, "STOP"))
        return [line.replace(b"\n\n", b"\r\n\r\n") for line in _sse(data)]

    def call(self) -> Any:
        from google.genai import types

        return self.client.models.generate_content(model=self.model, contents=PROMPT, config=types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=100))

    def open_stream(self) -> Iterator[Any]:
        from google.genai import types

        stream = self.client.models.generate_content_stream(model=self.model, contents=PROMPT, config=types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=100))
        return iter(stream)


def load_providers() -> list[Provider]:
    providers: list[Provider] = []
    for cls in (Anthropic, Bedrock, Google):
        try:
            providers.append(cls())
        except Exception as error:
            missing = cls.__new__(cls)
            missing.available, missing.reason = False, f"{type(error).__name__}: {error}"
            providers.append(missing)
    return providers


# --- variants ------------------------------------------------------------------------------------
class Bare:
    name = "bare"
    label = "bare SDK"

    def on(self, engine: Any = None) -> None:
        pass

    def off(self) -> None:
        pass


class GenOps(Bare):
    """The GenOps plugins of the measured providers, recording into production-like telemetry."""

    name = "genops"
    label = "GenOps"

    def __init__(self, providers: list[Provider]) -> None:
        from importlib.metadata import entry_points

        from genops_autoinstrument import config
        from genops_autoinstrument.engine.engine import Engine
        from genops_autoinstrument.engine.runtime import set_engine

        self.instrumentors = []
        for provider in providers:
            if not provider.available:
                continue
            found = entry_points(group="genops_instrumentor", name=provider.plugin)
            if not found:
                provider.available, provider.reason = False, f"GenOps plugin {provider.plugin!r} is not installed"
                continue
            self.instrumentors.append(next(iter(found)).load()())
        tracer_provider, meter_provider = noop_telemetry(genops=True)
        self.settings = config.load({"GENOPS_TEAM": "search", "GENOPS_PROJECT": "overhead-bench", "GENOPS_ENVIRONMENT": "bench"})
        self.engine = Engine(self.settings, tracer_provider=tracer_provider, meter_provider=meter_provider)
        self._config, self._set_engine = config, set_engine

    def on(self, engine: Any = None) -> None:
        self._config.set_current(self.settings)
        self._set_engine(engine or self.engine)
        for instrumentor in self.instrumentors:
            instrumentor.instrument(skip_dep_check=True)

    def off(self) -> None:
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        flush = getattr(self.engine, "flush", None)
        if flush is not None:  # the deferred work of this turn, before the next variant's clock starts
            flush()
        self._set_engine(None)


# --- measurement ---------------------------------------------------------------------------------
def call_batch(provider: Provider, calls: int) -> Callable[[], None]:
    call = provider.call

    def run() -> None:
        for _ in range(calls):
            call()

    return run


def stream_batch(provider: Provider, streams: int, phases: list[float]) -> Callable[[], None]:
    """Run ``streams`` streams; put (fixed seconds, chunk-phase seconds) in ``phases``."""
    open_stream, primed, items = provider.open_stream, provider.primed, provider.chunk_items
    clock = _common.clock

    def run() -> None:
        fixed = chunked = 0.0
        for _ in range(streams):
            t0 = clock()
            iterator = open_stream()
            for _ in range(primed):
                next(iterator)
            t1 = clock()
            for _ in range(items):
                next(iterator)
            t2 = clock()
            for _ in iterator:  # end of stream: the instrumentation ends its span here
                raise AssertionError(f"{provider.label}: more than {CHUNKS} stream items")
            t3 = clock()
            fixed += (t1 - t0) + (t3 - t2)
            chunked += t2 - t1
        phases[:] = [fixed, chunked]

    return run


class _NoSockets:
    """While active, opening a connection fails: proves the measured path has no network I/O."""

    def __enter__(self) -> None:
        self.saved = socket.socket.connect

        def refuse(*args: Any) -> None:
            raise AssertionError("the benchmark opened a socket")

        socket.socket.connect = refuse  # type: ignore[method-assign]

    def __exit__(self, *exc: Any) -> None:
        socket.socket.connect = self.saved  # type: ignore[method-assign]


def check(providers: list[Provider], genops: GenOps) -> dict[str, str]:
    """Every provider answers (CHUNKS stream items, no socket) and GenOps records both calls with their tokens; else exit. Returns the cost status per provider."""
    from genops_autoinstrument import semconv
    from genops_autoinstrument.api.testing import capture

    costs: dict[str, str] = {}
    with _NoSockets():
        for provider in providers:
            provider.call()
            count = sum(1 for _ in provider.open_stream())
            if count != CHUNKS:
                raise SystemExit(f"{provider.label}: the stream delivered {count} items instead of {CHUNKS}")
            with capture(genops.settings) as recorded:
                genops.on(recorded.engine)
                try:
                    provider.call()
                    for _ in provider.open_stream():
                        pass
                finally:
                    genops.off()
                spans = recorded.spans()
            tokens = [span.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS) for span in spans]
            if len(spans) != 2 or not all(tokens):
                raise SystemExit(f"GenOps recorded {len(spans)} {provider.label} spans (output tokens {tokens}) instead of 2; the benchmark would measure nothing")
            costs[provider.label] = ", ".join(str(span.attributes.get(semconv.GENOPS_COST_STATUS)) for span in spans)
    return costs


def run(rounds: int, calls: int, streams: int, seed: int, max_seconds: float) -> dict[str, Any]:
    providers = load_providers()
    genops = GenOps(providers)
    for provider in providers:
        if not provider.available:
            progress(f"{provider.label or type(provider).__name__}: not measured ({provider.reason})")
    active = [provider for provider in providers if provider.available]
    if not active:
        raise SystemExit("no provider SDK with its GenOps plugin is installed")
    costs = check(active, genops)
    # The loaded SDKs are ~250k long-lived objects: a full collection before each timed batch
    # would cost ~90 ms (most of a round). Frozen, they are skipped by every collection, alike
    # for both variants; what the calls allocate is still collected as usual.
    gc.collect()
    gc.freeze()
    variants: list[Bare] = [Bare(), genops]
    series: dict[str, Series] = {}
    order = random.Random(seed)
    phases: list[float] = [0.0, 0.0]
    started = time.perf_counter()
    for round_number in range(rounds + 1):  # round 0 warms up and is discarded
        order.shuffle(variants)
        for variant in variants:
            variant.on()
            measured: list[tuple[Provider, float, list[float]]] = []
            try:
                for provider in order.sample(active, len(active)):
                    call_batch(provider, 3)()  # first calls after patching fill caches
                    elapsed = timed(call_batch(provider, calls))
                    streamed = timed(stream_batch(provider, streams, phases))
                    measured.append((provider, elapsed, [streamed, *phases]))
            finally:
                variant.off()
            if round_number == 0:
                continue
            for provider, elapsed, (streamed, fixed, chunked) in measured:
                for kind, value in (
                    ("call", elapsed / calls),
                    ("stream", streamed / streams),
                    ("fixed", fixed / streams),
                    ("chunk", chunked / streams / provider.chunk_items),
                ):
                    series.setdefault(f"{provider.key}.{kind}", Series()).add(variant.name, value * 1e6)
        if round_number and round_number % 10 == 0:
            progress(f"round {round_number}/{rounds} ({time.perf_counter() - started:.0f}s)")
        if round_number >= 5 and time.perf_counter() - started > max_seconds:
            progress(f"stopping after {round_number} rounds: --max-seconds {max_seconds:.0f} reached")
            rounds = round_number
            break
    gc.unfreeze()
    return {"rounds": rounds, "providers": providers, "series": series, "costs": costs, "seconds": time.perf_counter() - started}


def summary(result: dict[str, Any]) -> str:
    """One line for the benchmarks README: µs added per call and per chunk, per provider."""
    series = result["series"]
    parts = []
    for provider in result["providers"]:
        if provider.available:
            call = series[f"{provider.key}.call"].paired_delta("genops", "bare")
            chunk = series[f"{provider.key}.chunk"].paired_delta("genops", "bare")
            parts.append(f"{provider.label} **{call:+.0f} µs**/call, **{chunk:+.2f} µs**/chunk")
    return "; ".join(parts)


def report(result: dict[str, Any], calls: int, streams: int) -> str:
    series = result["series"]
    header = ["measurement", "bare SDK µs", "GenOps µs", "GenOps added µs", "GenOps ratio", "IQR bare / GenOps µs"]
    rows = []
    for provider in result["providers"]:
        if not provider.available:
            continue
        labels = {
            "call": f"{provider.call_label} (per call)",
            "stream": f"{provider.stream_label} (per call)",
            "fixed": "… create + end of stream" + (" (incl. the first chunk: the request is sent on it)" if provider.primed else ""),
            "chunk": "… per chunk" + (f" (chunks 2-{CHUNKS})" if provider.primed else ""),
        }
        for kind, label in labels.items():
            data = series[f"{provider.key}.{kind}"]
            digits = 2 if kind == "chunk" else 1
            rows.append(
                [
                    f"{provider.label}: {label}",
                    f"{data.median('bare'):.{digits}f}",
                    f"{data.median('genops'):.{digits}f}",
                    f"{data.paired_delta('genops', 'bare'):+.{digits}f}",
                    f"{data.median('genops') / data.median('bare'):.3f}",
                    f"{data.spread('bare'):.{digits}f} / {data.spread('genops'):.{digits}f}",
                ]
            )
    clock = (
        "wall time (`time.perf_counter`)"
        if _common.clock is time.perf_counter
        else "CPU time of the application thread (`time.thread_time`), so time spent waiting for a core on a busy machine is not "
        "counted; work deferred to background threads (span export, GenOps' span completion and metrics) is not counted either"
    )
    transports = "; ".join(f"{provider.label}: {provider.transport}" for provider in result["providers"] if provider.available)
    packages = ["opentelemetry-sdk", "genops-autoinstrument"] + [name for provider in result["providers"] for name in provider.packages]
    lines = [
        "# Provider SDK overhead: bare vs GenOps (Anthropic, Bedrock, Google Gen AI)",
        "",
        markdown_table(header, rows),
        "",
        "Medians over rounds of per-round means; *added* is the median of same-round differences from the bare SDK; "
        "*ratio* is GenOps / bare; *IQR* is the interquartile range over rounds (noise).",
        "",
        f"- GenOps adds: {summary(result)}.",
        "- Every GenOps call in the pre-run check was recorded with its tokens; cost status per provider (call, stream): "
        + "; ".join(f"{key} {status}" for key, status in result["costs"].items())
        + ".",
        "",
        f"Clock: {clock}. Setup: the real SDKs, no socket (a pre-run check fails if one is opened) — {transports} — "
        f"answering with pre-encoded provider-shaped responses; {result['rounds']} interleaved rounds (variant order "
        "and provider order shuffled each round, one warm-up round discarded) of "
        f"{calls} non-streaming calls and {streams} streams of {CHUNKS} items per provider per variant. "
        "GenOps: the three plugins instrumented together (as `genops-run` would), attribution from "
        "`GENOPS_TEAM`/`GENOPS_PROJECT`/`GENOPS_ENVIRONMENT`, no budget rules, content capture off; spans go to a "
        "`TracerProvider` with a `BatchSpanProcessor` and metrics to a `MeterProvider` with a "
        "`PeriodicExportingMetricReader`, whose exporters drop everything. The Anthropic SDK's own tracing is left on "
        "(its default) with no global tracer provider, so in the bare runs its span is non-recording; under GenOps the "
        "plugin replaces that span. A stream's *chunk phase* is the application's `next()` calls on the stream's items; "
        "google-genai sends the request on the first `next()`, so its first chunk is counted in the fixed part. "
        "After set-up the objects of the loaded SDKs are moved out of the collector's reach (`gc.freeze()`), so the "
        "collection before each timed batch takes ~1 ms instead of ~90 ms; the GC stays enabled. "
        f"Run time {result['seconds']:.0f} s.",
        "",
        "Environment: " + environment(list(dict.fromkeys(packages))) + ".",
    ]
    for provider in result["providers"]:
        if not provider.available:
            lines.append(f"- {provider.label or type(provider).__name__} was not measured: {provider.reason}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _common.overhead_arguments(
        argv,
        __doc__.split("\n\n")[0],
        rounds=150,
        counts={"calls": (30, "non-streaming calls per provider per variant per round"), "streams": (6, "streams per provider per variant per round")},
        quick=(3, 4, 1),
        results="provider_overhead.md",
    )
    result = run(args.rounds, args.calls, args.streams, args.seed, args.max_seconds)
    _common.publish(report(result, args.calls, args.streams), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
