"""gunicorn (sync workers, --preload) and uvicorn (--workers) under `genops-run` (checklist 6, 26, 27).

Every request makes one real OpenAI call against the local endpoint and answers with the worker's
pid and the call's outcome (``ok`` or the class name of the error the SDK raised). The tests check
that every worker records its own calls, that nothing a process recorded is exported twice after a
fork, and that one budget on the default SQLite ledger holds across all the workers.
"""

from __future__ import annotations

import concurrent.futures
import re
from typing import Any

import pytest

pytest.importorskip("openai")

WSGI_APP = '''
import json, os
import openai

MAX_TOKENS = int(os.environ["FLEET_MAX_TOKENS"])
_clients = {}


def ask(text, client=None):
    """One chat call; returns "ok" or the class name of the error the SDK raised."""
    if client is None:
        # One client per process: a client made before gunicorn forks would share its pooled
        # connections with every worker (an application bug, unrelated to GenOps).
        client = _clients.get(os.getpid()) or _clients.setdefault(os.getpid(), openai.OpenAI(max_retries=0))
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], max_tokens=MAX_TOKENS)
        return "ok"
    except openai.RateLimitError as error:
        return type(error).__name__


WARMUP = None
if os.environ.get("FLEET_WARMUP"):  # with --preload this runs once, in the gunicorn master, before the fork
    with openai.OpenAI(max_retries=0) as warmup_client:
        WARMUP = ask("warmup pid %d" % os.getpid(), warmup_client)


def app(environ, start_response):
    result = None
    if environ["PATH_INFO"] != "/health":
        result = ask("request %s pid %d" % (environ.get("QUERY_STRING", ""), os.getpid()))
    body = json.dumps({"pid": os.getpid(), "result": result, "warmup": WARMUP}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''

ASGI_APP = '''
import json, os
import openai

MAX_TOKENS = int(os.environ["FLEET_MAX_TOKENS"])
client = openai.AsyncOpenAI(max_retries=0)  # uvicorn's workers are spawned: each imports this afresh


async def ask(text):
    try:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], max_tokens=MAX_TOKENS)
        return "ok"
    except openai.RateLimitError as error:
        return type(error).__name__


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    result = None
    if scope["path"] != "/health":
        result = await ask("request %s pid %d" % (scope["query_string"].decode(), os.getpid()))
    body = json.dumps({"pid": os.getpid(), "result": result}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
'''

BLOCKED = "GenOpsRateLimitError"  # openai.RateLimitError + genops PolicyViolation


def _rounds(server: Any, width: int, want_pids: int, min_requests: int, max_rounds: int) -> list[list[dict[str, Any]]]:
    """Rounds of ``width`` concurrent requests until ``want_pids`` workers answered and enough were sent."""
    rounds: list[list[dict[str, Any]]] = []
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(width) as pool:
        for number in range(max_rounds):
            tags = [f"r{number}-{index}" for index in range(width)]
            answers = list(pool.map(lambda tag: {**server.get(f"/chat?{tag}"), "tag": tag}, tags))
            rounds.append(answers)
            sent += width
            if len({answer["pid"] for round_ in rounds for answer in round_}) >= want_pids and sent >= min_requests:
                break
    return rounds


def _check_budget_rounds(rounds: list[list[dict[str, Any]]], allowed: int) -> list[dict[str, Any]]:
    """Exactly ``allowed`` calls ran; every other one was blocked, and none ran after the first block."""
    answers = [answer for round_ in rounds for answer in round_]
    assert sum(answer["result"] == "ok" for answer in answers) == allowed, answers
    assert {answer["result"] for answer in answers} <= {"ok", BLOCKED}, answers
    first_blocked = next(index for index, round_ in enumerate(rounds) if any(a["result"] == BLOCKED for a in round_))
    assert all(answer["result"] == BLOCKED for round_ in rounds[first_blocked + 1 :] for answer in round_), rounds
    return answers


def _check_spans_match_answers(fleet: Any, answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One GenOps span per request, exported by the worker that answered it, with its outcome."""
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for span in fleet.genai_spans():
        by_prompt.setdefault(fleet.prompt_of(span), []).append(span)
    duplicated = {prompt: [span["pid"] for span in spans] for prompt, spans in by_prompt.items() if len(spans) > 1}
    assert not duplicated, f"spans exported more than once: {duplicated}"
    spans = {}
    for answer in answers:
        prompt = f"request {answer['tag']} pid {answer['pid']}"
        assert prompt in by_prompt, (prompt, sorted(by_prompt))
        (span,) = by_prompt[prompt]
        assert span["pid"] == answer["pid"]
        attributes = span["attributes"]
        if answer["result"] == "ok":
            assert attributes["genops.policy.result"] == "ALLOWED"
            assert attributes["genops.cost.total"] == pytest.approx(fleet.call_cost)
            assert attributes["gen_ai.usage.output_tokens"] == 8
        else:
            assert attributes["genops.policy.result"] == "BLOCKED"
            assert attributes["genops.policy.reason_code"] == "BUDGET_EXCEEDED"
            assert "genops.cost.total" not in attributes
        spans[answer["tag"]] = span
    return spans


def _summary_costs(output: str) -> list[float]:
    return [float(cost) for cost in re.findall(r"total cost: \$([0-9.]+) over \d+ calls", output)]


def test_gunicorn_preload_workers_are_instrumented_and_share_one_budget(fleet: Any) -> None:
    pytest.importorskip("gunicorn")
    fleet.app("wsgi_app.py", WSGI_APP)
    port = fleet.free_port()
    env = fleet.env(
        FLEET_WARMUP="1",
        GENOPS_BUDGETS="global=0.075/total",  # 7 calls of $0.01: the master's warm-up and 6 requests
        GENOPS_SUMMARY="1",
        GENOPS_LEDGER_URL=None,  # the default ledger: $XDG_STATE_HOME/genops/ledger.db, one per machine
    )
    argv = [fleet.genops_run(), "gunicorn", "--preload", "-w", "3", "-k", "sync", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "20", "wsgi_app:app"]
    server = fleet.serve(argv, env, port)
    server.wait_ready()
    master = server.process.pid  # genops-run execs: the gunicorn master keeps the launcher's pid
    fleet.provider.latency = 0.2  # a busy sync worker accepts nothing else, so a round reaches every worker
    try:
        rounds = _rounds(server, width=3, want_pids=3, min_requests=9, max_rounds=8)
    finally:
        fleet.provider.latency = 0.0
    assert server.stop() == 0, server.output()

    answers = _check_budget_rounds(rounds, allowed=6)
    workers = {answer["pid"] for answer in answers}
    assert len(workers) == 3 and master not in workers, answers
    assert {answer["warmup"] for answer in answers} == {"ok"}
    assert len({answer["pid"] for answer in answers if answer["result"] == "ok"}) >= 2, "the budget was shared by several workers"

    spans = _check_spans_match_answers(fleet, answers)
    warmups = [span for span in fleet.genai_spans() if fleet.prompt_of(span).startswith("warmup")]
    assert [(span["pid"], fleet.prompt_of(span)) for span in warmups] == [(master, f"warmup pid {master}")]
    assert len(fleet.genai_spans()) == len(spans) + 1
    instances = {span["resource"]["attributes"]["service.instance.id"] for span in fleet.genai_spans()}
    assert len(instances) == 4, "the master and each worker export under their own service.instance.id"

    # genops.cost: each process exports only its own calls, under its own service.instance.id.
    totals = fleet.metric_totals("genops.cost")
    assert len({pid for pid, _ in totals}) == len(totals), totals
    per_pid = {pid: total for (pid, _), total in totals.items()}
    assert per_pid[master] == pytest.approx(fleet.call_cost)
    for worker in workers:
        ran = sum(answer["result"] == "ok" and answer["pid"] == worker for answer in answers)
        assert per_pid.get(worker, 0.0) == pytest.approx(ran * fleet.call_cost), (worker, totals)
    assert sum(per_pid.values()) == pytest.approx(7 * fleet.call_cost)
    # GENOPS_SUMMARY: one table per process, and the tables add up to the same 7 calls.
    assert sum(_summary_costs(server.output())) == pytest.approx(7 * fleet.call_cost), server.output()
    assert (fleet.root / "state" / "genops" / "ledger.db").is_file() and not fleet.ledger.exists()


def test_uvicorn_workers_are_instrumented_and_share_one_budget(fleet: Any) -> None:
    pytest.importorskip("uvicorn")
    fleet.app("asgi_app.py", ASGI_APP)
    port = fleet.free_port()
    # uvicorn's workers die by the SIGTERM they re-raise after a graceful stop, so their exit
    # handlers never run (see the xfail test below): export while serving and read it back then.
    env = fleet.env(
        GENOPS_BUDGETS="global=0.045/total",  # 4 calls of $0.01
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
    )
    argv = [fleet.genops_run(), "uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "asgi_app:app"]
    server = fleet.serve(argv, env, port)
    server.wait_ready()
    fleet.provider.latency = 0.2
    try:
        rounds = _rounds(server, width=4, want_pids=2, min_requests=8, max_rounds=10)
    finally:
        fleet.provider.latency = 0.0
    answers = _check_budget_rounds(rounds, allowed=4)
    workers = {answer["pid"] for answer in answers}
    assert len(workers) == 2 and server.process.pid not in workers, answers

    def cost_exported() -> dict[tuple[int, str], float]:
        totals = fleet.metric_totals("genops.cost")
        return totals if sum(totals.values()) >= 4 * fleet.call_cost - 1e-9 else {}

    fleet.wait_for(lambda: len(fleet.genai_spans()) >= len(answers), what="the workers' spans")
    totals = fleet.wait_for(cost_exported, what="the workers' genops.cost")
    server.stop()

    _check_spans_match_answers(fleet, answers)
    assert not [span for span in fleet.genai_spans() if span["pid"] == server.process.pid], "the supervisor makes no call"
    per_pid = {pid: total for (pid, _), total in totals.items()}
    assert set(per_pid) <= workers and len(per_pid) == len(totals), totals
    for worker in workers:
        ran = sum(answer["result"] == "ok" and answer["pid"] == worker for answer in answers)
        assert per_pid.get(worker, 0.0) == pytest.approx(ran * fleet.call_cost), (worker, totals)
    assert sum(fleet.metric_totals("genops.cost").values()) == pytest.approx(4 * fleet.call_cost)


def test_uvicorn_graceful_stop_flushes_buffered_telemetry(fleet: Any) -> None:
    pytest.importorskip("uvicorn")
    fleet.app("asgi_app.py", ASGI_APP)
    port = fleet.free_port()
    env = fleet.env(GENOPS_SUMMARY="1", GENOPS_BUDGETS="global=100/day")  # buffered until exit; a budget that never binds
    argv = [fleet.genops_run(), "uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "asgi_app:app"]
    server = fleet.serve(argv, env, port)
    server.wait_ready()
    answers = [{**server.get(f"/chat?{tag}"), "tag": tag} for tag in ("a", "b")]
    assert [answer["result"] for answer in answers] == ["ok", "ok"]
    server.stop()
    _check_spans_match_answers(fleet, answers)
    assert sum(fleet.metric_totals("genops.cost").values()) == pytest.approx(2 * fleet.call_cost)
    assert sum(_summary_costs(server.output())) == pytest.approx(2 * fleet.call_cost)


def test_gunicorn_stops_promptly_when_the_collector_is_unreachable(fleet: Any) -> None:
    pytest.importorskip("gunicorn")
    fleet.app("wsgi_app.py", WSGI_APP)
    port = fleet.free_port()
    env = fleet.env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # discard port: nothing listens
        OTEL_EXPORTER_OTLP_TIMEOUT="120",
        GENOPS_EXIT_FLUSH_SECONDS="1",
    )
    # The master waits up to 100 s for its workers: had a worker's exit flush hung on the
    # exporter's retries, the master would still be running when stop() gives up (60 s) and kills it.
    argv = [fleet.genops_run(), "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "100", "wsgi_app:app"]
    server = fleet.serve(argv, env, port)
    server.wait_ready()
    assert [server.get(f"/chat?{tag}")["result"] for tag in ("a", "b", "c")] == ["ok", "ok", "ok"]
    assert server.stop(seconds=60) == 0, server.output()
    assert "Traceback" not in server.output()
