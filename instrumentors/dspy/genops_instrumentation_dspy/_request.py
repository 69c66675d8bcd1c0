"""Describing one ``dspy.LM`` call as a :class:`CallRequest`, and its block as a DSPy error.

Reads the LM's model string, its settings merged with the call's (what DSPy sends) and the
messages; never the API key. The provider comes from the model string's prefix, as DSPy and
LiteLLM route it (``openai/gpt-4o-mini``: provider ``openai``, model ``gpt-4o-mini``).
"""

from __future__ import annotations

from typing import Any, Iterator

from genops_autoinstrument.api import BlockFactory, CallRequest, Decision, free_texts, get, native_violation, semconv, server_of_url

# DSPy / LiteLLM model prefixes -> gen_ai.provider.name (semantic conventions v1.41).
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "ollama": "ollama",
    "ollama_chat": "ollama",
}
_OPERATIONS = {"chat": semconv.OPERATION_CHAT, "text": semconv.OPERATION_TEXT_COMPLETION, "responses": semconv.OPERATION_CHAT}
_PARAMETERS = (
    ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
    ("max_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_completion_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("frequency_penalty", semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", semconv.GEN_AI_REQUEST_SEED),
    ("n", semconv.GEN_AI_REQUEST_CHOICE_COUNT),
)


def provider_and_model(model: str) -> tuple[str, str]:
    """``("openai", "gpt-4o-mini")`` for ``"openai/gpt-4o-mini"``; DSPy's default provider is OpenAI."""
    prefix, slash, rest = model.partition("/")
    if not slash:
        return "openai", model
    return _PROVIDERS.get(prefix.lower(), prefix.lower()), rest


def describe(lm: Any, call: Any) -> CallRequest:
    """The request of one prepared DSPy call (``dspy.clients.execution.PreparedCall``)."""
    provider, model = provider_and_model(str(lm.model))
    settings = call.legacy if isinstance(getattr(call, "legacy", None), dict) else {}
    settings = {**(getattr(lm, "kwargs", None) or {}), **settings}
    parameters: dict[str, Any] = {}
    for key, attribute in _PARAMETERS:
        value = settings.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parameters[attribute] = value
    config = get(getattr(call, "request", None), "config")
    max_tokens = get(config, "max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        parameters[semconv.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    base_url = settings.get("api_base") or settings.get("base_url")
    base_url = base_url if isinstance(base_url, str) and base_url else None
    address, port = server_of_url(base_url)
    return CallRequest(
        provider=provider,
        operation=_OPERATIONS.get(getattr(lm, "model_type", "chat"), semconv.OPERATION_CHAT),
        request_model=model,
        server_address=address,
        server_port=port,
        api_base_url=_without_userinfo(base_url),
        parameters=parameters,
        max_output_tokens=parameters.get(semconv.GEN_AI_REQUEST_MAX_TOKENS),
        prompt_text=lambda: _texts(call),
        input_messages=lambda: _messages(call),
    )


def _without_userinfo(url: str | None) -> str | None:
    if url is None or "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def _messages(call: Any) -> list[dict[str, Any]]:
    """The outgoing messages as JSON-able role/content pairs (text parts only)."""
    request = getattr(call, "request", None)
    if request is not None:
        return [{"role": str(get(message, "role")), "content": "".join(_part_texts(get(message, "parts")))} for message in get(request, "messages") or ()]
    messages = (getattr(call, "legacy", None) or {}).get("messages") or ()
    return [{"role": str(get(message, "role")), "content": "".join(_content_texts(get(message, "content")))} for message in messages]


# Keys whose values are never free text, in DSPy's typed requests (lm15 parts) and in the
# OpenAI-shaped settings of a legacy call: the model, roles, ids, provider continuation state
# (signatures, encrypted reasoning), inline media and local paths, end-user ids and client settings
# (the API key, base URL, headers: never read).
_OPAQUE = frozenset(
    {
        "model", "role", "type", "id", "status", "call_id", "tool_call_id", "continuation", "data", "bytes", "media_type", "mime_type",
        "file_id", "file_data", "path", "detail", "signature", "encrypted_content", "cache_control", "user", "user_id",
        "safety_identifier", "prompt_cache_key", "service_tier", "logprobs", "logit_bias", "cache", "prompt_cache", "rollout_id",
        "num_retries", "api_key", "api_base", "base_url", "headers", "extra_headers", "timeout", "api_version",
        "azure_ad_token_provider", "organization", "project", "extra_query", "custom_llm_provider",
    }
)
# A typed tool call's ``input`` and a legacy one's ``arguments``, and ``metadata``: the application's
# keys, read as ``key: value`` (a card held as an int, ``{"password": …}``).
_ARGUMENTS = frozenset({"input", "arguments", "metadata"})


def _texts(call: Any) -> list[str]:
    """Every free text the call sends, for content rules and the estimate: the system prompt, tool
    definitions, stop sequences and the output schema, then every message part: texts, tool calls'
    arguments and tool results, reasoning, documents' text; newest last."""
    request = getattr(call, "request", None)
    if request is not None:
        config = get(request, "config")
        roots = [get(request, "system"), get(request, "tools"), get(config, "stop"), get(config, "response_format"), get(config, "extensions"), get(request, "messages")]
        return free_texts(roots, _OPAQUE, _ARGUMENTS)
    legacy = getattr(call, "legacy", None)
    if not isinstance(legacy, dict):
        return []
    settings = {key: value for key, value in legacy.items() if key not in ("messages", "response_format")}
    return free_texts([settings, _schema(legacy.get("response_format")), legacy.get("messages")], _OPAQUE, _ARGUMENTS)


def _schema(response_format: Any) -> Any:
    """A pydantic class's JSON schema (its descriptions are sent), other values as given."""
    if not isinstance(response_format, type):
        return response_format
    try:
        return response_format.model_json_schema() if hasattr(response_format, "model_json_schema") else None
    except Exception:  # DSPy fails on it the same way: nothing to judge
        return None


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            text = get(part, "text")
            if isinstance(text, str):
                yield text


def _part_texts(parts: Any) -> Iterator[str]:
    for part in parts or ():
        text = getattr(part, "text", None)
        if isinstance(text, str):
            yield text


def block_factory(model: str, provider: str) -> BlockFactory:
    """DSPy's own errors for a blocked call: ``LMBillingError`` (429, quota) for a budget or rate
    limit, which DSPy does not retry; ``LMProviderError`` (403) for a model or content rule. Both
    are also :class:`PolicyViolation`; nothing was sent."""

    def build(decision: Decision) -> BaseException:
        from dspy.utils.exceptions import LMBillingError, LMProviderError

        message = decision.message or f"Request {decision.explanation}"
        if decision.is_budget:
            native: type[BaseException] = LMBillingError
            status, code = 429, "insufficient_quota"
        else:
            native = LMProviderError
            status, code = 403, (decision.reason_code or "policy_violation").lower()
        return native_violation(native, decision, lambda cls: cls(message, model=model, provider=provider, provider_code=code, status=status))

    return build
