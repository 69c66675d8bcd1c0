#!/usr/bin/env bash
# The whole test suite on the oldest and the newest Python this machine has (issue 13), each in a
# venv of its own (.venv-py3.X) set up by .ci/test.sh exactly as the main run is, with deprecation
# warnings raised from the project's own modules (genops_autoinstrument, the genops_instrumentation_*
# plugins) turned into errors: a deprecation there is fixed before the Python that removes it.
#   bash .ci/pythons.sh [pytest arguments...]        (default: -q)
#   PYTHONS_DRY_RUN=1 bash .ci/pythons.sh            (which Pythons, and the commands; runs nothing)
#   PYTHONS_PARALLEL=1 bash .ci/pythons.sh           (side by side; default: one Python after the other)
# Pythons are looked for in pyenv's versions and as python3.X on PATH; CPython only, from the
# oldest version pyproject.toml's requires-python allows.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -gt 0 ] || set -- -q

# The oldest minor version the project supports, from requires-python = ">=3.X".
oldest_supported=$(sed -n 's/^requires-python *= *">= *3\.\([0-9][0-9]*\).*/\1/p' pyproject.toml | head -n 1)
oldest_supported=${oldest_supported:-10}

# Every candidate interpreter: pyenv's versions, then python3.X on PATH.
candidates=()
pyenv_root=${PYENV_ROOT:-}
if [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null || true)
fi
pyenv_root=${pyenv_root:-$HOME/.pyenv}
for candidate in "$pyenv_root"/versions/*/bin/python3; do
    [ -x "$candidate" ] && candidates+=("$candidate")
done
for minor in $(seq "$oldest_supported" 30); do
    found=$(command -v "python3.$minor" 2>/dev/null) && candidates+=("$found")
done

# minor version -> interpreter (the newest patch release of each minor; CPython, not free-threaded).
declare -A by_minor=() patch_of=()
for candidate in "${candidates[@]}"; do
    info=$("$candidate" -c 'import sys, sysconfig
free = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
print(sys.implementation.name, sys.version_info[1], sys.version_info[2], int(free))' 2>/dev/null) || continue
    read -r implementation minor patch free <<<"$info"
    [ "$implementation" = cpython ] && [ "$free" = 0 ] && [ "$minor" -ge "$oldest_supported" ] || continue
    if [ -z "${by_minor[$minor]:-}" ] || [ "$patch" -gt "${patch_of[$minor]}" ]; then
        by_minor[$minor]=$candidate
        patch_of[$minor]=$patch
    fi
done

if [ ${#by_minor[@]} -eq 0 ]; then
    echo "error: no CPython 3.$oldest_supported or newer found (pyenv versions or python3.X on PATH)" >&2
    exit 1
fi
minors=$(printf '%s\n' "${!by_minor[@]}" | sort -n)
oldest=$(head -n 1 <<<"$minors")
newest=$(tail -n 1 <<<"$minors")
echo "Pythons found: $(for m in $minors; do printf '3.%s.%s ' "$m" "${patch_of[$m]}"; done)"
if [ "$oldest" != "$oldest_supported" ]; then
    echo "skipped: Python 3.$oldest_supported (the oldest the project supports) is not on this machine; the oldest run is on 3.$oldest"
fi
targets=("$oldest")
if [ "$newest" = "$oldest" ]; then
    echo "skipped: only one Python version (3.$oldest) is on this machine: no separate newest run"
else
    targets+=("$newest")
fi

# pytest's -W takes the module literally (genops_ would match only a module named "genops_"); the
# filterwarnings option takes it as a regular expression, matched from the start of the name. The
# project sets no filterwarnings of its own, so nothing is overridden.
deprecations="filterwarnings=error::DeprecationWarning:genops_"

# One Python after the other by default: two whole suites side by side on a 2-core machine load it
# enough to slow the subprocess-heavy tests down a lot (PYTHONS_PARALLEL=1 runs them side by side,
# each line prefixed with its version: about 17 min here, against 28 one after the other).
# Each run's output is kept, so that a failure's summary can be printed again at the very end.
run_one() {  # minor -> the run's exit status; says how long it took
    local minor=$1 python=${by_minor[$1]} start=$SECONDS status=0
    shift
    TEST_PYTHON=$python TEST_VENV="$root/.venv-py3.$minor" bash .ci/test.sh -o "$deprecations" -r fE "$@" 2>&1 | tee "$status_dir/$minor.log" || status=$?
    echo "=== Python 3.$minor: $([ "$status" = 0 ] && echo passed || echo FAILED) in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
    return "$status"
}
status_dir=$(mktemp -d)
trap 'rm -rf "$status_dir"' EXIT
for minor in "${targets[@]}"; do
    python=${by_minor[$minor]}
    echo "=== Python 3.$minor.${patch_of[$minor]} ($python): the whole suite, project deprecations as errors"
    if [ "${PYTHONS_DRY_RUN:-}" = 1 ]; then  # only say what would run
        echo "TEST_PYTHON=$python TEST_VENV=$root/.venv-py3.$minor bash .ci/test.sh -o '$deprecations' -r fE $*"
        continue
    fi
    if [ "${PYTHONS_PARALLEL:-0}" != 1 ]; then
        run_one "$minor" "$@"; echo $? >"$status_dir/$minor"
    else
        { run_one "$minor" "$@" 2>&1; echo $? >"$status_dir/$minor"; } | sed -u "s/^/[3.$minor] /" &
    fi
done
wait
failed=()
for minor in "${targets[@]}"; do
    [ "${PYTHONS_DRY_RUN:-}" = 1 ] || [ "$(cat "$status_dir/$minor" 2>/dev/null)" = 0 ] || failed+=("3.$minor")
done

if [ ${#failed[@]} -gt 0 ]; then
    for version in "${failed[@]}"; do  # what failed, again at the end (where a CI log's tail shows it)
        echo "=== Python $version: what failed"
        log="$status_dir/${version#3.}.log"
        grep -E '^(FAILED|ERROR)[ :]|^E  |^error|^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$log" | tail -n 60 \
            || tail -n 30 "$log"  # nothing pytest-shaped: a set-up step failed
    done
    echo "failed on Python ${failed[*]}" >&2
    exit 1
fi
if [ "${PYTHONS_DRY_RUN:-}" = 1 ]; then
    echo "dry run: nothing was run"
else
    echo "passed on Python $(printf '3.%s ' "${targets[@]}")"
fi
