"""``redis://`` / ``rediss://``: one ledger for a fleet, every check-and-change one atomic Lua script.

Keys live under ``genops:{ledger}:`` (one hash tag, so the scripts also run on Redis Cluster),
expire after their period (plus an hour for late settlements), and every command is bounded by
``GENOPS_LEDGER_TIMEOUT_MS``. Times come from the caller's clock so that all backends agree; expiries
are sent as durations from that clock, so a skewed server clock cannot expire a key early.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

from genops_autoinstrument.config.ledger_url import redact

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

PREFIX = "genops:{ledger}:"

# KEYS: per unique bucket, its spend key then its reservation zset.
# ARGV: now, amount, ticket, reservation expiry, n checks, then per check (bucket index, limit, blocking).
# Mirrors base.is_over. Reservation members are "ticket:amount", scored by their expiry.
_RESERVE = """
local now = tonumber(ARGV[1]); local amount = tonumber(ARGV[2]); local ticket = ARGV[3]
local expires = tonumber(ARGV[4]); local n = tonumber(ARGV[5])
local spent, held = {}, {}
for i = 1, #KEYS / 2 do
  local z = KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  spent[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local r = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do r = r + tonumber(string.match(m, ':(%d+)$')) end
  held[i] = r
end
local out, blocked = {}, false
for c = 0, n - 1 do
  local b = tonumber(ARGV[6 + 3 * c]); local limit = tonumber(ARGV[7 + 3 * c]); local blocking = ARGV[8 + 3 * c] == '1'
  local over = (spent[b] + held[b] + amount > limit) or (spent[b] + held[b] >= limit)
  if over and blocking then blocked = true end
  table.insert(out, spent[b]); table.insert(out, held[b]); table.insert(out, over and 1 or 0)
end
if not blocked then
  for i = 1, #KEYS / 2 do
    local z = KEYS[2 * i]
    redis.call('ZADD', z, expires, ticket .. ':' .. ARGV[2])
    local ttl = redis.call('PTTL', z); local want = math.ceil((expires - now) * 1000) + 60000
    if ttl < want then redis.call('PEXPIRE', z, want) end
  end
end
table.insert(out, 1, blocked and 0 or 1)
return out
"""

# KEYS as above. ARGV: now, ticket member (or ''), actual, then per bucket its expiry (0 = never).
_SETTLE = """
local now = tonumber(ARGV[1]); local member = ARGV[2]; local actual = tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS / 2 do
  local b, z = KEYS[2 * i - 1], KEYS[2 * i]
  if member ~= '' then redis.call('ZREM', z, member) end
  local spent = redis.call('INCRBY', b, actual)
  local expires = tonumber(ARGV[3 + i])
  if expires > 0 then redis.call('PEXPIRE', b, math.max(1000, math.ceil((expires - now) * 1000))) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  local r = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do r = r + tonumber(string.match(m, ':(%d+)$')) end
  table.insert(out, spent); table.insert(out, r)
end
return out
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
    """A redis-py client (lazily made, remade after fork) running the scripts above."""

    def __init__(self, url: str, timeout_ms: int = 50) -> None:
        self.url = url
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._pid = os.getpid()

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
                    else:
                        client = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)
                    self._scripts = {name: client.register_script(body) for name, body in (("reserve", _RESERVE), ("settle", _SETTLE), ("hit", _HIT))}
                    self._client = client
                client = self._client
        return client

    def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            self._redis()
            return self._scripts[script](keys=keys, args=args)
        except LedgerError:
            raise
        except Exception as error:  # redis.RedisError, OSError, timeouts
            raise LedgerError(f"Redis ledger {redact(self.url)}: {type(error).__name__}: {_scrub(str(error), self.url)}") from None

    @staticmethod
    def _bucket_keys(buckets: Sequence[Bucket]) -> list[str]:
        keys = []
        for bucket in buckets:
            keys += [PREFIX + "b:" + bucket.key, PREFIX + "r:" + bucket.key]
        return keys

    def reserve(self, ticket_id: str, amount: int, checks: Sequence[BudgetCheck], expires_at: float, now: float) -> ReserveOutcome:
        buckets = unique_buckets(checks)
        index = {bucket.key: i + 1 for i, bucket in enumerate(buckets)}
        args: list[Any] = [repr(now), amount, ticket_id, repr(expires_at), len(checks)]
        for check in checks:
            args += [index[check.key], check.limit, 1 if check.blocking else 0]
        out = self._call("reserve", self._bucket_keys(buckets), args)
        figures = tuple(Figures(int(out[1 + 3 * i]), int(out[2 + 3 * i])) for i in range(len(checks)))
        over = tuple(bool(int(out[3 + 3 * i])) for i in range(len(checks)))
        return ReserveOutcome(bool(int(out[0])), figures, over)

    def settle(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], actual: int, now: float) -> dict[str, Figures]:
        member = f"{ticket_id}:{reserved}"
        args: list[Any] = [repr(now), member, actual] + [repr(bucket.expires_at or 0) for bucket in buckets]
        out = self._call("settle", self._bucket_keys(buckets), args)
        return {bucket.key: Figures(int(out[2 * i]), int(out[2 * i + 1])) for i, bucket in enumerate(buckets)}

    def release(self, ticket_id: str, reserved: int, buckets: Sequence[Bucket], now: float) -> None:
        try:
            client = self._redis()
            pipe = client.pipeline(transaction=False)
            for bucket in buckets:
                pipe.zrem(PREFIX + "r:" + bucket.key, f"{ticket_id}:{reserved}")
            pipe.execute()
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerError(f"Redis ledger {redact(self.url)}: {type(error).__name__}: {_scrub(str(error), self.url)}") from None

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
            raise LedgerError(f"Redis ledger {redact(self.url)}: {type(error).__name__}: {_scrub(str(error), self.url)}") from None

    def figures(self, key: str, now: float) -> Figures:
        try:
            client = self._redis()
            spent = int(client.get(PREFIX + "b:" + key) or 0)
            members = client.zrangebyscore(PREFIX + "r:" + key, f"({now!r}", "+inf")
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerError(f"Redis ledger {redact(self.url)}: {type(error).__name__}: {_scrub(str(error), self.url)}") from None
        return Figures(spent, sum(int(m.rsplit(b":", 1)[1]) for m in members))

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._client = None  # redis-py pools also reset on pid change; never reuse the parent's sockets
        self._scripts = {}
        self._pid = os.getpid()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            try:
                client.close()
            except Exception:
                pass


def _scrub(message: str, url: str) -> str:
    """Remove the URL's password from a message, should a library ever echo it."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return message.replace(password, "***") if password else message
