"""``open_ledger(url, timeout_ms)``: the ledger a ``GENOPS_LEDGER_URL`` names (SQLite in the state folder by default)."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from .base import Ledger, redact

ACCEPTED = "memory://, sqlite:///absolute/path/ledger.db, redis://[user:password@]host[:port][/db], rediss://… or redis+cluster://…"


def validate_ledger_url(variable: str, url: str) -> None:
    """Raise ConfigError (naming ``variable``, never showing a password) unless ``url`` can be opened."""
    from ..config import ConfigError

    shown = redact(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        if url.lower().rstrip("/") != "memory:":
            raise ConfigError(variable, shown, "memory:// with nothing after it")
        return
    if scheme == "sqlite":
        path = _sqlite_path(url)
        if not path or not os.path.isabs(path) or path.endswith(("/", os.sep)):
            raise ConfigError(variable, shown, "sqlite:/// followed by an absolute file path, e.g. sqlite:///var/lib/genops/ledger.db")
        return
    if scheme in ("redis", "rediss", "redis+cluster"):
        try:
            parts = urlsplit(url)
            parts.port  # raises ValueError for a port that is not a number in range
            host = parts.hostname
        except ValueError:
            raise ConfigError(variable, f"{scheme}://…", ACCEPTED) from None
        if not host:
            raise ConfigError(variable, shown, "a Redis URL with a host, e.g. redis://localhost:6379/0")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ConfigError(variable, shown, "a Redis database number after the host, e.g. redis://localhost:6379/0")
        return
    raise ConfigError(variable, f"{scheme}://…" if scheme else "<value without a scheme>", ACCEPTED)


def _sqlite_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    # sqlite:///abs/path and sqlite:////abs/path -> "/abs/path"; sqlite://host/path is not a local file.
    if not rest.startswith("/"):
        return ""
    return "/" + unquote(rest.split("?", 1)[0]).lstrip("/")


def open_ledger(url: str | None, timeout_ms: int = 50) -> Ledger:
    """Open (lazily connecting) the ledger for ``url``; ``None`` means the default SQLite file."""
    if not url:
        from .sqlite import SqliteLedger, default_path

        return SqliteLedger(default_path(), timeout_ms)
    validate_ledger_url("GENOPS_LEDGER_URL", url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from .memory import MemoryLedger

        return MemoryLedger()
    if scheme == "sqlite":
        from .sqlite import SqliteLedger

        return SqliteLedger(_sqlite_path(url), timeout_ms, url=url)
    from .redis import RedisLedger

    return RedisLedger(url, timeout_ms)
