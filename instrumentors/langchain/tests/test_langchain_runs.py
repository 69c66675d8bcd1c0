"""Chains, batches and their traces: one span per run, the model call's CLIENT span under it, once."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

if sys.version_info < (3, 11):  # before the imports below, which need the SDK
    pytest.skip("langchain-core 1.8+ and langchain 1.5+, the LangChain plugin's range, require Python 3.11", allow_module_level=True)

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from opentelemetry.trace import SpanKind

from genops_autoinstrument import config, track
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope


def _chain(endpoint):
    return ChatPromptTemplate.from_messages([("user", "Tell me about {topic}")]) | endpoint.model() | StrOutputParser()


def _client_spans(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def test_a_chain_is_the_parent_of_its_one_model_span(rec, endpoint, h):
    assert _chain(endpoint).invoke({"topic": "tracing"}) == "Echo: Tell me about tracing"

    spans = rec.spans()
    assert h.tree(spans) == ["RunnableSequence", "  ChatPromptTemplate", "  chat gpt-4o-mini", "  StrOutputParser"]
    (client,) = _client_spans(spans)  # the chat-model run is the provider plugin's span, not a second one
    (chain,) = h.by_name(spans, "RunnableSequence")
    assert client.parent.span_id == chain.context.span_id and client.context.trace_id == chain.context.trace_id
    assert client.attributes["gen_ai.usage.input_tokens"] == 24 and client.attributes["gen_ai.usage.output_tokens"] == 9
    assert client.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
    # The chain's span carries what ran under it.
    assert chain.kind == SpanKind.INTERNAL
    assert chain.attributes["genops.unit.name"] == "RunnableSequence"
    assert chain.attributes["genops.unit.calls"] == 1
    assert chain.attributes["genops.cost.total"] == pytest.approx(client.attributes["genops.cost.total"], rel=1e-12)
    assert (chain.attributes["gen_ai.usage.input_tokens"], chain.attributes["gen_ai.usage.output_tokens"]) == (24, 9)
    assert "gen_ai.operation.name" not in chain.attributes  # a chain is no GenAI operation
    assert current_scope() is None  # the run's scope ended with it


def test_a_batch_of_three_gives_three_runs_each_with_its_model_span(rec, endpoint, h):
    answers = _chain(endpoint).batch([{"topic": "a"}, {"topic": "b"}, {"topic": "c"}])
    assert answers == ["Echo: Tell me about a", "Echo: Tell me about b", "Echo: Tell me about c"]

    spans = rec.spans()
    chains = h.by_name(spans, "RunnableSequence")
    assert len(chains) == 3 and len(_client_spans(spans)) == 3
    assert all(chain.parent is None for chain in chains)  # siblings, not nested in each other
    assert len({chain.context.trace_id for chain in chains}) == 3
    asked = set()
    for chain in chains:
        (client,) = [span for span in h.children(spans, chain) if span.kind == SpanKind.CLIENT]
        assert chain.attributes["genops.unit.calls"] == 1
        assert chain.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
        asked.add(client.attributes["gen_ai.response.id"])
    assert len(asked) == 3
    assert current_scope() is None


def test_async_chain_and_batch_nest_the_same_and_leave_no_scope_behind(rec, endpoint, h):
    chain = _chain(endpoint)

    async def main():
        first = await chain.ainvoke({"topic": "async"})
        rest = await chain.abatch([{"topic": "x"}, {"topic": "y"}])
        return first, rest, current_scope()

    first, rest, scope_after = asyncio.run(main())
    assert first == "Echo: Tell me about async" and len(rest) == 2
    assert scope_after is None
    spans = rec.spans()
    chains = h.by_name(spans, "RunnableSequence")
    assert len(chains) == 3 and len(_client_spans(spans)) == 3
    for chain in chains:
        assert chain.parent is None
        assert [span.name for span in h.children(spans, chain) if span.kind == SpanKind.CLIENT] == ["chat gpt-4o-mini"]
        assert chain.attributes["genops.unit.calls"] == 1


def test_a_chain_inside_track_rolls_up_into_the_applications_unit(rec, endpoint, h):
    with track("answer-question") as unit:
        _chain(endpoint).invoke({"topic": "units"})
        _chain(endpoint).invoke({"topic": "more units"})

    spans = rec.spans()
    (outer,) = h.by_name(spans, "answer-question")
    chains = h.by_name(spans, "RunnableSequence")
    assert [chain.parent.span_id for chain in chains] == [outer.context.span_id] * 2
    assert outer.attributes["genops.unit.calls"] == 2
    assert unit.cost == pytest.approx(2 * h.cost(h.TEXT_USAGE), rel=1e-9)
    assert outer.attributes["genops.cost.total"] == pytest.approx(sum(chain.attributes["genops.cost.total"] for chain in chains), rel=1e-12)


def test_the_applications_current_span_is_the_parent_of_a_root_run(rec, endpoint, h):
    tracer = rec.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as request:
        _chain(endpoint).invoke({"topic": "parents"})
    spans = rec.spans()
    (chain,) = h.by_name(spans, "RunnableSequence")
    assert chain.parent.span_id == request.get_span_context().span_id


def test_metadata_attributes_only_through_the_trusted_keys(instrumented, endpoint, h):
    metadata = {"genops.customer_id": "acme", "genops.team": "not-trusted", "user": "x"}
    with capture(config.load({"GENOPS_BAGGAGE_KEYS": "customer_id"})) as recorded:
        _chain(endpoint).invoke({"topic": "trust"}, config={"metadata": metadata})
        spans = recorded.spans()
        (client,) = _client_spans(spans)
        (chain,) = h.by_name(spans, "RunnableSequence")
        for span in (client, chain):
            assert span.attributes["genops.customer_id"] == "acme"
            assert "genops.team" not in span.attributes
        costs = recorded.metrics()["genops.cost"]
        assert [dims.get("genops.customer_id") for dims, _ in costs] == ["acme"]
    with capture(config.load({})) as recorded:  # nothing trusted: metadata attributes nothing
        _chain(endpoint).invoke({"topic": "trust"}, config={"metadata": metadata})
        assert all("genops.customer_id" not in span.attributes for span in recorded.spans())


def test_uninstrumented_runs_record_no_units(instrumented, endpoint, h):
    from genops_instrumentation_langchain import LangChainInstrumentor

    LangChainInstrumentor().uninstrument()
    with capture(config.load({})) as recorded:
        _chain(endpoint).invoke({"topic": "off"})
        spans = recorded.spans()
    assert [span.name for span in spans] == ["chat gpt-4o-mini"]  # the provider plugin still records the call
    LangChainInstrumentor().instrument()


def test_importing_the_plugin_imports_no_langchain():
    code = "import sys, genops_instrumentation_langchain; print(sorted(m for m in sys.modules if m.startswith(('langchain', 'langsmith'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
