"""The default ledger: one SQLite file shared safely by every process of the machine, kept across restarts.

WAL journal (readers never wait for the writer), ``BEGIN IMMEDIATE`` (check-and-reserve is one
write transaction, so two processes can never both take the last dollar). ``synchronous=NORMAL``:
a committed reservation survives a crash of the process; only a power cut may lose the last few ms.

Waiting has two bounds, kept apart. Another *process* holding the file: every operation (decision,
settlement, opening) gives up after ``GENOPS_LEDGER_TIMEOUT_MS`` and the fail mode decides (SQLite's
own busy wait is off; this module retries with short sleeps until the deadline). This process's own
*threads*: they queue their operations, and the thread whose turn it is runs the whole queue as one
transaction, with one statement per kind of work however many callers wait. Waiting for that turn is
not a ledger failure (it is bounded apart, by :data:`LOCAL_WAIT_SECONDS`, which only a stuck disk
reaches). Batching keeps the turn short when the process is busy: each statement releases the GIL,
and under CPU load taking it back can cost milliseconds, so the statements, not the callers, count.

The file is trusted only when it is ours: never opened through a symbolic link, refused when it or
its folder belongs to another user or is writable by group or others; created 0600 in a 0700
folder. Each reservation names its holder (host scope, pid, process start time), so a process
killed mid-call gives its reservations back at the next decision that needs the room.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Collection, Sequence, TypeVar

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
)
from .holders import holder, holder_gone
from .sqlite_files import secure_directory, secure_file

T = TypeVar("T")
LOCAL_WAIT_SECONDS = 2.0  # longest wait for this process's own threads (never less than the ledger timeout)
SCHEMA_VERSION = 2  # 2: reservations name their holder
_PURGE_EVERY = 1024
_RETRY_FIRST, _RETRY_MAX = 0.0005, 0.005  # polling another process's lock: short sleeps, doubling
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, spent INTEGER NOT NULL, expires_at REAL)",
    "CREATE TABLE IF NOT EXISTS reservations (id TEXT NOT NULL, key TEXT NOT NULL, amount INTEGER NOT NULL,"
    " expires_at REAL NOT NULL, holder TEXT, PRIMARY KEY (id, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key, expires_at)",
    "CREATE TABLE IF NOT EXISTS rates (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, expires_at REAL)",
)
# One bucket's pair; :now is the time, :k<i> the key. Named, with a mapping: numbered placeholders
# (?1) count as named for the sqlite3 module, which deprecates binding them from a sequence (3.12).
_FIGURES = (
    "(SELECT spent FROM buckets WHERE key = :k{k} AND (expires_at IS NULL OR expires_at > :now)),"
    " (SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE key = :k{k} AND expires_at > :now)"
)
_abandoned: list[Any] = []  # connections inherited over fork: never closed in the child
_opening = threading.Lock()  # one file creation + connection at a time in this process (see _connect)


@functools.lru_cache(maxsize=256)
def _sql(kind: str, rows: int) -> str:
    """One statement for ``rows`` buckets, reservations or windows (of every operation of a batch)."""
    if kind == "figures":
        return "SELECT " + ", ".join(_FIGURES.format(k=i) for i in range(rows))
    if kind == "reserve":
        return "INSERT OR REPLACE INTO reservations (id, key, amount, expires_at, holder) VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    if kind == "drop":
        return "DELETE FROM reservations WHERE id IN (" + ", ".join(["?"] * rows) + ")"
    if kind == "spend":
        return "INSERT INTO buckets (key, spent, expires_at) VALUES " + ", ".join(["(?, ?, ?)"] * rows) + " ON CONFLICT (key) DO UPDATE SET spent = spent + excluded.spent"
    return "INSERT INTO rates (key, count, expires_at) VALUES " + ", ".join(["(?, 1, ?)"] * rows) + " ON CONFLICT (key) DO UPDATE SET count = count + 1"


def _judge(known: dict[str, Figures], held: dict[str, int], amount: int, checks: Sequence[BudgetCheck]) -> ReserveOutcome:
    """:func:`is_over` for each check, on the bucket's figures plus what this batch reserved there before."""
    figures, over, refused = [], [], False
    for check in checks:
        spent, reserved = known[check.key]
        reserved += held.get(check.key, 0)
        figures.append(Figures(spent, reserved))
        over.append(is_over(spent, reserved, amount, check.limit))
        refused = refused or (over[-1] and check.blocking)
    return ReserveOutcome(not refused, tuple(figures), tuple(over))


def _busy(error: sqlite3.Error) -> bool:
    text = str(error)
    return "locked" in text or "busy" in text


class _Op:
    """One caller's operation, queued for whichever thread has the turn (it may run in another's batch)."""

    __slots__ = ("kind", "args", "now", "since", "result", "error", "done", "lead", "wake")

    def __init__(self, kind: str, args: tuple, now: float | None, since: float | None) -> None:
        self.kind, self.args, self.now, self.since = kind, args, now, since  # since: when its timeout started
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = self.lead = False  # lead: its thread is handed the turn
        self.wake = threading.Lock()
        self.wake.acquire()  # released when done, or when handed the turn

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.wake.release()


class SqliteLedger(Ledger):
    """One connection per process; its threads' operations are run in batches, one transaction each."""

    atomic_rate_and_reserve = True

    def __init__(self, path: str, timeout_ms: int = 50, url: str | None = None) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.timeout_ms = timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._ops = 0
        self._new_turns()

    def _new_turns(self) -> None:
        self._guard = threading.Lock()  # held only to queue, take the queue or hand the turn over
        self._queue: list[_Op] = []
        self._leading = False  # a thread has the turn (and the connection)
        self._blocked = False  # the last batch found the file held by another process

    # --- turns: queue, lead, hand over ------------------------------------------------------------
    def _submit(self, kind: str, args: tuple, now: float | None = None) -> Any:
        """Queue the operation; take the turn if nobody has it; its result (or its error)."""
        op = _Op(kind, args, now, time.monotonic() if self._blocked else None)  # blocked: its timeout starts now
        with self._guard:
            if self._leading:
                self._queue.append(op)
                batch = None
            else:
                self._leading, batch = True, [op]
        if batch is None:
            self._wait(op)
            if not op.done:  # handed the turn
                batch = self._take()
        if batch is not None:  # our turn: run everything queued, then hand the turn to the next caller
            try:
                self._lead(batch)
            finally:
                self._hand_over()
        if op.error is not None:
            raise op.error
        return op.result

    def _wait(self, op: _Op) -> None:
        """Until ``op`` is done or its thread is handed the turn; bounded apart from the ledger timeout."""
        wait = max(LOCAL_WAIT_SECONDS, self.timeout_ms / 1000)
        if op.wake.acquire(timeout=wait):
            return
        with self._guard:
            if op.lead or op.done:
                return
            if op in self._queue:
                self._queue.remove(op)
        raise LedgerError(f"SQLite ledger {self.path}: this process's other calls held it for more than {wait:.1f} s")

    def _take(self) -> list[_Op]:
        with self._guard:
            batch, self._queue = self._queue, []
        return batch

    def _hand_over(self) -> None:
        with self._guard:
            if not self._queue:
                self._leading = False
                return
            following = self._queue[0]
            following.lead = True
        following.wake.release()

    def _run(self, body: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        """``body(conn)`` in its turn: in the batch's write transaction, or (``write=False``) outside it."""
        return self._submit("write" if write else "read", (body,))

    def _lead(self, batch: list[_Op]) -> None:
        """Run ``batch``; while another process holds the file, retry until the batch's first timeout runs out."""
        delay, start = _RETRY_FIRST, time.monotonic()
        deadline = min(start if op.since is None else op.since for op in batch) + self.timeout_ms / 1000
        while True:
            try:
                self._execute(batch)
                self._blocked = False
                return
            except sqlite3.OperationalError as error:
                now, busy = time.monotonic(), _busy(error)
                if not busy or now >= deadline:
                    self._blocked = busy
                    held = f" (another process held it for {self.timeout_ms} ms)" if busy else ""
                    return self._fail(batch, LedgerError(f"SQLite ledger {self.path}: {error}{held}"))
                self._blocked = True
                batch = [op for op in batch if not op.done]  # reads may have been answered
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, _RETRY_MAX)
            except LedgerError as error:
                return self._fail(batch, error)
            except (sqlite3.Error, OSError) as error:
                return self._fail(batch, LedgerError(f"SQLite ledger {self.path}: {error}"))
            except BaseException as error:  # a bug, or KeyboardInterrupt: every caller of the batch learns it
                self._fail(batch, error)
                if not isinstance(error, Exception):
                    raise
                return

    @staticmethod
    def _fail(batch: list[_Op], error: BaseException) -> None:
        for op in batch:
            if not op.done:  # a fresh LedgerError per caller: each thread raises its own
                op.finish(error=type(error)(*error.args) if isinstance(error, LedgerError) else error)

    def _execute(self, batch: list[_Op]) -> None:
        """One try: the reads, then every write in one transaction (busy raises at once); a close last."""
        work = [op for op in batch if op.kind != "close"]
        if work:
            if self._pid != os.getpid():
                self._forget_connection()
            conn = self._conn
            if conn is None:
                conn = self._conn = self._connect()
            writes = []
            for op in work:
                if op.kind == "read":
                    op.finish(op.args[0](conn))
                else:
                    writes.append(op)
            if writes:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._write(conn, writes)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                for op in writes:
                    op.finish(op.result)
        if len(work) < len(batch):
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            for op in batch:
                if not op.done:
                    op.finish()

    def _connect(self) -> sqlite3.Connection:
        """Check the folder and file, connect, and set the schema up (no waiting: busy raises)."""
        with _opening:  # a raw open/close of the file must not happen while this process holds SQLite locks on it
            secure_directory(os.path.dirname(os.path.abspath(self.path)))
            secure_file(self.path)
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=0")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                if "holder" not in {row[1] for row in conn.execute("PRAGMA table_info(reservations)")}:
                    conn.execute("ALTER TABLE reservations ADD COLUMN holder TEXT")  # a ledger made by an older GenOps
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            return conn
        except BaseException:
            conn.close()  # nothing half-set-up is kept: the next try starts over
            raise

    # --- one batch: settlements, then reservations, then the rest ----------------------------------
    def _write(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        """Set each op's result as if they ran one after another (they are concurrent: any order is one they could have had)."""
        settled = [op for op in ops if op.kind == "settle" or op.kind == "release"]
        reserves = [op for op in ops if op.kind == "reserve"]
        if settled:
            conn.execute(_sql("drop", len(settled)), [op.args[0] for op in settled])
            settled = [op for op in settled if op.kind == "settle"]
            spends = [v for op in settled for b in op.args[1] for v in (b.key, op.args[2], b.expires_at)]
            if spends:
                conn.execute(_sql("spend", len(spends) // 3), spends)
            for now in {op.now for op in settled}:
                group = [op for op in settled if op.now == now]
                after = self._figures(conn, list({b.key: None for op in group for b in op.args[1]}), now)
                for op in group:
                    op.result = {b.key: after[b.key] for b in op.args[1]}
        if reserves:
            for op, outcome in zip(reserves, self._reserve_all(conn, [op.args for op in reserves])):
                op.result = outcome
        timed = [op.now for op in reserves if op.now is not None]
        for op in ops:
            if op.kind == "write":
                op.result = op.args[0](conn)
                if op.now is not None:
                    timed.append(op.now)
        if timed:
            self._purge(conn, min(timed), len(timed))

    def _reserve_all(self, conn: sqlite3.Connection, requests: Sequence[tuple]) -> list[ReserveOutcome]:
        """Check-and-reserve each request in turn, with one read and one insert for all of them."""
        base: dict[float, dict[str, Figures]] = {}  # the buckets' figures before the batch, per clock reading
        held: dict[str, int] = {}  # reserved earlier in this batch
        tried: set[str] = set()
        rows: list[Any] = []
        outcomes = []

        def read(now: float) -> dict[str, Figures]:
            base[now] = self._figures(conn, list({c.key: None for r in requests if r[4] == now for c in r[2]}), now)
            return base[now]

        for ticket_id, amount, checks, expires_at, now in requests:
            outcome = _judge(base.get(now) or read(now), held, amount, checks)
            short = {c.key for c, o in zip(checks, outcome.over) if o} - tried
            if short:  # short of room: first give back what dead processes still hold there
                tried |= short
                if self._reclaim(conn, short, now):
                    base.clear()
                    outcome = _judge(read(now), held, amount, checks)
            outcomes.append(outcome)
            if outcome.reserved:
                for key in {c.key: None for c in checks}:
                    held[key] = held.get(key, 0) + amount
                    rows += (ticket_id, key, amount, expires_at, None)
        if rows:
            rows[4::5] = [holder()] * (len(rows) // 5)
            conn.execute(_sql("reserve", len(rows) // 5), rows)
        return outcomes

    @staticmethod
    def _reclaim(conn: sqlite3.Connection, keys: Collection[str] | None, now: float) -> bool:
        """Drop the reservations (on ``keys``, or anywhere) of holders whose process is gone; True if any was."""
        query, arguments = "SELECT DISTINCT holder FROM reservations WHERE holder IS NOT NULL AND expires_at > ?", [now]
        if keys is not None:
            query += f" AND key IN ({', '.join('?' * len(keys))})"
            arguments += keys
        dead = [(name,) for (name,) in conn.execute(query, arguments) if holder_gone(name)]
        if dead:
            conn.executemany("DELETE FROM reservations WHERE holder = ?", dead)
        return bool(dead)

    @staticmethod
    def _figures(conn: sqlite3.Connection, keys: Sequence[str], now: float) -> dict[str, Figures]:
        if not keys:
            return {}
        named = {f"k{i}": key for i, key in enumerate(keys)}
        named["now"] = now
        row = conn.execute(_sql("figures", len(keys)), named).fetchone()
        return {key: Figures(row[2 * i] or 0, row[2 * i + 1] or 0) for i, key in enumerate(keys)}

    def _purge(self, conn: sqlite3.Connection, now: float, count: int) -> None:
        """Every ``_PURGE_EVERY`` operations, forget what no longer counts."""
        before, self._ops = self._ops, self._ops + count
        if before // _PURGE_EVERY == self._ops // _PURGE_EVERY:
            return
        conn.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM buckets WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        conn.execute("DELETE FROM rates WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM alerts WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        self._reclaim(conn, None, now)

    # --- the contract -----------------------------------------------------------------------------
    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        return self._submit("reserve", (ticket_id, amount, checks, expires_at, now), now)

    def hit_and_reserve(
        self, rates: Sequence[RateCheck], ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float
    ) -> tuple[RateOutcome, ReserveOutcome | None]:
        def body(conn: sqlite3.Connection) -> tuple[RateOutcome, ReserveOutcome | None]:
            rate = self._hit(conn, rates, now)
            if not rate.allowed:
                return rate, None
            return rate, self._reserve_all(conn, [(ticket_id, amount, checks, expires_at, now)])[0]

        return self._submit("write", (body,), now)

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        return self._submit("settle", (ticket_id, tuple(buckets), actual), now)

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        self._submit("release", (ticket_id,))

    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        return self._submit("write", (lambda conn: self._hit(conn, checks, now),), now)

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
        if plan:
            conn.execute(_sql("count", len(plan)), [v for key, forget, _ in plan for v in (key, forget)])
        return RateOutcome(True, over_all)

    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute("INSERT OR IGNORE INTO alerts (key, expires_at) VALUES (?, ?)", (key, expires_at)).rowcount == 1

        return self._submit("write", (body,))

    def figures(self, key: str, now: float) -> Figures:
        return self._submit("read", (lambda conn: self._figures(conn, [key], now)[key],))

    # --- lifecycle --------------------------------------------------------------------------------
    def _forget_connection(self) -> None:
        if self._conn is not None:
            _abandoned.append(self._conn)  # closing a connection opened by the parent is unsafe in the child
        self._conn = None
        self._pid = os.getpid()

    def after_fork(self) -> None:
        global _opening
        _opening = threading.Lock()  # another thread may have held it at the fork
        self._new_turns()
        self._forget_connection()

    def close(self) -> None:
        """Close the connection in its turn (after the batch running, if any)."""
        self._submit("close", ())
