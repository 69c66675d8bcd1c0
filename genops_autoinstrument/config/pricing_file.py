"""``GENOPS_PRICING_FILE``: the user's own prices (negotiated rates, self-hosted models).

The file overrides ``genai-prices``. It is TOML (or JSON with the same shape) holding a list of
``price`` entries, tried in file order; the first entry that matches a call prices it::

    [[price]]
    provider = "openai"              # optional: gen_ai.provider.name, glob; absent or "*" = any
    model = "gpt-4o*"                # required: glob on the model name, case-insensitive
    api_base_url = "http://gpu-*"    # optional: glob on the client's base URL
    input_per_mtok = 2.0             # required: USD per million input tokens
    output_per_mtok = 8.0            # required: USD per million output tokens
    cache_read_per_mtok = 1.0        # optional (default: input_per_mtok)
    cache_write_per_mtok = 2.5       # optional (default: input_per_mtok)
    reasoning_per_mtok = 8.0         # optional (default: output_per_mtok)

JSON: ``{"price": [{"model": "gpt-4o*", "input_per_mtok": 2.0, "output_per_mtok": 8.0}]}``.
A bad file raises :class:`~genops_autoinstrument.config.ConfigError` naming the line (TOML syntax)
or the entry and key, so ``genops-run`` stops before the application starts. So does a file that
is not a regular file (checked before it is opened: a FIFO must not block the start), larger than
:data:`MAX_BYTES`, not UTF-8, or nested too deeply to parse. A large file is parsed once: its
validated entries are remembered (see ``pricing_cache``) and matched through an index of literal
model names, so 200,000 entries cost neither seconds at every start nor a regex per entry.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from decimal import Decimal
from heapq import merge
from typing import Any, Iterable, Pattern, Sequence

from genops_autoinstrument.config import pricing_cache
from genops_autoinstrument.config.errors import ConfigError
from genops_autoinstrument.config.parsers import file_kind, parse_existing_file
from genops_autoinstrument.config.plain_toml import read_plain_toml

VARIABLE = "GENOPS_PRICING_FILE"
MAX_BYTES = 64 * 1024 * 1024  # about 800,000 entries: far more than any price list, far less than memory
ACCEPTED = (
    "a TOML or JSON file of [[price]] entries with model (glob), input_per_mtok and output_per_mtok "
    "(USD per million tokens, >= 0) and optionally provider, api_base_url, cache_read_per_mtok, "
    "cache_write_per_mtok, reasoning_per_mtok"
)
FILE_ACCEPTED = "a regular UTF-8 .toml or .json file of at most 64 MiB"
PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok", "reasoning_per_mtok")
MATCH_KEYS = ("provider", "model", "api_base_url")
ALLOWED_KEYS = MATCH_KEYS + PRICE_KEYS
REQUIRED_KEYS = ("model", "input_per_mtok", "output_per_mtok")
_GLOB_CHAR = re.compile(r"[*?\[]")

__all__ = ["PricingEntry", "PricingTable", "load_pricing_file", "parse_pricing_file"]

# One validated entry as plain data (what the cache stores): model, provider, api_base_url, then
# the five prices as decimal strings (defaults already applied).
Row = tuple


@dataclass(frozen=True)
class PricingEntry:
    """One ``[[price]]`` entry; prices are exact decimals in USD per million tokens."""

    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    reasoning_per_mtok: Decimal
    provider: str | None = None
    api_base_url: str | None = None
    index: int = 0  # 1-based position in the file, for messages

    def _patterns(self) -> tuple[Pattern[str], Pattern[str] | None, Pattern[str] | None]:
        """Compiled on first use: compiling 200,000 globs up front took over 20 s."""
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = (
                _glob(self.model),
                _glob(self.provider) if self.provider not in (None, "*") else None,
                _glob(self.api_base_url) if self.api_base_url is not None else None,
            )
            object.__setattr__(self, "_compiled", compiled)
        return compiled

    def matches(self, provider: str, model: str, api_base_url: str | None) -> bool:
        model_re, provider_re, url_re = self._patterns()
        if not model_re.match(model):
            return False
        if provider_re is not None and not provider_re.match(provider or ""):
            return False
        if url_re is not None and (api_base_url is None or not url_re.match(api_base_url)):
            return False
        return True


class PricingTable:
    """The entries of one pricing file, in file order (first match wins).

    Entries are built from their rows when first needed. ``find`` looks a literal (glob-free,
    ASCII) model pattern up in a dict and tests only the globs whose literal prefix the model
    starts with, merging both in file order, so the first matching entry is the same one a scan
    of every entry would find.
    """

    def __init__(self, path: str, rows: Sequence[Row]) -> None:
        self.path = path
        self._rows = rows
        self._built: dict[int, PricingEntry] = {}
        self._index: tuple[dict[str, list[int]], list[int], list[str]] | None = None

    @property
    def entries(self) -> tuple[PricingEntry, ...]:
        return tuple(self._entry(position) for position in range(len(self._rows)))

    def _entry(self, position: int) -> PricingEntry:
        entry = self._built.get(position)
        if entry is None:
            model, provider, api_base_url, *prices = self._rows[position]
            entry = PricingEntry(model, *(Decimal(price) for price in prices), provider, api_base_url, position + 1)
            self._built[position] = entry
        return entry

    def _lookup_index(self) -> tuple[dict[str, list[int]], list[int], list[str]]:
        index = self._index
        if index is None:
            literal: dict[str, list[int]] = {}
            globs: list[int] = []
            prefixes: list[str] = []
            for position, row in enumerate(self._rows):
                pattern = row[0]
                if "*" in pattern or "?" in pattern or "[" in pattern or not pattern.isascii():
                    found = _GLOB_CHAR.search(pattern)
                    prefix = pattern[: found.start()] if found else ""
                    globs.append(position)
                    prefixes.append(prefix.lower() if prefix.isascii() else "")
                else:
                    literal.setdefault(pattern.lower(), []).append(position)
            index = self._index = (literal, globs, prefixes)
        return index

    def _candidates(self, model: str) -> Iterable[int]:
        if not model.isascii():  # case-insensitive matching beyond ASCII: test every entry
            return range(len(self._rows))
        literal, globs, prefixes = self._lookup_index()
        key = model.lower()
        possible = (position for position, prefix in zip(globs, prefixes) if key.startswith(prefix))
        return merge(literal.get(key, ()), possible)

    def find(self, provider: str, model: str, api_base_url: str | None = None) -> PricingEntry | None:
        for position in self._candidates(model):
            entry = self._entry(position)
            if entry.matches(provider, model, api_base_url):
                return entry
        return None


def _glob(pattern: str) -> Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _error(path: str, where: str, accepted: str = ACCEPTED) -> ConfigError:
    return ConfigError(VARIABLE, f"{path}: {where}", accepted)


def _regular(path: str, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise _error(path, f"is {file_kind(status.st_mode)}", FILE_ACCEPTED)
    if status.st_size > MAX_BYTES:
        raise _error(path, f"is {status.st_size} bytes, more than the limit of {MAX_BYTES} (64 MiB)", FILE_ACCEPTED)


def _stat(path: str) -> os.stat_result:
    """The file's status, refused unless it is a regular file within the size limit."""
    try:
        status = os.stat(path)
    except (OSError, ValueError) as error:
        raise _error(path, f"cannot be read ({error.__class__.__name__}: {error})", FILE_ACCEPTED) from None
    _regular(path, status)
    return status


def _read_text(path: str) -> tuple[str, os.stat_result]:
    """The file's text and status: checked before opening, opened without blocking, checked again."""
    _stat(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
        with open(descriptor, "rb", closefd=True) as handle:
            status = os.fstat(handle.fileno())
            _regular(path, status)  # replaced between the check and the open
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise _error(path, f"cannot be read ({error.__class__.__name__}: {error.strerror or error})", FILE_ACCEPTED) from None
    if len(data) > MAX_BYTES:
        raise _error(path, f"is more than the limit of {MAX_BYTES} bytes (64 MiB)", FILE_ACCEPTED)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _error(path, "is UTF-16 text", "the file saved as UTF-8 (" + FILE_ACCEPTED + ")")
    try:
        return data.decode("utf-8"), status
    except UnicodeDecodeError as error:
        where = f"is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        raise _error(path, where, FILE_ACCEPTED) from None


def _read_toml(path: str, text: str) -> Any:
    plain = read_plain_toml(text)  # the same values, several times faster, for plain generated files
    if plain is not None:
        return plain
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise _error(path, "TOML needs Python 3.11+ or the tomli package", "a .json pricing file, or install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Before Python 3.14 the position is only in the text: "… (at line L, column C)".
        message = str(error)
        found = re.match(r"(?s)(.*) \(at line (\d+), column (\d+)\)$", message)
        if found:
            message = f"line {found.group(2)}, column {found.group(3)}: {found.group(1)}"
        raise _error(path, message) from None


def _read_json(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _error(path, f"line {error.lineno}, column {error.colno}: {error.msg}") from None


def _parse_document(path: str, text: str, is_json: bool) -> Any:
    """The parsed document; failures of the parser itself are configuration errors too."""
    try:
        return _read_json(path, text) if is_json else _read_toml(path, text)
    except RecursionError:
        raise _error(path, "is nested too deeply to read") from None
    except MemoryError:
        raise _error(path, "needs more memory to read than this process has", FILE_ACCEPTED) from None
    except ConfigError:
        raise
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise _error(path, f"cannot be read ({error})") from None


def _entry_lines(text: str) -> list[int]:
    """1-based line numbers of the ``[[price]]`` headers of a TOML file (for messages)."""
    header = re.compile(r"^\s*\[\[\s*(?:price|\"price\")\s*\]\]")
    return [number for number, line in enumerate(text.splitlines(), 1) if header.match(line)]


def _key_line(text: str, start: int | None, key: str) -> int | None:
    """Line of ``key = …`` in the TOML entry that starts at line ``start``."""
    if start is None:
        return None
    assignment = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
    for number, line in enumerate(text.splitlines()[start:], start + 1):
        if re.match(r"^\s*\[", line):
            return None
        if assignment.match(line):
            return number
    return None


class _Problem(Exception):
    """What is wrong with one entry; the caller adds the file, the entry and its line."""

    def __init__(self, key: str | None, message: str, accepted: str = ACCEPTED) -> None:
        super().__init__(message)
        self.key, self.message, self.accepted = key, message, accepted


def _row(raw: Any) -> Row:
    """One entry as a validated row (prices as the decimal strings the file wrote)."""
    if not isinstance(raw, dict):
        raise _Problem(None, f"is a {type(raw).__name__}, not a table/object")
    for key in raw:
        if key not in ALLOWED_KEYS:
            raise _Problem(key, f"unknown key {key!r}", "only the keys " + ", ".join(ALLOWED_KEYS))
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise _Problem(None, f"missing key {key!r}", "every price entry to have " + ", ".join(REQUIRED_KEYS))
    for key in MATCH_KEYS:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise _Problem(key, f"{key} = {raw[key]!r}", f"{key} to be a non-empty string (a glob)")
    prices: dict[str, str] = {}
    for key in PRICE_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)) or value < 0:
            raise _Problem(key, f"{key} = {value!r}", f"{key} to be a number >= 0 (USD per million tokens)")
        prices[key] = str(value)
    provider, api_base_url = raw.get("provider"), raw.get("api_base_url")
    return (
        raw["model"].strip(),
        provider.strip() if provider is not None else None,
        api_base_url.strip() if api_base_url is not None else None,
        prices["input_per_mtok"],
        prices["output_per_mtok"],
        prices.get("cache_read_per_mtok", prices["input_per_mtok"]),
        prices.get("cache_write_per_mtok", prices["input_per_mtok"]),
        prices.get("reasoning_per_mtok", prices["output_per_mtok"]),
    )


def _place(index: int, key: str | None, text: str | None) -> str:
    """``price entry N (line L)``; line numbers are looked for only when there is an error to show."""
    lines = _entry_lines(text) if text is not None else []
    start = lines[index - 1] if index - 1 < len(lines) else None
    line = _key_line(text, start, key) if key is not None and text is not None else None
    line = line if line is not None else start
    return f"price entry {index}" + (f" (line {line})" if line is not None else "")


def _rows(path: str, text: str, is_json: bool) -> list[Row]:
    data = _parse_document(path, text, is_json)
    if not isinstance(data, dict):
        raise _error(path, f"the top level is a {type(data).__name__}, not an object with a \"price\" list")
    for key in data:
        if key != "price":
            raise _error(path, f"unknown top-level key {key!r}", "only a \"price\" list of entries at the top level")
    raw_entries = data.get("price", [])
    if not isinstance(raw_entries, list):
        raise _error(path, "\"price\" is not a list", "[[price]] tables (TOML) or a \"price\" array (JSON)")
    rows = []
    for index, raw in enumerate(raw_entries, 1):
        try:
            rows.append(_row(raw))
        except _Problem as problem:
            raise _error(path, f"{_place(index, problem.key, None if is_json else text)}: {problem.message}", problem.accepted) from None
    return rows


def load_pricing_file(path: str) -> PricingTable:
    """Read and validate a pricing file; raise ConfigError naming the line, entry or key at fault."""
    rows = pricing_cache.rows(path, _stat(path))
    if rows is None:
        text, status = _read_text(path)
        rows = _rows(path, text, path.lower().endswith(".json"))
        pricing_cache.remember(path, status, rows)
    return PricingTable(os.path.abspath(path), rows)


def parse_pricing_file(variable: str, raw: str) -> str | None:
    """A ``config.Variable`` parser: the path must exist *and* hold a valid pricing file (a large
    file validated before, unchanged since, is not read again)."""
    path = parse_existing_file(variable, raw)
    if path is not None and not pricing_cache.known(path, _stat(path)):
        load_pricing_file(path)
    return path
