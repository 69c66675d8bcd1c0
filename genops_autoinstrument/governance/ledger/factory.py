"""``open_ledger(url, timeout_ms)``: the ledger a ``GENOPS_LEDGER_URL`` names (SQLite in the state folder by default)."""

from __future__ import annotations

from genops_autoinstrument.config.ledger_url import sqlite_path, validate_ledger_url

from .base import Ledger


def open_ledger(url: str | None, timeout_ms: int = 50) -> Ledger:
    """Open (lazily connecting) the ledger for ``url``; ``None`` means the default SQLite file."""
    if not url:
        from .sqlite import SqliteLedger
        from .sqlite_files import default_path

        return SqliteLedger(default_path(), timeout_ms)
    validate_ledger_url("GENOPS_LEDGER_URL", url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from .memory import MemoryLedger

        return MemoryLedger()
    if scheme == "sqlite":
        from .sqlite import SqliteLedger

        return SqliteLedger(sqlite_path(url), timeout_ms, url=url)
    from .redis import RedisLedger

    return RedisLedger(url, timeout_ms)
