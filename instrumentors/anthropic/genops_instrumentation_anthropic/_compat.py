"""anthropic 0.x (the releases LlamaIndex, LangChain and Haystack connectors still run on): what
differs from 1.x and later that the plugin has to meet, so that the application sees what it sees bare.

* ``with_raw_response`` returns a ``LegacyAPIResponse`` (body already read unless streaming,
  ``parse()`` synchronous even on the async client), not an ``APIResponse``.
* ``Stream`` / ``AsyncStream`` have a metaclass whose ``__instancecheck__`` answers ``False`` for
  any object whose type is not the class itself, so a recorded stream proxy would fail the
  application's ``isinstance(stream, anthropic.Stream)`` that holds bare. The plugin wraps that
  check to answer for the SDK stream inside the proxy, and for nothing else.
"""

from __future__ import annotations

import sys
from typing import Any

from genops_autoinstrument.api import RecordedAsyncStream, RecordedStream

# (module, "Metaclass.__instancecheck__") of the 0.x stream classes; absent from 1.0 on (then skipped).
STREAM_INSTANCE_CHECKS = (
    ("anthropic._streaming", "_SyncStreamMeta.__instancecheck__"),
    ("anthropic._streaming", "_AsyncStreamMeta.__instancecheck__"),
)


def legacy_response_class() -> Any:
    """``LegacyAPIResponse`` on anthropic 0.x, else ``None``."""
    module = sys.modules.get("anthropic._legacy_response")
    return getattr(module, "LegacyAPIResponse", None)


def stream_instancecheck(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper of the 0.x stream metaclasses' ``__instancecheck__`` (``instance`` is the class asked)."""
    candidate = args[0] if args else None
    if isinstance(candidate, (RecordedStream, RecordedAsyncStream)):
        return isinstance(candidate.__wrapped__, instance)
    return wrapped(*args, **kwargs)
