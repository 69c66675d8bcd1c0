#!/usr/bin/env bash
# Run each instrumentor's tests against the OLDEST SDK version its declared range allows (the
# newest is what .ci/test.sh installs, so the main suite covers it; --newest runs it here too).
#   bash .ci/sdk_versions.sh [--newest] [pytest arguments...]
#   SDK_PLUGINS="bedrock google_genai" bash .ci/sdk_versions.sh    (only those plugins)
#
# The range is read from each plugin's package.py `_instruments` (never hard-coded here); the
# versions come from the package index (`pip index versions`, else pip's "from versions" list),
# filtered with packaging's SpecifierSet (final releases only).
#
# Cost: one small "overlay" venv per (plugin, SDK version) instead of a full environment. It holds
# only the pinned SDK (and whatever older dependencies that version needs) and a .pth that adds
# the test venv's site-packages after its own, so the core, the plugins and the test tools come
# from .ci/test.sh's environment while the pinned SDK shadows the newer one. Overlays are kept in
# $SDK_VENVS and reused while the pin is the same.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=${TEST_VENV:-$root/.venv-test}
overlays=${SDK_VENVS:-${TMPDIR:-/tmp}/genops-sdk-venvs}
newest=0
if [ "${1-}" = "--newest" ]; then newest=1; shift; fi

if [ ! -x "$venv/bin/pytest" ]; then
    echo "setting up $venv with .ci/test.sh"
    TEST_VENV=$venv bash .ci/test.sh --collect-only -q >/dev/null
fi
base_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$overlays"

# One line per run: plugin, distribution, requirement, which end, version.
plan=$("$venv/bin/python" - "$newest" "${SDK_PLUGINS-}" <<'PY'
import ast, importlib.metadata, re, subprocess, sys
from pathlib import Path
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

def declared(package_py: Path) -> tuple[str, ...]:
    """`_instruments` from package.py, read without importing the plugin."""
    for node in ast.parse(package_py.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(target, ast.Name) and target.id == "_instruments" for target in targets):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit(f"error: {package_py} declares no _instruments")

def index_versions(name: str) -> list[Version]:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    out = subprocess.run(pip + ["index", "versions", name], capture_output=True, text=True).stdout
    match = re.search(r"Available versions: (.*)", out)
    if match is None:  # older pip: the resolver's error lists every version
        err = subprocess.run(pip + ["download", "--no-deps", "-q", "-d", "/nonexistent", f"{name}==0+none"], capture_output=True, text=True).stderr
        match = re.search(r"\(from versions: (.*?)\)", err)
    versions = []
    for text in (match.group(1).split(",") if match else ()):
        try:
            versions.append(Version(text.strip()))
        except InvalidVersion:
            pass
    return versions

newest = sys.argv[1] == "1"
only = sys.argv[2].split()
for folder in sorted(Path("instrumentors").iterdir()):
    if folder.name.startswith("_") or not (folder / "pyproject.toml").is_file() or (only and folder.name not in only):
        continue
    files = sorted(folder.glob("genops_instrumentation_*/package.py"))
    if not files:
        raise SystemExit(f"error: {folder} has no genops_instrumentation_*/package.py")
    for text in declared(files[0]):
        requirement = Requirement(text)
        inside = sorted(v for v in index_versions(requirement.name) if not v.is_prerelease and requirement.specifier.contains(v))
        if not inside:
            raise SystemExit(f"error: no released {requirement.name} satisfies {folder.name}'s range {text!r}")
        try:  # the oldest is what the main run installs already: that run covers it
            installed = Version(importlib.metadata.version(requirement.name))
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed == inside[0] and not newest:
            print(f"== {folder.name}: {requirement.name} {installed} is both the oldest of {text} and what .ci/test.sh installs: covered by the main run", file=sys.stderr)
            continue
        print(folder.name, requirement.name, text.replace(" ", ""), "oldest", inside[0])
        if newest and inside[-1] != inside[0]:
            print(folder.name, requirement.name, text.replace(" ", ""), "newest", inside[-1])
PY
)

results=()
failed=0
while read -r plugin dist range end version; do
    [ -n "$plugin" ] || continue
    overlay="$overlays/$plugin-$dist-$version"
    if [ ! -f "$overlay/.pinned" ] || [ "$(cat "$overlay/.pinned")" != "$dist==$version $base_site" ]; then
        echo "== $plugin: preparing $dist==$version ($end of $range) in $overlay"
        rm -rf "$overlay"
        "$venv/bin/python" -m venv "$overlay"
        site=$("$overlay/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        # Processed after the overlay's own packages: the pinned SDK shadows the test venv's.
        echo "import site; site.addsitedir('$base_site')" >"$site/zz_genops_test_venv.pth"
        cp "$venv/bin/genops-run" "$overlay/bin/"  # finds this overlay's python3 next to itself
        "$overlay/bin/python" -m pip install -q --disable-pip-version-check "$dist==$version"
        echo "$dist==$version $base_site" >"$overlay/.pinned"
    fi
    seen=$("$overlay/bin/python" -c "import importlib.metadata as m; print(m.version('$dist'))")
    if [ "$seen" != "$version" ]; then
        echo "error: $overlay resolves $dist $seen, not $version" >&2
        exit 1
    fi
    echo "== $plugin: tests against $dist $version"
    log="$overlay/pytest.log"
    if "$overlay/bin/python" -m pytest -p no:cacheprovider -q "instrumentors/$plugin/tests" "$@" >"$log" 2>&1; then
        verdict="passed"
    else
        verdict="FAILED"
        failed=1
        tail -n 30 "$log"
    fi
    summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//' || true)
    results+=("$(printf '%-14s %-14s %-24s %-7s %-10s %-7s %s' "$plugin" "$dist" "$range" "$end" "$version" "$verdict" "$summary")")
done <<<"$plan"

echo
printf '%-14s %-14s %-24s %-7s %-10s %-7s %s\n' plugin sdk range end version result tests
for line in "${results[@]}"; do echo "$line"; done
[ "$newest" = 1 ] || echo "(newest: the versions .ci/test.sh installs; run with --newest to test them here too)"
exit $failed
