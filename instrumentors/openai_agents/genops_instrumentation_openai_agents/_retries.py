"""A GenOps refusal is final for the Agents SDK's model retries.

The SDK retries a failed model call only when the application opts in
(``ModelSettings(retry=ModelRetrySettings(...))``); its retry policies then read the advice of
the model class (``Model.get_retry_advice``, public: how a provider says whether and when to
retry). A refusal by GenOps looks like a provider error (a 429 for a budget, which
``retry_policies.provider_suggested()`` retries), so the OpenAI model classes' advice for one is
replaced by the SDK's strongest "do not retry": an aborted request, which no policy overrides.
Nothing else the SDK advises changes. Imports nothing of the SDK until a model call fails.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.api import internal_error

# The model classes whose advice is read for calls the OpenAI plugin records (module, "Class.method").
TARGETS = (
    ("agents.models.openai_responses", "OpenAIResponsesModel.get_retry_advice"),
    ("agents.models.openai_responses", "OpenAIResponsesWSModel.get_retry_advice"),
    ("agents.models.openai_chatcompletions", "OpenAIChatCompletionsModel.get_retry_advice"),
)


def final_refusal(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``get_retry_advice`` of a refused call: abort (never retried); of any other error: the SDK's."""
    try:
        request = args[0] if args else kwargs.get("request")
        error = getattr(request, "error", None)
        if error is not None and _refused(error):
            from agents.retry import ModelRetryAdvice, ModelRetryNormalizedError

            return ModelRetryAdvice(suggested=False, reason=f"refused by GenOps: {error}"[:512], normalized=ModelRetryNormalizedError(is_abort=True))
    except Exception as internal:
        internal_error("openai-agents retry advice", internal)
    return wrapped(*args, **kwargs)


def _refused(error: BaseException) -> bool:
    from genops_autoinstrument.api import is_refusal

    return is_refusal(error)
