"""The plugin itself: entry points, lazy discovery, uninstrument, and a real `genops-run` process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

from genops_autoinstrument.api.instrumentor import is_genops_wrapped

VENV_BIN = Path(sys.executable).parent


def test_entry_points_name_the_plugin_class():
    from genops_instrumentation_google_genai import GoogleGenAIInstrumentor

    genops = {ep.name: ep for ep in entry_points(group="genops_instrumentor")}
    assert genops["google_genai"].load() is GoogleGenAIInstrumentor
    otel = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
    assert otel["genops_google_genai"].load() is GoogleGenAIInstrumentor
    instrumentor = GoogleGenAIInstrumentor()
    assert instrumentor.watched_modules == ("google.genai",)
    assert list(instrumentor.instrumentation_dependencies()) == ["google-genai >= 1.52, < 4"]


def test_importing_the_plugin_does_not_import_the_sdk():
    code = "import sys, genops_instrumentation_google_genai; print('google.genai' in sys.modules, 'google' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_instrument_and_uninstrument_wrap_and_restore(instrumented):
    from google.genai import models

    names = ("generate_content", "generate_content_stream", "embed_content", "_generate_content", "_generate_content_stream")
    # The continuation-aware stream exists from google-genai 3.0; older SDKs stream through the
    # per-request helper alone (the plugin's declared range starts before 3.0).
    continuation = ("_generate_content_stream_with_continuation",) if "_generate_content_stream_with_continuation" in models.Models.__dict__ else ()
    for cls in (models.Models, models.AsyncModels):
        for name in names + continuation:
            assert is_genops_wrapped(cls.__dict__[name]), (cls.__name__, name)
    originals = {(cls, name): cls.__dict__[name].__wrapped__ for cls in (models.Models, models.AsyncModels) for name in names}
    instrumented.uninstrument()
    try:
        for (cls, name), original in originals.items():
            assert cls.__dict__[name] is original
    finally:
        instrumented.instrument()
    assert is_genops_wrapped(models.Models.__dict__["generate_content"])


def test_genops_run_instruments_an_unmodified_gemini_app(server, gemini, tmp_path):
    """A real process: the import hook sees `google.genai` inside the `google` namespace package."""
    server.script(gemini.Reply(body=gemini.generate_body(usage=gemini.USAGE, model_version="gemini-2.5-flash")))
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            from google import genai
            client = genai.Client()
            print(client.models.generate_content(model="gemini-2.5-flash", contents="hi").text)
            """
        )
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "GOOGLE_", "GEMINI_"))}
    env.update(
        GEMINI_API_KEY="test",
        GOOGLE_GEMINI_BASE_URL=server.url,
        GENOPS_SUMMARY="1",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    result = subprocess.run([str(VENV_BIN / "genops-run"), "python", str(app)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from Gemini."
    rows = [line.split() for line in result.stderr.splitlines() if "gcp.gen_ai" in line]
    assert len(rows) == 1, result.stderr
    # provider, model, calls, failed, input tokens, output tokens, ...
    assert rows[0][:6] == ["gcp.gen_ai", "gemini-2.5-flash", "1", "0", "120", "42"]
    assert len(server.requests) == 1
