"""``track_cost`` and ``record_eval``: what the application knows about cost and quality.

``track_cost`` reports spend that is not model tokens (a vector-database query, GPU seconds of a
self-hosted model, an image priced per image) with the same attribution, metric, unit totals
and budgets as a model call. ``record_eval`` puts an evaluation score next to the cost: a span
event on the current model call or unit of work, and a histogram to plot per model, feature and
customer. Arguments are checked (a mistake raises TypeError/ValueError); anything failing
inside GenOps afterwards is logged once and never reaches the application.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from genops_autoinstrument import semconv
from genops_autoinstrument.application.scopes import _enabled, attribution_keys
from genops_autoinstrument.diagnostics import internal_error

__all__ = ["record_eval", "track_cost"]


def track_cost(usd: float, *, kind: str, **attribution: Any) -> None:
    """Record ``usd`` of spend of ``kind`` (e.g. ``"vector_query"``, ``"gpu_seconds"``).

    It adds to the ``genops.cost`` metric (with ``genops.cost.kind``), to the cost of every
    enclosing unit of work (and so to its cap) and to every budget of its attribution: the
    current one, overridden by attribution keywords (``customer_id=...``, ``feature=...``).
    A no-op with ``GENOPS_ENABLED=false``.
    """
    amount = _number("track_cost(): usd", usd)
    if amount < 0:
        raise ValueError(f"track_cost(): usd must be >= 0, not {usd!r}")
    _name("track_cost(): kind", kind)
    overrides = attribution_keys(attribution)
    if not _enabled():
        return
    try:
        from genops_autoinstrument.engine import application
        from genops_autoinstrument.engine.runtime import get_engine

        application.record_cost(get_engine(), amount, kind, overrides)
    except Exception as error:
        internal_error("track_cost", error)


def record_eval(metric: str, score: float, *, threshold: float | None = None) -> str | None:
    """Record an evaluation score (``metric`` e.g. ``"faithfulness"``) on the current model call
    or unit of work, and in the ``genops.eval.score`` histogram.

    With ``threshold`` it returns ``"pass"`` (``score >= threshold``) or ``"fail"`` and records
    that result too; without one it returns None. With ``GENOPS_ENABLED=false`` nothing is
    recorded, and the result is still returned.
    """
    _name("record_eval(): metric", metric)
    value = _number("record_eval(): score", score)
    limit = None if threshold is None else _number("record_eval(): threshold", threshold)
    result = None if limit is None else (semconv.EVAL_PASS if value >= limit else semconv.EVAL_FAIL)
    if not _enabled():
        return result
    try:
        from genops_autoinstrument.engine import application
        from genops_autoinstrument.engine.runtime import get_engine

        return application.record_eval(get_engine(), metric, value, limit)
    except Exception as error:
        internal_error("record_eval", error)
        return result


def _number(what: str, value: Any) -> float:
    """``value`` as a finite float; a bool or a non-number is a TypeError, NaN or infinity a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, not {value!r}")
    return number


def _name(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
