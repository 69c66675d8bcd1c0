"""The default ledger: one SQLite file shared safely by every process of the machine, kept across restarts.

WAL journal (readers never wait for the writer), ``BEGIN IMMEDIATE`` (check-and-reserve is one
write transaction, so two processes can never both take the last dollar) and a busy timeout of
``GENOPS_LEDGER_TIMEOUT_MS``. ``synchronous=NORMAL``: a committed reservation survives a crash of
the process; only a power cut may lose the last few milliseconds.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

from .base import (
    Bucket,
    BudgetCheck,
    Figures,
    Ledger,
    LedgerError,
    RateCheck,
    RateOutcome,
    ReserveOutcome,
    is_over,
    rate_over,
    unique_buckets,
)

T = TypeVar("T")
SETTLE_TIMEOUT_MS = 2000  # settlement may wait longer than a decision: losing spend is worse than latency
_PURGE_EVERY = 1024
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, spent INTEGER NOT NULL, expires_at REAL)",
    "CREATE TABLE IF NOT EXISTS reservations (id TEXT NOT NULL, key TEXT NOT NULL, amount INTEGER NOT NULL,"
    " expires_at REAL NOT NULL, PRIMARY KEY (id, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key, expires_at)",
    "CREATE TABLE IF NOT EXISTS rates (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, expires_at REAL)",
)
_FIGURES = (
    "SELECT (SELECT spent FROM buckets WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)),"
    " (SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE key = ?1 AND expires_at > ?2)"
)
_abandoned: list[Any] = []  # connections inherited over fork: never closed in the child


def default_path() -> str:
    """``$XDG_STATE_HOME/genops/ledger.db`` (``~/.local/state/…``); the platform's app-data folder on macOS/Windows."""
    if sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    elif os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    else:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "genops", "ledger.db")


class SqliteLedger(Ledger):
    """One connection per process behind a lock; every operation is one short transaction."""

    atomic_rate_and_reserve = True

    def __init__(self, path: str, timeout_ms: int = 50, url: str | None = None) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._ops = 0

    # --- plumbing ---------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        patience = max(self.timeout_ms, SETTLE_TIMEOUT_MS) / 1000
        conn = sqlite3.connect(self.path, timeout=patience, isolation_level=None, check_same_thread=False)
        # Several processes opening a new ledger at once (server workers starting together): the
        # switch to WAL can answer "database is locked" at once, without the busy handler, so the
        # set-up is retried until the same patience runs out.
        deadline = time.monotonic() + patience
        delay = 0.002
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("COMMIT")
                conn.execute(f"PRAGMA busy_timeout={int(self.timeout_ms)}")
                return conn
            except sqlite3.OperationalError as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                busy = "locked" in str(error) or "busy" in str(error)
                if not busy or time.monotonic() + delay > deadline:
                    conn.close()
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            except BaseException:
                conn.close()
                raise

    def _run(self, body: Callable[[sqlite3.Connection], T], write: bool = True, timeout_ms: int | None = None) -> T:
        wait = (timeout_ms or self.timeout_ms) / 1000
        if not self._lock.acquire(timeout=wait):
            raise LedgerError(f"SQLite ledger {self.path}: busy in this process for more than {wait * 1000:.0f} ms")
        try:
            if self._pid != os.getpid():
                self._forget_connection()
            conn = self._conn
            if conn is None:
                conn = self._conn = self._open()
            if timeout_ms is not None:
                conn.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")
            try:
                if not write:
                    return body(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = body(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if timeout_ms is not None:
                    conn.execute(f"PRAGMA busy_timeout={int(self.timeout_ms)}")
        except (sqlite3.Error, OSError) as error:
            raise LedgerError(f"SQLite ledger {self.path}: {error}") from None
        finally:
            self._lock.release()

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        self._ops += 1
        if self._ops % _PURGE_EVERY:
            return
        conn.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM buckets WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        conn.execute("DELETE FROM rates WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM alerts WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))

    @staticmethod
    def _figures(conn: sqlite3.Connection, key: str, now: float) -> Figures:
        spent, reserved = conn.execute(_FIGURES, (key, now)).fetchone()
        return Figures(spent or 0, reserved or 0)

    # --- the contract -----------------------------------------------------------------------------
    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        return self._run(lambda conn: self._reserve(conn, ticket_id, amount, checks, expires_at, now))

    def hit_and_reserve(
        self, rates: Sequence[RateCheck], ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float
    ) -> tuple[RateOutcome, ReserveOutcome | None]:
        def body(conn: sqlite3.Connection) -> tuple[RateOutcome, ReserveOutcome | None]:
            rate = self._hit(conn, rates, now)
            if not rate.allowed:
                return rate, None
            return rate, self._reserve(conn, ticket_id, amount, checks, expires_at, now)

        return self._run(body)

    def _reserve(self, conn: sqlite3.Connection, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        known: dict[str, Figures] = {}
        for check in checks:
            if check.key not in known:
                known[check.key] = self._figures(conn, check.key, now)
        figures = tuple(known[check.key] for check in checks)
        over = tuple(is_over(f.spent, f.reserved, amount, c.limit) for f, c in zip(figures, checks))
        if any(o and c.blocking for o, c in zip(over, checks)):
            return ReserveOutcome(False, figures, over)
        conn.executemany(
            "INSERT OR REPLACE INTO reservations (id, key, amount, expires_at) VALUES (?, ?, ?, ?)",
            [(ticket_id, bucket.key, amount, expires_at) for bucket in unique_buckets(checks)],
        )
        self._purge(conn, now)
        return ReserveOutcome(True, figures, over)

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        def body(conn: sqlite3.Connection) -> dict[str, Figures]:
            conn.execute("DELETE FROM reservations WHERE id = ?", (ticket_id,))
            result = {}
            for bucket in buckets:
                conn.execute(
                    "INSERT INTO buckets (key, spent, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET spent = spent + excluded.spent",
                    (bucket.key, actual, bucket.expires_at),
                )
                result[bucket.key] = self._figures(conn, bucket.key, now)
            return result

        return self._run(body, timeout_ms=max(self.timeout_ms, SETTLE_TIMEOUT_MS))

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        self._run(lambda conn: conn.execute("DELETE FROM reservations WHERE id = ?", (ticket_id,)), write=False)

    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        return self._run(lambda conn: self._hit(conn, checks, now))

    def _hit(self, conn: sqlite3.Connection, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        now_ms = int(now * 1000)
        plan = []
        for check in checks:
            window_ms = check.window_seconds * 1000
            index = now_ms // window_ms
            previous, current = conn.execute(
                "SELECT (SELECT count FROM rates WHERE key = ?), (SELECT count FROM rates WHERE key = ?)",
                (f"{check.key}|{index - 1}", f"{check.key}|{index}"),
            ).fetchone()
            over = rate_over(previous or 0, current or 0, now_ms - index * window_ms, window_ms, check.limit)
            plan.append((f"{check.key}|{index}", (index + 2) * check.window_seconds, over))
        over_all = tuple(o for _, _, o in plan)
        if any(over_all):
            return RateOutcome(False, over_all)
        conn.executemany(
            "INSERT INTO rates (key, count, expires_at) VALUES (?, 1, ?) ON CONFLICT (key) DO UPDATE SET count = count + 1",
            [(key, forget) for key, forget, _ in plan],
        )
        self._purge(conn, now)
        return RateOutcome(True, over_all)

    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute("INSERT OR IGNORE INTO alerts (key, expires_at) VALUES (?, ?)", (key, expires_at)).rowcount == 1

        return self._run(body, write=False)

    def figures(self, key: str, now: float) -> Figures:
        return self._run(lambda conn: self._figures(conn, key, now), write=False)

    # --- lifecycle --------------------------------------------------------------------------------
    def _forget_connection(self) -> None:
        if self._conn is not None:
            _abandoned.append(self._conn)  # closing a connection opened by the parent is unsafe in the child
        self._conn = None
        self._pid = os.getpid()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._forget_connection()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
