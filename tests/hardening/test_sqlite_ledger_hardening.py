"""The SQLite ledger under attack, faults and load (issue 14, items 2, 6, 8 and 11), with real files,
real second processes holding the file's lock, real SIGKILLed holders and real threads.

2: the ledger file is ours or refused (no links, no other owner, not writable by group/others;
   created 0600 in a 0700 folder; no relative XDG_STATE_HOME, no ``./~/.local``).
6: another process holding the file bounds every operation by GENOPS_LEDGER_TIMEOUT_MS, then the
   fail mode decides (it took about 2 s per call whatever the setting).
8: a process killed mid-call gives its reservation back at the next decision.
11: waiting behind this process's own threads is not a ledger failure.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, LedgerError, LedgerRefused
from genops_autoinstrument.governance.ledger.holders import holder, holder_gone
from genops_autoinstrument.governance.ledger import sqlite as sqlite_ledger_module
from genops_autoinstrument.governance.ledger.sqlite import SqliteLedger
from genops_autoinstrument.governance.ledger.sqlite_files import default_path
from genops_autoinstrument.pricing.prices import Price

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX owners, modes, links and signals")

ESTIMATE = 2_100_000  # nano-USD: 100 input tokens at $1/M + 1000 output tokens at $2/M
TOTAL_KEY = "budget|global|*|total|total"
ROOT = os.geteuid() == 0
BURNERS = 1  # threads of the process burning CPU next to the callers (an exporter retrying)
needs_root = pytest.mark.skipif(not ROOT, reason="making a file of another user needs root")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _pricer(provider, model, usage, base):
    return Price((usage.input_tokens * 1 + usage.output_tokens * 2) / 1e6)


def _request() -> CallRequest:
    return CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])


def _governor(url: str, budget: str = "global=1/total", **env: str) -> EnforcingGovernor:
    settings = config.load({"GENOPS_BUDGETS": budget, "GENOPS_LEDGER_URL": url, "GENOPS_LEDGER_TIMEOUT_MS": "50", **env})
    return EnforcingGovernor(settings, pricer=_pricer)


def _check(limit: int = 10**12) -> BudgetCheck:
    return BudgetCheck(TOTAL_KEY, limit, True, None)


def _refusal(ledger: SqliteLedger) -> str:
    with pytest.raises(LedgerRefused) as caught:
        ledger.reserve("t", 1, [_check()], 2e9, 1e9)
    return str(caught.value)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "ledger-folder"
    path.mkdir(mode=0o700)
    return path


# --- item 2: the file is ours, or refused ----------------------------------------------------------
def test_a_new_ledger_is_0600_in_a_0700_folder_whatever_the_umask(tmp_path):
    path = tmp_path / "state" / "genops" / "ledger.db"
    previous = os.umask(0)
    try:
        ledger = SqliteLedger(str(path), timeout_ms=50)
        assert ledger.reserve("t", 1, [_check()], 2e9, 1e9).reserved
    finally:
        os.umask(previous)
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    finally:
        ledger.close()


@pytest.mark.parametrize("dangling", [False, True], ids=["link-to-a-file", "dangling-link"])
def test_a_symlinked_ledger_file_is_refused_and_its_target_untouched(folder, tmp_path, dangling):
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious")
    (folder / "ledger.db").symlink_to(victim)
    message = _refusal(SqliteLedger(str(folder / "ledger.db"), timeout_ms=50))
    assert str(folder / "ledger.db") in message and "symbolic link" in message and "fix:" in message
    if dangling:
        assert not victim.exists()  # nothing created through the link
    else:
        assert victim.read_text() == "precious"


def test_a_symlinked_wal_file_is_refused(folder, tmp_path):
    ledger = SqliteLedger(str(folder / "ledger.db"), timeout_ms=50)
    assert ledger.reserve("t", 1, [_check()], 2e9, 1e9).reserved
    ledger.close()
    for suffix in ("-wal", "-shm"):
        (folder / f"ledger.db{suffix}").unlink(missing_ok=True)
    (folder / "ledger.db-wal").symlink_to(tmp_path / "elsewhere")
    assert "ledger.db-wal" in _refusal(SqliteLedger(str(folder / "ledger.db"), timeout_ms=50))
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770], ids=["world", "world-sticky", "group"])
def test_a_folder_others_can_write_is_refused_with_the_fix(folder, mode):
    folder.chmod(mode)
    message = _refusal(SqliteLedger(str(folder / "ledger.db"), timeout_ms=50))
    assert f"SQLite ledger {folder} refused" in message and f"chmod 700 {folder}" in message
    assert not (folder / "ledger.db").exists()


def test_a_file_others_can_write_is_refused_with_the_fix(folder):
    path = folder / "ledger.db"
    path.touch()
    path.chmod(0o666)
    message = _refusal(SqliteLedger(str(path), timeout_ms=50))
    assert f"chmod 600 {path}" in message and "writable by group or others" in message


def test_an_existing_0644_ledger_of_ours_is_still_used(folder):
    path = folder / "ledger.db"
    path.touch()
    path.chmod(0o644)  # made by an older GenOps: readable, not writable, by others
    ledger = SqliteLedger(str(path), timeout_ms=50)
    assert ledger.reserve("t", 1, [_check()], 2e9, 1e9).reserved
    ledger.close()


@needs_root
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_file_or_folder_of_another_user_is_refused(folder, what):
    path = folder / "ledger.db"
    path.touch()
    path.chmod(0o600)
    os.chown(path if what == "file" else folder, 65534, 65534)
    message = _refusal(SqliteLedger(str(path), timeout_ms=50))
    assert "belongs to uid 65534" in message and "GENOPS_LEDGER_URL" in message


@needs_root
def test_a_folder_link_is_followed_only_when_it_is_ours(folder, tmp_path):
    link = tmp_path / "state-link"
    link.symlink_to(folder, target_is_directory=True)
    ledger = SqliteLedger(str(link / "ledger.db"), timeout_ms=50)
    assert ledger.reserve("t", 1, [_check()], 2e9, 1e9).reserved  # a link of our own to a folder of our own
    ledger.close()
    os.lchown(link, 65534, 65534)
    assert "symbolic link owned by uid 65534" in _refusal(SqliteLedger(str(link / "ledger.db"), timeout_ms=50))


def test_a_relative_xdg_state_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert default_path() == str(tmp_path / "home" / ".local" / "state" / "genops" / "ledger.db")


@pytest.mark.parametrize("home", ["", "relative-home", None], ids=["empty", "relative", "unset"])
def test_no_usable_home_is_refused_with_a_clear_message(monkeypatch, home):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    if home is None:
        monkeypatch.delenv("HOME", raising=False)
        monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no passwd entry either
    else:
        monkeypatch.setenv("HOME", home)
    with pytest.raises(LedgerRefused) as caught:
        default_path()
    assert "HOME" in str(caught.value) and "GENOPS_LEDGER_URL" in str(caught.value)


DECIDER = r"""
import sys
from genops_autoinstrument import config
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import Price
import os
env = {k: v for k, v in os.environ.items() if k.startswith("GENOPS_")}
governor = EnforcingGovernor(config.load(env), pricer=lambda p, m, u, b: Price(0.001))
request = CallRequest("openai", "chat", "test-model", max_output_tokens=10, prompt_text=lambda: ["hi"])
for _ in range(4):
    ticket = governor.decide(request, {})
    governor.settle(ticket, 0.001, not ticket.decision.blocks)
    print(ticket.decision.result, ticket.decision.reason_code, ticket.attributes.get("genops.ledger.status"), flush=True)
print("failures", governor.ledger_failures)
"""


def _decide_in_a_process(tmp_path: Path, env: dict[str, str | None]) -> tuple[list[str], str]:
    script = tmp_path / "decider.py"
    script.write_text(DECIDER)
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GENOPS_", "XDG_"))}
    full.update({"GENOPS_BUDGETS": "global=1/day"})
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, env=full, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not any(cwd.iterdir()), list(cwd.iterdir())  # nothing written in the working directory (no ./~/.local)
    return done.stdout.splitlines(), done.stderr


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_no_usable_home_is_a_ledger_failure_under_the_fail_mode_said_once(tmp_path, mode):
    lines, stderr = _decide_in_a_process(tmp_path, {"HOME": "", "GENOPS_FAIL_MODE": mode})
    expected = "ALLOWED None unavailable" if mode == "open" else "BLOCKED BUDGET_RESERVATION_FAILED None"
    assert lines[:4] == [expected] * 4 and lines[4] == "failures 4"
    assert stderr.count("GenOps has no folder for its default SQLite ledger") == 1, stderr
    assert stderr.count("\n") == 1, stderr  # one line, once


def test_an_unsafe_ledger_file_is_a_ledger_failure_said_once(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a link or a file of their own there
    lines, stderr = _decide_in_a_process(tmp_path, {"GENOPS_LEDGER_URL": f"sqlite:///{shared}/ledger.db", "GENOPS_FAIL_MODE": "closed"})
    assert lines[:4] == ["BLOCKED BUDGET_RESERVATION_FAILED None"] * 4
    assert stderr.count(f"chmod 700 {shared}") == 1 and stderr.count("\n") == 1, stderr


# --- item 6: another process holding the file ------------------------------------------------------
LOCKER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(120)
"""


class Locker:
    """A real second process holding ``BEGIN EXCLUSIVE`` on the ledger file."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self.process.stdout.close()


class LedgerClock:
    """The SQLite ledger's clock, made deterministic: ``monotonic`` moves only when the ledger sleeps
    between its tries, so how long it waited is exactly what its deadline logic decided, whatever
    the machine's load (tests never time the wall clock)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
        time.sleep(0)  # let the other process and threads run

    def __getattr__(self, name: str):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch) -> LedgerClock:
    fake = LedgerClock()
    monkeypatch.setattr(sqlite_ledger_module, "time", fake)
    return fake


def _timed(clock: LedgerClock, action):
    start = clock.monotonic()
    result = action()
    return result, clock.monotonic() - start


def test_a_lock_held_by_another_process_bounds_decision_settlement_and_opening(folder, clock):
    url = f"sqlite:///{folder}/ledger.db"
    governor = _governor(url, GENOPS_FAIL_MODE="closed", GENOPS_RATE_LIMITS="global=1000/min")
    held = governor.decide(_request(), {})
    assert held.state is not None  # the connection is open and a reservation is held
    locker = Locker(folder / "ledger.db")
    try:
        settlement, settle_seconds = _timed(clock, lambda: governor.settle(held, 0.0021, True))
        assert settlement is not None and governor.ledger_failures == 1
        refused, decide_seconds = _timed(clock, lambda: governor.decide(_request(), {}))
        assert refused.decision.reason_code == "BUDGET_RESERVATION_FAILED" and governor.ledger_failures == 2
        fresh = _governor(url, GENOPS_FAIL_MODE="open")  # a process that has not opened the file yet
        allowed, open_seconds = _timed(clock, lambda: fresh.decide(_request(), {}))
        assert allowed.decision.result == "ALLOWED" and allowed.attributes["genops.ledger.status"] == "unavailable"
        assert fresh.ledger_failures == 1
    finally:
        locker.release()
    # Each waited its 50 ms (by the ledger's own clock), then gave up: about 2 s each before.
    for waited in (settle_seconds, decide_seconds, open_seconds):
        assert waited == pytest.approx(0.05, abs=0.005), (settle_seconds, decide_seconds, open_seconds)
    assert governor.decide(_request(), {}).state is not None  # the lock gone, the ledger answers again
    governor.close()
    fresh.close()


def test_threads_waiting_on_a_locked_file_each_return_within_the_timeout(folder, clock):
    url = f"sqlite:///{folder}/ledger.db"
    governor = _governor(url, GENOPS_FAIL_MODE="closed")
    assert governor.decide(_request(), {}).state is not None
    seconds: list[float] = []
    reasons: list[str] = []

    def decide():
        ticket, elapsed = _timed(clock, lambda: governor.decide(_request(), {}))
        seconds.append(elapsed)
        reasons.append(ticket.decision.reason_code)

    locker = Locker(folder / "ledger.db")
    try:
        threads = [threading.Thread(target=decide) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        locker.release()
    assert reasons == ["BUDGET_RESERVATION_FAILED"] * 8
    # By the ledger's clock: the waiting threads share their 50 ms waits, not 8 x 50 ms in a row
    # (0.4 s; a thread descheduled between batches may see a few other batches' waits too).
    assert max(seconds) < 0.35, seconds
    governor.close()


def test_the_timeout_is_the_one_configured_not_a_fixed_one(folder, clock):
    ledger = SqliteLedger(str(folder / "ledger.db"), timeout_ms=400)
    assert ledger.reserve("a", 1, [_check()], 2e9, 1e9).reserved
    locker = Locker(folder / "ledger.db")
    try:
        with pytest.raises(LedgerError) as caught:
            ledger.reserve("b", 1, [_check()], 2e9, 1e9)
        start = clock.monotonic()
        with pytest.raises(LedgerError):
            ledger.settle("a", 1, [], 1, 1e9)
        settle_seconds = clock.monotonic() - start
    finally:
        locker.release()
    assert "locked" in str(caught.value) and "400 ms" in str(caught.value)
    assert settle_seconds == pytest.approx(0.4, abs=0.005), settle_seconds  # waited the 400 ms it was given, not the old 2 s
    ledger.close()


# --- item 8: a killed holder gives its reservation back --------------------------------------------
HOLDER = r"""
import sys, threading
from genops_autoinstrument import config
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import Price
settings = config.load({"GENOPS_BUDGETS": "global=0.00315/total", "GENOPS_LEDGER_URL": sys.argv[1], "GENOPS_FAIL_MODE": "closed"})
governor = EnforcingGovernor(settings, pricer=lambda p, m, u, b: Price((u.input_tokens + u.output_tokens * 2) / 1e6))
ticket = governor.decide(CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400]), {})
print("held" if ticket.state is not None else "refused", flush=True)
threading.Event().wait()  # mid-call, forever
"""


def _holder_process(url: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


@pytest.mark.parametrize("reaped", [True, pytest.param(False, marks=linux)], ids=["reaped", "zombie"])
def test_a_killed_holder_gives_its_reservation_back_at_the_next_decision(folder, reaped):
    url = f"sqlite:///{folder}/ledger.db"
    governor = _governor(url, budget="global=0.00315/total", GENOPS_FAIL_MODE="closed")  # room for 1.5 estimates
    child = _holder_process(url)
    try:
        assert governor.decide(_request(), {}).decision.reason_code == "BUDGET_EXCEEDED"  # a live holder keeps its hold
        child.send_signal(signal.SIGKILL)
        if reaped:
            child.wait(timeout=30)
        else:  # killed, not yet waited for by its parent: a zombie holds nothing either
            deadline = time.monotonic() + 30
            while not open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        ticket = governor.decide(_request(), {})
        assert ticket.decision.result == "ALLOWED" and ticket.state is not None
        assert governor.ledger.figures(TOTAL_KEY, time.time()).reserved == ESTIMATE  # only the new call's
        governor.settle(ticket, 0.0021, True)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        governor.close()


@linux
def test_holders_are_told_apart_by_scope_pid_and_start_time():
    mine = holder()
    scope, pid, started = mine.split(" ")
    assert int(pid) == os.getpid() and started
    assert not holder_gone(mine)
    parent = os.getppid()
    parent_start = open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[19]
    assert not holder_gone(f"{scope} {parent} {parent_start}")  # alive
    assert holder_gone(f"{scope} {parent} {int(parent_start) + 1}")  # that pid now names another process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert holder_gone(f"{scope} {dead.pid} 1")
    assert not holder_gone(f"another-host-or-namespace {dead.pid} 1")  # its pids mean nothing here
    assert not holder_gone(f"{scope} 0 1") and not holder_gone("garbage")


def test_a_ledger_made_by_an_older_genops_gains_holders_and_keeps_its_figures(folder):
    path = folder / "ledger.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE buckets (key TEXT PRIMARY KEY, spent INTEGER NOT NULL, expires_at REAL)")
    old.execute(
        "CREATE TABLE reservations (id TEXT NOT NULL, key TEXT NOT NULL, amount INTEGER NOT NULL,"
        " expires_at REAL NOT NULL, PRIMARY KEY (id, key)) WITHOUT ROWID"
    )
    old.execute("INSERT INTO buckets VALUES (?, 70, NULL)", (TOTAL_KEY,))
    old.execute("INSERT INTO reservations VALUES ('old', ?, 5, 2e9)", (TOTAL_KEY,))  # holder unknown: left to the TTL
    old.close()
    path.chmod(0o600)
    ledger = SqliteLedger(str(path), timeout_ms=50)
    assert ledger.reserve("new", 100, [_check(limit=150)], 2e9, 1e9).reserved is False  # 70 + 5 + 100 > 150
    assert ledger.reserve("new", 10, [_check(limit=150)], 2e9, 1e9).reserved
    assert ledger.figures(TOTAL_KEY, 1e9) == (70, 15)
    assert ledger.figures(TOTAL_KEY, 2e9 + 1) == (70, 0)  # a holder it cannot judge still expires with its TTL
    ledger.close()


# --- item 11: load is not a fault ------------------------------------------------------------------
def test_waiting_behind_this_process_threads_is_not_a_ledger_failure(folder, clock):
    ledger = SqliteLedger(str(folder / "ledger.db"), timeout_ms=50)
    assert ledger.reserve("warm", 1, [_check()], 2e9, 1e9).reserved
    other = _hold_the_turn(ledger, 0.3, clock)  # another thread keeps the turn 6 timeouts long (descheduled, a slow disk)
    outcome, waited = _timed(clock, lambda: ledger.reserve("behind", 1, [_check()], 2e9, 1e9))
    other.join()
    assert outcome.reserved and waited == pytest.approx(0.3)  # it waited its turn, 6 timeouts by the ledger's clock, and was not failed for it
    ledger.close()


def _hold_the_turn(ledger: SqliteLedger, seconds: float, clock: LedgerClock | None = None) -> threading.Thread:
    """A thread whose operation keeps the ledger's turn for ``seconds`` (the others queue behind it);
    with ``clock``, the ledger's clock moves on by as much."""
    inside = threading.Event()

    def slow(conn):
        inside.set()
        time.sleep(seconds)
        if clock is not None:
            clock.sleep(seconds)

    thread = threading.Thread(target=ledger._run, args=(slow,))
    thread.start()
    assert inside.wait(10)
    return thread


def test_queued_operations_run_as_one_batch_exactly_as_one_after_another(folder):
    ledger = SqliteLedger(str(folder / "ledger.db"), timeout_ms=50)
    check = _check(limit=100)
    for name in ("s1", "s2", "s3"):
        assert ledger.reserve(name, 10, [check], 2e9, 1e9).reserved  # 30 held
    outcomes: dict[str, object] = {}

    def reserve(name):
        outcomes[name] = ledger.reserve(name, 10, [check, check], 2e9, 1e9)  # two rules on one bucket

    holder_thread = _hold_the_turn(ledger, 0.5)
    workers = [threading.Thread(target=reserve, args=(f"r{i}",)) for i in range(12)]
    workers += [threading.Thread(target=ledger.settle, args=("s1", 10, [Bucket(TOTAL_KEY, None)], 5, 1e9))]
    workers += [threading.Thread(target=ledger.release, args=("s2", 10, [Bucket(TOTAL_KEY, None)], 1e9))]
    for worker in workers:
        worker.start()
    for worker in workers + [holder_thread]:
        worker.join()
    # settled 5 and released 10 first (any order of concurrent calls is a valid one): 5 spent + 10 held
    # leave room for 8 reservations of 10; the other 4 are refused, none overruns
    reserved = sorted(name for name, outcome in outcomes.items() if outcome.reserved)
    assert len(reserved) == 8 and len(outcomes) == 12
    assert ledger.figures(TOTAL_KEY, 1e9) == (5, 90)
    refused = [outcome for outcome in outcomes.values() if not outcome.reserved]
    assert all(outcome.over == (True, True) for outcome in refused)
    ledger.close()


def test_a_stuck_turn_fails_the_waiters_after_the_local_bound_and_the_ledger_recovers(folder, monkeypatch):
    from genops_autoinstrument.governance.ledger import sqlite as module

    monkeypatch.setattr(module, "LOCAL_WAIT_SECONDS", 0.2)
    ledger = SqliteLedger(str(folder / "ledger.db"), timeout_ms=50)
    assert ledger.reserve("warm", 1, [_check()], 2e9, 1e9).reserved
    stuck = _hold_the_turn(ledger, 0.8)  # a disk that does not answer
    with pytest.raises(LedgerError) as caught:
        ledger.reserve("waiting", 1, [_check()], 2e9, 1e9)
    assert "other calls held it for more than 0.2 s" in str(caught.value)
    stuck.join()
    assert ledger.reserve("after", 1, [_check()], 2e9, 1e9).reserved  # the turn was handed on, not lost
    ledger.close()


def test_eight_threads_at_150_calls_a_second_on_the_default_ledger_have_no_ledger_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    settings = config.load({"GENOPS_BUDGETS": "global=1000/day", "GENOPS_FAIL_MODE": "closed", "GENOPS_LEDGER_TIMEOUT_MS": "50"})
    governor = EnforcingGovernor(settings, pricer=_pricer)
    stop = threading.Event()
    results: list[str] = []
    lock = threading.Lock()

    def burn():  # other work of the process competing for the CPU and the GIL (an exporter retrying)
        while not stop.is_set():
            sum(range(20_000))

    def caller(index):
        pace = 8 / 150  # eight threads, ~150 calls/s together
        next_at = time.perf_counter() + index * pace / 8
        for _ in range(75):
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += pace
            ticket = governor.decide(_request(), {})
            governor.settle(ticket, 0.0021, not ticket.decision.blocks)
            with lock:
                results.append(ticket.decision.result if not ticket.decision.blocks else ticket.decision.reason_code)

    burners = [threading.Thread(target=burn) for _ in range(BURNERS)]
    callers = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for thread in burners + callers:
        thread.start()
    for thread in callers:
        thread.join()
    stop.set()
    for thread in burners:
        thread.join()
    assert governor.ledger_failures == 0
    assert len(results) == 600 and set(results) == {"ALLOWED"}, sorted(set(results))
    day = next(key for key in _keys(tmp_path / "state" / "genops" / "ledger.db"))
    figures = governor.ledger.figures(day, time.time())
    assert figures.spent == 600 * ESTIMATE and figures.reserved == 0
    governor.close()


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = [key for (key,) in conn.execute("SELECT key FROM buckets")]
    conn.close()
    return rows
