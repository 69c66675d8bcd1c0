"""Plugin contract: entry points, no SDK import at discovery, version range, idempotent patching."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import openai

from genops_autoinstrument.api.instrumentor import is_genops_wrapped
from genops_instrumentation_openai import OpenAIInstrumentor


def test_entry_points_registered():
    genops = {ep.name: ep.value for ep in entry_points(group="genops_instrumentor")}
    otel = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    assert genops["openai"] == "genops_instrumentation_openai:OpenAIInstrumentor"
    assert otel["genops_openai"] == "genops_instrumentation_openai:OpenAIInstrumentor"


def test_plugin_import_does_not_import_openai():
    code = "import sys, genops_instrumentation_openai; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dependencies_and_watched_modules():
    instance = OpenAIInstrumentor()
    assert tuple(instance.instrumentation_dependencies()) == ("openai >= 1.40, < 4",)
    assert instance.watched_modules == ("openai",)


def test_patches_every_target_once_and_restores():
    instance = OpenAIInstrumentor()
    instance.instrument()
    try:
        from openai.lib.streaming.chat import ChatCompletionStream
        from openai.resources.chat import AsyncCompletions, Completions

        methods = [
            Completions.create,
            AsyncCompletions.create,
            openai.resources.embeddings.Embeddings.create,
            openai.resources.completions.AsyncCompletions.create,
            ChatCompletionStream.close,
        ]
        if hasattr(Completions, "parse"):  # openai >= 1.92; before, only under beta
            methods.append(Completions.parse)
        else:
            methods.append(openai.resources.beta.chat.Completions.parse)
        if hasattr(openai.resources, "responses"):  # openai >= 1.66
            methods += [openai.resources.responses.Responses.create, openai.resources.responses.AsyncResponses.parse]
        for method in methods:
            assert is_genops_wrapped(method)
        count = len(instance._patches)
        instance.reinstrument()
        assert len(instance._patches) == count
        assert not is_genops_wrapped(Completions.create.__wrapped__)
    finally:
        instance.uninstrument()
    assert not is_genops_wrapped(openai.resources.chat.Completions.create)


def test_invalid_stream_usage_value_falls_back_to_default(monkeypatch):
    from genops_instrumentation_openai._wrappers import stream_usage_enabled

    monkeypatch.setenv("GENOPS_OPENAI_STREAM_USAGE", "maybe")
    assert stream_usage_enabled() is True
    monkeypatch.setenv("GENOPS_OPENAI_STREAM_USAGE", "0")
    assert stream_usage_enabled() is False
