"""Ledger URLs (``GENOPS_LEDGER_URL``): validated at start-up, and shown without credentials.

Everything that would make the ledger fail at the first call is refused here, so that a setting
can never switch enforcement off quietly: a SQLite path that is a device, FIFO, directory or
symbolic link (``sqlite:////dev/null``), a Redis database number the server does not have, and
Redis query parameters redis-py does not understand, holds a bad value for, or that would replace
``GENOPS_LEDGER_TIMEOUT_MS`` (``?socket_timeout=…``).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Callable
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from genops_autoinstrument.config.errors import ConfigError
from genops_autoinstrument.config.parsers import file_kind

ACCEPTED = "memory://, sqlite:///absolute/path/ledger.db, redis://[user:password@]host[:port][/db], rediss://… or redis+cluster://…"
MAX_REDIS_DB = 15  # Redis' default `databases 16`; a cluster has only database 0
_TIMEOUT_PARAMETERS = ("socket_timeout", "socket_connect_timeout", "timeout")


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
        _check_sqlite_file(variable, path)
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
        _check_redis_db(variable, shown, parts.path.strip("/"), scheme)
        _check_redis_query(variable, shown, parts.query, scheme)
        return
    raise ConfigError(variable, f"{scheme}://…" if scheme else "<value without a scheme>", ACCEPTED)


def _check_sqlite_file(variable: str, path: str) -> None:
    """A ledger file that exists must be one SQLite can use and GenOps will open. One that does
    not exist yet is created at the first budget decision; an unusable folder is a ledger failure
    then, which the fail mode decides (like the default file's)."""
    accepted = "sqlite:/// followed by the path of a regular file, or of one to create"
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except (OSError, ValueError) as error:
        raise ConfigError(variable, f"sqlite://{path} ({type(error).__name__})", accepted) from None
    if stat.S_ISLNK(mode):
        raise ConfigError(variable, f"sqlite://{path} (a symbolic link)", accepted + ", not a symbolic link")
    if not stat.S_ISREG(mode):
        raise ConfigError(variable, f"sqlite://{path} ({file_kind(mode)})", accepted)


def _check_redis_db(variable: str, shown: str, db: str, scheme: str) -> None:
    highest = 0 if scheme == "redis+cluster" else MAX_REDIS_DB
    if db and not (re.fullmatch(r"[0-9]{1,5}", db) and int(db) <= highest):
        if scheme == "redis+cluster":
            raise ConfigError(variable, shown, "database 0 (or none) in a redis+cluster:// URL: a Redis Cluster has only database 0")
        raise ConfigError(variable, shown, f"a Redis database number from 0 to {MAX_REDIS_DB} after the host, e.g. redis://localhost:6379/0")


def _flag(value: str) -> bool:
    return value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off")


def _whole(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: value.isascii() and value.isdigit() and low <= int(value) <= high


# The query parameters redis-py's from_url understands (in every version GenOps supports), with
# the values they accept; anything else would reach redis-py's connection as an unknown keyword.
_COMMON: dict[str, tuple[Callable[[str], bool], str]] = {
    "db": (_whole(0, MAX_REDIS_DB), f"a database number from 0 to {MAX_REDIS_DB}"),
    "client_name": (lambda value: bool(value) and value.isprintable() and " " not in value, "a name without spaces"),
    "health_check_interval": (_whole(0, 86400), "whole seconds from 0 to 86400"),
    "max_connections": (_whole(1, 100000), "a whole number from 1 to 100000"),
    "protocol": (lambda value: value in ("2", "3"), "2 or 3"),
    "retry_on_timeout": (_flag, "true or false"),
    "socket_keepalive": (_flag, "true or false"),
}
_TLS: dict[str, tuple[Callable[[str], bool], str]] = {
    "ssl_cert_reqs": (lambda value: value.lower() in ("none", "optional", "required"), "none, optional or required"),
    "ssl_check_hostname": (_flag, "true or false"),
    "ssl_ca_certs": (os.path.isfile, "the path of a CA bundle file"),
    "ssl_ca_path": (os.path.isdir, "the path of a folder of CA certificates"),
    "ssl_certfile": (os.path.isfile, "the path of a client certificate file"),
    "ssl_keyfile": (os.path.isfile, "the path of a client key file"),
}


def _check_redis_query(variable: str, shown: str, query: str, scheme: str) -> None:
    """Each parameter known to redis-py, with a valid value, given once; its value is never shown."""
    if not query:
        return
    known = dict(_COMMON, **(_TLS if scheme == "rediss" else {}))
    listed = ", ".join(sorted(known))
    seen = set()
    for name, value in parse_qsl(query, keep_blank_values=True):
        where = f"{shown} (query parameter {name!r})"
        if name in _TIMEOUT_PARAMETERS:
            raise ConfigError(variable, where, f"no {name} in the URL: GENOPS_LEDGER_TIMEOUT_MS sets the ledger's timeouts")
        if name not in known:
            raise ConfigError(variable, where, f"only the query parameters {listed}")
        if name in seen:
            raise ConfigError(variable, where, "each query parameter once")
        seen.add(name)
        check, accepted = known[name]
        if name == "db" and scheme == "redis+cluster":
            check, accepted = _whole(0, 0), "0: a Redis Cluster has only database 0"
        if not check(value):
            raise ConfigError(variable, where, f"{name}={accepted}")


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
