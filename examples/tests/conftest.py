"""Fixtures for the examples' tests: the local provider endpoint, in-process or as a subprocess,
and a framework example run under genops-run against it (framework_apps.py).

server.py and framework_apps.py are loaded by file path (tests run with --import-mode=importlib, and the examples
folder is not installed), exactly as the demo script runs it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SERVER_PY = EXAMPLES / "local_provider" / "server.py"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def server_module() -> Any:
    return _load("_examples_local_provider_server", SERVER_PY)


@pytest.fixture(scope="session")
def openai_routes() -> Any:
    return _load("_examples_local_provider_openai_routes", EXAMPLES / "local_provider" / "openai_routes.py")


@pytest.fixture(scope="session")
def local_provider(server_module: Any) -> Iterator[Any]:
    """One endpoint for the session (free port, background thread)."""
    with server_module.running() as server:
        yield server


@pytest.fixture()
def openai_client(local_provider: Any) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=local_provider.url + "/v1", api_key="sk-test", max_retries=0)


@pytest.fixture()
def app_env(local_provider: Any) -> dict[str, str]:
    """The environment an ordinary OpenAI app would run with, pointed at the local endpoint."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=local_provider.url + "/v1", OPENAI_API_KEY="sk-test", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def framework_apps() -> Any:
    """framework_apps.py: ``run_example``, ``ExampleRun``, ``assert_rolled_up``."""
    return _load("_examples_framework_apps", Path(__file__).resolve().parent / "framework_apps.py")


@pytest.fixture()
def run_example(framework_apps: Any, server_module: Any, openai_routes: Any, tmp_path: Path) -> Any:
    """``run_example(script, api=..., drop=..., variables=..., **env) -> ExampleRun`` (framework_apps.py)."""
    return functools.partial(framework_apps.run_example, server_module, openai_routes, tmp_path)
