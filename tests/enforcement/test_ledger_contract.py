"""The ledger contract, run against every backend: memory, a real SQLite file and a real redis-server."""

from __future__ import annotations

from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, Figures, RateCheck
from genops_autoinstrument.governance.periods import window

NOW = 1_795_000_000.0
DAY = window("day", NOW)
KEY = "budget|team|search|day|" + DAY.key


def check(limit: int, blocking: bool = True, key: str = KEY) -> BudgetCheck:
    return BudgetCheck(key, limit, blocking, DAY.end + 3600)


def test_reserve_settle_release(any_ledger):
    ledger = any_ledger
    first = ledger.reserve("t1", 400, [check(1000)], NOW + 600, NOW)
    assert first.reserved and first.figures == (Figures(0, 0),) and first.over == (False,)
    second = ledger.reserve("t2", 400, [check(1000)], NOW + 600, NOW)
    assert second.reserved and second.figures == (Figures(0, 400),)
    third = ledger.reserve("t3", 400, [check(1000)], NOW + 600, NOW)  # 800 held + 400 > 1000
    assert not third.reserved and third.over == (True,) and third.figures == (Figures(0, 800),)
    assert ledger.settle("t1", 400, [Bucket(KEY, DAY.end + 3600)], 350, NOW + 1) == {KEY: Figures(350, 400)}
    ledger.release("t2", 400, [Bucket(KEY, DAY.end + 3600)], NOW + 2)
    assert ledger.figures(KEY, NOW + 3) == Figures(350, 0)
    assert ledger.reserve("t4", 650, [check(1000)], NOW + 600, NOW + 3).reserved  # exactly reaches the limit
    assert ledger.settle("t4", 650, [Bucket(KEY, DAY.end + 3600)], 650, NOW + 4) == {KEY: Figures(1000, 0)}
    used_up = ledger.reserve("t5", 0, [check(1000)], NOW + 600, NOW + 5)  # nothing left: even 0 is refused
    assert not used_up.reserved and used_up.over == (True,)


def test_non_blocking_checks_report_over_but_still_reserve(any_ledger):
    ledger = any_ledger
    other = "budget|global|*|day|" + DAY.key
    outcome = ledger.reserve("t1", 500, [check(100, blocking=False), check(10_000, key=other)], NOW + 600, NOW)
    assert outcome.reserved and outcome.over == (True, False)
    assert ledger.figures(KEY, NOW) == Figures(0, 500) and ledger.figures(other, NOW) == Figures(0, 500)
    blocked = ledger.reserve("t2", 500, [check(10_000), check(600, key=other)], NOW + 600, NOW)
    assert not blocked.reserved and blocked.over == (False, True)
    assert ledger.figures(KEY, NOW) == Figures(0, 500)  # all or nothing


def test_two_rules_on_one_bucket_count_the_spend_once(any_ledger):
    ledger = any_ledger
    outcome = ledger.reserve("t1", 100, [check(1000), check(5000, blocking=False)], NOW + 600, NOW)
    assert outcome.reserved and ledger.figures(KEY, NOW) == Figures(0, 100)
    assert ledger.settle("t1", 100, [Bucket(KEY, DAY.end + 3600)], 90, NOW) == {KEY: Figures(90, 0)}


def test_reservations_expire(any_ledger):
    ledger = any_ledger
    assert ledger.reserve("crashed", 900, [check(1000)], NOW + 10, NOW).reserved
    assert not ledger.reserve("t2", 200, [check(1000)], NOW + 600, NOW + 9.9).reserved
    assert ledger.figures(KEY, NOW + 10) == Figures(0, 0)
    assert ledger.reserve("t2", 200, [check(1000)], NOW + 600, NOW + 10).reserved
    # A late settlement of an expired reservation still counts what was spent, once.
    assert ledger.settle("crashed", 900, [Bucket(KEY, DAY.end + 3600)], 50, NOW + 20)[KEY] == Figures(50, 200)


def test_rate_windows_slide(any_ledger):
    ledger = any_ledger
    start = 1_795_000_020.0  # a minute boundary
    rule = [RateCheck("rate|team|a|60", 2, 60)]
    assert ledger.hit(rule, start).allowed and ledger.hit(rule, start + 1).allowed
    denied = ledger.hit(rule, start + 2)
    assert not denied.allowed and denied.over == (True,)
    assert not ledger.hit(rule, start + 60).allowed  # previous window still weighs 2 * 60/60
    assert ledger.hit(rule, start + 90).allowed  # 2 * 30/60 + 0 + 1 <= 2
    assert not ledger.hit(rule, start + 91).allowed
    assert ledger.hit(rule, start + 180).allowed  # two windows later: empty


def test_rate_checks_are_all_or_nothing(any_ledger):
    ledger = any_ledger
    tight, loose = RateCheck("rate|team|a|1", 1, 1), RateCheck("rate|global|*|1", 100, 1)
    assert ledger.hit([tight, loose], NOW).allowed
    assert ledger.hit([tight, loose], NOW).over == (True, False)
    assert ledger.hit([loose], NOW).allowed
    # loose has counted 2 calls (the refused one took no slot): 98 more fit, then it is full
    for _ in range(98):
        assert ledger.hit([loose], NOW).allowed
    assert not ledger.hit([loose], NOW).allowed


def test_first_alert_is_true_once(any_ledger):
    ledger = any_ledger
    assert ledger.first_alert("alert|" + KEY, DAY.end + 3600, NOW) is True
    assert ledger.first_alert("alert|" + KEY, DAY.end + 3600, NOW + 1) is False
    assert ledger.first_alert("alert|other", None, NOW) is True
