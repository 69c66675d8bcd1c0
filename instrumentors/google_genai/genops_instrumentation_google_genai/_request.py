"""Describing one google-genai request as a :class:`CallRequest`, without touching the network.

Reads only what the application passed (``model``, ``contents``, ``config``) and the client's
settings (Vertex mode, base URL). Text is extracted lazily, for content rules and opt-in capture.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Iterator

from genops_autoinstrument.api import CallRequest, get, is_mapping, semconv, server_of_url

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
    """Every ``text`` in contents of any accepted shape (str, Part, Content, dicts, lists of them),
    in order, without recursion, each container once (opt-in capture of messages and of the response)."""
    pending = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
            continue
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple)):
            pending.extend(reversed(item))
        else:
            parts = get(item, "parts")
            text = None if parts else get(item, "text")
            if parts:
                pending.extend(reversed(parts) if isinstance(parts, (list, tuple)) else (parts,))
            elif isinstance(text, str):
                yield text


# --- prompt text: every free text the request sends -----------------------------------------
# Keys (snake_case and the camelCase the SDK also accepts) whose values are never free text: inline
# media, file and download URIs (signed URLs carry tokens the API needs), thought signatures, ids, roles.
_OPAQUE = frozenset(
    {"inline_data", "inlineData", "file_uri", "fileUri", "uri", "download_uri", "downloadUri", "sha256_hash", "sha256Hash",
     "thought_signature", "thoughtSignature", "mime_type", "mimeType", "id", "role", "video_metadata", "videoMetadata", "http_options", "httpOptions"}
)
# A function call's ``args`` and a function's ``response`` are dicts with no string form: read as
# ``key: value`` lines, numbers included, so ``{"password": …}`` or a card held as an int is judged.
_ARGUMENTS = frozenset({"args", "response"})
_LABELLED_UP_TO = 512  # characters: a longer value is read bare (no copy of a large string)
# Schema maps keyed by the application's own names (a property called "id" or "uri" is still read).
_NAMED = frozenset({"properties", "patternProperties", "$defs", "defs", "definitions"})


_MODEL_TYPES: dict[type, bool] = {}  # type -> is it an SDK model (pydantic)? (the lookup is slow)


def _members(value: Any) -> Any:
    """The ``(key, value)`` pairs of a dict or an SDK model (pydantic), None for anything else."""
    if isinstance(value, dict) or is_mapping(value):
        return value.items()
    cls = type(value)
    model = _MODEL_TYPES.get(cls)
    if model is None:
        model = hasattr(cls, "model_fields") and hasattr(value, "__dict__")
        if len(_MODEL_TYPES) < 1024:
            _MODEL_TYPES[cls] = model
    return vars(value).items() if model else None


def _labelled(members: Any, found: list[str]) -> list[tuple[Any, str | None]]:
    """Arguments: each string or number as ``key: value`` (a long string bare); the rest, labelled."""
    nested: list[tuple[Any, str | None]] = []
    for key, child in members:
        if isinstance(child, str):
            found.append(f"{key}: {child}" if len(child) <= _LABELLED_UP_TO else child)
        elif isinstance(child, (int, float)) and not isinstance(child, bool):
            found.append(f"{key}: {child}")
        elif child is not None:
            nested.append((child, str(key)))
    return nested


def _gather(roots: list[tuple[Any, str | None]], found: list[str]) -> list[str]:
    """``found`` plus every string under ``roots``, each ``(value, label)`` (a label: read the values
    below as ``key: value``, numbers too), the roots in order, each object's own strings before what
    is nested in it. An explicit stack in place of recursion (any depth) and a seen-set (each
    container once, so a self-referencing structure ends)."""
    seen: set[int] = set()
    stack = roots[::-1]
    while stack:
        node, label = stack.pop()
        if isinstance(node, str):
            found.append(f"{label}: {node}" if label is not None and len(node) <= _LABELLED_UP_TO else node)
            continue
        if node is None or id(node) in seen:
            continue
        if isinstance(node, (list, tuple)):
            seen.add(id(node))
            stack.extend((child, label) for child in reversed(node))
            continue
        members = _members(node)
        if members is None:
            continue
        seen.add(id(node))
        if label is not None:
            stack.extend(reversed(_labelled(members, found)))
            continue
        below: list[tuple[Any, str | None]] = []
        for key, child in [item for item in members if item[1] is not None]:  # an SDK model's fields are mostly None
            if key in _OPAQUE or isinstance(child, (bool, int, float, bytes)):
                continue
            if isinstance(child, str):
                found.append(child)
            elif key in _ARGUMENTS:
                below.append((child, key))
            elif key in _NAMED and (isinstance(child, dict) or is_mapping(child)) and id(child) not in seen:
                seen.add(id(child))
                below.extend((schema, None) for schema in child.values())
            else:
                below.append((child, None))
        stack.extend(reversed(below))
    return found


def _option(config: Any, name: str, camel: str) -> Any:
    """A config field, by its name or (a dict config) by the camelCase name the API uses."""
    value = get(config, name)
    return get(config, camel) if value is None and isinstance(config, dict) else value


def _from_class(schema: Any) -> Any:
    """A pydantic class's JSON schema (descriptions, titles) as the SDK sends it (also inside
    ``list[Model]`` or ``Model | None``); other values as given."""
    inner = typing.get_args(schema) if not isinstance(schema, (dict, str)) else ()
    if inner:
        return [_from_class(item) for item in inner]
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        try:
            return schema.model_json_schema()
        except Exception:  # the SDK fails on it the same way: nothing to judge
            return None
    return None if isinstance(schema, type) else schema


def _declaration(function: Any) -> list[tuple[Any, str | None]]:
    """What the SDK declares for a Python callable: its name, docstring, parameter names and defaults."""
    roots: list[tuple[Any, str | None]] = [(getattr(function, "__name__", None), None), (getattr(function, "__doc__", None), None)]
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return roots
    for parameter in parameters:
        roots.append((parameter.name, None))
        if isinstance(parameter.default, (str, int, float)):
            roots.append((parameter.default, parameter.name))
    return roots


def prompt_texts(contents: Any, config: Any) -> list[str]:
    """Every free text the request sends, for content rules and the estimate: the system instruction,
    stop sequences, labels, function declarations (names, descriptions and parameter schemas, also
    those the SDK builds from Python callables), the response schema, an embedding's title, then
    every part of ``contents``: texts, function calls' args and responses, code and its output.
    Never a built-in tool's settings (they may hold credentials), inline media or file URIs."""
    roots: list[tuple[Any, str | None]] = [
        (_option(config, "system_instruction", "systemInstruction"), None),
        (_option(config, "stop_sequences", "stopSequences"), None),
        (_option(config, "labels", "labels"), "labels"),
        (_option(config, "title", "title"), None),
    ]
    tools = _option(config, "tools", "tools")
    for tool in tools if isinstance(tools, (list, tuple)) else ():
        if callable(tool) and _members(tool) is None:
            roots += _declaration(tool)
        else:
            roots.append((_option(tool, "function_declarations", "functionDeclarations"), None))
    for name, camel in (("response_schema", "responseSchema"), ("response_json_schema", "responseJsonSchema")):
        roots.append((_from_class(_option(config, name, camel)), None))
    roots.append((contents, None))
    return _gather(roots, [])


def _text_parts(value: Any) -> list[dict[str, str]]:
    return [{"type": "text", "content": text} for text in iter_texts(value)]


def input_messages(contents: Any, config: Any) -> list[dict[str, Any]]:
    """Semconv-shaped input messages (recorded only when content capture is on)."""
    messages: list[dict[str, Any]] = []
    system = _option(config, "system_instruction", "systemInstruction")
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
        prompt_text=lambda: prompt_texts(contents, config),
        input_messages=lambda: input_messages(contents, config),
    )
