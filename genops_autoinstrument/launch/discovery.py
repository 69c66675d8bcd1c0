"""Plugin discovery from entry points, reading metadata only.

A scan imports each plugin's own module (to read what it watches and supports) but never its
target library. The result is cached by :mod:`genops_autoinstrument.launch.startup_cache`, so a normal start
does no scan at all.
"""

from __future__ import annotations

from typing import Any, Iterable

PLUGIN_GROUP = "genops_instrumentor"
OTEL_GROUP = "opentelemetry_instrumentor"


class PluginInfo:
    """What the bootstrap needs to know about one plugin, without importing it."""

    # The start-up cache stores these tuples: bootstrap.RECORD_LENGTH must follow a new slot.
    __slots__ = ("name", "value", "group", "dist", "dist_version", "watched", "requirements", "error", "variables", "conflicts")

    def __init__(
        self,
        name: str,
        value: str,
        group: str = PLUGIN_GROUP,
        dist: str = "",
        dist_version: str = "",
        watched: tuple[str, ...] = (),
        requirements: tuple[str, ...] = (),
        error: str = "",
        variables: tuple[tuple[str, str, Any, str], ...] = (),
        conflicts: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist
        self.dist_version = dist_version
        self.watched = watched
        self.requirements = requirements
        self.error = error
        self.variables = variables
        self.conflicts = conflicts  # (requirement, installed version) for each target out of range

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, slot) for slot in self.__slots__)

    @classmethod
    def from_tuple(cls, values: Iterable[Any]) -> "PluginInfo":
        return cls(*values)

    def __repr__(self) -> str:
        return f"PluginInfo({self.name!r}, {self.value!r}, watched={self.watched!r})"


# The standard library's importlib.metadata (3.10+) selects entry points by group; the
# importlib_metadata backport would add its own finder to the application's sys.meta_path.
def _entry_points(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def _metadata() -> Any:
    import importlib.metadata as metadata

    return metadata


def requirement_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def top_level_modules(distribution_name: str) -> tuple[str, ...]:
    """The importable top-level names a distribution installs (empty if it is not installed)."""
    metadata = _metadata()
    try:
        dist = metadata.distribution(distribution_name)
    except metadata.PackageNotFoundError:
        return ()
    text = dist.read_text("top_level.txt")
    if text:
        return tuple(sorted({line.strip() for line in text.splitlines() if line.strip() and not line.startswith("_")}))
    names: set[str] = set()
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.add(first.split(".", 1)[0])
        elif first.isidentifier():
            names.add(first)
    return tuple(sorted(name for name in names if not name.startswith("_")))


def installed_version(distribution_name: str) -> str | None:
    metadata = _metadata()
    try:
        return metadata.version(distribution_name)
    except metadata.PackageNotFoundError:
        return None


def scan(groups: Iterable[str] = (PLUGIN_GROUP,)) -> list[PluginInfo]:
    """Read every plugin's entry point and declarations. Never imports a target library."""
    found: list[PluginInfo] = []
    seen_values: set[str] = set()
    for group in groups:
        for entry_point in _entry_points(group):
            if entry_point.value in seen_values:
                continue  # a GenOps plugin also registered for opentelemetry-instrument
            seen_values.add(entry_point.value)
            dist = getattr(entry_point, "dist", None)
            info = PluginInfo(
                entry_point.name,
                entry_point.value,
                group,
                dist.metadata["Name"] if dist is not None else "",
                dist.version if dist is not None else "",
            )
            if group != PLUGIN_GROUP:
                _describe_from_metadata(info, dist)
                found.append(info)
                continue
            declared = _instruments_extra(dist)
            if declared and not any(installed_version(requirement_name(requirement)) for requirement in declared):
                # The target is not installed: describe the plugin from metadata, never import it.
                info.requirements = tuple(declared)
                found.append(info)
                continue
            try:
                plugin_class = entry_point.load()
                requirements = tuple(plugin_class().instrumentation_dependencies())
                watched = tuple(getattr(plugin_class, "watched_modules", ()) or ())
                if not watched:
                    modules: list[str] = []
                    for requirement in requirements:
                        modules.extend(top_level_modules(requirement_name(requirement)))
                    watched = tuple(dict.fromkeys(modules))
                info.requirements = requirements
                info.watched = watched
                info.variables = tuple(tuple(spec) for spec in getattr(plugin_class, "environment_variables", ()))
                info.conflicts = version_conflicts(requirements)
            except Exception as error:  # a broken plugin is reported, never fatal
                info.error = f"{type(error).__name__}: {error}"
            found.append(info)
    return found


def _instruments_extra(dist: Any) -> list[str]:
    """The requirements a distribution lists under its ``instruments`` extra (OpenTelemetry's convention)."""
    requirements: list[str] = []
    for requirement in (dist.requires or ()) if dist is not None else ():
        if "extra ==" in requirement and "instruments" in requirement.split("extra ==", 1)[1]:
            requirements.append(requirement.split(";", 1)[0].strip())
    return requirements


def _describe_from_metadata(info: PluginInfo, dist: Any) -> None:
    """OpenTelemetry contrib instrumentors often import their target at module level, so they are
    described from their ``instruments`` extra instead of being loaded."""
    requirements = _instruments_extra(dist)
    modules: list[str] = []
    for requirement in requirements:
        try:
            modules.extend(top_level_modules(requirement_name(requirement)))
        except Exception as error:
            info.error = f"{type(error).__name__}: {error}"
    info.requirements = tuple(requirements)
    info.watched = tuple(dict.fromkeys(modules))
    info.conflicts = version_conflicts(requirements)
    if not requirements:
        info.error = info.error or "declares no 'instruments' extra; not activated lazily"


def unsatisfied(requirements: Iterable[str]) -> str | None:
    """Why the installed targets do not satisfy ``requirements`` (None when they do)."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    conflict = get_dependency_conflicts(list(requirements))
    return str(conflict) if conflict is not None else None


def version_conflicts(requirements: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``(requirement, installed version)`` for each target installed at a version outside the
    plugin's range, read from installed metadata (the target is never imported), so that the
    bootstrap can decide at start-up, before an application imports its SDK lazily. A target that
    is not installed is no conflict: nothing can call it. Same test as activation's (OpenTelemetry's
    ``get_dependency_conflicts``), so the two never disagree."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: list[tuple[str, str]] = []
    for requirement in requirements:
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            continue  # reported by activation as a broken declaration
        version = installed_version(parsed.name)
        if version is None:
            continue
        try:
            inside = parsed.specifier.contains(version)
        except Exception:  # a version string that is not PEP 440: it cannot be known to fit
            inside = False
        if not inside:
            found.append((str(requirement), version))
    return tuple(found)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def unsupported_line(info: PluginInfo, governed: Iterable[str] = ()) -> str:
    """One sentence for a plugin whose SDK is installed outside its range, naming the configured
    rules its calls escape, e.g. ``anthropic 0.30.0 is outside genops-instrumentation-anthropic's
    range anthropic >= 1.0, < 3: its calls are not governed: GENOPS_BLOCKED_MODELS and
    GENOPS_BUDGETS do not apply to them``."""
    owner = info.dist or f"plugin {info.name!r}"
    parts = []
    for requirement, version in info.conflicts:
        try:
            name = requirement_name(requirement)
        except Exception:
            name = requirement
        parts.append(f"{name} {version} is outside {owner}'s range {requirement}")
    line = "; ".join(parts)
    rules = list(governed)
    if rules:
        return f"{line}: its calls are not governed: {_listed(rules)} do{'es' if len(rules) == 1 else ''} not apply to them"
    return f"{line}: its calls are not instrumented (no GenOps span, cost or policy)"
