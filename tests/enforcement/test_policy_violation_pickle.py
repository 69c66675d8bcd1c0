"""A policy block crosses process boundaries (process pools, Celery): pickle round trips."""

from __future__ import annotations

import pickle
import threading

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import BudgetStatus, Decision, PolicyViolation, native_violation

DECISION = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="team=1/day",
    reason_code=semconv.REASON_BUDGET_EXCEEDED,
    message="team search spent its 1 USD/day budget",
    budget=BudgetStatus("team=1/day", "day", 1.0, 1.0, 0.0),
)


class KeywordOnlyError(Exception):
    """Like the SDKs' status errors: a keyword-only constructor pickle cannot call again."""

    def __init__(self, message: str, *, status: int, connection: object) -> None:
        super().__init__(message)
        self.status = status
        self.connection = connection


def test_a_plain_violation_keeps_its_decision():
    copy = pickle.loads(pickle.dumps(PolicyViolation(DECISION)))
    assert type(copy) is PolicyViolation and copy.decision == DECISION and str(copy) == DECISION.message


def test_a_combined_violation_is_rebuilt_without_its_constructor_and_without_what_cannot_be_pickled():
    error = native_violation(KeywordOnlyError, DECISION, lambda cls: cls("blocked", status=429, connection=threading.Lock()))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert isinstance(copy, KeywordOnlyError) and isinstance(copy, PolicyViolation)
    assert copy.decision == DECISION and copy.budget == DECISION.budget and copy.status == 429
    assert not hasattr(copy, "connection")  # a lock cannot cross; the rest does
    assert str(copy) == DECISION.message and copy.args == error.args


def test_a_native_class_made_at_run_time_crosses_as_its_nearest_importable_base():
    runtime_error = type("ThrottlingException", (KeywordOnlyError,), {"__module__": "nowhere.to.be.found"})
    error = native_violation(runtime_error, DECISION, lambda cls: cls("blocked", status=429, connection=None))
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, KeywordOnlyError) and isinstance(copy, PolicyViolation)
    assert not isinstance(copy, runtime_error)
    assert copy.decision == DECISION and copy.status == 429
