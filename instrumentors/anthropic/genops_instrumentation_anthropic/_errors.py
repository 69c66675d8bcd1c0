"""Policy blocks as the SDK's own errors: RateLimitError (429) for budgets, PermissionDeniedError (403) otherwise."""

from __future__ import annotations

import sys
from typing import Any

from genops_autoinstrument.api import BlockFactory, Decision, native_violation


def _http_module() -> Any:
    """The HTTP library this SDK release builds its errors on (httpx2 in 2.x, httpx before)."""
    exceptions = sys.modules.get("anthropic._exceptions")
    return getattr(exceptions, "httpx2", None) or getattr(exceptions, "httpx", None) or __import__("httpx2")


def blocker(client: Any) -> BlockFactory:
    """The ``block=`` factory for :func:`begin_call`: a native error that is also a PolicyViolation."""

    def build_error(decision: Decision) -> BaseException:
        import anthropic

        http = _http_module()
        budget = decision.is_budget
        native = anthropic.RateLimitError if budget else anthropic.PermissionDeniedError
        status = 429 if budget else 403
        error_type = "rate_limit_error" if budget else "permission_error"
        message = decision.explanation
        base_url = str(getattr(client, "base_url", "https://api.anthropic.com/"))
        request = http.Request("POST", base_url.rstrip("/") + "/v1/messages")
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "genops": {"policy": decision.policy_name, "reason_code": decision.reason_code},
        }
        headers = {"x-genops-policy-result": decision.result, "x-should-retry": "false"}  # a refusal is final for any retry policy that reads it
        response = http.Response(status, json=body, headers=headers, request=request)
        return native_violation(native, decision, lambda cls: cls(message, response=response, body=body))

    return build_error
