"""Ledger URLs (``GENOPS_LEDGER_URL``): validated at start-up, and shown without credentials."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit, urlunsplit

from genops_autoinstrument.config.errors import ConfigError

ACCEPTED = "memory://, sqlite:///absolute/path/ledger.db, redis://[user:password@]host[:port][/db], rediss://… or redis+cluster://…"


def validate_ledger_url(variable: str, url: str) -> None:
    """Raise ConfigError (naming ``variable``, never showing a password) unless ``url`` can be opened."""
    shown = redact(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        if url.lower().rstrip("/") != "memory:":
            raise ConfigError(variable, shown, "memory:// with nothing after it")
        return
    if scheme == "sqlite":
        path = sqlite_path(url)
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


def sqlite_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    # sqlite:///abs/path and sqlite:////abs/path -> "/abs/path"; sqlite://host/path is not a local file.
    if not rest.startswith("/"):
        return ""
    return "/" + unquote(rest.split("?", 1)[0]).lstrip("/")


def redact(url: str) -> str:
    """The URL without user name or password, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        if not parts.netloc:
            return f"{parts.scheme}://{parts.path}"
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = host if parts.username is None and parts.password is None else f"***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return url.split("://", 1)[0] + "://…"
