"""What this plugin supports: read by the plugin class and by `genops-run --check`.

Converse and ConverseStream arrived in botocore 1.34.116, but before 1.37.24 botocore's Bedrock
Runtime model has no ``cacheReadInputTokens`` / ``cacheWriteInputTokens`` and drops them from
Converse usage, so prompt-cache tokens would go uncounted (and unpriced). Frameworks pin newer
versions (llama-index-llms-bedrock-converse boto3 >= 1.38.27, langchain-aws boto3 >= 1.43.64,
crewai boto3 ~= 1.43.46). Verified by this plugin's tests against 1.37.24 and the newest.
"""

_instruments = ("botocore >= 1.37.24, < 2",)

# Only the client module: boto3 is a thin layer over it, and apps using botocore alone are covered.
_watched_modules: tuple[str, ...] = ("botocore.client",)
