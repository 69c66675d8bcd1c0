"""Policy blocks as OpenAI SDK errors, so the application's existing handling copes.

A budget or rate block is an ``openai.RateLimitError`` (429, code ``insufficient_quota``, like an
exhausted OpenAI quota); a model or content block is an ``openai.PermissionDeniedError`` (403).
Both are also :class:`PolicyViolation` and carry a synthetic response with a request, exactly as
the SDK builds its own errors. Nothing is sent: the response never came from the server.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.api import BlockFactory, Decision, native_violation


def _http_module() -> Any:
    """The HTTP library the installed SDK builds its errors with (httpx2 in 3.x, httpx before)."""
    import openai._exceptions as exceptions

    return getattr(exceptions, "httpx2", None) or getattr(exceptions, "httpx")


def block_factory(base_url: str | None, path: str) -> BlockFactory:
    """A ``block=`` factory for :func:`begin_call` for requests to ``base_url``/``path``."""

    def build(decision: Decision) -> BaseException:
        import openai

        http = _http_module()
        url = f"{(base_url or 'https://api.openai.com/v1').rstrip('/')}/{path}"
        # The kit's explanation, worded as this plugin always has: "Request blocked by GenOps policy …".
        message = decision.message or f"Request {decision.explanation}"
        if decision.is_budget:
            native: type[BaseException] = openai.RateLimitError
            status = 429
            body = {"message": message, "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}
        else:
            native = openai.PermissionDeniedError
            status = 403
            body = {"message": message, "type": "genops_policy_violation", "param": None, "code": (decision.reason_code or "policy_violation").lower()}
        headers = {"x-genops-policy-result": decision.result, "x-should-retry": "false"}  # a refusal is final for any retry policy that reads it
        if decision.policy_name:
            headers["x-genops-policy-name"] = decision.policy_name
        response = http.Response(status, json={"error": body}, headers=headers, request=http.Request("POST", url))
        return native_violation(native, decision, lambda cls: cls(f"Error code: {status} - {{'error': {body!r}}}", response=response, body=body))

    return build
