"""The start-up cache: discovered plugins and already-validated environments, per interpreter.

A normal start reads one small ``marshal`` file instead of scanning entry points (which imports
``importlib.metadata`` and every plugin module) and instead of re-validating an environment that
was valid before. The cache is keyed by everything that could change the answer: the interpreter,
the GenOps version, every ``sys.path`` entry and its modification time (installing or removing a
distribution changes its folder's), and, for validation, every ``GENOPS_*``/``OTEL_*`` variable and
the pricing file's size and time. Only ``os``, ``sys`` and builtins are used here.
"""

from __future__ import annotations

import marshal
import os
import sys


_FORMAT = 1
_MAX_ENVS = 32


def cache_dir() -> "str | None":
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: relative values are ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    # No HOME and no passwd entry: expanduser returns "~"; never write into the app's cwd.
    return os.path.join(base, "genops") if os.path.isabs(base) else None


def path_fingerprint(version: str) -> str:
    parts = [str(_FORMAT), version, sys.executable, sys.version]
    for entry in sys.path:
        try:
            stat = os.stat(entry or ".")
            parts.append(f"{entry}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_nlink}")
        except OSError:
            parts.append(f"{entry}\0-")
    return "\n".join(parts)


def env_fingerprint(environ: "Mapping[str, str] | None" = None) -> str:
    environ = os.environ if environ is None else environ
    items = sorted((key, value) for key, value in environ.items() if key.startswith(("GENOPS_", "OTEL_")))
    parts = [f"{key}={value}" for key, value in items]
    pricing = environ.get("GENOPS_PRICING_FILE")
    if pricing:
        try:
            stat = os.stat(pricing)
            parts.append(f"pricing\0{stat.st_size}\0{stat.st_mtime_ns}")
        except OSError:
            parts.append("pricing\0missing")
    # A digest, never the values: OTEL_EXPORTER_OTLP_HEADERS and GENOPS_LEDGER_URL carry credentials.
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover
        from hashlib import blake2b
    return blake2b("\n".join(parts).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def _file(version: str) -> "str | None":
    from zlib import crc32

    folder = cache_dir()
    if folder is None:
        return None
    key = crc32(f"{sys.executable}\0{version}".encode())
    return os.path.join(folder, f"boot-{key:08x}.marshal")


def load(version: str, paths: "str | None" = None) -> "dict | None":
    """The cached entry if it still matches this interpreter's paths, else None."""
    if os.environ.get("GENOPS_BOOT_CACHE", "").lower() in ("0", "false", "off", "no"):
        return None
    path = _file(version)
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("paths") != (paths or path_fingerprint(version)):
        return None
    return data


def store(version: str, plugins: list, valid_env: "str | None", previous: "dict | None" = None, paths: "str | None" = None) -> None:
    """Write the entry atomically; failures only cost the next start a scan."""
    if os.environ.get("GENOPS_BOOT_CACHE", "").lower() in ("0", "false", "off", "no"):
        return
    envs = list(previous.get("envs", ())) if previous else []
    if valid_env is not None and valid_env not in envs:
        envs = (envs + [valid_env])[-_MAX_ENVS:]
    # `paths` must be the fingerprint taken *before* the scan: one taken now could already include
    # a distribution installed while the scan ran, and would hide it until the next change.
    data = {"paths": paths or path_fingerprint(version), "plugins": plugins, "envs": envs}
    path = _file(version)
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            marshal.dump(data, handle)
        os.replace(temporary, path)
    except OSError:
        pass
