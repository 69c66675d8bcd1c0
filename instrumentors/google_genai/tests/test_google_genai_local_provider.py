"""examples/local_provider/gemini_routes.py with the real SDK, and examples/gemini_generate.py under genops-run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

REPO = Path(__file__).resolve().parents[3]
SERVER = REPO / "examples" / "local_provider" / "server.py"
EXAMPLE = REPO / "examples" / "gemini_generate.py"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def local_provider():
    if not SERVER.exists() or not (SERVER.parent / "gemini_routes.py").exists():
        pytest.skip("examples/local_provider is not there")
    name = "_google_genai_test_local_provider_server"
    spec = importlib.util.spec_from_file_location(name, SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        with module.running(routes=module.load_routes(names=["gemini"])) as server:
            yield server
    finally:
        sys.modules.pop(name, None)


def test_routes_answer_the_real_sdk(local_provider, instrumented, settings, embedding_usage_reported):
    from google import genai
    from google.genai import errors, types

    client = genai.Client(api_key="demo", http_options={"base_url": local_provider.url})
    with capture(settings) as recorded:
        response = client.models.generate_content(model="gemini-2.5-flash", contents="Tell me a story", config=types.GenerateContentConfig(max_output_tokens=5))
        chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="Count to three please"))
        embedded = client.models.embed_content(model="gemini-embedding-001", contents=["a b c", "d e"])
        with pytest.raises(errors.ClientError) as raised:
            client.models.generate_content(model="fail-429", contents="x")
    assert response.text == "Hello from the local provider"  # 5 tokens
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert "".join(chunk.text for chunk in chunks) == "Hello from the local provider. You said: Count to three please"
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0].values) == 3072
    assert raised.value.code == 429 and raised.value.status == "RESOURCE_EXHAUSTED"

    generate, stream, embed, failed = recorded.spans()
    usage = response.usage_metadata
    assert generate.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_token_count == 4
    assert generate.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.candidates_token_count + usage.thoughts_token_count == 69
    assert generate.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)
    final = chunks[-1].usage_metadata
    assert stream.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == final.prompt_token_count
    assert stream.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == final.candidates_token_count
    assert embed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5
    assert failed.attributes[semconv.ERROR_TYPE] == "google.genai.errors.ClientError"


def test_vertex_routes(local_provider, instrumented, settings):
    from google import genai

    client = genai.Client(vertexai=True, api_key="demo", http_options={"base_url": local_provider.url})
    with capture(settings) as recorded:
        response = client.models.generate_content(model="gemini-2.0-flash-001", contents="Hi there")
        embedded = client.models.embed_content(model="text-embedding-005", contents=["one two", "three"])
    assert response.text.endswith("You said: Hi there")
    assert len(embedded.embeddings) == 2
    generate, embed = recorded.spans()
    assert generate.attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert embed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3


def test_example_app_under_genops_run(local_provider, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "GOOGLE_", "GEMINI_"))}
    env.update(
        GEMINI_API_KEY="demo",
        GOOGLE_GEMINI_BASE_URL=local_provider.url,
        GENOPS_SUMMARY="1",
        GENOPS_TEAM="search",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    result = subprocess.run([str(VENV_BIN / "genops-run"), "python", str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "A: Hello from the local provider. You said: What is a token budget?" in result.stdout
    assert "embedded 2 texts into 3072 dimensions" in result.stdout
    rows = {tuple(line.split()[:2]): line.split()[2:4] for line in result.stderr.splitlines() if line.strip().startswith("gcp.gen_ai")}
    assert rows == {
        ("gcp.gen_ai", "gemini-2.0-flash"): ["3", "0"],
        ("gcp.gen_ai", "gemini-2.5-flash"): ["1", "0"],
        ("gcp.gen_ai", "gemini-embedding-001"): ["1", "0"],
    }, result.stderr
