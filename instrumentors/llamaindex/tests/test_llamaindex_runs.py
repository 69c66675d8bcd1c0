"""Query engines, the application's own workflows, direct LLM calls and their traces: one span per
unit of work, the model call's CLIENT span under it, once."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from llama_index.core import Document, SummaryIndex
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.llms import ChatMessage
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from opentelemetry.trace import SpanKind

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope


def _clients(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def _query_engine(endpoint):
    index = SummaryIndex.from_documents([Document(text="Paris is sunny today."), Document(text="Rome is rainy today.")])
    return index.as_query_engine(llm=endpoint.llm())


def test_a_query_is_the_parent_of_its_one_model_span(rec, endpoint, h):
    engine = _query_engine(endpoint)  # building the index (splitters…) opens no span
    assert rec.spans() == []
    answer = engine.query("What is the weather in Paris?")
    assert str(answer).startswith("Echo: ")

    spans = rec.spans()
    assert h.tree(spans) == ["RetrieverQueryEngine", "  chat gpt-4o-mini"]  # retrieval and synthesis add none
    (query,) = h.by_name(spans, "RetrieverQueryEngine")
    (client,) = _clients(spans)  # the LLM's predict and chat spans are the provider plugin's one span
    assert query.kind == SpanKind.INTERNAL and "gen_ai.operation.name" not in query.attributes
    assert query.attributes["genops.unit.name"] == "RetrieverQueryEngine"
    assert query.attributes["genops.unit.calls"] == 1
    assert query.attributes["genops.cost.total"] == pytest.approx(client.attributes["genops.cost.total"], rel=1e-12)
    assert (query.attributes["gen_ai.usage.input_tokens"], query.attributes["gen_ai.usage.output_tokens"]) == h.TEXT_USAGE
    assert current_scope() is None


def test_async_queries_run_side_by_side_are_separate_runs(rec, endpoint, h):
    engine = _query_engine(endpoint)

    async def main():
        return await asyncio.gather(*(engine.aquery(f"question {n}") for n in range(3))), current_scope()

    answers, scope_after = asyncio.run(main())
    assert len(answers) == 3 and scope_after is None
    spans = rec.spans()
    queries = h.by_name(spans, "RetrieverQueryEngine")
    assert len(queries) == 3 and len(_clients(spans)) == 3
    assert all(query.parent is None for query in queries)  # siblings, not nested in each other
    for query in queries:
        assert [span.kind for span in h.children(spans, query)] == [SpanKind.CLIENT]
        assert query.attributes["genops.unit.calls"] == 1


class Draft(Event):
    text: str


class WriteAndReview(Workflow):
    """The application's own two-step workflow, each step one model call."""

    def __init__(self, llm, **kwargs):
        super().__init__(**kwargs)
        self.llm = llm

    @step
    async def write(self, ev: StartEvent) -> Draft:
        answer = await self.llm.achat([ChatMessage(role="user", content=f"Write about {ev.topic}")])
        return Draft(text=answer.message.content)

    @step
    async def review(self, ev: Draft) -> StopEvent:
        answer = await self.llm.achat([ChatMessage(role="user", content=f"Review {ev.text}")])
        return StopEvent(result=answer.message.content)


def test_a_workflow_run_and_its_steps_are_spans_with_their_costs(rec, endpoint, h):
    async def main():
        return await WriteAndReview(endpoint.llm()).run(topic="tracing")

    assert asyncio.run(main()) == "Echo: Review Echo: Write about tracing"
    spans = rec.spans()
    assert h.tree(spans) == ["WriteAndReview", "  write", "    chat gpt-4o-mini", "  review", "    chat gpt-4o-mini"]
    (run,) = h.by_name(spans, "WriteAndReview")
    steps = h.by_name(spans, "write") + h.by_name(spans, "review")
    assert run.attributes["genops.unit.calls"] == 2
    assert run.attributes["genops.cost.total"] == pytest.approx(2 * h.cost(h.TEXT_USAGE), rel=1e-9)
    assert run.attributes["genops.cost.total"] == pytest.approx(sum(s.attributes["genops.cost.total"] for s in steps), rel=1e-12)
    assert len({span.context.trace_id for span in spans}) == 1


def test_a_direct_llm_call_is_one_span_and_nothing_more(rec, endpoint, h):
    llm = endpoint.llm()
    assert llm.chat([ChatMessage(role="user", content="hi")]).message.content == "Echo: hi"
    streamed = list(llm.stream_chat([ChatMessage(role="user", content="hi")]))
    assert streamed[-1].message.content == "Echo: hi"
    spans = rec.spans()
    assert [span.name for span in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert all(span.parent is None for span in spans)
    assert [span.attributes["gen_ai.usage.output_tokens"] for span in spans] == [9, 9]  # the stream's usage too


def test_instrument_tags_attribute_only_through_the_trusted_keys(instrumented, endpoint, h):
    tags = {"genops.customer_id": "acme", "genops.team": "not-trusted", "user": "x"}
    engine = _query_engine(endpoint)
    with capture(config.load({"GENOPS_BAGGAGE_KEYS": "customer_id"})) as recorded:
        with instrument_tags(tags):
            engine.query("trust")
        spans = recorded.spans()
        (client,) = _clients(spans)
        (query,) = h.by_name(spans, "RetrieverQueryEngine")
        for span in (client, query):
            assert span.attributes["genops.customer_id"] == "acme"
            assert "genops.team" not in span.attributes
        assert [dims.get("genops.customer_id") for dims, _ in recorded.metrics()["genops.cost"]] == ["acme"]
    with capture(config.load({})) as recorded:  # nothing trusted: tags attribute nothing
        with instrument_tags(tags):
            engine.query("trust")
        assert all("genops.customer_id" not in span.attributes for span in recorded.spans())


def test_uninstrumented_runs_record_no_units(instrumented, endpoint, h):
    from genops_instrumentation_llamaindex import LlamaIndexInstrumentor

    engine = _query_engine(endpoint)
    LlamaIndexInstrumentor().uninstrument()
    try:
        with capture(config.load({})) as recorded:
            engine.query("off")
            spans = recorded.spans()
    finally:
        LlamaIndexInstrumentor().instrument()
    assert [span.name for span in spans] == ["chat gpt-4o-mini"]  # the provider plugin still records the call


def test_importing_the_plugin_imports_no_llamaindex():
    code = "import sys, genops_instrumentation_llamaindex; print(sorted(m for m in sys.modules if m.startswith(('llama_index', 'workflows', 'tenacity'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
