"""A GenOps refusal is final for LlamaIndex's OpenAI LLM retries.

``llama_index.llms.openai`` wraps each call in a tenacity decorator it builds per call
(``create_retry_decorator``: 3 attempts, random exponential back-off of 1-20 s, on
``openai.RateLimitError`` and connection/server errors). A budget refusal is the SDK's native
``RateLimitError`` (the application's own handling of an exhausted quota copes with it), so
LlamaIndex asked GenOps again twice, seconds apart, for a call it had just refused: three refused
decisions and ~3-8 s for one model call. LlamaIndex has no public way to tell its retry which
errors are final, so the plugin wraps that one function: the decorator it returns retries what it
retried before, except GenOps' refusals. Nothing else about the retries changes.
Imported only once the plugin is activated; tenacity is imported by the wrapped module itself.
"""

from __future__ import annotations

from typing import Any, Callable

from genops_autoinstrument.api import internal_error, is_refusal


def _not_a_refusal(error: BaseException) -> bool:
    return not is_refusal(error)


def final_refusals(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """wrapt wrapper of ``create_retry_decorator``: its decorator, with refusals made final."""
    decorator = wrapped(*args, **kwargs)

    def decorate(function: Callable[..., Any]) -> Any:
        retrying = decorator(function)
        try:
            from tenacity import retry_if_exception

            predicate = retrying.retry.retry  # the decorated function's Retrying, and its predicate
            return retrying.retry_with(retry=predicate & retry_if_exception(_not_a_refusal))
        except Exception as error:  # another tenacity shape: LlamaIndex's own retry, unchanged
            internal_error("llamaindex retry predicate", error)
            return retrying

    return decorate
