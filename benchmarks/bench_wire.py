"""Added cost of the GenOps wire layer: per non-model HTTP request, and per model call vs the SDK plugin.

Variants side by side in one process, in interleaved rounds whose order is shuffled each round:

* non-model requests (``POST /v1/uploads``, ``GET /health``) through ``httpx`` (an in-process
  ``MockTransport``) and ``requests`` (an in-process adapter mounted on the session): ``bare``
  against ``wire`` (the wire layer patched; each request pays its path lookup), and two probes of
  where that cost goes: ``wrapt no-op`` (a pass-through wrapt wrapper) and ``plain check`` (the
  path test in a plain function, no wrapt); the same four around a send method that does
  nothing (``send wrapper alone``), which isolates the added cost from the clients' own noise;
* one OpenAI chat call (the SDK's ``chat.completions.create`` over its own HTTP library, answered
  in-process): ``bare``, ``sdk`` (the OpenAI plugin alone) and ``wire`` (the wire layer alone, the
  same application code recorded at the HTTP layer), each with the production telemetry path
  (exporters that drop everything).

Reported: medians of per-round means (µs per request or call) and the median of per-round paired
differences against ``bare``; the goal for non-model requests is ≤ 2 µs added.

    .venv/bin/python benchmarks/bench_wire.py            # about a minute
    .venv/bin/python benchmarks/bench_wire.py --quick    # smoke run
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, environment, markdown_table, noop_telemetry, overhead_arguments, progress, publish, timed  # noqa: E402

RESULTS = "wire.md"
CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}
CHAT_BYTES = json.dumps(CHAT).encode()


def arguments(argv: Sequence[str] | None) -> Any:
    counts = {
        "requests": (1000, "non-model requests per variant per round"),
        "calls": (100, "model calls per variant per round"),
        "isolated": (20000, "sends of the wrapped no-op method per variant per round"),
    }
    return overhead_arguments(argv, __doc__.splitlines()[0], rounds=60, counts=counts, quick=(3, 200, 20, 2000), results=RESULTS)


def httpx_requests(count: int) -> Callable[[], None]:
    import httpx

    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=b'{"ok":true}')), base_url="http://files.internal")

    def batch() -> None:
        for _ in range(count // 2):
            client.post("/v1/uploads", content=b'{"name":"a.txt"}')
            client.get("/health")

    return batch


def requests_requests(count: int) -> Callable[[], None]:
    import requests
    from requests.adapters import BaseAdapter

    class Local(BaseAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            response = requests.Response()
            response.status_code, response._content, response.request, response.url = 200, b'{"ok":true}', request, request.url
            return response

        def close(self) -> None:
            return None

    session = requests.Session()
    session.mount("http://files.internal", Local())
    post = session.prepare_request(requests.Request("POST", "http://files.internal/v1/uploads", data=b'{"name":"a.txt"}'))
    get = session.prepare_request(requests.Request("GET", "http://files.internal/health"))

    def batch() -> None:
        for _ in range(count // 2):
            session.send(post)
            session.send(get)

    return batch


class Target:
    """A send method that does nothing: the isolated cost of what wraps it."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        return request


def isolated(requests_: tuple[Any, Any], count: int) -> Callable[[], None]:
    target, (post, get) = Target(), requests_

    def batch() -> None:
        send = target.send
        for _ in range(count // 2):
            send(post)
            send(get)

    return batch


def openai_calls(count: int) -> Callable[[], None]:
    import openai

    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - SDKs on classic httpx
        import httpx as http  # type: ignore[no-redef]
    transport = http.MockTransport(lambda request: http.Response(200, content=CHAT_BYTES, headers={"content-type": "application/json"}))
    client = openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1", http_client=http.Client(transport=transport), max_retries=0)
    messages = [{"role": "user", "content": "Say hello"}]

    def batch() -> None:
        for _ in range(count):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=20)

    return batch


def _passthrough(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    return wrapped(*args, **kwargs)


class Patched:
    """A variant that patches the same send method otherwise: wrapt with a pass-through wrapper
    (wrapt's own share of the wire layer's cost), or a plain function doing the wire layer's path
    test (what a cheaper patch than wrapt would cost)."""

    def __init__(self, owner: Any, name: str, adapter: Any, mode: str) -> None:
        self.owner, self.name, self.adapter, self.mode = owner, name, adapter, mode

    def instrument(self) -> None:
        import wrapt
        from genops_instrumentation_http._wrappers import sync_wrapper

        original = self.owner.__dict__[self.name]
        if self.mode != "plain":
            wrapper = sync_wrapper(self.adapter) if self.mode == "wire" else _passthrough
            setattr(self.owner, self.name, wrapt.FunctionWrapper(original, wrapper))
            return
        endpoint = self.adapter.endpoint

        def send(self_: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            if endpoint(request) is None:
                return original(self_, request, *args, **kwargs)
            raise AssertionError("only non-model requests here")  # pragma: no cover

        send.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(self.owner, self.name, send)

    def uninstrument(self) -> None:
        setattr(self.owner, self.name, self.owner.__dict__[self.name].__wrapped__)


class Layers:
    """Instrument one variant's layers for its turn, with an engine on no-op exporters."""

    def __init__(self) -> None:
        from genops_autoinstrument import config
        from genops_autoinstrument.engine.engine import Engine
        from genops_autoinstrument.engine.runtime import set_engine
        from genops_instrumentation_http import HTTPInstrumentor
        from genops_instrumentation_openai import OpenAIInstrumentor

        tracer_provider, meter_provider = noop_telemetry(genops=True)
        settings = config.load({"GENOPS_TEAM": "search"})
        config.set_current(settings)
        set_engine(Engine(settings, tracer_provider=tracer_provider, meter_provider=meter_provider))
        self.plugins = {"wire": HTTPInstrumentor(), "sdk": OpenAIInstrumentor()}

    def run(self, variant: str, batch: Callable[[], None], extra: dict[str, Any] | None = None) -> float:
        plugin = (extra or {}).get(variant) or self.plugins.get(variant)
        if plugin is not None:
            plugin.instrument()
        try:
            return timed(batch)
        finally:
            if plugin is not None:
                plugin.uninstrument()


def run(args: Any) -> dict[str, Series]:
    layers = Layers()
    import httpx
    import requests
    from genops_instrumentation_http._httpx import HttpxAdapter
    from genops_instrumentation_http._requests import RequestsAdapter

    nonmodel = ("bare", "wrapt no-op", "plain check", "wire")
    httpx_pair = (httpx.Request("POST", "http://files.internal/v1/uploads", content=b"{}"), httpx.Request("GET", "http://files.internal/health"))
    requests_pair = tuple(requests.Request(method, f"http://files.internal{path}", data=data).prepare() for method, path, data in (("POST", "/v1/uploads", b"{}"), ("GET", "/health", None)))
    plans = {
        "httpx non-model": (httpx_requests(args.requests), args.requests, nonmodel),
        "requests non-model": (requests_requests(args.requests), args.requests, nonmodel),
        "httpx request, send wrapper alone": (isolated(httpx_pair, args.isolated), args.isolated, nonmodel),
        "requests request, send wrapper alone": (isolated(requests_pair, args.isolated), args.isolated, nonmodel),
        "OpenAI chat call": (openai_calls(args.calls), args.calls, ("bare", "sdk", "wire")),
    }

    def probes(owner: Any, name: str, adapter: Any, real: bool) -> dict[str, Any]:
        variants = {"wrapt no-op": Patched(owner, name, adapter, "noop"), "plain check": Patched(owner, name, adapter, "plain")}
        return variants if real else {**variants, "wire": Patched(owner, name, adapter, "wire")}

    others = {
        "httpx non-model": probes(httpx.Client, "send", HttpxAdapter("httpx"), True),
        "requests non-model": probes(requests.Session, "send", RequestsAdapter(), True),
        "httpx request, send wrapper alone": probes(Target, "send", HttpxAdapter("httpx"), False),
        "requests request, send wrapper alone": probes(Target, "send", RequestsAdapter(), False),
    }
    results = {name: Series() for name in plans}
    rng = random.Random(args.seed)
    started = time.monotonic()
    for round_number in range(args.rounds):
        turns = [(name, variant) for name, (_, _, variants) in plans.items() for variant in variants]
        rng.shuffle(turns)
        for name, variant in turns:
            batch, count, _ = plans[name]
            results[name].add(variant, layers.run(variant, batch, others.get(name)) / count * 1e6)
        if round_number >= 4 and time.monotonic() - started > args.max_seconds:
            break
    progress(f"{round_number + 1} rounds")
    return results


def report(results: dict[str, Series], args: Any) -> str:
    rows = []
    for name, series in results.items():
        for variant in series.values:
            added = "" if variant == "bare" else f"{series.paired_delta(variant, 'bare'):+.2f}"
            ratio = "" if variant == "bare" else f"{series.median(variant) / series.median('bare'):.3f}×"
            rows.append([name, variant, f"{series.median(variant):.2f}", added, ratio, f"{series.spread(variant):.2f}"])
    table = markdown_table(["workload", "variant", "µs each (median)", "µs added vs bare (paired median)", "ratio", "IQR µs"], rows)
    packages = ("httpx", "httpx2", "requests", "openai", "genops-autoinstrument")
    return (
        f"# Wire layer overhead\n\n{environment(packages)}\n\n{round_count(results)} interleaved rounds, order shuffled each round.\n\n{table}\n\n"
        "Goal: a non-model request costs ≤ 2 µs more than bare. `wrapt no-op` is the same send method wrapped by "
        "wrapt with a pass-through wrapper (wrapt's own share); `plain check` is a plain function doing the wire "
        "layer's path test (what a patch without wrapt would cost).\n"
    )


def round_count(results: dict[str, Series]) -> int:
    return min(len(values) for series in results.values() for values in series.values.values())


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(argv)
    publish(report(run(args), args), args)


if __name__ == "__main__":
    main()
