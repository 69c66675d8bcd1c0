"""The one exception the project ever raises into an application: a deliberate policy block.

A blocked call raises an error that is both :class:`PolicyViolation` and the provider SDK's closest
native error, so existing handling (retry, fallback, 4xx mapping) already copes. Plugins build it
with :func:`native_violation`.
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from genops_autoinstrument import semconv


@dataclass(frozen=True)
class BudgetStatus:
    """Figures of the budget a decision was about, in USD."""

    name: str
    period: str
    allocated: float
    consumed: float
    remaining: float


@dataclass(frozen=True)
class Decision:
    """The immutable outcome of the policy evaluation for one call."""

    result: str = semconv.RESULT_ALLOWED
    policy_name: str | None = None
    reason_code: str | None = None
    message: str = ""
    mode: str = "enforced"  # "enforced" | "warn" | "audit": how a non-ALLOWED result was applied
    budget: BudgetStatus | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """True when the call must not be sent."""
        return self.result in (semconv.RESULT_BLOCKED, semconv.RESULT_RATE_LIMITED) and self.mode == "enforced"

    @property
    def explanation(self) -> str:
        """What a blocked call's error says: the governor's message, or one naming the policy."""
        return self.message or f"blocked by GenOps policy {self.policy_name or ''}".strip()

    @property
    def is_budget(self) -> bool:
        """True for the money-ran-out kind of block (budget, rate, or a budget refusing a call it
        cannot price), which SDKs map to 429."""
        return self.reason_code in (
            semconv.REASON_BUDGET_EXCEEDED,
            semconv.REASON_BUDGET_RESERVATION_FAILED,
            semconv.REASON_RATE_LIMITED,
            semconv.REASON_UNPRICED_USAGE,
        )


ALLOWED = Decision()


class PolicyViolation(Exception):
    """A call was blocked by a GenOps policy before it left the process."""

    decision: Decision = ALLOWED

    def __init__(self, *args: Any) -> None:
        # Cooperative: in a combined class the SDK's constructor reaches here with its own message.
        if args and isinstance(args[0], Decision):
            self.decision = args[0]
            args = args[1:] or (self.decision.explanation,)
        super().__init__(*args)

    @property
    def policy_name(self) -> str | None:
        return self.decision.policy_name

    @property
    def result(self) -> str:
        return self.decision.result

    @property
    def reason_code(self) -> str | None:
        return self.decision.reason_code

    @property
    def budget(self) -> BudgetStatus | None:
        return self.decision.budget

    def __reduce__(self) -> Any:
        """Picklable (process pools, Celery), even where the SDK's own error is not.

        A combined ``GenOps<NativeError>`` is rebuilt from its native class (or, for a class made at
        run time such as botocore's modelled errors, its nearest importable base) without calling
        a constructor; attributes that cannot be pickled (a live HTTP response) are left out.
        """
        native = _natives.get(type(self))
        if native is None:
            return super().__reduce__()
        return (_rebuild_violation, (_importable(native), self.args), _picklable_state(self.__dict__))


E = TypeVar("E", bound=BaseException)
_violation_classes: dict[type, type] = {}
_natives: dict[type, type] = {}  # combined class -> its native class


def _importable(cls: type) -> type:
    """``cls``, or its nearest base that pickle can find by module and name."""
    for candidate in cls.__mro__:
        module = sys.modules.get(candidate.__module__)
        target: Any = module
        for part in candidate.__qualname__.split("."):
            target = getattr(target, part, None)
        if target is candidate and issubclass(candidate, BaseException):
            return candidate
    return Exception


def _picklable_state(state: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for key, value in state.items():
        try:
            pickle.dumps(value)
        except Exception:
            continue
        kept[key] = value
    return kept


def _rebuild_violation(native: type, args: tuple[Any, ...]) -> BaseException:
    """Unpickling: an instance of ``violation_class(native)``; pickle then restores its attributes."""
    cls = violation_class(native)
    error = cls.__new__(cls)
    error.args = args
    return error


def violation_class(native: type[E]) -> type[E]:
    """A class that subclasses both ``native`` and :class:`PolicyViolation` (made once per native type)."""
    cls = _violation_classes.get(native)
    if cls is None:

        def __str__(self: Any) -> str:
            return self.decision.message or native.__str__(self)

        cls = type(
            f"GenOps{native.__name__}",
            (native, PolicyViolation),
            {
                "__module__": __name__,
                "__str__": __str__,
                "__reduce__": PolicyViolation.__reduce__,  # ahead of the native error's own (botocore, google-genai)
                "__doc__": f"A GenOps policy block that is also a {native.__qualname__}.",
            },
        )
        _violation_classes[native] = cls
        _natives[cls] = native
    return cls  # type: ignore[return-value]


def native_violation(native: type[E], decision: Decision, build: Callable[[type[E]], E]) -> E:
    """Build an instance of ``violation_class(native)`` with the SDK's own constructor, then attach the decision.

    ``build`` receives the combined class and must call it the way the SDK constructs its error
    (PolicyViolation.__init__ is bypassed so the native constructor keeps its signature).
    """
    error = build(violation_class(native))
    error.decision = decision  # type: ignore[attr-defined]
    return error
