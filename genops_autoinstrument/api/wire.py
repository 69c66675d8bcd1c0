"""The kit's wire-level pieces: what any plugin that sees model calls as HTTP requests reuses.

A wire plugin recognises a model call by its path and body, records it with the same engine, and
answers a refused call itself, as the provider would: :func:`blocked_reply` gives the status,
headers and body (403 for a policy, 429 with ``retry-after`` to the end of the budget period and
``x-should-retry: false`` for a budget), so each HTTP client raises its own native error and does
not retry. :func:`provider_for_host` names the provider (never a host); :func:`note_attempt`
accounts one HTTP attempt on the call another plugin records; :func:`http_status_error` is what a
call that got an HTTP error status fails with (``error.type`` is the status code).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from genops_autoinstrument.diagnostics import internal_error
from genops_autoinstrument.engine.call import current_call_span
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.periods import window

# Attempt accounting (not in semconv.py yet: see the wire layer's notes).
ATTEMPTS = "genops.attempts"  # int on the call's span: HTTP sends that reached the server
ATTEMPT_EVENT = "genops.attempt"  # one per attempt answered with an error status
ATTEMPT_NUMBER = "genops.attempt.number"
ATTEMPT_RETRY_AFTER = "genops.attempt.retry_after"
HTTP_STATUS = "http.response.status_code"

__all__ = [
    "ATTEMPTS",
    "BlockedReply",
    "ErrorBody",
    "blocked_reply",
    "http_status_error",
    "note_attempt",
    "provider_for_host",
    "seconds_to_budget_end",
]

# Hosts that identify a provider, whatever API shape they speak (gen_ai.provider.name values).
_HOSTS: dict[str, str] = dict(
    (pair.split("=") for pair in (
        "api.openai.com=openai", "api.anthropic.com=anthropic", "generativelanguage.googleapis.com=gcp.gemini",
        "api.groq.com=groq", "api.deepseek.com=deepseek", "api.mistral.ai=mistral_ai", "api.perplexity.ai=perplexity",
        "api.x.ai=x_ai", "openrouter.ai=openrouter", "api.together.xyz=together_ai", "api.fireworks.ai=fireworks",
        "api.cerebras.ai=cerebras", "api.cohere.com=cohere", "api.cohere.ai=cohere", "ollama.com=ollama",
    ))
)
# Host suffixes of cloud platforms.
_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),
)


def provider_for_host(host: str | None, api_provider: str) -> str:
    """``gen_ai.provider.name``: the provider a known host identifies, else the API's own provider
    (``openai`` for an OpenAI-compatible path at a gateway or an address). Never the host itself."""
    if not host:
        return api_provider
    host = host.lower()
    known = _HOSTS.get(host)
    if known is not None:
        return known
    if host.endswith(".api.openai.com"):
        return "openai"
    for suffix, provider in _HOST_SUFFIXES:
        if host.endswith(suffix) and (provider != "aws.bedrock" or host.startswith("bedrock")):
            return provider
    return api_provider


def seconds_to_budget_end(decision: Decision, now: float | None = None) -> int | None:
    """Whole seconds until the decision's budget period ends (at least 1); None without an end."""
    budget = decision.budget
    if budget is None:
        return None
    try:
        end = window(budget.period, time.time() if now is None else now).end
    except ValueError:  # "unit" caps, "total": no period end
        return None
    if end is None:
        return None
    return max(1, int(end - (time.time() if now is None else now) + 0.999))


# (status, message, decision) -> the provider's JSON error body
ErrorBody = Callable[[int, str, Decision], Any]


@dataclass(frozen=True)
class BlockedReply:
    """The HTTP answer a wire plugin gives instead of sending a refused call."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    decision: Decision  # registered with the answer, so policy_decision() finds it through the client's error


_REASONS = {402: "Payment Required", 403: "Forbidden", 429: "Too Many Requests"}


def blocked_reply(decision: Decision, error_body: ErrorBody, budget_status: int = 429) -> BlockedReply:
    """403 with the provider's error body for a policy block; 429 with its quota error body,
    ``retry-after`` (seconds to the end of the budget period) and ``x-should-retry: false`` for a
    budget or rate block, so that SDKs which retry 429 (OpenAI, Anthropic) do not. An API whose
    clients retry every 429 whatever the headers say (Cohere's) gives its own ``budget_status``."""
    budget = decision.is_budget
    status = budget_status if budget else 403
    reason = _REASONS.get(status, "Error")
    message = decision.message or f"Request {decision.explanation}"
    headers = {"content-type": "application/json", "x-should-retry": "false", "x-genops-policy-result": decision.result}
    if decision.policy_name:
        headers["x-genops-policy-name"] = decision.policy_name
    if budget:
        seconds = seconds_to_budget_end(decision)
        if seconds is not None:
            headers["retry-after"] = str(seconds)
    body = json.dumps(error_body(status, message, decision)).encode()
    headers["content-length"] = str(len(body))
    return BlockedReply(status, reason, headers, body, decision)


_STATUS_ERRORS: dict[int, type] = {}


def http_status_error(status: int, reason: str = "") -> BaseException:
    """An exception for ``Call.fail`` whose ``error.type`` is the HTTP status code, as the
    conventions ask for an HTTP error without an exception of the client's own."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        name = str(status)
        cls = type(name, (Exception,), {"__module__": "builtins", "__qualname__": name, "__doc__": "An HTTP error status."})
        _STATUS_ERRORS[status] = cls
    return cls(f"HTTP {status} {reason}".strip())


def note_attempt(status: int | None, retry_after: str | None = None) -> None:
    """Account one HTTP attempt that reached the server on the call another plugin is recording:
    ``genops.attempts`` counts them on the call's span, and an attempt answered with an error
    status (one the client may retry) is a ``genops.attempt`` event with its status."""
    try:
        span = current_call_span()
        if span is None or not span.is_recording():
            return
        attributes = getattr(span, "attributes", None) or {}
        count = attributes.get(ATTEMPTS, 0) + 1
        span.set_attribute(ATTEMPTS, count)
        if status is not None and status >= 400:
            event: dict[str, Any] = {ATTEMPT_NUMBER: count, HTTP_STATUS: status}
            if retry_after:
                event[ATTEMPT_RETRY_AFTER] = retry_after
            span.add_event(ATTEMPT_EVENT, event)
    except Exception as error:
        internal_error("wire attempt", error)
