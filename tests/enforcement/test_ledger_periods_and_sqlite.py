"""UTC calendar periods, and the SQLite ledger's file-level promises (WAL, kept across restarts)."""

from __future__ import annotations

import sqlite3

import pytest

from genops_autoinstrument.config.ledger_url import redact
from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, Figures
from genops_autoinstrument.governance.ledger.sqlite import SqliteLedger
from genops_autoinstrument.governance.periods import window


@pytest.mark.parametrize(
    "period, now, key, start, end",
    [
        ("hour", 1_795_000_000.0, "2026-11-18T11", 1_794_999_600.0, 1_795_003_200.0),
        ("day", 1_795_000_000.0, "2026-11-18", 1_794_960_000.0, 1_795_046_400.0),
        ("week", 1_795_000_000.0, "2026-W47", 1_794_787_200.0, 1_795_392_000.0),  # Monday 2026-11-16
        ("month", 1_795_000_000.0, "2026-11", 1_793_491_200.0, 1_796_083_200.0),
        ("month", 1_797_000_000.0, "2026-12", 1_796_083_200.0, 1_798_761_600.0),  # December rolls into January
        ("week", 1_798_761_600.0, "2026-W53", 1_798_416_000.0, 1_799_020_800.0),  # ISO week of 2027-01-01
        ("total", 1_795_000_000.0, "total", 0.0, None),
    ],
)
def test_windows(period, now, key, start, end):
    found = window(period, now)
    assert (found.key, found.start, found.end) == (key, start, end)


def test_unknown_period_is_refused():
    with pytest.raises(ValueError):
        window("fortnight", 0.0)


def test_sqlite_ledger_uses_wal_and_keeps_state_across_restarts(tmp_path):
    path = tmp_path / "nested" / "ledger.db"
    check = BudgetCheck("budget|global|*|total|total", 1000, True, None)
    first = SqliteLedger(str(path), timeout_ms=100)
    assert first.reserve("a", 100, [check], 2e9, 1e9).reserved
    first.settle("a", 100, [Bucket(check.key, None)], 80, 1e9)
    assert first.reserve("b", 100, [check], 2e9, 1e9).reserved
    first.close()
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    second = SqliteLedger(str(path), timeout_ms=100)  # a new process would see the same
    assert second.figures(check.key, 1e9) == Figures(80, 100)
    second.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_lock_held_elsewhere_times_out_as_a_ledger_error(tmp_path):
    from genops_autoinstrument.governance.ledger.base import LedgerError

    path = tmp_path / "busy.db"
    ledger = SqliteLedger(str(path), timeout_ms=30)
    check = BudgetCheck("k", 1000, True, None)
    assert ledger.reserve("a", 1, [check], 2e9, 1e9).reserved
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(LedgerError) as caught:
            ledger.reserve("b", 1, [check], 2e9, 1e9)
        assert "locked" in str(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert ledger.reserve("b", 1, [check], 2e9, 1e9).reserved
    ledger.close()


def test_redact_drops_credentials():
    assert redact("redis://admin:pw@cache:6380/2") == "redis://***@cache:6380/2"
    assert redact("rediss://:pw@cache/0") == "rediss://***@cache/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact("sqlite:///var/lib/genops/ledger.db") == "sqlite:///var/lib/genops/ledger.db"
