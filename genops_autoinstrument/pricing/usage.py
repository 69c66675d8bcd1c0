"""Token usage of one call, as plugins report it to the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; ``None`` means the provider did not say.

    ``input_tokens`` includes cached tokens (cache read and cache write), as the GenAI conventions
    define ``gen_ai.usage.input_tokens``; ``output_tokens`` includes reasoning tokens.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None
