"""Recognising a GenOps refusal after a framework re-raised it as its own error.

A blocked call raises the SDK's native error, which is also a :class:`PolicyViolation` carrying
the :class:`Decision`. Frameworks (LangChain, pydantic-ai, instructor, Haystack...) often wrap it
(``raise TheirError(...) from error``, exception groups, an error kept in ``args``), so
``except PolicyViolation`` misses it; :func:`policy_decision` finds it anywhere in the chain. A
wire-level refusal is an HTTP error response that the client turned into its own exception; the
wire layer registers that response, so it is found through the exception's ``response`` too.
"""

from __future__ import annotations

from typing import Any

from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.refusals import refused_by

_MAX_ERRORS = 64  # a chain longer than this is not a wrapped refusal; stop looking


def policy_decision(error: BaseException | None) -> Decision | None:
    """The GenOps decision that refused the call behind ``error``, or None if GenOps refused nothing.

    Looks at ``error``, its ``__cause__`` and ``__context__``, the members of exception groups and
    exceptions kept in ``args``, breadth first, so the refusal closest to the surface wins::

        try:
            agent.run_sync("...")
        except Exception as error:
            decision = genops_autoinstrument.policy_decision(error)
            if decision is None:
                raise
            print("refused:", decision.reason_code, decision.message)
    """
    pending: list[Any] = [error]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_ERRORS:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        decision = _decision_of(current)
        if decision is not None:
            return decision
        pending.extend(getattr(current, "exceptions", None) or ())  # ExceptionGroup members
        pending.append(current.__cause__)
        pending.append(current.__context__)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return None


def _decision_of(error: BaseException) -> Decision | None:
    return refused_by(error)
