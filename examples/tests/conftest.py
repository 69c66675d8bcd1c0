"""Fixtures for the examples' tests: the local provider endpoint, in-process or as a subprocess.

server.py is loaded by file path (tests run with --import-mode=importlib, and the examples
folder is not installed), exactly as the demo script runs it.
"""

from __future__ import annotations

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
