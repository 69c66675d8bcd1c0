"""The README documents every variable the project reads, and its first lines give the two commands."""

from __future__ import annotations

from pathlib import Path

from genops_autoinstrument import config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_variable_is_in_the_readme_table():
    missing = [variable.name for variable in config.VARIABLES if f"| `{variable.name}` |" not in README]
    assert not missing, f"add these to the README's variable table: {missing}"


def test_plugin_variables_are_documented():
    from genops_instrumentation_openai import OpenAIInstrumentor

    for name, *_ in OpenAIInstrumentor.environment_variables:
        assert f"| `{name}` |" in README


def test_readme_starts_with_the_demo_and_test_commands():
    head = README.split("\n## ", 1)[0]
    assert "bash examples/run_demo.sh" in head and "bash .ci/test.sh" in head
    assert "<" + "TODO" not in README and "_SECTION" not in README
