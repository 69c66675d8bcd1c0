"""Parsers of single environment values: each returns the value or raises :class:`ConfigError`."""

from __future__ import annotations

import os
import stat
from typing import Callable

from genops_autoinstrument.config.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(variable, raw, "one of true/false, 1/0, yes/no, on/off")


def parse_choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(variable, raw, "one of " + ", ".join(choices))
        return value

    return parse


def parse_list(variable: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_text(variable: str, raw: str) -> str | None:
    return raw.strip() or None


def parse_fraction(variable: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise ConfigError(variable, raw, "a number greater than 0 and at most 1, such as 0.8")
    return value


def parse_positive_int(variable: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(variable, raw, "a whole number greater than 0")
    return value


def parse_seconds(variable: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 600.0:
        raise ConfigError(variable, raw, "a number of seconds between 0 and 600, such as 2 or 0.5")
    return value


def parse_int_range(low: int, high: int, unit: str = "") -> Callable[[str, str], int]:
    """A whole number in ``low..high``: an overflowing or absurd value must not pass and then
    break (or silently disable) something at the first call."""
    accepted = f"a whole number from {low} to {high}{unit}"

    def parse(variable: str, raw: str) -> int:
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) + 2:
            raise ConfigError(variable, raw, accepted)
        value = int(text)
        if not low <= value <= high:
            raise ConfigError(variable, raw, accepted)
        return value

    return parse


_FILE_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    """What a file is, for messages ("a directory", "a FIFO", …)."""
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def parse_existing_file(variable: str, raw: str) -> str | None:
    """A regular file, checked with ``stat`` (never opened here: opening a FIFO would block)."""
    path = raw.strip()
    if not path:
        return None
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        raise ConfigError(variable, raw, "the path of an existing .toml or .json file") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(variable, f"{path} ({file_kind(mode)})", "the path of a regular .toml or .json file")
    if not path.endswith((".toml", ".json")):
        raise ConfigError(variable, raw, "a file ending in .toml or .json")
    return path
