"""An ordinary Amazon Bedrock application: no GenOps import, configured by the usual AWS_* variables.

Against the local stand-in (``python -m examples.local_provider --port 8765``)::

    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:8765 \
        genops-run python examples/bedrock_converse.py

Without AWS_ENDPOINT_URL_BEDROCK_RUNTIME it talks to the real Bedrock Runtime of AWS_DEFAULT_REGION.
"""

import json

import boto3

client = boto3.client("bedrock-runtime")
CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

reply = client.converse(
    modelId=CLAUDE,
    system=[{"text": "You are a concise assistant."}],
    messages=[{"role": "user", "content": [{"text": "What is a token budget?"}]}],
    inferenceConfig={"maxTokens": 60, "temperature": 0.2},
)
print(f"Converse: {reply['output']['message']['content'][0]['text']}  ({reply['usage']['totalTokens']} tokens)")

print("ConverseStream: ", end="")
streamed = client.converse_stream(
    modelId="amazon.nova-lite-v1:0",
    messages=[{"role": "user", "content": [{"text": "Summarise OpenTelemetry in one sentence."}]}],
)
for event in streamed["stream"]:
    if "contentBlockDelta" in event:
        print(event["contentBlockDelta"]["delta"]["text"], end="", flush=True)
print()

invoked = client.invoke_model(
    modelId=CLAUDE,
    body=json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 60,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Name one cloud cost lever."}]}],
        }
    ),
)
message = json.loads(invoked["body"].read())
print(f"InvokeModel: {message['content'][0]['text']}")

print("InvokeModelWithResponseStream: ", end="")
llama = client.invoke_model_with_response_stream(
    modelId="meta.llama3-8b-instruct-v1:0",
    body=json.dumps({"prompt": "Why do budgets matter?", "max_gen_len": 40}),
)
for event in llama["body"]:
    print(json.loads(event["chunk"]["bytes"])["generation"], end="", flush=True)
print()

embedded = client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "token budgets"}))
print(f"embedded into {len(json.loads(embedded['body'].read())['embedding'])} dimensions")
