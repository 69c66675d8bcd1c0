"""GenOps AutoInstrument: zero-code cost, budget and policy governance for Python AI applications.

The package is imported by the bootstrap of every process started under ``genops-run``, so this
module stays tiny: the public names below load their modules on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "PolicyViolation",
    "Decision",
    "BudgetStatus",
    "GenOpsInstrumentor",
    "CallRequest",
    "Call",
    "Usage",
    "begin_call",
    "attribution",
    "track",
    "check",
    "track_cost",
    "record_eval",
    "instrument",
    "policy_decision",
    "flush",
]

_LAZY = {
    "PolicyViolation": "governance.decisions",
    "Decision": "governance.decisions",
    "BudgetStatus": "governance.decisions",
    "GenOpsInstrumentor": "api.instrumentor",
    "CallRequest": "engine.call",
    "Call": "engine.call",
    "begin_call": "engine.runtime",
    "Usage": "pricing.usage",
    "attribution": "application.scopes",
    "track": "application.scopes",
    "check": "application.checks",
    "track_cost": "application.records",
    "record_eval": "application.records",
    "instrument": "application.start",
    "policy_decision": "application.errors",
    "flush": "application.flushing",
}

if False:  # pragma: no cover - names for type checkers, without importing typing at start-up
    from genops_autoinstrument.governance.decisions import BudgetStatus, Decision, PolicyViolation
    from genops_autoinstrument.api.instrumentor import GenOpsInstrumentor
    from genops_autoinstrument.application.checks import check
    from genops_autoinstrument.application.errors import policy_decision
    from genops_autoinstrument.application.flushing import flush
    from genops_autoinstrument.application.records import record_eval, track_cost
    from genops_autoinstrument.application.scopes import attribution, track
    from genops_autoinstrument.application.start import instrument
    from genops_autoinstrument.engine.call import Call, CallRequest
    from genops_autoinstrument.engine.runtime import begin_call
    from genops_autoinstrument.pricing.usage import Usage


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genops_autoinstrument' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
