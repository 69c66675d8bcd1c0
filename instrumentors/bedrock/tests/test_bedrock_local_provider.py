"""The local provider's Bedrock routes with a real client, and the example app under genops-run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.api.testing import capture

REPO = Path(__file__).resolve().parents[3]
SERVER = REPO / "examples" / "local_provider" / "server.py"
pytestmark = pytest.mark.skipif(not (SERVER.parent / "bedrock_routes.py").exists(), reason="examples/local_provider not present")


@pytest.fixture(scope="module")
def local_provider():
    spec = importlib.util.spec_from_file_location("_bedrock_test_local_provider_server", SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    with module.running() as server:
        yield server


def test_routes_with_real_client(aws_env, instrumented, settings, client_factory, local_provider):
    client = client_factory("bedrock-runtime", local_provider.url)
    messages = [{"role": "user", "content": [{"text": "What is a token budget?"}]}]
    with capture(settings) as rec:
        reply = client.converse(modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0", system=[{"text": "You are a concise assistant."}], messages=messages)
        cut = client.converse(modelId="amazon.nova-lite-v1:0", messages=messages, inferenceConfig={"maxTokens": 3})
        streamed = [event for event in client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=messages)["stream"]]
        body = json.dumps({"prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhy budgets?<|eot_id|>", "max_gen_len": 40})
        invoked = json.loads(client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=body)["body"].read())
        chunks = [json.loads(event["chunk"]["bytes"]) for event in client.invoke_model_with_response_stream(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi there"}]}))["body"]]
        with pytest.raises(client.exceptions.ThrottlingException):
            client.converse(modelId="fail-429", messages=messages)
    assert reply["output"]["message"]["content"][0]["text"] == "Hello from the local provider. You said: What is a token budget?"
    assert reply["usage"] == {"inputTokens": 12, "outputTokens": 15, "totalTokens": 27, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    assert cut["stopReason"] == "max_tokens" and cut["usage"]["outputTokens"] == 3
    assert streamed[-1]["metadata"]["usage"]["outputTokens"] == 15
    assert invoked["generation"].endswith("You said: Why budgets?")
    assert chunks[-2]["delta"]["stop_reason"] == "max_tokens"
    spans = rec.spans()
    usage = [(s.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), s.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)) for s in spans]
    assert usage == [(12, 15), (6, 3), (6, 15), (invoked["prompt_token_count"], invoked["generation_token_count"]), (2, 5), (None, None)]
    assert [s.attributes.get(semconv.GENOPS_COST_STATUS) for s in spans[:5]] == [semconv.COST_STATUS_PRICED] * 5
    assert spans[-1].attributes[semconv.ERROR_TYPE].endswith("ThrottlingException")


def test_example_app_under_genops_run(local_provider, tmp_path):
    launcher = Path(sys.executable).parent / "genops-run"
    if not launcher.exists():
        pytest.skip("genops-run is not installed in this environment")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "GENOPS_", "OTEL_"))}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=local_provider.url,
        GENOPS_SUMMARY="1",
        GENOPS_TEAM="demo",
        GENOPS_LEDGER_URL="memory://",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = subprocess.run([str(launcher), sys.executable, str(REPO / "examples" / "bedrock_converse.py")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Converse: Hello from the local provider. You said: What is a token budget?" in result.stdout
    assert "embedded into 1024 dimensions" in result.stdout
    summary = result.stdout + result.stderr
    assert "total cost: $" in summary and "over 5 calls" in summary
    assert "genops.team=demo                              5      0" in summary
