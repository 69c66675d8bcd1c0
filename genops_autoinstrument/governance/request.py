"""What governance reads from a call before it is sent, without depending on the engine that makes it.

The engine's ``CallRequest`` satisfies :class:`PolicyRequest`; policies only ever see this shape.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol

Prompt = Callable[[], "list[str]"]  # the outgoing texts, read at most once per call (see lazy_prompt)


class PolicyRequest(Protocol):
    """The request fields policies, rate limits and the budget estimate read."""

    provider: str
    request_model: str | None
    api_base_url: str | None
    max_output_tokens: int | None
    prompt_text: Callable[[], Iterable[str]] | None


def lazy_prompt(request: PolicyRequest) -> Prompt:
    """The prompt texts, serialised on first use only (no policy may need them) and then shared."""
    texts: list[str] | None = None

    def prompt() -> list[str]:
        nonlocal texts
        if texts is None:
            texts = []
            if request.prompt_text is not None:
                try:
                    texts = [t for t in request.prompt_text() if isinstance(t, str)]
                except Exception as error:
                    from genops_autoinstrument.diagnostics import internal_error

                    internal_error("prompt_text", error)
        return texts

    return prompt
