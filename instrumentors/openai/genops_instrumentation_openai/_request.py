"""Describing one OpenAI SDK call as a :class:`CallRequest` (provider, server, parameters, prompt).

Reads only the keyword arguments the application passed and the client's ``base_url``; never
headers or the API key. Works on dicts and SDK objects alike, so nothing here imports ``openai``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator

from genops_autoinstrument.api import CallRequest, get, given, is_mapping, semconv, server_of_url

# Hosts of OpenAI-compatible services -> gen_ai.provider.name: the semantic conventions' names where
# they define one (groq, deepseek, mistral_ai, perplexity, x_ai, gcp.*, anthropic, cohere), else
# the service's own lower-case name. Any other host is a gateway, proxy or self-hosted server
# speaking the OpenAI API: its provider is "openai" and ``server.address`` keeps the host.
_KNOWN_HOSTS = {
    "api.openai.com": "openai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "codestral.mistral.ai": "mistral_ai",
    "api.perplexity.ai": "perplexity",
    "api.x.ai": "x_ai",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "api.anthropic.com": "anthropic",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
    "openrouter.ai": "openrouter",
    "api.openrouter.ai": "openrouter",
    "api.together.xyz": "together_ai",
    "api.fireworks.ai": "fireworks",
    "api.cerebras.ai": "cerebras",
}
# Host suffixes (each starts with a dot) -> provider, for regional and per-resource host names.
_KNOWN_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.openai"),
    (".models.ai.azure.com", "azure.ai.inference"),
    (".inference.ai.azure.com", "azure.ai.inference"),
    (".api.openai.com", "openai"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
)


_SCALARS = (int, float, str)


def _scalar(value: Any) -> Any:
    if value is None:
        return None
    cls = type(value)
    if cls is int or cls is float or cls is str:
        return value
    if isinstance(value, bool) or not given(value):
        return None
    return value if isinstance(value, _SCALARS) else None


# --- server and provider ---------------------------------------------------------------------
class Server:
    """Where a resource's client sends requests; ``blocks`` caches its block-error factories by path."""

    __slots__ = ("provider", "address", "port", "base_url", "blocks")

    def __init__(self, provider: str, address: str | None, port: int | None, base_url: str | None) -> None:
        self.provider = provider
        self.address = address
        self.port = port
        self.base_url = base_url
        self.blocks: dict[str, Callable[[Any], BaseException]] = {}


def provider_name(client: Any, host: str | None) -> str:
    """gen_ai.provider.name for the server the client talks to: never a host name or an address."""
    if type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI"):
        return "azure.ai.openai"
    if not host:
        return "openai"
    host = host.lower().rstrip(".")
    known = _KNOWN_HOSTS.get(host)
    if known is not None:
        return known
    for suffix, provider in _KNOWN_SUFFIXES:
        if host.endswith(suffix):
            return provider
    if host.startswith("bedrock") and host.endswith(".amazonaws.com"):  # bedrock-runtime / bedrock-mantle
        return "aws.bedrock"
    return "openai"


# id(base_url) -> (base_url, client type, Server): a client's base_url object is immutable and is
# replaced, not changed, when the application sets a new one; the entry keeps it alive (stable id).
_SERVERS: dict[int, tuple[Any, type, Server]] = {}


def server_of(resource: Any) -> Server:
    """Provider and address from ``resource._client.base_url`` (credentials are never read)."""
    client = getattr(resource, "_client", None)
    url = getattr(client, "base_url", None)
    if url is None:
        return Server(provider_name(client, None), None, None, None)
    cached = _SERVERS.get(id(url))
    if cached is not None and cached[0] is url and cached[1] is type(client):
        return cached[2]
    host, port = server_of_url(url)
    server = Server(provider_name(client, host), host, port, _without_userinfo(str(url)))
    if len(_SERVERS) >= 256:
        _SERVERS.clear()
    _SERVERS[id(url)] = (url, type(client), server)
    return server


def _without_userinfo(url: str) -> str:
    """A base URL could carry ``user:password@``; credentials are never recorded."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    return url


# --- prompt text: every free text the request sends -----------------------------------------
# Keys of messages and input items whose values are never free text: roles, ids and statuses,
# inline binary payloads (base64 audio and files), encrypted reasoning, generated images, log-probs.
_NOT_TEXT = frozenset({"role", "type", "id", "call_id", "tool_call_id", "status", "detail", "file_id", "file_data", "data", "encrypted_content", "result", "logprobs"})
_NOTHING: frozenset[str] = frozenset()


def _collect(roots: Iterable[Any], skip: frozenset[str] = _NOTHING, out: list[str] | None = None) -> list[str]:
    """``out`` plus each string inside each of ``roots`` (dicts, lists, SDK models), the roots in
    order, each string as the object holds it (never re-serialised), except the values of ``skip``
    keys and ``data:`` URLs (inline images, audio, files). No recursion (any depth), each container
    once (no cycle); the order of strings within one root is not kept (no rule depends on it)."""
    out = [] if out is None else out
    seen: set[int] = set()
    for root in roots:
        if isinstance(root, str):
            if root and not root.startswith("data:"):
                out.append(root)
            continue
        stack = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                children: Any = item
            elif isinstance(item, dict) or is_mapping(item):
                children = [child for key, child in item.items() if key not in skip] if skip else item.values()
            elif hasattr(type(item), "model_fields"):  # an SDK object (pydantic), e.g. a previous response's message
                children = [child for key, child in vars(item).items() if key not in skip]
            else:
                continue
            if id(item) in seen:
                continue
            seen.add(id(item))
            for child in children:
                if isinstance(child, str):
                    if child and not child.startswith("data:"):
                        out.append(child)
                elif child is not None and not isinstance(child, (int, float)):
                    stack.append(child)
    return out


def _items(value: Any) -> Any:
    return value if isinstance(value, (list, tuple)) else (value,)


def chat_prompt_text(kwargs: Mapping[str, Any]) -> list[str]:
    """Every free text of a chat request, for content rules and the estimate: stop sequences and
    metadata, tool and legacy function definitions (names, descriptions, parameter schemas: billed
    input tokens), the response schema, the predicted output (``prediction.content``), then each
    message's contents, names, refusals and tool-call arguments (the JSON strings as given), newest last."""
    response_format = kwargs.get("response_format")
    schema = None if isinstance(response_format, type) or not given(response_format) else get(response_format, "json_schema")  # a class: code
    prediction = kwargs.get("prediction")
    texts = _collect((kwargs.get("stop"), kwargs.get("metadata"), kwargs.get("tools"), kwargs.get("functions"), schema, get(prediction, "content") if given(prediction) else None))
    return _collect(_items(kwargs.get("messages")), _NOT_TEXT, texts)


def responses_prompt_text(kwargs: Mapping[str, Any]) -> list[str]:
    """Every free text of a Responses API request: ``instructions``, stop and metadata, function and
    custom tool definitions (and built-in tools' descriptions: never an MCP tool's authorization or
    headers), the output schema, prompt-template variables, then every ``input`` item: messages,
    function and custom tool calls' arguments and outputs, reasoning summaries, shell and code items."""
    text, prompt = kwargs.get("text"), kwargs.get("prompt")
    roots = [kwargs.get("instructions"), kwargs.get("stop"), kwargs.get("metadata"), get(text, "format") if given(text) else None]
    for tool in _items(kwargs.get("tools")):
        roots += [tool] if get(tool, "type") in ("function", "custom") else [get(tool, "description"), get(tool, "server_description")]
    texts = _collect(roots)
    variables = get(prompt, "variables") if given(prompt) else None  # each a string or an input_text/image/file item
    return _collect([*(variables.values() if is_mapping(variables) else ()), *_items(kwargs.get("input"))], _NOT_TEXT, texts)


def plain_texts(value: Any) -> Iterator[str]:
    """Prompt or input of legacy completions and embeddings: a string or a list of strings."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str):
                yield item


def completion_prompt_text(kwargs: Mapping[str, Any]) -> list[str]:
    """A legacy completion's stop sequences, prompt and ``suffix`` (the text after the insertion)."""
    return _collect((kwargs.get("stop"), kwargs.get("prompt"), kwargs.get("suffix")))


# --- input messages (recorded only on opt-in) --------------------------------------------------
def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
        return
    if isinstance(content, (list, tuple)):
        for part in content:
            if isinstance(part, str):
                yield part
                continue
            text = get(part, "text")
            if isinstance(text, str):
                yield text
            elif isinstance(get(part, "refusal"), str):
                yield get(part, "refusal")


def _text_parts(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "content": text} for text in _content_texts(content)]


def chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat messages in the GenAI semconv JSON shape (recorded only on opt-in)."""
    result = []
    for message in messages or ():
        role = get(message, "role") or "user"
        parts = _text_parts(get(message, "content"))
        for tool_call in get(message, "tool_calls") or ():
            function = get(tool_call, "function")
            parts.append({"type": "tool_call", "id": get(tool_call, "id"), "name": get(function, "name"), "arguments": get(function, "arguments")})
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": get(message, "tool_call_id"), "response": " ".join(p["content"] for p in parts if "content" in p)}]
        result.append({"role": role, "parts": parts})
    return result


def responses_input_messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Responses API instructions and input in the GenAI semconv JSON shape."""
    result: list[dict[str, Any]] = []
    if isinstance(kwargs.get("instructions"), str):
        result.append({"role": "system", "parts": [{"type": "text", "content": kwargs["instructions"]}]})
    value = kwargs.get("input")
    if isinstance(value, str):
        result.append({"role": "user", "parts": [{"type": "text", "content": value}]})
        return result
    for item in value if isinstance(value, (list, tuple)) else ():
        kind = get(item, "type")
        if kind == "function_call_output":
            result.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": get(item, "call_id"), "response": get(item, "output")}]})
        elif kind == "function_call":
            result.append({"role": "assistant", "parts": [{"type": "tool_call", "id": get(item, "call_id"), "name": get(item, "name"), "arguments": get(item, "arguments")}]})
        else:
            result.append({"role": get(item, "role") or "user", "parts": _text_parts(get(item, "content"))})
    return result


# --- parameters -------------------------------------------------------------------------------
def _stop(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _output_type(response_format: Any) -> str | None:
    kind = get(response_format, "type") if given(response_format) else None
    if isinstance(response_format, type):  # a pydantic class given to .parse()
        return "json"
    if kind in ("json_schema", "json_object"):
        return "json"
    return "text" if kind == "text" else None


def _max_tokens(kwargs: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = _scalar(kwargs.get(name))
        if isinstance(value, int):
            return value
    return None


def _common(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        semconv.GEN_AI_REQUEST_TEMPERATURE: _scalar(kwargs.get("temperature")),
        semconv.GEN_AI_REQUEST_TOP_P: _scalar(kwargs.get("top_p")),
        semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY: _scalar(kwargs.get("frequency_penalty")),
        semconv.GEN_AI_REQUEST_PRESENCE_PENALTY: _scalar(kwargs.get("presence_penalty")),
        semconv.GEN_AI_REQUEST_SEED: _scalar(kwargs.get("seed")),
        semconv.GEN_AI_REQUEST_STOP_SEQUENCES: _stop(kwargs.get("stop")),
    }
    n = _scalar(kwargs.get("n"))
    if isinstance(n, int) and n != 1:
        params[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = n
    return params


def _request(
    server: Server,
    operation: str,
    kwargs: Mapping[str, Any],
    params: dict[str, Any],
    max_output: int | None,
    streaming: bool,
    prompt_text: Callable[[], Iterable[str]] | None,
    input_messages: Callable[[], Any] | None,
) -> CallRequest:
    if max_output is not None:
        params[semconv.GEN_AI_REQUEST_MAX_TOKENS] = max_output
    model = kwargs.get("model")
    return CallRequest(
        provider=server.provider,
        operation=operation,
        request_model=model if isinstance(model, str) and model else None,
        server_address=server.address,
        server_port=server.port,
        api_base_url=server.base_url,
        parameters={key: value for key, value in params.items() if value is not None},
        max_output_tokens=max_output,
        streaming=streaming,
        prompt_text=prompt_text,
        input_messages=input_messages,
    )


# The arguments _common and _output_type read: most calls pass none of them, and skip both.
_CHAT_PARAMETER_ARGUMENTS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty", "seed", "stop", "n", "response_format"})


def chat_request(server: Server, kwargs: Mapping[str, Any], streaming: bool) -> CallRequest:
    """A chat.completions create/parse call."""
    if _CHAT_PARAMETER_ARGUMENTS.isdisjoint(kwargs):
        params: dict[str, Any] = {}
    else:
        params = _common(kwargs)
        params[semconv.GEN_AI_OUTPUT_TYPE] = _output_type(kwargs.get("response_format"))
    messages = kwargs.get("messages")
    return _request(
        server,
        semconv.OPERATION_CHAT,
        kwargs,
        params,
        _max_tokens(kwargs, "max_completion_tokens", "max_tokens"),
        streaming,
        lambda: chat_prompt_text(kwargs),
        lambda: chat_input_messages(messages),
    )


def responses_request(server: Server, kwargs: Mapping[str, Any], streaming: bool) -> CallRequest:
    """A Responses API create/parse call (a chat operation)."""
    params = {
        semconv.GEN_AI_REQUEST_TEMPERATURE: _scalar(kwargs.get("temperature")),
        semconv.GEN_AI_REQUEST_TOP_P: _scalar(kwargs.get("top_p")),
    }
    text = kwargs.get("text")
    params[semconv.GEN_AI_OUTPUT_TYPE] = "json" if given(kwargs.get("text_format")) else _output_type(get(text, "format") if given(text) else None)
    return _request(
        server,
        semconv.OPERATION_CHAT,
        kwargs,
        params,
        _max_tokens(kwargs, "max_output_tokens"),
        streaming,
        lambda: responses_prompt_text(kwargs),
        lambda: responses_input_messages(kwargs),
    )


def completions_request(server: Server, kwargs: Mapping[str, Any], streaming: bool) -> CallRequest:
    """A legacy completions.create call."""
    prompt = kwargs.get("prompt")
    return _request(
        server,
        semconv.OPERATION_TEXT_COMPLETION,
        kwargs,
        _common(kwargs),
        _max_tokens(kwargs, "max_tokens"),
        streaming,
        lambda: completion_prompt_text(kwargs),
        lambda: [{"role": "user", "parts": [{"type": "text", "content": t} for t in plain_texts(prompt)]}],
    )


def embeddings_request(server: Server, kwargs: Mapping[str, Any], streaming: bool) -> CallRequest:
    """An embeddings.create call."""
    value = kwargs.get("input")
    params: dict[str, Any] = {}
    encoding = kwargs.get("encoding_format")
    if isinstance(encoding, str):
        params[semconv.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
    return _request(server, semconv.OPERATION_EMBEDDINGS, kwargs, params, None, False, lambda: plain_texts(value), None)
