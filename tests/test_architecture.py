"""The shape of the code, checked like behaviour: the layer contract and no repeated blocks.

`import-linter` reads the contracts in pyproject.toml (the core's layers; plugins import only
`genops_autoinstrument.api`); pylint's duplicate-code check finds any block of six lines or more
that production code (core and plugins) repeats. Both are in the `test` extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_layers_and_plugin_imports_follow_the_contract():
    result = _run(str(BIN / "lint-imports"), "--config", "pyproject.toml", "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_production_code_repeats_no_block_of_six_lines():
    plugins = sorted(str(path.relative_to(REPO)) for path in REPO.glob("instrumentors/*/genops_instrumentation_*") if (path / "__init__.py").is_file())
    assert len(plugins) >= 5, plugins  # the four providers and the template
    result = _run(
        sys.executable, "-m", "pylint", "--rcfile", "pyproject.toml", "--disable=all", "--enable=duplicate-code",
        "--score=n", "genops_autoinstrument", *plugins,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
