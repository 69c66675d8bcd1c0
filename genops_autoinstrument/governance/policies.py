"""The checks made before a call, as small objects sharing one signature.

Each policy's ``evaluate(request, attribution, prompt, now, attributes)`` returns its outcomes
(none when it is not configured) and may add span attributes; the governor runs them in order
(model, content, rate) and stops at the first blocking outcome. Budgets follow, in ``budgets``.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.content_rules import Scan, inspect
from genops_autoinstrument.governance.ledger.base import RateCheck
from genops_autoinstrument.governance.ledger_link import LedgerLink
from genops_autoinstrument.governance.outcomes import Outcome, result_for, scope_value
from genops_autoinstrument.governance.request import PolicyRequest, Prompt

if TYPE_CHECKING:
    from genops_autoinstrument.config import Settings

log = logging.getLogger("genops")

MODEL_POLICY = "model_policy"
CONTENT_POLICY = "content_policy"
ATTR_CONTENT_SCAN_STATUS = "genops.content.scan_status"  # "partial" when the prompt was not read whole


class Policy(Protocol):
    """What the governor asks of every check."""

    def evaluate(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> list[Outcome]: ...


class ModelPolicy:
    """``GENOPS_ALLOWED_MODELS`` / ``GENOPS_BLOCKED_MODELS``: case-insensitive glob patterns on the requested model."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self._allowed = tuple(pattern.lower() for pattern in settings.allowed_models)
        self._blocked = tuple(pattern.lower() for pattern in settings.blocked_models)

    def evaluate(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> list[Outcome]:
        if not (self._allowed or self._blocked):
            return []
        model = (request.request_model or "").lower()
        mode = self.settings.model_policy
        shown = request.request_model or "<unknown model>"
        reason = None
        if any(fnmatch.fnmatchcase(model, pattern) for pattern in self._blocked):
            reason = f"GenOps model policy: model {shown!r} matches GENOPS_BLOCKED_MODELS"
        elif self._allowed and not (model and any(fnmatch.fnmatchcase(model, pattern) for pattern in self._allowed)):
            reason = f"GenOps model policy: model {shown!r} is not in GENOPS_ALLOWED_MODELS"
        if reason is None:
            return [Outcome(policy_name=MODEL_POLICY, mode=mode)]
        return [Outcome(result_for(mode), MODEL_POLICY, semconv.REASON_POLICY_DENY_MODEL, reason, mode)]


class ContentPolicy:
    """``GENOPS_CONTENT_POLICY``: personal data and secrets in the prompt (only their kinds are reported).

    A prompt the scan could not read whole (longer than ``MAX_SCAN_CHARS``, or a detector out of
    candidate budget) is judged on what was read; its span says ``genops.content.scan_status=partial``
    and one line per process says why.
    """

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self._told_partial = False

    def evaluate(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> list[Outcome]:
        setting = self.settings.content_policy
        if setting == "off":
            return []
        mode = "enforced" if setting == "block" else "warn"
        result = inspect(prompt())
        if not result.complete:
            attributes[ATTR_CONTENT_SCAN_STATUS] = "partial"
            self._tell_partial(result)
        kinds = result.kinds
        if not kinds:
            return [Outcome(policy_name=CONTENT_POLICY, mode=mode)]
        message = "GenOps content policy: the prompt contains " + ", ".join(kinds)
        return [Outcome(result_for(mode), CONTENT_POLICY, semconv.REASON_POLICY_DENY_CONTENT, message, mode, extra={"kinds": kinds})]

    def _tell_partial(self, result: Scan) -> None:
        if self._told_partial:
            return
        self._told_partial = True
        if result.scanned < result.total:
            reason = f"a prompt of {result.total:,} characters was checked on its first and last {result.scanned // 2:,}"
        else:
            reason = "a prompt had more candidate numbers or tokens than the per-call budget; the rest was not checked"
        log.warning("GenOps content policy: %s (genops.content.scan_status=partial; logged once)", reason)


class RatePolicy:
    """``GENOPS_RATE_LIMITS``: sliding-window call counts per attribution value, kept in the ledger."""

    def __init__(self, settings: "Settings", link: LedgerLink) -> None:
        self.settings = settings
        self._link = link
        self._names = tuple(rule.name for rule in settings.rate_limits)

    def evaluate(self, request: PolicyRequest, attribution: Mapping[str, str], prompt: Prompt, now: float, attributes: dict) -> list[Outcome]:
        if not self.settings.rate_limits:
            return []
        checks, names = self.checks(attribution)
        try:
            outcome = self._link.ledger.hit(list(checks.values()), now)
        except Exception as error:
            return self._link.refuse("rate", error, attributes, next(iter(names.values())), blocking=True)
        return rate_results(names, outcome.over)

    def checks(self, attribution: Mapping[str, str]) -> tuple[dict[str, RateCheck], dict[str, str]]:
        """One check per ledger key (the strictest rule on a key wins) and the rule name of each key."""
        checks: dict[str, RateCheck] = {}
        names: dict[str, str] = {}
        for rule, name in zip(self.settings.rate_limits, self._names):
            value = scope_value(rule.attribute, attribution)
            key = f"rate|{rule.scope}|{value}|{rule.window_seconds}"
            if key not in checks or rule.limit < checks[key].limit:
                checks[key] = RateCheck(key, rule.limit, rule.window_seconds)
                names[key] = name
        return checks, names


def rate_results(names: Mapping[str, str], over: Sequence[bool]) -> list[Outcome]:
    """The outcome of each rate check, in the order of ``names``."""
    results = []
    for name, is_over in zip(names.values(), over):
        if is_over:
            results.append(Outcome(semconv.RESULT_RATE_LIMITED, name, semconv.REASON_RATE_LIMITED, f"GenOps rate limit {name} reached", "enforced"))
        else:
            results.append(Outcome(policy_name=name))
    return results
