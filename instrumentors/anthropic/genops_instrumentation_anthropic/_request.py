"""Describing one Messages API call to the engine before it is sent (no SDK import needed)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from genops_autoinstrument.api import CallRequest, Prepared, get, is_mapping, semconv, server_of_url

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


# Keys of messages and blocks whose values are never free text: roles, ids, opaque signatures and
# encrypted content, inline base64 sources (a plain-text document's ``data`` is read all the same).
_OPAQUE = frozenset({"role", "type", "id", "tool_use_id", "signature", "data", "encrypted_content", "media_type", "cache_control", "file_id"})
_LABELLED_UP_TO = 512  # characters: longer values are read bare (a "key: value" secret is never longer)


def _fields(value: Any) -> Any:
    """The keys and values of a dict or an SDK object (pydantic); None for anything else."""
    if isinstance(value, dict) or is_mapping(value):
        return value
    return vars(value) if hasattr(type(value), "model_fields") else None


def _arguments(root: Any, found: list[str], seen: set[int]) -> None:
    """A tool call's ``input`` (a dict, no string form) as ``key: value`` lines, numbers included, so
    that ``{"password": …}`` or a card number held as an int is judged as the API receives it."""
    pending: list[tuple[Any, str]] = [(root, "input")]
    while pending:
        value, label = pending.pop()
        if isinstance(value, str) or isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(value)
            found.append(text if len(text) > _LABELLED_UP_TO else f"{label}: {text}")
            continue
        fields = None if isinstance(value, (list, tuple)) else _fields(value)
        if id(value) in seen or fields is None and not isinstance(value, (list, tuple)):
            continue
        seen.add(id(value))
        if fields is None:
            pending.extend((item, label) for item in value)
        else:
            pending.extend((item, str(key)) for key, item in fields.items())


def _walk(roots: Iterable[Any], opaque: frozenset[str] = frozenset(), found: list[str] | None = None) -> list[str]:
    """``found`` plus each text inside ``roots`` (dicts, lists, SDK models) as it is held, the roots
    in order, with no recursion (any depth, each container once). Values of ``opaque`` keys are
    passed over, except a plain-text document source's ``data``; a tool call's ``input`` is read by
    :func:`_arguments`. The order of texts within one root is not kept (no rule depends on it)."""
    found = [] if found is None else found
    seen: set[int] = set()
    for root in roots:
        pending = [root]
        while pending:
            value = pending.pop()
            if isinstance(value, str):
                found.append(value)
                continue
            if isinstance(value, (list, tuple)):
                if id(value) not in seen:
                    seen.add(id(value))
                    pending.extend(value)
                continue
            fields = _fields(value)
            if fields is None or id(value) in seen:
                continue
            seen.add(id(value))
            plain = fields.get("type") == "text"  # a plain-text source: its data is the document
            for key, item in fields.items():
                if isinstance(item, str):
                    if key not in opaque or plain and key == "data":
                        found.append(item)
                elif key == "input" and opaque:
                    _arguments(item, found, seen)
                elif item is not None and key not in opaque and not isinstance(item, (bool, int, float)):
                    pending.append(item)
    return found


def prompt_texts(kwargs: Mapping[str, Any]) -> list[str]:
    """Every free text the request sends, for content rules and the reservation estimate: ``system``,
    stop sequences, tool definitions (names, descriptions, input schemas: billed input tokens), the
    output schema, then each message's blocks: texts, documents, thinking, tool calls' ``input``
    and tool results, newest last. Credentials (``mcp_servers``) and ids are not prompt text."""
    schemas = [schema for schema in (kwargs.get("output_format"), get(kwargs.get("output_config"), "format")) if not isinstance(schema, type)]  # a class: code
    found = _walk([kwargs.get("system"), kwargs.get("stop_sequences")], _OPAQUE)
    found = _walk([kwargs.get("tools"), *schemas], found=found)
    messages = kwargs.get("messages")
    return _walk(messages if isinstance(messages, (list, tuple)) else (), _OPAQUE, found)


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
        own_telemetry=sdk_tracing_off(client),
    )


def sdk_tracing_off(client: Any) -> bool:
    """Whether the application turned this client's own OpenTelemetry off (``open_telemetry=False``,
    ``ANTHROPIC_OPEN_TELEMETRY=false`` when it was built): then its calls reach the application's
    tracer provider neither bare nor through GenOps, which records them into its own."""
    options = getattr(client, "_open_telemetry", None)  # anthropic >= 1.14; resolved at construction
    traces = options.get("traces") if isinstance(options, Mapping) else None
    return isinstance(traces, Mapping) and traces.get("enabled") is False


def describe(instance: Any, kwargs: Mapping[str, Any], *, streaming: bool) -> Prepared:
    """A Messages resource call for the kit: its request and its native block error."""
    client = getattr(instance, "_client", None)
    return Prepared(build_request(client, kwargs, streaming=streaming), block=blocker(client))


def prepare(instance: Any, args: tuple, kwargs: dict) -> Prepared:
    """The kit's ``prepare`` for ``create`` / ``parse`` (``stream=True`` makes it a streaming call)."""
    return describe(instance, kwargs, streaming=kwargs.get("stream") is True)
