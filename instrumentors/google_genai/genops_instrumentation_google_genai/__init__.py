"""GenOps plugin for the Google Gen AI SDK (``google-genai``): Gemini Developer API and Vertex AI.

Records ``models.generate_content``, ``generate_content_stream`` and ``embed_content`` (sync and
``client.aio``); chats are built on these, so they are covered too. Must not import the SDK at
module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Collection

from genops_autoinstrument.api import GenOpsInstrumentor

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
            ("Models", w.GENERATE.sync, w.generate_content_stream, w.EMBED.sync, w.collect_request),
            ("AsyncModels", w.GENERATE.async_, w.GENERATE_STREAM.async_, w.EMBED.async_, w.acollect_request),
        ):
            self.wrap(_MODELS, f"{cls}.generate_content", generate)
            self.wrap(_MODELS, f"{cls}.generate_content_stream", stream)
            self.wrap(_MODELS, f"{cls}.embed_content", embed)
            # Per-request helpers: usage of every automatic function-calling round and hop.
            self.wrap(_MODELS, f"{cls}._generate_content", collect)
            # A streamed round is one continuation-aware stream (3.x), else one stream request (the
            # second wrapper tells them apart when called: patching imports nothing).
            self.wrap(_MODELS, f"{cls}.{w.CONTINUATION}", w.mark_stream_round)
            self.wrap(_MODELS, f"{cls}._generate_content_stream", w.mark_stream_request)
