"""Shared fixtures for the core tests: real subprocesses through `genops-run` with small fake
plugins and fake target libraries registered on a temporary path (real dist-info metadata, real
entry points), and an isolated start-up cache per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

VENV_BIN = Path(sys.executable).parent


def genops_run_path() -> str:
    """The installed launcher script (the POSIX one when installed from a wheel)."""
    candidate = VENV_BIN / "genops-run"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("genops-run")
    if found is None:  # pragma: no cover - the test command installs the package first
        pytest.fail("genops-run is not installed; run the test command from the README")
    return found


# A fake SDK: records how often it executed and whether it finished, so tests can see that the
# plugin ran once, after the module completed.
FAKESDK = '''
import os
EXECUTIONS = globals().get("EXECUTIONS", 0) + 1
class Client:
    def call(self, x):
        return x * 2
from . import client  # a submodule target
FULLY_LOADED = True
'''

FAKESDK_CLIENT = '''
class Session:
    def send(self):
        return "sent"
'''

FAKE_PLUGIN = '''
import os, sys
from genops_autoinstrument import GenOpsInstrumentor

def _log(line):
    path = os.environ.get("FAKE_PLUGIN_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\\n")

def _wrapper(wrapped, instance, args, kwargs):
    return ("patched", wrapped(*args, **kwargs))

class FakeInstrumentor(GenOpsInstrumentor):
    watched_modules = WATCHED
    def instrumentation_dependencies(self):
        return REQUIREMENTS
    def patch(self):
        import fakesdk
        if os.environ.get("FAKE_PLUGIN_RAISE") == "after-patching":
            self.wrap(fakesdk, "Client.call", _wrapper)
            raise RuntimeError("plugin exploded half-way")
        if os.environ.get("FAKE_PLUGIN_RAISE"):
            raise RuntimeError("plugin exploded")
        _log("patch loaded=%s executions=%s pid=%s" % (getattr(fakesdk, "FULLY_LOADED", False), fakesdk.EXECUTIONS, os.getpid()))
        self.wrap(fakesdk, "Client.call", _wrapper)
'''


class FakeSite:
    """A folder on PYTHONPATH with fake distributions (dist-info + entry points)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self.site.mkdir()
        self.log = root / "plugin.log"
        self.cache = root / "cache"
        self.launcher = genops_run_path()

    def dist(self, name: str, version: str, top_level: list[str], entry_points: str = "", requires: list[str] = ()) -> None:
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
        (info / "METADATA").write_text(metadata)
        (info / "top_level.txt").write_text("\n".join(top_level) + "\n")
        if entry_points:
            (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))

    def module(self, relative: str, source: str) -> Path:
        path = self.site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def fakesdk(self, version: str = "1.2.0") -> None:
        self.module("fakesdk/__init__.py", FAKESDK)
        self.module("fakesdk/client.py", FAKESDK_CLIENT)
        self.dist("fakesdk", version, ["fakesdk"])

    def plugin(self, name: str = "fake", package: str = "genops_fake_plugin", requirements: tuple[str, ...] = ("fakesdk >= 1.0, < 2",), watched: tuple[str, ...] = (), dist: str | None = None) -> None:
        source = FAKE_PLUGIN.replace("WATCHED", repr(tuple(watched))).replace("REQUIREMENTS", repr(tuple(requirements)))
        self.module(f"{package}/__init__.py", source)
        self.dist(
            dist or f"genops-{package.replace('_', '-')}",
            "0.1.0",
            [package],
            f"[genops_instrumentor]\n{name} = {package}:FakeInstrumentor\n",
            requires=[f'{requirement.replace(" ", "")}; extra == "instruments"' for requirement in requirements],
        )

    def env(self, **extra: str) -> dict[str, str]:
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "PYTHON"))}
        environ.update(
            PYTHONPATH=str(self.site),
            XDG_CACHE_HOME=str(self.cache),
            FAKE_PLUGIN_LOG=str(self.log),
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        environ.update(extra)
        return environ

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def run(self, *command: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120, launcher: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self.launcher, *command] if launcher else list(command)
        return subprocess.run(argv, env=env or self.env(), cwd=cwd or self.root, capture_output=True, text=True, timeout=timeout)

    def app(self, source: str, name: str = "app.py") -> str:
        path = self.root / name
        path.write_text(textwrap.dedent(source))
        return str(path)


@pytest.fixture
def fake_site(tmp_path: Path) -> FakeSite:
    site = FakeSite(tmp_path)
    site.fakesdk()
    site.plugin()
    return site


# --- a real redis-server, shared by the ledger suites ------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    return _free_port()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session (every suite shares it;
    each test that uses it flushes its database first). DEBUG is enabled so a test can stall it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed (apt-get install redis-server); Redis ledger tests need a real server")
    pytest.importorskip("redis", reason="the redis Python package is not installed (pip install 'genops-autoinstrument[redis]')")
    import redis

    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder), "--enable-debug-command", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with status {process.returncode}")
                time.sleep(0.025)
        else:
            pytest.fail("redis-server did not answer within 5 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
