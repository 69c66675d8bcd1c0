"""The Redis ledger's scripts, sent as ``EVALSHA`` over connections the ledger keeps for itself.

Why not ``Script.__call__``: redis-py's command layer (arguments encoded one by one in Python, a pool
that polls each connection for stray data, per-command observability hooks) costs the client more CPU
per round trip than GenOps' whole decision, and on a fleet host that CPU, not the server, bounds
budget decisions per second (``benchmarks/results/fleet_decisions.md``). Sending the packed command
on a connection of our own takes about a fifth less client CPU per decision. It also keeps the
scripts' traffic out of an application's own Redis instrumentation, which wraps
``Redis.execute_command``.

Connections come from the client's pool factory (so URL options, TLS and credentials apply) and are
kept in a last-in-first-out stack: as many as calls ran at once, each reused. A connection whose
command failed in any way but a Redis error reply is disconnected before it is reused, so a late reply
can never be read as the answer to another command; one the server closed is reconnected.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from typing import Any, Callable, Mapping, Sequence

try:  # redis-py's hiredis extra: the same packer redis-py uses, without its per-argument Python pass
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - the extra is part of genops-autoinstrument[redis]
    _hiredis_pack = None


class ScriptWire:
    """Run named Lua scripts by SHA on lean connections; load a script the server does not have."""

    def __init__(self, pool: Any, scripts: Mapping[str, str]) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError, NoScriptError, ResponseError

        # Looked up once: the exception classes are read on every call (redis is loaded by now).
        self._closed, self._no_script, self._error_reply = RedisConnectionError, NoScriptError, ResponseError
        self._make: Callable[[], Any] = pool.make_connection
        self._bodies = dict(scripts)
        self._shas = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in scripts.items()}
        self._idle: deque[tuple[Any, bool]] = deque()  # (connection, its last command was answered)
        kwargs = getattr(pool, "connection_kwargs", {})
        utf8 = str(kwargs.get("encoding", "utf-8")).lower().replace("_", "-") in ("utf-8", "utf8")
        self._fast = _hiredis_pack is not None and utf8  # hiredis packs text as UTF-8, redis-py as the URL says
        timeout = kwargs.get("socket_timeout")
        self._at_once = timeout / 2 if timeout else float("inf")  # a closed connection fails sooner than this

    def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; redis-py's errors as they are (a ``ResponseError`` for an error reply).

        A kept connection the server has closed since its last answer (a restart, a failover, the
        server's idle ``timeout``, ``CLIENT KILL``, a proxy) fails at once with a ``ConnectionError``:
        the command is then sent once more on a new connection, as redis-py's own pool would have
        reconnected first (not when the failure took half the timeout: the call's wait stays
        bounded). Every script is safe to send twice: a reserve whose ticket already holds its
        reservation is answered as reserved, settlements and releases are idempotent by ticket, a
        renewal sets the same score, and a rate hit counted twice only makes the limit stricter.
        """
        try:
            connection, answered = self._idle.pop()  # deque.pop/append are atomic: no lock on the hot path
        except IndexError:
            connection, answered = self._make(), False
        began = time.monotonic()
        try:
            try:
                reply = self._script(connection, name, keys, args)
            except self._closed:  # _script has disconnected it: the resend reconnects
                if not answered or time.monotonic() - began >= self._at_once:
                    raise  # a new or already failed connection, or a slow failure: not a closed one
                reply = self._script(connection, name, keys, args)
        except self._error_reply:
            self._idle.append((connection, True))  # an error reply: the connection is in step
            raise
        except BaseException:
            self._idle.append((connection, False))
            raise
        self._idle.append((connection, True))
        return reply

    def _script(self, connection: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            try:
                return self._ask(connection, ("EVALSHA", self._shas[name], len(keys), *keys, *args))
            except self._no_script:  # a restarted or flushed server: load it, then ask once more
                self._ask(connection, ("SCRIPT", "LOAD", self._bodies[name]))
                return self._ask(connection, ("EVALSHA", self._shas[name], len(keys), *keys, *args))
        except self._error_reply:
            raise  # an error reply: the connection is in step, keep it
        except BaseException:
            # Its reply may still come: never read it as another command's. (redis-py disconnects
            # on most of these itself; this also covers a send that failed half-way.)
            connection.disconnect()
            raise

    def _ask(self, connection: Any, command: tuple[Any, ...]) -> Any:
        if self._fast:
            connection.send_packed_command((_hiredis_pack(command),))  # an iterable of buffers
        else:
            connection.send_command(*command)
        return connection.read_response()

    def close(self) -> None:
        """Disconnect every kept connection (in the process that made them)."""
        while self._idle:
            try:
                self._idle.pop()[0].disconnect()
            except Exception:
                pass
