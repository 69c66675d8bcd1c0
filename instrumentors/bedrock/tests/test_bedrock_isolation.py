"""Policy blocks, other AWS services untouched, endpoint/region facts, import hygiene, pricing."""

from __future__ import annotations

import pickle

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from botocore.exceptions import ClientError

from genops_autoinstrument import semconv
from genops_autoinstrument.api import Decision, PolicyViolation, is_genops_wrapped
from genops_autoinstrument.api.testing import capture

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]
BUDGET_BLOCK = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="team-budget",
    reason_code=semconv.REASON_BUDGET_EXCEEDED,
    message="GenOps budget team=search exhausted",
)
MODEL_BLOCK = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="model-allow-list",
    reason_code=semconv.REASON_POLICY_DENY_MODEL,
    message="model us.anthropic.claude-3-5-haiku-20241022-v1:0 is not allowed",
)


def test_budget_block_is_throttling_and_never_sent(bedrock, server, settings, blocking_governor):
    governor = blocking_governor(BUDGET_BLOCK)
    with capture(settings, governor=governor) as rec:
        with pytest.raises(bedrock.exceptions.ThrottlingException) as raised:
            bedrock.converse(modelId=MODEL, messages=MESSAGES)
    error = raised.value
    assert isinstance(error, ClientError) and isinstance(error, PolicyViolation)
    assert error.response["Error"]["Code"] == "ThrottlingException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.operation_name == "Converse"
    assert error.decision is BUDGET_BLOCK
    assert str(error) == "GenOps budget team=search exhausted"
    copy = pickle.loads(pickle.dumps(error))  # the modelled class is made at run time: ClientError crosses
    assert isinstance(copy, ClientError) and isinstance(copy, PolicyViolation) and copy.decision == BUDGET_BLOCK
    assert copy.response == error.response and copy.operation_name == "Converse" and str(copy) == str(error)
    assert server.received == []
    assert governor.asked == 1
    (span,) = rec.spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == semconv.REASON_BUDGET_EXCEEDED


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_model", "invoke_model_with_response_stream"])
def test_rule_block_is_access_denied_for_every_operation(bedrock, server, settings, blocking_governor, operation):
    kwargs = {"modelId": MODEL, "messages": MESSAGES} if operation == "converse_stream" else {"modelId": MODEL, "body": b'{"messages": []}'}
    with capture(settings, governor=blocking_governor(MODEL_BLOCK)):
        with pytest.raises(bedrock.exceptions.AccessDeniedException) as raised:
            getattr(bedrock, operation)(**kwargs)
    assert isinstance(raised.value, PolicyViolation)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raised.value.reason_code == semconv.REASON_POLICY_DENY_MODEL
    assert server.received == []


STS_REPLY = b"""<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/test</Arn>
    <UserId>AIDAEXAMPLEUSERID</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""


def test_other_services_untouched_and_unrecorded(server, instrumented, settings, client_factory, blocking_governor):
    import botocore.client

    assert is_genops_wrapped(botocore.client.BaseClient.__dict__["_make_api_call"])
    sts, s3 = client_factory("sts"), client_factory("s3")
    server.reply_json({})
    server.replies[-1].body, server.replies[-1].content_type = STS_REPLY, "text/xml"
    server.reply_json({})
    server.replies[-1].body, server.replies[-1].content_type = b"object bytes, never read by GenOps", "text/plain"
    # Even a governor that blocks everything is never asked about another service.
    governor = blocking_governor(MODEL_BLOCK)
    with capture(settings, governor=governor) as rec:
        identity = sts.get_caller_identity()
        obj = s3.get_object(Bucket="bucket", Key="key.txt")
        assert not isinstance(obj["Body"]._raw_stream, io.BytesIO)  # still the live HTTP body
        assert obj["Body"].read() == b"object bytes, never read by GenOps"
    assert identity["Account"] == "123456789012"
    assert [request.path for request in server.received] == ["/", "/bucket/key.txt"]
    assert governor.asked == 0
    assert rec.spans() == []
    assert rec.metrics() == {}


def test_other_bedrock_runtime_operations_pass_through(bedrock, server, settings):
    if hasattr(bedrock, "count_tokens"):
        server.reply_json({"inputTokens": 12})
        with capture(settings) as rec:
            assert bedrock.count_tokens(modelId=MODEL, input={"converse": {"messages": MESSAGES}})["inputTokens"] == 12
    else:  # botocore before CountTokens (the plugin's range starts earlier): ApplyGuardrail instead
        server.reply_json({"action": "NONE", "outputs": [], "assessments": [], "usage": {}})
        with capture(settings) as rec:
            answer = bedrock.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}])
            assert answer["action"] == "NONE"
    assert rec.spans() == []


def test_uninstrument_restores_botocore(instrumented):
    import botocore.client

    instrumented.uninstrument()
    try:
        assert not is_genops_wrapped(botocore.client.BaseClient.__dict__["_make_api_call"])
    finally:
        instrumented.instrument()


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs):
        yield self.data


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3"])
def test_default_endpoint_gives_address_and_region_url(aws_env, instrumented, settings, recording_governor, region):
    """Without endpoint_url: the real AWS host, answered by botocore's own before-send hook (no network)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    client = botocore.session.get_session().create_client("bedrock-runtime", region_name=region)
    sent = []

    def answer(request, **kwargs):
        sent.append(request.url)
        body = json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 4, "outputTokens": 1, "totalTokens": 5}}).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(body))

    client.meta.events.register("before-send.bedrock-runtime.Converse", answer)
    with capture(settings, governor=recording_governor) as rec:
        client.converse(modelId=MODEL, messages=MESSAGES)
    host = f"bedrock-runtime.{region}.amazonaws.com"
    assert sent == [f"https://{host}/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"]
    (span,) = rec.spans()
    assert span.attributes[semconv.SERVER_ADDRESS] == host
    assert span.attributes[semconv.SERVER_PORT] == 443
    (request,) = recording_governor.requests
    assert request.api_base_url == f"https://{host}"
    assert request.provider == "aws.bedrock"
    assert request.max_output_tokens is None
    assert "Hello" in list(request.prompt_text())


def test_boto3_clients_are_covered(aws_env, server, instrumented, settings):
    import boto3

    server.reply_json({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "max_tokens", "usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10}})
    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url)
    with capture(settings) as rec:
        client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES, inferenceConfig={"maxTokens": 2})
    attrs = rec.spans()[0].attributes
    assert (attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS], attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (8, 2)
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_internal_failure_lets_the_call_through_unrecorded(bedrock, server, settings, monkeypatch):
    import genops_instrumentation_bedrock as plugin

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the plugin")

    monkeypatch.setattr(plugin, "_describe", broken)
    server.reply_json({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}})
    with capture(settings) as rec:
        assert bedrock.converse(modelId=MODEL, messages=MESSAGES)["stopReason"] == "end_turn"
    assert rec.spans() == []


def test_imports_stay_lazy():
    """Discovery imports the plugin without botocore; instrumenting botocore never pulls in boto3."""
    code = textwrap.dedent(
        """
        import sys
        import genops_instrumentation_bedrock as plugin
        assert "botocore" not in sys.modules and "boto3" not in sys.modules, "eager import"
        import botocore.session
        plugin.BedrockInstrumentor().instrument()
        client = botocore.session.get_session().create_client(
            "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        assert "boto3" not in sys.modules, "boto3 imported"
        print("ok")
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "GENOPS_", "OTEL_"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bedrock_claude_pricing():
    """What the engine asks pricing for a Bedrock Claude call (the pricing module belongs to another helper)."""
    from genai_prices import Usage as PricesUsage
    from genai_prices import calc_price

    from genops_autoinstrument.pricing.prices import price_call
    from genops_autoinstrument.pricing.usage import Usage

    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    expected = calc_price(PricesUsage(input_tokens=1_000_000, output_tokens=100_000), MODEL, provider_id="aws")
    price = price_call("aws.bedrock", MODEL, usage, "https://bedrock-runtime.us-east-1.amazonaws.com")
    assert price.total == pytest.approx(float(expected.total_price))


def test_custom_endpoint_is_priced_by_its_region(aws_env, server, instrumented, settings, recording_governor):
    """A local/VPC endpoint keeps its host in server.address; pricing gets the region's endpoint URL."""
    from genai_prices import Usage as PricesUsage
    from genai_prices import calc_price

    import botocore.session

    client = botocore.session.get_session().create_client("bedrock-runtime", region_name="eu-west-3", endpoint_url=server.url)
    usage = {"inputTokens": 21, "outputTokens": 9, "totalTokens": 1130, "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 100}
    server.reply_json({"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn", "usage": usage})
    with capture(settings, governor=recording_governor) as rec:
        client.converse(modelId=MODEL, messages=MESSAGES)
    assert recording_governor.requests[0].api_base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    attrs = rec.spans()[0].attributes
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    expected = calc_price(PricesUsage(input_tokens=1121, cache_read_tokens=1000, cache_write_tokens=100, output_tokens=9), MODEL, provider_id="aws")
    assert attrs[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_PRICED
    assert attrs[semconv.GENOPS_COST_TOTAL] == pytest.approx(float(expected.total_price))
    assert attrs[semconv.GENOPS_COST_MODEL] == MODEL
    assert attrs[semconv.GENOPS_COST_PROVIDER] == "aws.bedrock"
    (cost,) = rec.metrics()[semconv.METRIC_COST]
    assert cost[1].value == pytest.approx(float(expected.total_price))


def test_real_governor_model_rule_blocks_with_access_denied(bedrock, server):
    from genops_autoinstrument import config

    settings = config.load({"GENOPS_BLOCKED_MODELS": "us.anthropic.*", "GENOPS_LEDGER_URL": "memory://"})
    with capture(settings) as rec:
        with pytest.raises(bedrock.exceptions.AccessDeniedException) as raised:
            bedrock.converse(modelId=MODEL, messages=MESSAGES)
    assert raised.value.reason_code == semconv.REASON_POLICY_DENY_MODEL
    assert server.received == []
    assert rec.spans()[0].attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED


def test_real_governor_budget_blocks_with_throttling(bedrock, server):
    from genops_autoinstrument import config

    settings = config.load({"GENOPS_BUDGETS": "team=0.0001/day", "GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": "memory://"})
    reply = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 5000, "outputTokens": 4000, "totalTokens": 9000}}
    with capture(settings):
        with pytest.raises(bedrock.exceptions.ThrottlingException) as raised:
            for _ in range(5):
                server.reply_json(reply)
                bedrock.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 4000})
    assert raised.value.decision.is_budget
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert len(server.received) < 5
