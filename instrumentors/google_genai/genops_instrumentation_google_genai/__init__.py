"""GenOps plugin for the Google Gen AI SDK (``google-genai``): Gemini Developer API and Vertex AI.

Records ``models.generate_content``, ``generate_content_stream`` and ``embed_content`` (sync and
``client.aio``); chats are built on these, so they are covered too. Must not import the SDK at
module level: discovery imports this module without the target.
"""

from __future__ import annotations

import importlib
from typing import Collection

from genops_autoinstrument import GenOpsInstrumentor

from .package import _instruments, _watched_modules

__all__ = ["GoogleGenAIInstrumentor"]

_MODELS = "google.genai.models"


class GoogleGenAIInstrumentor(GenOpsInstrumentor):
    """Wraps ``google.genai.models.Models`` and ``AsyncModels``."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        from . import _wrappers as w

        for cls, generate, stream, embed, collect in (
            ("Models", w.generate_content, w.generate_content_stream, w.embed_content, w.collect_request),
            ("AsyncModels", w.agenerate_content, w.agenerate_content_stream, w.aembed_content, w.acollect_request),
        ):
            self.wrap(_MODELS, f"{cls}.generate_content", generate)
            self.wrap(_MODELS, f"{cls}.generate_content_stream", stream)
            self.wrap(_MODELS, f"{cls}.embed_content", embed)
            # Per-request helpers: usage of every automatic function-calling round and hop.
            self.wrap(_MODELS, f"{cls}._generate_content", collect)
            # A streamed round is one continuation-aware stream (3.x), else one stream request.
            owner = getattr(importlib.import_module(_MODELS), cls, None)
            round_method = "_generate_content_stream_with_continuation"
            if round_method not in getattr(owner, "__dict__", {}):
                round_method = "_generate_content_stream"
            self.wrap(_MODELS, f"{cls}.{round_method}", w.mark_stream_round)
