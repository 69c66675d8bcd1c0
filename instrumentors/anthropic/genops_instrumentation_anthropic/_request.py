"""Describing one Messages API call to the engine before it is sent (no SDK import needed)."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from genops_autoinstrument.api import CallRequest, Prepared, get, in_recorded_call, semconv, server_of_url

from ._errors import blocker

# The SDK's own `gen_ai.provider.name` per client class (BaseClient._gen_ai_provider_name).
_PLATFORM_PROVIDERS = ("aws.bedrock", "gcp.vertex_ai")

# Request keyword -> semconv request attribute (read from kwargs, else from extra_body).
_PARAMETERS = {
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "top_k": semconv.GEN_AI_REQUEST_TOP_K,
    "stop_sequences": semconv.GEN_AI_REQUEST_STOP_SEQUENCES,
}


def _plain(value: Any) -> Any:
    """The value if it is a real attribute value (not the SDK's omit/not_given sentinels)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def provider_of(client: Any) -> str:
    """`aws.bedrock` / `gcp.vertex_ai` for the SDK's platform clients, `anthropic` otherwise."""
    name = getattr(client, "_gen_ai_provider_name", None)
    if name in _PLATFORM_PROVIDERS:
        return name
    for klass in type(client).__mro__:
        if "Bedrock" in klass.__name__:
            return "aws.bedrock"
        if "Vertex" in klass.__name__:
            return "gcp.vertex_ai"
    return "anthropic"


def _texts(content: Any) -> Iterator[str]:
    """Every text in a message ``content``: a string, or blocks with ``text`` / nested ``content``."""
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, (list, tuple)):
        return
    for block in content:
        text = get(block, "text")
        if isinstance(text, str):
            yield text
        nested = get(block, "content")
        if nested is not None and nested is not content:
            yield from _texts(nested)


def prompt_texts(kwargs: Mapping[str, Any]) -> Iterator[str]:
    """The outgoing text (system and messages) for content rules and the reservation estimate."""
    yield from _texts(kwargs.get("system"))
    for message in kwargs.get("messages") or ():
        yield from _texts(get(message, "content"))


def input_messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request messages in the GenAI ``gen_ai.input.messages`` shape (recorded only on opt-in)."""
    found: list[dict[str, Any]] = []
    system = list(_texts(kwargs.get("system")))
    if system:
        found.append({"role": "system", "parts": [{"type": "text", "content": text} for text in system]})
    for message in kwargs.get("messages") or ():
        parts = [{"type": "text", "content": text} for text in _texts(get(message, "content"))]
        found.append({"role": get(message, "role") or "user", "parts": parts})
    return found


def build_request(client: Any, kwargs: Mapping[str, Any], *, streaming: bool) -> CallRequest:
    """The engine's description of one ``messages.create``-like call."""
    extra_body = kwargs.get("extra_body")
    extra_body = extra_body if isinstance(extra_body, Mapping) else {}
    parameters: dict[str, Any] = {}
    for key, attribute in _PARAMETERS.items():
        value = _plain(kwargs[key]) if key in kwargs else _plain(extra_body.get(key))
        if value is not None:
            parameters[attribute] = value
    output_format = kwargs.get("output_format")
    config_format = get(kwargs.get("output_config"), "format")
    if isinstance(output_format, type) or get(config_format, "type") == "json_schema":
        parameters[semconv.GEN_AI_OUTPUT_TYPE] = "json"
    max_tokens = parameters.get(semconv.GEN_AI_REQUEST_MAX_TOKENS)
    base_url = getattr(client, "base_url", None)
    host, port = server_of_url(base_url)
    model = _plain(kwargs.get("model"))
    return CallRequest(
        provider=provider_of(client),
        operation=semconv.OPERATION_CHAT,
        request_model=model if isinstance(model, str) else None,
        server_address=host,
        server_port=port,
        api_base_url=None if base_url is None else str(base_url),
        parameters=parameters,
        max_output_tokens=max_tokens if isinstance(max_tokens, int) else None,
        streaming=streaming,
        prompt_text=lambda: prompt_texts(kwargs),
        input_messages=lambda: input_messages(kwargs),
    )


def describe(instance: Any, kwargs: Mapping[str, Any], *, streaming: bool) -> Prepared:
    """A Messages resource call for the kit: its request, its native block error and, as ``state``,
    whether it runs inside another recorded call (then the enclosing span replaces the SDK's)."""
    client = getattr(instance, "_client", None)
    return Prepared(build_request(client, kwargs, streaming=streaming), block=blocker(client), state=in_recorded_call())


def prepare(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    """The kit's ``prepare`` for ``create`` / ``parse`` (``stream=True`` makes it a streaming call)."""
    return describe(instance, kwargs, streaming=kwargs.get("stream") is True)
