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
or the entry and key, so ``genops-run`` stops before the application starts.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Pattern

from genops_autoinstrument.config.errors import ConfigError
from genops_autoinstrument.config.parsers import parse_existing_file

VARIABLE = "GENOPS_PRICING_FILE"
ACCEPTED = (
    "a TOML or JSON file of [[price]] entries with model (glob), input_per_mtok and output_per_mtok "
    "(USD per million tokens, >= 0) and optionally provider, api_base_url, cache_read_per_mtok, "
    "cache_write_per_mtok, reasoning_per_mtok"
)
PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok", "reasoning_per_mtok")
MATCH_KEYS = ("provider", "model", "api_base_url")
ALLOWED_KEYS = MATCH_KEYS + PRICE_KEYS
REQUIRED_KEYS = ("model", "input_per_mtok", "output_per_mtok")

__all__ = ["PricingEntry", "PricingTable", "load_pricing_file", "parse_pricing_file"]


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_model_re", _glob(self.model))
        object.__setattr__(self, "_provider_re", _glob(self.provider) if self.provider not in (None, "*") else None)
        object.__setattr__(self, "_url_re", _glob(self.api_base_url) if self.api_base_url is not None else None)

    def matches(self, provider: str, model: str, api_base_url: str | None) -> bool:
        if not self._model_re.match(model):  # type: ignore[attr-defined]
            return False
        provider_re: Pattern[str] | None = self._provider_re  # type: ignore[attr-defined]
        if provider_re is not None and not provider_re.match(provider or ""):
            return False
        url_re: Pattern[str] | None = self._url_re  # type: ignore[attr-defined]
        if url_re is not None and (api_base_url is None or not url_re.match(api_base_url)):
            return False
        return True


@dataclass(frozen=True)
class PricingTable:
    """The entries of one pricing file, in file order (first match wins)."""

    path: str
    entries: tuple[PricingEntry, ...]

    def find(self, provider: str, model: str, api_base_url: str | None = None) -> PricingEntry | None:
        for entry in self.entries:
            if entry.matches(provider, model, api_base_url):
                return entry
        return None


def _glob(pattern: str) -> Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _error(path: str, where: str, accepted: str = ACCEPTED) -> ConfigError:
    return ConfigError(VARIABLE, f"{path}: {where}", accepted)


def _read_toml(path: str, text: str) -> Any:
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


def _parse_entry(path: str, index: int, raw: Any, text: str | None, lines: list[int]) -> PricingEntry:
    start = lines[index - 1] if text is not None and index - 1 < len(lines) else None

    def where(key: str | None = None) -> str:
        place = f"price entry {index}"
        line = _key_line(text, start, key) if key is not None and text is not None else None
        if line is not None:
            place += f" (line {line})"
        elif start is not None:
            place += f" (line {start})"
        return place

    if not isinstance(raw, dict):
        raise _error(path, f"{where()}: is a {type(raw).__name__}, not a table/object")
    for key in raw:
        if key not in ALLOWED_KEYS:
            raise _error(path, f"{where(key)}: unknown key {key!r}", "only the keys " + ", ".join(ALLOWED_KEYS))
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise _error(path, f"{where()}: missing key {key!r}", "every price entry to have " + ", ".join(REQUIRED_KEYS))
    for key in MATCH_KEYS:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise _error(path, f"{where(key)}: {key} = {raw[key]!r}", f"{key} to be a non-empty string (a glob)")
    prices: dict[str, Decimal] = {}
    for key in PRICE_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _error(path, f"{where(key)}: {key} = {value!r}", f"{key} to be a number >= 0 (USD per million tokens)")
        prices[key] = Decimal(str(value))
    return PricingEntry(
        model=raw["model"].strip(),
        input_per_mtok=prices["input_per_mtok"],
        output_per_mtok=prices["output_per_mtok"],
        cache_read_per_mtok=prices.get("cache_read_per_mtok", prices["input_per_mtok"]),
        cache_write_per_mtok=prices.get("cache_write_per_mtok", prices["input_per_mtok"]),
        reasoning_per_mtok=prices.get("reasoning_per_mtok", prices["output_per_mtok"]),
        provider=raw["provider"].strip() if "provider" in raw else None,
        api_base_url=raw["api_base_url"].strip() if "api_base_url" in raw else None,
        index=index,
    )


def load_pricing_file(path: str) -> PricingTable:
    """Read and validate a pricing file; raise ConfigError naming the line, entry or key at fault."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise _error(path, f"cannot be read ({error.__class__.__name__}: {error})") from None
    is_json = path.lower().endswith(".json")
    data = _read_json(path, text) if is_json else _read_toml(path, text)
    if not isinstance(data, dict):
        raise _error(path, f"the top level is a {type(data).__name__}, not an object with a \"price\" list")
    for key in data:
        if key != "price":
            raise _error(path, f"unknown top-level key {key!r}", "only a \"price\" list of entries at the top level")
    raw_entries = data.get("price", [])
    if not isinstance(raw_entries, list):
        raise _error(path, "\"price\" is not a list", "[[price]] tables (TOML) or a \"price\" array (JSON)")
    lines = [] if is_json else _entry_lines(text)
    entries = tuple(
        _parse_entry(path, index, raw, None if is_json else text, lines) for index, raw in enumerate(raw_entries, 1)
    )
    return PricingTable(os.path.abspath(path), entries)


def parse_pricing_file(variable: str, raw: str) -> str | None:
    """A ``config.Variable`` parser: the path must exist *and* hold a valid pricing file."""
    path = parse_existing_file(variable, raw)
    if path is not None:
        load_pricing_file(path)
    return path
