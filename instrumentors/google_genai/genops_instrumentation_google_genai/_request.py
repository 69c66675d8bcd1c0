"""Describing one google-genai request as a :class:`CallRequest`, without touching the network.

Reads only what the application passed (``model``, ``contents``, ``config``) and the client's
settings (Vertex mode, base URL). Text is extracted lazily, for content rules and opt-in capture.
"""

from __future__ import annotations

from typing import Any, Iterator

from genops_autoinstrument.api import CallRequest, get, semconv, server_of_url

PROVIDER_GEMINI_API = "gcp.gen_ai"
PROVIDER_VERTEX_AI = "gcp.vertex_ai"

# GenerateContentConfig field -> semconv request attribute.
_PARAMETERS = (
    ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
    ("top_k", semconv.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("stop_sequences", semconv.GEN_AI_REQUEST_STOP_SEQUENCES),
    ("frequency_penalty", semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", semconv.GEN_AI_REQUEST_SEED),
    ("candidate_count", semconv.GEN_AI_REQUEST_CHOICE_COUNT),
)


def model_name(model: Any) -> str | None:
    """The bare model id: ``models/gemini-2.5-flash`` and Vertex resource names give ``gemini-2.5-flash``."""
    if not isinstance(model, str) or not model:
        return None
    index = model.rfind("models/")
    if index == 0 or (index > 0 and model[index - 1] == "/"):
        return model[index + len("models/"):] or model
    return model


def provider_of(models: Any) -> str:
    """``gcp.vertex_ai`` when the client talks to Vertex AI, else the Gemini Developer API."""
    api_client = getattr(models, "_api_client", None)
    return PROVIDER_VERTEX_AI if getattr(api_client, "vertexai", False) else PROVIDER_GEMINI_API


def base_url_of(models: Any, config: Any) -> str | None:
    """The base URL the request goes to: the per-call ``http_options`` first, then the client's."""
    url = get(get(config, "http_options"), "base_url")
    if url:
        return str(url)
    options = getattr(getattr(models, "_api_client", None), "_http_options", None)
    url = getattr(options, "base_url", None)
    return str(url) if url else None


def iter_texts(value: Any) -> Iterator[str]:
    """Every text in contents of any accepted shape (str, Part, Content, dicts, lists of them)."""
    if value is None:
        return
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_texts(item)
        return
    parts = get(value, "parts")
    if parts:
        yield from iter_texts(parts)
        return
    text = get(value, "text")
    if isinstance(text, str):
        yield text


def _prompt_texts(contents: Any, config: Any) -> Iterator[str]:
    yield from iter_texts(get(config, "system_instruction"))
    yield from iter_texts(contents)


def _text_parts(value: Any) -> list[dict[str, str]]:
    return [{"type": "text", "content": text} for text in iter_texts(value)]


def input_messages(contents: Any, config: Any) -> list[dict[str, Any]]:
    """Semconv-shaped input messages (recorded only when content capture is on)."""
    messages: list[dict[str, Any]] = []
    system = get(config, "system_instruction")
    if system is not None:
        messages.append({"role": "system", "parts": _text_parts(system)})
    items = contents if isinstance(contents, (list, tuple)) else [contents]
    for item in items:
        role = get(item, "role") if not isinstance(item, str) else None
        messages.append({"role": "assistant" if role == "model" else (role or "user"), "parts": _text_parts(item)})
    return messages


def build_request(models: Any, kwargs: dict[str, Any], operation: str, *, streaming: bool = False) -> CallRequest:
    """The CallRequest for one ``Models``/``AsyncModels`` call (keyword-only in the SDK)."""
    contents = kwargs.get("contents")
    config = kwargs.get("config")
    parameters: dict[str, Any] = {}
    max_output_tokens = None
    if operation == semconv.OPERATION_GENERATE_CONTENT and config is not None:
        for name, attribute in _PARAMETERS:
            value = get(config, name)
            if value is not None:
                parameters[attribute] = list(value) if isinstance(value, (list, tuple)) else value
        max_output_tokens = get(config, "max_output_tokens")
    address, port = server_of_url(base_url_of(models, config))
    return CallRequest(
        provider=provider_of(models),
        operation=operation,
        request_model=model_name(kwargs.get("model")),
        server_address=address,
        server_port=port,
        # Not passed on purpose: the core reads a base URL as "an OpenAI-compatible server with its own
        # prices". This SDK only speaks Google's API, so a custom base_url is a proxy or gateway in
        # front of Google and the call is priced at Google's rates (override with a pricing file).
        api_base_url=None,
        parameters=parameters,
        max_output_tokens=max_output_tokens if isinstance(max_output_tokens, int) else None,
        streaming=streaming,
        prompt_text=lambda: _prompt_texts(contents, config),
        input_messages=lambda: input_messages(contents, config),
    )
