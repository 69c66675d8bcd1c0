"""``genops-run --check`` reaching the ledger once: does it answer, and is the setting usable?

Read-only and bounded: a SQLite file is opened read-only (never created) and a Redis server gets
a connection, its ``AUTH``/``SELECT`` and one ``PING``, each bounded by ``GENOPS_LEDGER_TIMEOUT_MS``;
the whole probe runs in a daemon thread that is waited for at most three timeouts (name
resolution is not covered by socket timeouts), or on the calling thread where none can start.
Nothing here is on an application's path.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from urllib.parse import quote

from genops_autoinstrument import lifecycle
from genops_autoinstrument.config.ledger_url import redact, sqlite_path

# What a server says when the setting itself is wrong (not merely unreachable).
_REFUSALS = ("db index is out of range", "invalid db index", "wrongpass", "noauth", "invalid password", "invalid username")
_REFUSAL_TYPES = ("ResponseError", "AuthenticationError", "AuthenticationWrongNumberOfArgsError", "AuthorizationError", "NoPermissionError")


@dataclass(frozen=True)
class Probe:
    """``answered``: True, False (no answer in time, or refused), None (nothing to reach yet).
    ``invalid``: the ledger answered that the setting is wrong (exit status 2 for ``--check``)."""

    answered: bool | None
    line: str
    invalid: bool = False


def probe_ledger(url: str, timeout_ms: int) -> Probe:
    """Reach the ledger named by ``url`` (a ``sqlite://`` path for the default file) once."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return Probe(None, "memory:// (this process only; nothing to reach)")
    target = _sqlite if scheme == "sqlite" else _redis
    try:  # imported before the clock starts: loading a library is not the ledger's delay
        __import__("sqlite3" if scheme == "sqlite" else "redis.cluster")
    except ImportError:
        pass
    result: list[Probe] = []
    started = time.monotonic()
    # On a daemon thread (abandoned after three timeouts), or here where no thread can start.
    lifecycle.run_bounded(lambda: result.append(_safely(target, url, timeout_ms)), 3 * timeout_ms / 1000, "genops-check-ledger")
    if not result:
        return Probe(False, f"{redact(url)} did not answer within {3 * timeout_ms} ms (3 x GENOPS_LEDGER_TIMEOUT_MS)")
    probe = result[0]
    if probe.answered:
        return Probe(True, f"{probe.line} in {(time.monotonic() - started) * 1000:.0f} ms")
    return probe


def _safely(target: "object", url: str, timeout_ms: int) -> Probe:
    try:
        return target(url, timeout_ms)  # type: ignore[operator]
    except Exception as error:
        text = str(error).replace(url, redact(url))
        invalid = type(error).__name__ in _REFUSAL_TYPES or any(refusal in text.lower() for refusal in _REFUSALS)
        verdict = "refused the setting" if invalid else "did not answer"
        return Probe(False, f"{redact(url)} {verdict}: {type(error).__name__}: {' '.join(text.split())[:200]}", invalid)


def _sqlite(url: str, timeout_ms: int) -> Probe:
    import sqlite3

    path = sqlite_path(url)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return Probe(None, f"sqlite://{path} does not exist yet (created 0600 at the first budget decision)")
    if not stat.S_ISREG(mode):
        return Probe(False, f"sqlite://{path} is not a regular file", invalid=True)
    connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout_ms / 1000)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        connection.close()
    return Probe(True, f"sqlite://{path} answered (read-only)")


def _redis(url: str, timeout_ms: int) -> Probe:
    try:
        import redis
    except ImportError:
        return Probe(False, f"{redact(url)} cannot be reached: the redis package is not installed (pip install 'genops-autoinstrument[redis]')", invalid=True)
    seconds = timeout_ms / 1000
    if url.lower().startswith("redis+cluster://"):
        from redis.cluster import RedisCluster

        client = RedisCluster.from_url("redis://" + url.split("://", 1)[1], socket_timeout=seconds, socket_connect_timeout=seconds)
    else:
        client = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)
    try:
        client.ping()
    finally:
        client.close()
    return Probe(True, f"{redact(url)} answered")
