"""multiprocessing pools under `genops-run` with spawn, fork and forkserver (checklist 6 and 26).

The parent makes one call before it starts the pool (its span is still buffered when a fork
happens), then three workers share nine calls; the first three tasks wait on a barrier, so each
worker is certain to run at least one. One budget on the SQLite ledger allows five calls in all.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

pytest.importorskip("openai")

POOL_APP = '''
import json, multiprocessing, os, sys
import openai

MAX_TOKENS = int(os.environ["FLEET_MAX_TOKENS"])
_barrier = None


def init(barrier):
    global _barrier
    _barrier = barrier


def work(tag):
    if _barrier is not None and tag in ("t0", "t1", "t2"):
        _barrier.wait(120)  # one of the first three tasks per worker
    with openai.OpenAI(max_retries=0) as client:
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "request %s pid %d" % (tag, os.getpid())}], max_tokens=MAX_TOKENS
            )
            result = "ok"
        except openai.RateLimitError as error:
            result = type(error).__name__
    return {"tag": tag, "pid": os.getpid(), "result": result}


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    parent = work("parent")  # recorded (and, with fork, still buffered) before the workers exist
    pool = context.Pool(3, initializer=init, initargs=(context.Barrier(3),))
    results = pool.map(work, ["t%d" % index for index in range(9)], chunksize=1)
    print(json.dumps({"parent": parent, "results": results}), flush=True)
    if os.environ.get("FLEET_HOLD"):
        sys.stdin.readline()  # the test reads the telemetry the live workers exported, then lets go
    pool.close()
    pool.join()  # workers leave through multiprocessing's own exit path
'''



def _check(fleet: Any, document: dict[str, Any], totals: dict[tuple[int, str], float]) -> None:
    parent, answers = document["parent"], document["results"]
    assert parent["result"] == "ok"
    workers = {answer["pid"] for answer in answers}
    assert len(workers) == 3 and parent["pid"] not in workers
    assert sum(answer["result"] == "ok" for answer in answers) == 4, answers
    assert {answer["result"] for answer in answers} == {"ok", "GenOpsRateLimitError"}

    # Exactly one span per call, exported by the process that made it.
    spans = fleet.genai_spans()
    by_prompt: dict[str, list[int]] = {}
    for span in spans:
        by_prompt.setdefault(fleet.prompt_of(span), []).append(span["pid"])
    expected = {f"request {answer['tag']} pid {answer['pid']}": [answer["pid"]] for answer in [parent, *answers]}
    assert by_prompt == expected
    for span in spans:
        assert span["attributes"]["genops.policy.result"] in ("ALLOWED", "BLOCKED")
        if span["attributes"]["genops.policy.result"] == "ALLOWED":
            assert span["attributes"]["genops.cost.total"] == pytest.approx(fleet.call_cost)

    # genops.cost: each process exports its own calls once, under its own service.instance.id.
    per_pid = {pid: total for (pid, _), total in totals.items()}
    assert len(per_pid) == len(totals), totals
    assert per_pid[parent["pid"]] == pytest.approx(fleet.call_cost)
    for worker in workers:
        ran = sum(answer["result"] == "ok" and answer["pid"] == worker for answer in answers)
        assert per_pid.get(worker, 0.0) == pytest.approx(ran * fleet.call_cost), (worker, totals)
    assert sum(per_pid.values()) == pytest.approx(5 * fleet.call_cost)


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_pool_workers_are_instrumented_export_once_and_share_one_budget(fleet: Any, method: str) -> None:
    """Read back what the live workers exported (short export intervals), then let the pool close."""
    app = fleet.app("pool_app.py", POOL_APP)
    env = fleet.env(GENOPS_BUDGETS="global=0.055/total", FLEET_HOLD="1", OTEL_BSP_SCHEDULE_DELAY="100", OTEL_METRIC_EXPORT_INTERVAL="300")
    with open(fleet.root / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([fleet.genops_run(), "python", str(app), method], env=env, cwd=fleet.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            line = process.stdout.readline()
            assert line, (fleet.root / "stderr.txt").read_text()
            document = json.loads(line)
            calls = 1 + len(document["results"])
            fleet.wait_for(lambda: len(fleet.genai_spans()) >= calls, what="every process's spans")
            totals = fleet.wait_for(
                lambda: (lambda found: found if sum(found.values()) >= 5 * fleet.call_cost - 1e-9 else {})(fleet.metric_totals("genops.cost")),
                what="every process's genops.cost",
            )
            process.communicate("go\n", timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert process.returncode == 0, (fleet.root / "stderr.txt").read_text()
    _check(fleet, document, totals)




@pytest.mark.parametrize(
    "method",
    [
        "spawn",
        "fork",
        "forkserver",
    ],
)
def test_pool_workers_flush_buffered_telemetry_when_the_pool_closes(fleet: Any, method: str) -> None:
    """Spans and metrics stay buffered (60 s intervals): only the exit-time flush can export them."""
    app = fleet.app("pool_app.py", POOL_APP)
    env = fleet.env(GENOPS_BUDGETS="global=0.055/total", GENOPS_SUMMARY="1")
    result = fleet.run([fleet.genops_run(), "python", str(app), method], env)
    assert result.returncode == 0, result.stderr
    _check(fleet, json.loads(result.stdout.strip().splitlines()[-1]), fleet.metric_totals("genops.cost"))
    summaries = [float(cost) for cost in re.findall(r"total cost: \$([0-9.]+) over", result.stderr)]
    assert sum(summaries) == pytest.approx(5 * fleet.call_cost), result.stderr
