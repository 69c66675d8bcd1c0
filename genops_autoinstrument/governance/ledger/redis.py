"""``redis://`` / ``rediss://``: one ledger for a fleet, every check-and-change one atomic Lua script.

Keys live under ``genops:{ledger}:`` (one hash tag, so the scripts also run on Redis Cluster),
expire after their period (plus an hour for late settlements), and every command is bounded by
``GENOPS_LEDGER_TIMEOUT_MS``. Times come from the caller's clock so that all backends agree; expiries
are sent as durations from that clock, so a skewed server clock cannot expire a key early.

Nothing is lost on ledger trouble (a command that times out on the client may still run on the
server): every settlement and release leaves a short-lived ticket mark (``r:ticket|<id>``, kept
``TICKET_MEMORY_SECONDS``) that the scripts check, so a settlement sent twice counts once, and a
reservation that arrives after its ticket was settled or released (a late reserve) holds nothing.
A reserve that failed on the client is cancelled, and a settlement that failed is retried, from a
bounded queue (``settlements``), oldest first, by a keeper thread woken by the next ledger
operations, and at exit; a settlement finally given up is reported as ``settle_lost`` in
``genops.ledger.failures``.

Dead processes give their reservations back: a reservation is held for a lease of
``LEASE_SECONDS`` that the keeper thread of a live process renews every third of it (never past
the reservation's own expiry), so a process killed mid-call frees its budget within the lease.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Callable, Sequence

from genops_autoinstrument import lifecycle

from genops_autoinstrument.config.ledger_url import redact
from genops_autoinstrument.governance.settlements import EXIT_DRAIN_SECONDS, TICKET_MEMORY_SECONDS, Pending, Retryable, SettlementQueue

from .base import (
    Bucket,
    BudgetCheck,
    Figures,
    Ledger,
    LedgerError,
    RateCheck,
    RateOutcome,
    ReserveOutcome,
    unique_buckets,
)
from .redis_wire import ScriptWire

PREFIX = "genops:{ledger}:"
LEASE_SECONDS = 20.0  # an in-flight reservation is held this long unless its live process renews it
_MEMORY_MS = TICKET_MEMORY_SECONDS * 1000

# KEYS: per unique bucket, its spend key then its reservation zset; last, the ticket's mark.
# ARGV: now, amount, ticket, lease expiry (the member's score), reservation expiry (the zset's life),
# n checks, then per check (bucket index, limit, blocking). Mirrors base.is_over.
# Reservation members are "ticket:amount". A ticket already settled or released reserves nothing;
# a ticket that already holds its reservation (the same reserve sent again) is answered as reserved,
# its own amount not counted twice.
_RESERVE = """
local now = tonumber(ARGV[1]); local amount = tonumber(ARGV[2]); local ticket = ARGV[3]
local score = tonumber(ARGV[4]); local keep = tonumber(ARGV[5]); local n = tonumber(ARGV[6])
local nb = (#KEYS - 1) / 2
local mine = ticket .. ':' .. ARGV[2]
local spent, held, already = {}, {}, false
for i = 1, nb do
  local z = KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  spent[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local r = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do
    if m == mine then already = true else r = r + tonumber(string.match(m, ':(%d+)$')) end
  end
  held[i] = r
end
local out, blocked = {}, false
for c = 0, n - 1 do
  local b = tonumber(ARGV[7 + 3 * c]); local limit = tonumber(ARGV[8 + 3 * c]); local blocking = ARGV[9 + 3 * c] == '1'
  local over = (spent[b] + held[b] + amount > limit) or (spent[b] + held[b] >= limit)
  if over and blocking then blocked = true end
  table.insert(out, spent[b]); table.insert(out, held[b]); table.insert(out, over and 1 or 0)
end
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then blocked = true elseif already then blocked = false end
if not blocked then
  for i = 1, nb do
    local z = KEYS[2 * i]
    redis.call('ZADD', z, score, mine)
    local ttl = redis.call('PTTL', z); local want = math.ceil((keep - now) * 1000) + 60000
    if ttl < want then redis.call('PEXPIRE', z, want) end
  end
end
table.insert(out, 1, blocked and 0 or 1)
return out
"""

# KEYS as above. ARGV: now, ticket member (or ''), actual, mark lifetime (ms), then per bucket its expiry
# (0 = never). A ticket already settled ('s') adds nothing again: a retried settlement counts once.
_SETTLE = """
local now = tonumber(ARGV[1]); local member = ARGV[2]; local actual = tonumber(ARGV[3])
local settled = redis.call('GET', KEYS[#KEYS]) == 's'
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local b, z = KEYS[2 * i - 1], KEYS[2 * i]
  if member ~= '' then redis.call('ZREM', z, member) end
  local spent
  if settled then
    spent = tonumber(redis.call('GET', b) or '0')
  else
    spent = redis.call('INCRBY', b, actual)
    local expires = tonumber(ARGV[4 + i])
    if expires > 0 then redis.call('PEXPIRE', b, math.max(1000, math.ceil((expires - now) * 1000))) end
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  local r = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do r = r + tonumber(string.match(m, ':(%d+)$')) end
  table.insert(out, spent); table.insert(out, r)
end
redis.call('SET', KEYS[#KEYS], 's', 'PX', ARGV[4])
return out
"""

# KEYS: the reservation zsets, last the ticket's mark. ARGV: member, mark lifetime (ms).
# A release never undoes a settlement; a settlement after a release still counts.
_RELEASE = """
for i = 1, #KEYS - 1 do redis.call('ZREM', KEYS[i], ARGV[1]) end
if redis.call('GET', KEYS[#KEYS]) ~= 's' then redis.call('SET', KEYS[#KEYS], 'x', 'PX', ARGV[2]) end
return 1
"""

# KEYS: reservation zsets; ARGV: per key (member, new score). Renews only members still there.
_RENEW = """
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', ARGV[2 * i], ARGV[2 * i - 1]) end
return #KEYS
"""

# KEYS: per check, its current then previous window key. ARGV: now_ms, then per check (limit, window_ms).
# Mirrors base.rate_over.
_HIT = """
local now = tonumber(ARGV[1]); local out, blocked = {}, false
for c = 0, #KEYS / 2 - 1 do
  local limit = tonumber(ARGV[2 + 2 * c]); local window = tonumber(ARGV[3 + 2 * c])
  local elapsed = now % window
  local cur = tonumber(redis.call('GET', KEYS[2 * c + 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * c + 2]) or '0')
  local over = prev * (window - elapsed) + (cur + 1) * window > limit * window
  if over then blocked = true end
  table.insert(out, over and 1 or 0)
end
if not blocked then
  for c = 0, #KEYS / 2 - 1 do
    redis.call('INCR', KEYS[2 * c + 1]); redis.call('PEXPIRE', KEYS[2 * c + 1], 2 * tonumber(ARGV[3 + 2 * c]))
  end
end
table.insert(out, 1, blocked and 0 or 1)
return out
"""


class RedisLedger(Ledger):
    """A redis-py client (lazily made, remade after fork) running the scripts above.

    ``lease_seconds`` is how long an in-flight reservation is held without renewal (tests shorten it).
    """

    settles_failed_reserves = True  # the ticket mark makes a settlement after a cancelled reserve count once

    def __init__(self, url: str, timeout_ms: int = 50, lease_seconds: float = LEASE_SECONDS) -> None:
        self.url = url
        self.timeout_ms = timeout_ms
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._client: Any = None
        self._run: Callable[[str, Sequence[str], Sequence[Any]], Any] = _unopened
        self._wire: ScriptWire | None = None
        self._pid = os.getpid()
        self._queue = SettlementQueue()
        self._flight: dict[str, tuple[str, tuple[str, ...], float, float, float]] = {}  # ticket -> member, zsets, now, monotonic, expiry
        self._keeper: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()

    @property
    def on_lost(self) -> Callable[[str, BaseException], None] | None:
        """Called with ``("settle_lost", error)`` for each settlement finally given up."""
        return self._queue.on_lost

    @on_lost.setter
    def on_lost(self, report: Callable[[str, BaseException], None] | None) -> None:
        self._queue.on_lost = report

    @property
    def pending(self) -> int:
        """Settlements and releases waiting to be retried."""
        return len(self._queue)

    def _redis(self) -> Any:
        if self._pid != os.getpid():
            self.after_fork()
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import redis
                    except ImportError:
                        raise LedgerError("the redis ledger needs the redis package: pip install 'genops-autoinstrument[redis]'") from None
                    seconds = self.timeout_ms / 1000
                    url = self.url
                    if url.startswith("redis+cluster://"):
                        from redis.cluster import RedisCluster

                        client = RedisCluster.from_url("redis://" + url.split("://", 1)[1], socket_timeout=seconds, socket_connect_timeout=seconds)
                        scripts = {name: client.register_script(body) for name, body in _SCRIPTS.items()}  # routed by key slot
                        self._run = lambda name, keys, args: scripts[name](keys=keys, args=args)
                    else:
                        client = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)
                        self._wire = ScriptWire(client.connection_pool, _SCRIPTS)
                        self._run = self._wire.run
                    self._client = client
                client = self._client
        return client

    def _call(self, script: str, keys: Sequence[str], args: Sequence[Any], retry: str | None = None) -> Any:
        """Run ``script``; on failure a LedgerError, and with ``retry`` ("settle"/"release") the
        same script queued for retry when the ledger did not answer (it may have run anyway)."""
        try:
            self._redis()
            out = self._run(script, keys, args)
        except LedgerError:
            raise
        except Exception as error:  # redis.RedisError, OSError, timeouts
            if retry is not None:
                entry = Pending(retry, script, tuple(keys), tuple(args), time.monotonic())
                if not _unanswered(error):
                    self._queue.lose(entry, error)
                elif self._queue.put(entry):
                    self._start_keeper(wake=True)
            raise self._error(error) from None
        if len(self._queue):
            self._wake.set()  # the ledger answers again: the keeper retries what is queued now
        return out

    def _error(self, error: BaseException) -> LedgerError:
        return LedgerError(f"Redis ledger {redact(self.url)}: {type(error).__name__}: {_scrub(str(error), self.url)}")

    @staticmethod
    def _bucket_keys(buckets: Sequence[Bucket]) -> list[str]:
        keys = []
        for bucket in buckets:
            keys += [PREFIX + "b:" + bucket.key, PREFIX + "r:" + bucket.key]
        return keys

    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        buckets = unique_buckets(checks)
        index = {bucket.key: i + 1 for i, bucket in enumerate(buckets)}
        lease = min(expires_at, now + self.lease_seconds)
        args: list[Any] = [repr(now), amount, ticket_id, repr(lease), repr(expires_at), len(checks)]
        for check in checks:
            args += [index[check.key], check.limit, 1 if check.blocking else 0]
        member = f"{ticket_id}:{amount}"
        zsets = tuple(PREFIX + "r:" + bucket.key for bucket in buckets)
        try:
            out = self._call("reserve", self._bucket_keys(buckets) + [_mark(ticket_id)], args)
        except LedgerError:
            # It may still run on the server: cancel it (a cancel that lands first makes it hold nothing).
            self._call_quietly("release", zsets + (_mark(ticket_id),), (member, _MEMORY_MS))
            raise
        figures = tuple(Figures(int(out[1 + 3 * i]), int(out[2 + 3 * i])) for i in range(len(checks)))
        over = tuple(bool(int(out[3 + 3 * i])) for i in range(len(checks)))
        if int(out[0]):
            with self._lock:
                self._flight[ticket_id] = (member, zsets, now, time.monotonic(), expires_at)
            self._start_keeper()
        return ReserveOutcome(bool(int(out[0])), figures, over)

    def _call_quietly(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue ``script`` for the keeper (never run on the caller's path: it has waited enough)."""
        if self._queue.put(Pending(script, script, tuple(keys), tuple(args), time.monotonic())):
            self._start_keeper(wake=True)

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        self._flight.pop(ticket_id, None)
        member = f"{ticket_id}:{reserved}"
        args: list[Any] = [repr(now), member, actual, _MEMORY_MS] + [repr(bucket.expires_at or 0) for bucket in buckets]
        out = self._call("settle", self._bucket_keys(buckets) + [_mark(ticket_id)], args, retry="settle")
        return {bucket.key: Figures(int(out[2 * i]), int(out[2 * i + 1])) for i, bucket in enumerate(buckets)}

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        self._flight.pop(ticket_id, None)
        keys = [PREFIX + "r:" + bucket.key for bucket in buckets] + [_mark(ticket_id)]
        self._call("release", keys, [f"{ticket_id}:{reserved}", _MEMORY_MS], retry="release")

    def hit(self, checks: Sequence[RateCheck], now: float) -> RateOutcome:
        now_ms = int(now * 1000)
        keys: list[str] = []
        args: list[Any] = [now_ms]
        for check in checks:
            window_ms = check.window_seconds * 1000
            index = now_ms // window_ms
            keys += [f"{PREFIX}q:{check.key}|{index}", f"{PREFIX}q:{check.key}|{index - 1}"]
            args += [check.limit, window_ms]
        out = self._call("hit", keys, args)
        return RateOutcome(bool(int(out[0])), tuple(bool(int(v)) for v in out[1:]))

    def first_alert(self, key: str, expires_at: float | None, now: float) -> bool:
        try:
            client = self._redis()
            kwargs = {"px": max(1000, int((expires_at - now) * 1000))} if expires_at else {}
            return bool(client.set(PREFIX + "a:" + key, 1, nx=True, **kwargs))
        except LedgerError:
            raise
        except Exception as error:
            raise self._error(error) from None

    def figures(self, key: str, now: float) -> Figures:
        try:
            client = self._redis()
            spent = int(client.get(PREFIX + "b:" + key) or 0)
            members = client.zrangebyscore(PREFIX + "r:" + key, f"({now!r}", "+inf")
        except LedgerError:
            raise
        except Exception as error:
            raise self._error(error) from None
        return Figures(spent, sum(int(m.rsplit(b":", 1)[1]) for m in members))

    # --- the keeper: lease renewal and retries, off the application's path ----------------------------
    def _start_keeper(self, wake: bool = False) -> None:
        if wake:
            self._wake.set()
        keeper = self._keeper
        if keeper is not None and keeper.is_alive():
            return
        with self._lock:
            if self._keeper is None or not self._keeper.is_alive():
                # Registered first: what is queued is drained at exit even if no keeper can start.
                _live.add(self)
                lifecycle.at_exit(_drain_at_exit, lifecycle.EXIT_DEFERRED + 5)  # after queued settlements ran, before telemetry shuts down
                self._stop = threading.Event()
                keeper = threading.Thread(target=_keep, args=(weakref.ref(self), self._stop, self._wake), name="genops-ledger-keeper", daemon=True)
                try:
                    keeper.start()
                except RuntimeError:  # interpreter shutdown (Python 3.12.0-1): the exit drain retries instead
                    return
                self._keeper = keeper

    def renew(self) -> int:
        """Extend the lease of every reservation this process still holds; how many were renewed."""
        clock = time.monotonic()
        with self._lock:
            for ticket, (_, _, now, began, expires_at) in list(self._flight.items()):
                if now + (clock - began) >= expires_at:  # past the reservation's own expiry: it lapsed
                    del self._flight[ticket]
            flight = list(self._flight.values())
        if not flight:
            return 0
        keys: list[str] = []
        args: list[Any] = []
        for member, zsets, now, began, expires_at in flight:
            score = repr(min(expires_at, now + (clock - began) + self.lease_seconds))  # the caller's clock, moved on
            for zset in zsets:
                keys.append(zset)
                args += [member, score]
        self._redis()
        self._run("renew", keys, args)
        return len(flight)

    def retry(self, seconds: float | None = None) -> int:
        """Send queued settlements again, oldest first, for at most ``seconds``; how many landed."""
        deadline = None if seconds is None else time.monotonic() + seconds
        return self._queue.drain(self._resend, deadline)

    def _resend(self, entry: Pending) -> None:
        try:
            self._redis()
            self._run(entry.script, entry.keys, entry.args)
        except Exception as error:
            if _unanswered(error):
                raise Retryable() from None
            raise self._error(error) from None

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._client = None  # redis-py pools also reset on pid change; never reuse the parent's sockets
        self._wire = None  # nor the wire's: its connections are the parent's too
        self._run = _unopened
        self._pid = os.getpid()
        self._flight = {}  # the parent's reservations: the parent renews and settles them
        self._queue.clear()
        self._keeper = None
        self._wake = threading.Event()

    def close(self) -> None:
        """Stop the keeper, retry what is queued (bounded), report the rest lost, release connections."""
        self._stop.set()
        self._wake.set()
        if self._pid == os.getpid() and len(self._queue):
            self.retry(lifecycle.exit_seconds_left(EXIT_DRAIN_SECONDS))
            self._queue.give_up("the ledger did not answer before the process closed it")
        client, self._client = self._client, None
        wire, self._wire = self._wire, None
        if client is not None and self._pid == os.getpid():
            if wire is not None:
                wire.close()
            try:
                client.close()
            except Exception:
                pass


_live: "weakref.WeakSet[RedisLedger]" = weakref.WeakSet()
_SCRIPTS = {"reserve": _RESERVE, "settle": _SETTLE, "release": _RELEASE, "renew": _RENEW, "hit": _HIT}


def _unopened(name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    raise LedgerError("the Redis ledger is not open")  # pragma: no cover - every caller opens it first


def _mark(ticket_id: str) -> str:
    """The key remembering a settled ('s') or released ('x') ticket: reservation state, in the one hash tag."""
    return PREFIX + "r:ticket|" + ticket_id


def _unanswered(error: BaseException) -> bool:
    """A timeout or a lost connection: the command may or may not have run, so it is worth retrying."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover
        return isinstance(error, OSError)
    return isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError))


def _keep(ref: "weakref.ref[RedisLedger]", stop: threading.Event, wake: threading.Event) -> None:
    """The keeper thread: renew leases every third of a lease, retry queued settlements when woken."""
    renewed = time.monotonic()
    while not stop.is_set():
        ledger = ref()
        if ledger is None:
            return
        interval = ledger.lease_seconds / 3
        del ledger
        wake.wait(max(0.01, interval - (time.monotonic() - renewed)))
        wake.clear()
        ledger = ref()
        if ledger is None or stop.is_set():
            return
        try:
            if time.monotonic() - renewed >= interval * 0.9:
                renewed = time.monotonic()
                ledger.renew()
            if len(ledger._queue):
                ledger.retry(ledger.lease_seconds)
                if len(ledger._queue):
                    stop.wait(min(1.0, interval))  # still unanswered: try again soon, not in a tight loop
                    wake.set()
        except Exception:  # the ledger is unreachable: leases lapse, the queue waits
            pass
        del ledger


def _drain_at_exit() -> None:
    """At exit, every live Redis ledger retries its queue once (bounded), then reports the rest lost."""
    for ledger in list(_live):
        if ledger._pid == os.getpid() and len(ledger._queue):
            ledger.retry(lifecycle.exit_seconds_left(EXIT_DRAIN_SECONDS))
            ledger._queue.give_up("the ledger did not answer before the process exited")


def _scrub(message: str, url: str) -> str:
    """Remove the URL's password from a message, should a library ever echo it."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return message.replace(password, "***") if password else message
