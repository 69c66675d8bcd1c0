"""Small readers every plugin needs: a field of an SDK object or dict, a server from a URL, flags.

They never raise on odd input (an internal failure must not reach the application): a missing
field is ``None``, an unreadable URL gives no address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from genops_autoinstrument import config

# type -> is it a Mapping; an isinstance check against the Mapping ABC costs more than the read.
_IS_MAPPING: dict[type, bool] = {dict: True}
_DEFAULT_PORTS = {"https": 443, "http": 80}


def is_mapping(obj: Any) -> bool:
    """``isinstance(obj, Mapping)``, cached per type."""
    cls = type(obj)
    mapping = _IS_MAPPING.get(cls)
    if mapping is None:
        mapping = isinstance(obj, Mapping)
        if obj.__class__ is cls and len(_IS_MAPPING) < 512:  # proxies report another class: not cached
            _IS_MAPPING[cls] = mapping
    return mapping


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings (SDKs accept dicts for their typed objects), ``obj.key`` otherwise;
    ``default`` when absent or when ``obj`` is None."""
    if obj is None:
        return default
    mapping = _IS_MAPPING.get(type(obj))  # the common case inline: a type seen before
    if mapping is None:
        mapping = is_mapping(obj)
    if mapping:
        return obj.get(key, default)
    return getattr(obj, key, default)


def given(value: Any) -> bool:
    """False for None and the Stainless SDKs' ``omit`` / ``NOT_GIVEN`` sentinels (OpenAI, Anthropic)."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def server_of_url(url: Any) -> tuple[str | None, int | None]:
    """``(server.address, server.port)`` of a URL given as text or as an ``httpx.URL``-like object
    (``host``, ``port``, ``scheme``); the port defaults by scheme. Credentials are never read."""
    if url is None:
        return None, None
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            host, port, scheme = parts.hostname, parts.port, parts.scheme
        except ValueError:
            return None, None
    else:
        host, port, scheme = getattr(url, "host", None), getattr(url, "port", None), getattr(url, "scheme", "")
    return host or None, port or _DEFAULT_PORTS.get(scheme or "")


def capture_content() -> bool:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: record prompts and completions (opt-in)."""
    try:
        return bool(config.current().capture_content)
    except Exception:  # an invalid value outside genops-run: content stays unrecorded
        return False
