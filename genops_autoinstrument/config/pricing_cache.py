"""Large pricing files, validated once: their entries are remembered beside the start-up cache.

Parsing 200,000 TOML entries takes seconds; every process that prices a call would pay it again.
A file of at least :data:`MIN_BYTES` is therefore stored, once validated, as plain rows in
``$XDG_CACHE_HOME/genops`` (``marshal``, 0600 in a 0700 folder), keyed by everything that changes
when the file does: its absolute path, size, modification and change times, inode and device, and
the GenOps version. A stored copy is used only if it is a regular file owned by this user and
writable by nobody else. ``GENOPS_BOOT_CACHE=0`` turns this off, as it does the start-up cache.
Failures here only cost a parse.
"""

from __future__ import annotations

import marshal
import os
import stat
from typing import Any

from genops_autoinstrument import __version__

MIN_BYTES = 256 * 1024  # smaller files parse in milliseconds: not worth a cache file
_FORMAT = 1
_OFF = ("0", "false", "off", "no")


def _location(path: str) -> str | None:
    if os.environ.get("GENOPS_BOOT_CACHE", "").strip().lower() in _OFF:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    base = base if os.path.isabs(base) else os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no usable home: never write into the working directory
        return None
    from zlib import crc32

    return os.path.join(base, "genops", f"pricing-{crc32(os.path.abspath(path).encode('utf-8', 'surrogateescape')):08x}.marshal")


def _identity(path: str, status: os.stat_result) -> tuple:
    return (_FORMAT, __version__, os.path.abspath(path), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev)


def _read(path: str, status: os.stat_result, with_rows: bool) -> Any:
    """The stored rows (or True when only asked whether they exist) if they match ``status``."""
    location = _location(path)
    if location is None or status.st_size < MIN_BYTES:
        return None
    try:
        descriptor = os.open(location, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(descriptor, "rb") as handle:
            own = os.fstat(handle.fileno())
            if not stat.S_ISREG(own.st_mode) or own.st_mode & 0o022 or own.st_uid != getattr(os, "geteuid", lambda: own.st_uid)():
                return None
            if marshal.load(handle) != _identity(path, status):
                return None
            if not with_rows:
                return True
            rows = marshal.loads(handle.read())  # one read: marshal.load on a file reads in tiny pieces
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return rows if isinstance(rows, list) else None


def known(path: str, status: os.stat_result) -> bool:
    """True when this exact file was validated before (only the key is read)."""
    return _read(path, status, with_rows=False) is True


def rows(path: str, status: os.stat_result) -> list | None:
    """The validated rows of this exact file, or None."""
    return _read(path, status, with_rows=True)


def remember(path: str, status: os.stat_result, validated: list) -> None:
    """Store the rows of a large file just validated; ``status`` is that of the bytes parsed."""
    location = _location(path)
    if location is None or status.st_size < MIN_BYTES:
        return
    temporary = f"{location}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(location), mode=0o700, exist_ok=True)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600), "wb") as handle:
            marshal.dump(_identity(path, status), handle)
            handle.write(marshal.dumps(validated))
        os.replace(temporary, location)
    except (OSError, ValueError):
        try:
            os.unlink(temporary)
        except OSError:
            pass
