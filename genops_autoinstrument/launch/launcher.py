"""The Python launcher: ``python -m genops_autoinstrument`` and the options of ``genops-run``.

It validates the environment before anything starts (exit status 2 with one line naming the
variable), puts the bootstrap folder first on ``PYTHONPATH`` and replaces itself with the command
(``exec``: same PID, signals, streams and exit status). ``--check`` reports the configuration and
every discovered plugin without starting anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from genops_autoinstrument import __version__

USAGE = """\
usage: genops-run [--check | --version | --help] COMMAND [ARGS...]

Run COMMAND (usually `python app.py`, `python -m pkg`, `uvicorn …`, `gunicorn …`) with GenOps
AutoInstrument: every LLM call made through an instrumented SDK becomes an OpenTelemetry span and
metrics with cost, attribution and the policy decision; budgets and rules are enforced before the
request leaves the process. Configuration is environment variables only (GENOPS_*, OTEL_*).

options:
  --check     validate the environment, list the plugins and whether each will activate; exit 0 or 2
  --version   print the version and exit
  --help      show this message and exit

exit status: the command's own; 2 for an invalid configuration; 127 when COMMAND is not found.
"""

EXIT_CONFIG = 2
EXIT_NOT_FOUND = 127


def bootstrap_dir() -> Path:
    """The folder that holds only the bootstrap ``sitecustomize.py``."""
    package = Path(__file__).resolve().parent.parent  # genops_autoinstrument/
    for candidate in (package / "_bootstrap", package.parent / "sitecustomize"):
        if (candidate / "sitecustomize.py").is_file():
            return candidate
    raise FileNotFoundError("the GenOps bootstrap folder is missing from this installation")


def isolation_warning(command: list[str]) -> str | None:
    """Why Python will not load the bootstrap for this command line (-I, -E, -S), if it won't."""
    if not Path(command[0]).name.startswith(("python", "pypy")):
        return None
    arguments = iter(command[1:])
    for argument in arguments:
        if argument in ("-c", "-m", "--", "-") or not argument.startswith("-"):
            return None
        if argument in ("-W", "-X", "--check-hash-based-pycs"):
            next(arguments, None)
            continue
        if argument.startswith(("--", "-W", "-X")):
            continue
        if any(flag in argument[1:] for flag in "IES"):
            return f"'{argument}' makes Python ignore PYTHONPATH or site; GenOps instrumentation is off for this process"
    return None


def prepare_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    """Put the bootstrap folder first on PYTHONPATH (once)."""
    boot = str(bootstrap_dir())
    current = environ.get("PYTHONPATH", "")
    if current.split(os.pathsep)[0] != boot:  # first, even if a user's sitecustomize folder came before it
        environ["PYTHONPATH"] = boot + (os.pathsep + current if current else "")


def check() -> int:
    """``--check``: validate everything and describe every plugin; 0 when all is well, else 2."""
    from genops_autoinstrument import config
    from genops_autoinstrument.launch.bootstrap import governance_configured
    from genops_autoinstrument.launch.discovery import OTEL_GROUP, PLUGIN_GROUP, installed_version, requirement_name, scan, unsatisfied, unsupported_line

    status = 0
    print(f"GenOps AutoInstrument {__version__} ({sys.executable}, Python {sys.version.split()[0]})")
    plugins = scan([PLUGIN_GROUP, OTEL_GROUP])
    plugin_variables = tuple(spec for info in plugins for spec in info.variables)
    problems = []
    for variable in config.VARIABLES:
        try:
            config.read(variable.name)
        except config.ConfigError as error:
            problems.append(str(error))
    for spec in plugin_variables:
        try:
            config.read_plugin_variable(spec)
        except config.ConfigError as error:
            problems.append(str(error))
    settings = None
    warnings: list[str] = []
    if not problems:
        try:
            settings, warnings = config.validate(None, plugin_variables, tuple(info.name for info in plugins))
        except config.ConfigError as error:
            problems.append(str(error))
    if problems:
        status = EXIT_CONFIG
        print("configuration: INVALID")
        for problem in problems:
            print(f"  {problem}")
    else:
        print("configuration: ok")
        assert settings is not None
        if not settings.enabled:
            print("  GENOPS_ENABLED=false: genops-run will start commands without instrumentation")
        for warning in warnings:
            print(f"  warning: {warning}")
        if settings.otel_sdk_disabled:
            from genops_autoinstrument.launch.bootstrap import OTEL_SDK_DISABLED_WARNING

            print(f"  warning: {OTEL_SDK_DISABLED_WARNING}")
        lines, ledger_invalid = governance_report(settings)
        print("governance:")
        for line in lines:
            print(f"  {line}")
        if ledger_invalid:
            status = EXIT_CONFIG
    disabled = settings.disabled_instrumentations if settings else frozenset()
    contrib_enabled = settings.otel_instrumentors if settings else True
    owned = {module for info in plugins if info.group == PLUGIN_GROUP and info.name not in disabled for module in info.watched}
    print("plugins:" if plugins else "plugins: none installed (pip install genops-instrumentation-<provider>)")
    for info in plugins:
        kind = "genops" if info.group == PLUGIN_GROUP else "opentelemetry"
        target = ", ".join(info.requirements) or "?"
        versions = []
        for requirement in info.requirements:
            try:
                name = requirement_name(requirement)
            except Exception:
                continue
            versions.append(f"{name} {installed_version(name) or 'not installed'}")
        if info.error:
            verdict = f"skipped: broken ({info.error})"
        elif info.name in disabled:
            verdict = "skipped: disabled by configuration"
        elif info.group == OTEL_GROUP and not contrib_enabled:
            verdict = "skipped: GENOPS_OTEL_INSTRUMENTORS=false"
        elif info.group == OTEL_GROUP and owned.intersection(info.watched):
            verdict = "skipped: a GenOps plugin instruments the same library"
        elif not info.watched:
            verdict = "skipped: target not installed"
        elif info.conflicts and info.group == PLUGIN_GROUP:
            verdict = f"skipped: unsupported version: {unsupported_line(info, governance_configured(os.environ))}"
            if settings is not None and settings.enabled and settings.fail_mode == "closed":
                verdict += "\n      GENOPS_FAIL_MODE=closed: genops-run refuses to start programs here (or disable the plugin)"
                status = EXIT_CONFIG
        else:
            problem = unsatisfied(info.requirements)
            if problem and "not found" in problem.lower():
                verdict = "skipped: target not installed"
            elif problem:
                verdict = f"skipped: unsupported version ({problem})"
            else:
                verdict = "will activate on import of " + ", ".join(info.watched)
        print(f"  {info.name} [{kind}] from {info.dist or '?'} {info.dist_version}")
        print(f"      supports: {target}; installed: {', '.join(versions) or 'n/a'}")
        print(f"      {verdict}")
        for line in _described(info):
            print(f"      {line}")
        for name, kind, default, doc in info.variables:
            print(f"      variable {name} ({kind}, default {default}): {doc}")
    return status


def _described(info: Any) -> list[str]:
    """What a plugin says of itself beyond its targets (the wire layer: the protocols it
    recognises), from its class's optional ``describe()``; --check may import a plugin."""
    from genops_autoinstrument.launch.discovery import PLUGIN_GROUP

    if info.group != PLUGIN_GROUP or info.error:
        return []
    try:
        from genops_autoinstrument.launch.activation import _load

        describe = getattr(_load(info.value), "describe", None)
        facts = describe() if callable(describe) else None
    except Exception as error:  # a plugin that cannot describe itself is still listed
        return [f"(could not describe itself: {error!r})"]
    if not isinstance(facts, dict):
        return []
    lines = []
    if facts.get("clients"):
        lines.append("clients: " + ", ".join(map(str, facts["clients"])))
    for api, paths in (facts.get("protocols") or {}).items():
        lines.append(f"protocol {api}: " + ", ".join(map(str, paths)))
    return lines


_UNPRICED = {
    "warn": "run, with one warning per model naming the budget they escape",
    "block": "refused with the budget's error",
    "allow": "charged $0 (a budget does not hold for them)",
}


def governance_report(settings: "config.Settings") -> tuple[list[str], bool]:
    """What ``--check`` says about the rules, and the ledger reached once; True when the ledger
    answered that its setting is wrong."""
    rules = [f"GENOPS_BUDGETS={';'.join(rule.name + ('' if rule.mode == 'enforced' else ':' + rule.mode) for rule in settings.budgets)}"] if settings.budgets else []
    rules += [f"GENOPS_RATE_LIMITS={';'.join(rule.name for rule in settings.rate_limits)}"] if settings.rate_limits else []
    rules += [f"GENOPS_ALLOWED_MODELS={','.join(settings.allowed_models)}"] if settings.allowed_models else []
    rules += [f"GENOPS_BLOCKED_MODELS={','.join(settings.blocked_models)}"] if settings.blocked_models else []
    rules += [f"GENOPS_CONTENT_POLICY={settings.content_policy}"] if settings.content_policy != "off" else []
    lines = ["rules: " + ("; ".join(rules) if rules else "none configured")]
    lines.append(f"fail mode: {settings.fail_mode} (a ledger failure {'allows' if settings.fail_mode == 'open' else 'blocks'} the call)")
    lines.append(f"unpriced calls under a budget: GENOPS_UNPRICED_POLICY={settings.unpriced_policy} ({_UNPRICED[settings.unpriced_policy]})")
    trusted = ", ".join(sorted(settings.baggage_keys))
    lines.append(f"baggage: {trusted} trusted (an edge gateway must strip or overwrite them)" if trusted else "baggage: no attribution key is taken from baggage (GENOPS_BAGGAGE_KEYS)")
    if not (settings.budgets or settings.rate_limits):
        lines.append("ledger: not used (no budgets or rate limits)")
        return lines, False
    url = settings.ledger_url
    if url is None:
        try:
            from genops_autoinstrument.governance.ledger.sqlite_files import default_path

            url = "sqlite://" + default_path()
        except Exception as error:
            lines.append(f"ledger: the default SQLite file has no usable place: {error}")
            return lines, True
    from genops_autoinstrument.config.ledger_probe import probe_ledger

    probe = probe_ledger(url, settings.ledger_timeout_ms)
    verdict = {True: "answered", False: "INVALID" if probe.invalid else "NOT answering", None: "not reached"}[probe.answered]
    lines.append(f"ledger ({verdict}): {probe.line}")
    if probe.answered is False and not probe.invalid:
        lines.append(f"  until it answers, GENOPS_FAIL_MODE={settings.fail_mode} {'lets calls run unrecorded' if settings.fail_mode == 'open' else 'blocks every governed call'}")
    return lines, probe.invalid


def _see_pythonpath() -> None:
    """The POSIX launcher starts this one with ``-I`` (so the application's sitecustomize does not
    run here too); validation and discovery must still see what the program will see."""
    if sys.flags.isolated or sys.flags.ignore_environment:
        entries = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[1:1] = [entry for entry in entries if entry not in sys.path]


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `genops-run --check | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None = None) -> int:
    _see_pythonpath()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        sys.stderr.write(USAGE)
        return EXIT_CONFIG
    first = arguments[0]
    if first in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if first in ("-V", "--version"):
        print(f"genops-run {__version__}")
        return 0
    if first == "--check":
        return check()
    if first == "--":
        arguments = arguments[1:]
    elif first.startswith("-"):
        sys.stderr.write(f"genops-run: unknown option {first!r} (try --help)\n")
        return EXIT_CONFIG
    if not arguments:
        sys.stderr.write(USAGE)
        return EXIT_CONFIG

    from genops_autoinstrument import config
    from genops_autoinstrument.launch.discovery import OTEL_GROUP, PLUGIN_GROUP, scan

    try:
        plugins = scan([PLUGIN_GROUP, OTEL_GROUP])
        # Warnings (unknown GENOPS_* names) are left to the bootstrap of the Python process started
        # below, which validates too: printing them here as well would say everything twice.
        settings, _ = config.validate(None, tuple(spec for info in plugins for spec in info.variables), tuple(info.name for info in plugins))
    except config.ConfigError as error:
        sys.stderr.write(f"genops-run: {error}\n")
        return EXIT_CONFIG
    executable = shutil.which(arguments[0])
    if executable is None:
        sys.stderr.write(f"genops-run: command not found: {arguments[0]}\n")
        return EXIT_NOT_FOUND
    if settings.enabled:
        warning = isolation_warning(arguments)
        if warning:
            sys.stderr.write(f"genops-run: warning: {warning}\n")
        prepare_environment(os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(executable, arguments)
    except OSError as error:
        sys.stderr.write(f"genops-run: cannot run {arguments[0]}: {error.strerror}\n")
        return 126
    return 0  # pragma: no cover - exec does not return
