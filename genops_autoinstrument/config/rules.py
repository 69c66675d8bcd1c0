"""The budget and rate-limit rule languages of ``GENOPS_BUDGETS`` and ``GENOPS_RATE_LIMITS``.

Kept apart from the enforcement code so that the launcher can validate them without importing
anything heavier than this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Scope names users write, mapped to the attribution keys they select.
SCOPES = {
    "global": None,
    "team": "genops.team",
    "project": "genops.project",
    "environment": "genops.environment",
    "customer_id": "genops.customer_id",
    "cost_center": "genops.cost_center",
    "feature": "genops.feature",
    "agent": "gen_ai.agent.name",  # set by the framework plugins for the calls an agent makes
}
BUDGET_PERIODS = ("hour", "day", "week", "month", "total")
BUDGET_MODES = ("enforced", "warn", "audit")
RATE_PERIODS = {"sec": 1, "second": 1, "s": 1, "min": 60, "minute": 60, "m": 60, "hour": 3600, "h": 3600}

_BUDGET = re.compile(r"^\s*(?P<scope>[a-z_]+)\s*=\s*\$?(?P<amount>[0-9]+(?:\.[0-9]+)?)\s*/\s*(?P<period>[a-z]+)\s*(?::\s*(?P<mode>[a-z]+)\s*)?$")
_RATE = re.compile(r"^\s*(?P<scope>[a-z_]+)\s*=\s*(?P<count>[0-9]+)\s*/\s*(?P<period>[a-z]+)\s*$")


@dataclass(frozen=True)
class BudgetRule:
    """``scope=amount/period[:mode]``: at most ``amount`` USD per ``period`` for each value of ``scope``."""

    scope: str  # "global" or a scope name from SCOPES
    amount: Decimal
    period: str
    mode: str = "enforced"

    @property
    def attribute(self) -> str | None:
        return SCOPES[self.scope]

    @property
    def name(self) -> str:
        return f"{self.scope}={self.amount}/{self.period}"


@dataclass(frozen=True)
class RateLimitRule:
    """``scope=count/period``: at most ``count`` calls per window for each value of ``scope``."""

    scope: str
    limit: int
    window_seconds: int

    @property
    def attribute(self) -> str | None:
        return SCOPES[self.scope]

    @property
    def name(self) -> str:
        return f"{self.scope}={self.limit}/{self.window_seconds}s"


def _error(variable: str, raw: str, accepted: str) -> Exception:
    from genops_autoinstrument.config.errors import ConfigError

    return ConfigError(variable, raw, accepted)


_BUDGET_ACCEPTED = (
    "';'-separated rules SCOPE=AMOUNT/PERIOD[:MODE] with SCOPE one of "
    + ", ".join(SCOPES)
    + ", PERIOD one of "
    + ", ".join(BUDGET_PERIODS)
    + ", MODE one of "
    + ", ".join(BUDGET_MODES)
    + " (e.g. team=50/day;global=2000/month:warn)"
)
_RATE_ACCEPTED = (
    "';'-separated rules SCOPE=COUNT/PERIOD with SCOPE one of "
    + ", ".join(SCOPES)
    + " and PERIOD one of sec, min, hour (e.g. team=600/min)"
)


def parse_budgets(variable: str, raw: str) -> tuple[BudgetRule, ...]:
    rules = []
    for part in filter(str.strip, raw.split(";")):
        match = _BUDGET.match(part.lower())
        if not match or match["scope"] not in SCOPES or match["period"] not in BUDGET_PERIODS:
            raise _error(variable, part.strip(), _BUDGET_ACCEPTED)
        mode = match["mode"] or "enforced"
        if mode not in BUDGET_MODES:
            raise _error(variable, part.strip(), _BUDGET_ACCEPTED)
        try:
            amount = Decimal(match["amount"])
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise _error(variable, part.strip(), _BUDGET_ACCEPTED) from None
        if amount <= 0:
            raise _error(variable, part.strip(), "a budget amount greater than 0")
        rules.append(BudgetRule(match["scope"], amount, match["period"], mode))
    if not rules:
        raise _error(variable, raw, _BUDGET_ACCEPTED)
    return tuple(rules)


def parse_rate_limits(variable: str, raw: str) -> tuple[RateLimitRule, ...]:
    rules = []
    for part in filter(str.strip, raw.split(";")):
        match = _RATE.match(part.lower())
        if not match or match["scope"] not in SCOPES or match["period"] not in RATE_PERIODS:
            raise _error(variable, part.strip(), _RATE_ACCEPTED)
        limit = int(match["count"])
        if limit <= 0:
            raise _error(variable, part.strip(), "a rate limit count greater than 0")
        rules.append(RateLimitRule(match["scope"], limit, RATE_PERIODS[match["period"]]))
    if not rules:
        raise _error(variable, raw, _RATE_ACCEPTED)
    return tuple(rules)


_MODEL_ACCEPTED = (
    "model names or globs (* ? [abc]) separated by commas, e.g. gpt-4o-mini,claude-* "
    "(no ';', '|' or spaces between them, no quotes, no brackets around the list)"
)
_SEPARATORS = re.compile(r"[;|\s]")
_QUOTES = frozenset("\"'`")


def _bracket_problem(pattern: str) -> str | None:
    """Why a glob's brackets or braces cannot be what was meant (fnmatch has no braces; an
    unbalanced ``[`` is matched literally; ``[gpt-4o]`` is one character of a set, not a list)."""
    if "{" in pattern or "}" in pattern:
        return "braces"
    depth, classes = 0, []
    for position, char in enumerate(pattern):
        if char == "[" and depth == 0:
            depth, start = 1, position
        elif char == "]" and depth == 1 and position > start + 1 + (pattern[start + 1] == "!"):
            depth = 0
            classes.append((start, position))
        elif char == "]" and depth == 0:
            return "an unbalanced ']'"
    if depth:
        return "an unbalanced '['"
    if any(start == 0 and end == len(pattern) - 1 for start, end in classes):
        return "brackets around the whole name"
    return None


def parse_model_patterns(variable: str, raw: str) -> tuple[str, ...]:
    """``GENOPS_ALLOWED_MODELS`` / ``GENOPS_BLOCKED_MODELS``: comma-separated fnmatch globs.

    ``gpt-4o-mini;gpt-4o`` and ``[gpt-4o-mini]`` used to be accepted and matched no model at all,
    so a block list blocked nothing: separators other than commas, quotes, braces and brackets
    that cannot be a character set are refused.
    """
    patterns = []
    for item in raw.split(","):
        pattern = item.strip()
        if not pattern:
            continue
        problem = None
        if _SEPARATORS.search(pattern):
            problem = "a separator other than ','"
        elif _QUOTES.intersection(pattern):
            problem = "quotes"
        else:
            problem = _bracket_problem(pattern)
        if problem:
            raise _error(variable, raw, f"{_MODEL_ACCEPTED}; {pattern!r} has {problem}")
        patterns.append(pattern)
    return tuple(patterns)


BAGGAGE_KEYS = tuple(name for name in SCOPES if name not in ("global", "agent"))  # an agent is named by its framework, not by callers


def parse_baggage_keys(variable: str, raw: str) -> frozenset[str]:
    """``GENOPS_BAGGAGE_KEYS``: the attribution keys that may come from W3C baggage (short names
    such as ``customer_id``, or their ``genops.`` form); every other key is ignored in baggage."""
    keys = set()
    for item in raw.split(","):
        name = item.strip()
        if not name:
            continue
        short = name[len("genops."):] if name.startswith("genops.") else name
        if short not in BAGGAGE_KEYS:
            raise _error(variable, raw, "comma-separated attribution keys from " + ", ".join(BAGGAGE_KEYS) + f" ({name!r} is not one)")
        keys.add(SCOPES[short])
    return frozenset(keys)
