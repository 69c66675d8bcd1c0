"""``attribution(...)`` with the real OpenAI SDK: spans and metrics, precedence over the
environment, nesting, decorators, threads, executor jobs, asyncio tasks and budgets."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from genops_autoinstrument import PolicyViolation, attribution, config, semconv
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor

CUSTOMER = semconv.GENOPS_CUSTOMER_ID
FEATURE = semconv.GENOPS_FEATURE
TEAM = semconv.GENOPS_TEAM


def customers(spans):
    return [span.attributes.get(CUSTOMER) for span in spans]


def test_a_call_inside_carries_the_keys_on_its_span_and_metric_dimensions(recorded, endpoint, h):
    client = endpoint.client()
    with attribution(customer_id="acme", feature="search"):
        response = h.chat(client)
    h.chat(client)  # after the block: nothing of it left
    assert response.choices[0].message.content == "Hello! How can I help you today?"
    inside, after = recorded.spans()
    assert inside.attributes[CUSTOMER] == "acme" and inside.attributes[FEATURE] == "search"
    assert CUSTOMER not in after.attributes and FEATURE not in after.attributes
    metrics = recorded.metrics()
    for name in (semconv.METRIC_TOKEN_USAGE, semconv.METRIC_OPERATION_DURATION, semconv.METRIC_COST):
        tagged = [dims for dims, _ in metrics[name] if dims.get(CUSTOMER) == "acme"]
        assert tagged and all(dims[FEATURE] == "search" for dims in tagged), name
        assert any(CUSTOMER not in dims for dims, _ in metrics[name]), name


def test_code_overrides_the_environment_and_keeps_the_rest(instrumentor, endpoint, h):
    settings = config.load({"GENOPS_TEAM": "platform", "GENOPS_FEATURE": "batch", "GENOPS_PROJECT": "atlas"})
    client = endpoint.client()
    with capture(settings) as recorded:
        with attribution(team="search-team", feature="chat"):
            h.chat(client)
        h.chat(client)
        inside, outside = recorded.spans()
    assert inside.attributes[TEAM] == "search-team" and inside.attributes[FEATURE] == "chat"
    assert inside.attributes[semconv.GENOPS_PROJECT] == "atlas"
    assert outside.attributes[TEAM] == "platform" and outside.attributes[FEATURE] == "batch"


def test_code_overrides_baggage(instrumentor, endpoint, h):
    from opentelemetry import baggage, context

    with capture(config.load({"GENOPS_BAGGAGE_KEYS": "customer_id"})) as recorded:  # baggage trusted for it
        token = context.attach(baggage.set_baggage(CUSTOMER, "from-baggage"))
        try:
            with attribution(customer_id="from-code"):
                h.chat(endpoint.client())
        finally:
            context.detach(token)
        assert customers(recorded.spans()) == ["from-code"]


def test_nesting_inner_overrides_outer_and_the_outer_is_restored(recorded, endpoint, h):
    client = endpoint.client()
    with attribution(customer_id="acme", feature="search"):
        h.chat(client)
        with attribution(customer_id="globex"):
            h.chat(client)
        h.chat(client)
    spans = recorded.spans()
    assert customers(spans) == ["acme", "globex", "acme"]
    assert [span.attributes[FEATURE] for span in spans] == ["search"] * 3  # the inner block inherits what it does not set


def test_the_same_block_object_can_be_entered_again(recorded, endpoint, h):
    client = endpoint.client()
    block = attribution(customer_id="acme")
    with block:
        with block:
            h.chat(client)
        h.chat(client)
    h.chat(client)
    assert customers(recorded.spans()) == ["acme", "acme", None]


def test_decorator_on_a_sync_function(recorded, endpoint, h):
    client = endpoint.client()

    @attribution(customer_id="acme")
    def answer(question: str) -> str:
        """Answers."""
        return h.chat(client).choices[0].message.content + question

    assert answer("?") == "Hello! How can I help you today??"
    assert answer.__name__ == "answer" and answer.__doc__ == "Answers."
    h.chat(client)
    assert customers(recorded.spans()) == ["acme", None]


def test_decorator_on_an_async_function(recorded, endpoint, h):
    client = endpoint.async_client()

    @attribution(customer_id="acme", feature="async")
    async def answer() -> str:
        return (await h.achat(client)).id

    async def main() -> tuple[str, str]:
        first = await answer()
        await h.achat(client)
        return first, await answer()

    first, second = asyncio.run(main())
    assert first != second  # each call got its own response
    spans = recorded.spans()
    assert customers(spans) == ["acme", None, "acme"]
    assert asyncio.iscoroutinefunction(answer)


def test_a_decorated_function_raising_restores_the_scope(recorded, endpoint, h):
    @attribution(customer_id="acme")
    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError) as caught:
        fail()
    assert caught.value.args == ("missing",)
    h.chat(endpoint.client())
    assert customers(recorded.spans()) == [None]


def test_threads_started_inside_inherit_it(recorded, endpoint, h):
    client = endpoint.client()
    results: dict[str, str] = {}

    class Worker(threading.Thread):  # a subclass with its own run()
        def run(self) -> None:
            results["subclass"] = h.chat(client).id

    with attribution(customer_id="acme"):
        plain = threading.Thread(target=lambda: results.setdefault("target", h.chat(client).id))
        worker = Worker()
        plain.start()
        worker.start()
        plain.join()
        worker.join()
    after = threading.Thread(target=lambda: h.chat(client))  # started after the block
    after.start()
    after.join()
    assert set(results) == {"target", "subclass"}
    spans = recorded.spans()
    assert Counter(customers(spans)) == {"acme": 2, None: 1}


def test_a_thread_sees_the_scope_of_when_it_was_started(recorded, endpoint, h):
    client = endpoint.client()
    go = threading.Event()
    thread = None
    with attribution(customer_id="acme"):
        thread = threading.Thread(target=lambda: (go.wait(5), h.chat(client)))
        thread.start()
    go.set()  # the block has ended: the thread keeps what it was started with
    thread.join()
    assert customers(recorded.spans()) == ["acme"]


def test_only_genops_scope_travels_into_threads(recorded):
    application_variable: contextvars.ContextVar[str] = contextvars.ContextVar("application_variable", default="unset")
    seen: list[str] = []
    application_variable.set("set by the application")
    with attribution(customer_id="acme"):
        thread = threading.Thread(target=lambda: seen.append(application_variable.get()))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(1) as pool:
            seen.append(pool.submit(application_variable.get).result())
    assert seen == ["unset", "unset"]  # as Python hands them over without GenOps


def test_executor_jobs_submitted_inside_get_it_and_a_reused_pool_thread_outside_does_not(recorded, endpoint, h):
    client = endpoint.client()
    with ThreadPoolExecutor(max_workers=1) as pool:  # its one thread starts inside the block
        with attribution(customer_id="acme"):
            assert pool.submit(h.chat, client).result().choices
            assert len(list(pool.map(lambda _: h.chat(client), range(2)))) == 2
            inside_thread = pool.submit(threading.get_ident).result()
        assert pool.submit(h.chat, client).result().choices
        outside_thread = pool.submit(threading.get_ident).result()
        with attribution(customer_id="globex"):
            pool.submit(h.chat, client).result()
    assert inside_thread == outside_thread, "one pool thread served every job"
    assert customers(recorded.spans()) == ["acme", "acme", "acme", None, "globex"]


def test_executor_returns_the_same_objects_and_exceptions(recorded):
    marker = object()

    def fail() -> None:
        raise ValueError("job failed")

    with ThreadPoolExecutor(2) as pool, attribution(customer_id="acme"):
        assert pool.submit(lambda: marker).result() is marker
        assert pool.submit(lambda value, key=None: (value, key), 1, key=2).result() == (1, 2)
        failed = pool.submit(fail)
        with pytest.raises(ValueError) as caught:
            failed.result()
    assert str(caught.value) == "job failed"


def test_asyncio_tasks_created_inside_inherit_it(recorded, endpoint, h):
    client = endpoint.async_client()

    async def main() -> None:
        with attribution(customer_id="acme"):
            inside = [asyncio.create_task(h.achat(client)) for _ in range(2)]
            gathered = asyncio.gather(h.achat(client))
        outside = asyncio.create_task(h.achat(client))
        await asyncio.gather(*inside, gathered, outside)
        with attribution(customer_id="globex"):
            await asyncio.to_thread(lambda: None)  # the loop's default executor works as before
            await asyncio.get_running_loop().run_in_executor(None, h.chat, endpoint.client())

    asyncio.run(main())
    assert Counter(customers(recorded.spans())) == {"acme": 3, "globex": 1, None: 1}


def test_one_instance_entered_by_concurrent_tasks_and_threads_keeps_each_apart(recorded, endpoint, h):
    shared = attribution(customer_id="acme")  # e.g. a module-level block used by every handler
    client = endpoint.async_client()

    async def handler(release: asyncio.Event, done: asyncio.Event) -> None:
        async with shared:
            await release.wait()
        await h.achat(client)  # after its block: not attributed
        done.set()

    async def main() -> None:
        first_in, second_in, first_done, second_done = (asyncio.Event() for _ in range(4))
        tasks = [asyncio.create_task(handler(first_in, first_done)), asyncio.create_task(handler(second_in, second_done))]
        await asyncio.sleep(0)  # both blocks entered, the first entered first
        first_in.set()  # ... and left first
        await first_done.wait()
        second_in.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    barrier = threading.Barrier(2)

    def worker() -> None:
        with shared:
            barrier.wait(5)
        barrier.wait(5)
        h.chat(endpoint.client())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert customers(recorded.spans()) == [None] * 4


# USD 0.00002 a day per customer: with "Say hello" and max_tokens=20 on gpt-4o-mini, two calls
# fit (each reserves ~$0.0000125 and costs ~$0.0000048) and the third would overrun.
def test_a_budget_keyed_on_customer_id_sees_the_code_attribution(instrumentor, endpoint, h):
    settings = config.load({"GENOPS_BUDGETS": "customer_id=0.00002/day", "GENOPS_LEDGER_URL": "memory://"})
    client = endpoint.client()
    governor = EnforcingGovernor(settings)
    try:
        with capture(settings, governor=governor) as recorded:
            with attribution(customer_id="acme"):
                h.chat(client)
                h.chat(client)
                with pytest.raises(openai.RateLimitError) as caught:
                    h.chat(client)
            with attribution(customer_id="globex"):
                h.chat(client)  # another customer: another budget
            h.chat(client)  # no customer: the budget of calls without one
            spans = recorded.spans()
    finally:
        governor.close()
    assert isinstance(caught.value, PolicyViolation)
    assert caught.value.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert caught.value.policy_name == "customer_id=0.00002/day"
    assert "customer_id=acme" in str(caught.value)
    assert len(endpoint.requests) == 4, "the blocked request was never sent"
    blocked = spans[2]
    assert blocked.attributes[CUSTOMER] == "acme"
    assert blocked.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert [span.attributes.get(CUSTOMER) for span in spans[3:]] == ["globex", None]
    assert all(span.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED for span in spans[3:])


def test_an_unknown_key_is_a_type_error():
    with pytest.raises(TypeError, match="unknown attribution key 'customer'"):
        attribution(customer="acme")
    with pytest.raises(TypeError, match="customer_id"):
        attribution(team="search", costcenter="x")
