#!/usr/bin/env bash
# The conformance job (issue 13): the SDKs' own test suites, taken from their released sources, run
# twice in one environment, bare and under `genops-run`; the job fails when any test ends otherwise
# under GenOps than bare. See docs-drafts/conformance.md.
#   bash .ci/conformance/run.sh
# Settings (environment): CONFORMANCE_SUITES ("openai anthropic google-genai"), CONFORMANCE_WORKERS
# (pytest-xdist workers, 2), CONFORMANCE_VENV (.venv-conformance), CONFORMANCE_PYTHON (python3),
# CONFORMANCE_SUITE_TIMEOUT (seconds per pytest run, 1200).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/.ci/conformance"
cd "$root"
python=${CONFORMANCE_PYTHON:-python3}
venv=${CONFORMANCE_VENV:-$root/.venv-conformance}
work="$venv/work"
results="$work/results"
workers=${CONFORMANCE_WORKERS:-2}
suites=${CONFORMANCE_SUITES:-openai anthropic google-genai}
limit=${CONFORMANCE_SUITE_TIMEOUT:-1200}
started=$SECONDS

# --- One environment: the tests' tooling (pinned), the SDKs (newest of each plugin's range, as
# .ci/test.sh installs them), and the core and plugins built from this tree.
echo "conformance: setting up $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
printf '*\n' >"$venv/.gitignore"
plugins=() instruments=()
for plugin in instrumentors/*/; do
    [ -f "$plugin/pyproject.toml" ] || continue
    case "$plugin" in instrumentors/_template/) continue ;; esac
    plugins+=("./${plugin%/}")
    case "$plugin" in  # the SDKs whose suites run come with their plugin's range; every other plugin is installed bare
        instrumentors/openai/|instrumentors/anthropic/|instrumentors/google_genai/) instruments+=("./${plugin%/}[instruments]") ;;
        *) instruments+=("./${plugin%/}") ;;
    esac
done
vpy="$venv/bin/python"
"$vpy" -m pip install -q --upgrade pip
"$vpy" -m pip install -q -r "$here/requirements.txt" . "${instruments[@]}"
# The project exactly as it is now, even where the environment holds a build of the same version.
"$vpy" -m pip install -q --no-deps --force-reinstall . "${plugins[@]}"
site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PATH="$venv/bin:$PATH"
rm -rf "$results" && mkdir -p "$results" "$work/src"

# --- A local OTLP/HTTP collector for the instrumented runs (answers 200, counts what it gets).
rm -f "$results/sink.port"
"$vpy" "$here/otlp_sink.py" "$results/sink.port" "$results/sink.json" &
sink=$!
trap 'kill "$sink" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$results/sink.port" ] && break; sleep 0.1; done
port=$(cat "$results/sink.port")

# Set in both runs, so that `genops-run` is the only difference: what a user sets for GenOps.
common_env=(
    GENOPS_TEAM=conformance GENOPS_PROJECT=sdk-test-suites
    "GENOPS_BLOCKED_MODELS=conformance-blocked-model-*"
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$port" OTEL_SERVICE_NAME=sdk-test-suite
    # Export at exit rather than in the background: several SDK tests patch socket.connect to prove
    # their own code opens no connection, and a background exporter connecting at that moment
    # trips them at random (a user's setting too; GENOPS_EXIT_FLUSH_SECONDS bounds the exit).
    OTEL_BSP_SCHEDULE_DELAY=3600000 OTEL_BSP_MAX_QUEUE_SIZE=1000000 OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1000000
    OTEL_METRIC_EXPORT_INTERVAL=3600000 GENOPS_EXIT_FLUSH_SECONDS=10
)

version_of() { "$vpy" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }

# Sets: suite_dir (cwd of the runs), suite_paths (what pytest collects), suite_opts (its options),
# suite_env (extra variables).
prepare_suite() {
    local name=$1 version tree
    version=$(version_of "$name")
    [ -n "$version" ] || { echo "conformance: $name is not installed" >&2; return 1; }
    suite_env=()
    case "$name" in
        openai)
            tree=$("$vpy" "$here/sources.py" openai "$version" "$work/src" openai/openai-python)
            # tests/api_resources needs the Prism mock server (npm), outside this job.
            suite_dir=$tree suite_paths=(tests) suite_opts=(--ignore=tests/api_resources) ;;
        anthropic)
            tree=$("$vpy" "$here/sources.py" anthropic "$version" "$work/src" anthropics/anthropic-sdk-python)
            suite_dir=$tree suite_paths=(tests) suite_opts=(--ignore=tests/api_resources) ;;
        google-genai)
            # The release ships its tests inside the package; run the installed copy (checked equal to
            # the sdist's) from an empty directory, so that `google.genai` is the installed package.
            tree=$("$vpy" "$here/sources.py" google-genai "$version" "$work/src")
            diff -rq -x __pycache__ "$tree/google/genai/tests" "$site/google/genai/tests" >/dev/null || {
                echo "conformance: google-genai's installed tests differ from its sdist's" >&2; return 1; }
            mkdir -p "$work/genai-run" "$work/genai-replays"
            suite_dir="$work/genai-run"
            # Replay mode without recordings: the suite's API tests fail alike in both runs (they
            # need Google's recordings), its unit tests run; nothing reaches the network.
            suite_paths=("$site/google/genai/tests")
            suite_opts=(-c "$tree/pyproject.toml" --rootdir . -o consider_namespace_packages=true
                --mode replay --continue-on-collection-errors)
            suite_env=(GOOGLE_GENAI_REPLAYS_DIRECTORY="$work/genai-replays" GOOGLE_API_KEY=dummy-api-key
                GOOGLE_CLOUD_PROJECT=project-id GOOGLE_CLOUD_LOCATION=location) ;;
        *) echo "conformance: unknown suite $name" >&2; return 1 ;;
    esac
    echo "conformance: $name $version, tests from $tree"
}

# run_pass MODE XML [pytest arguments...]: one run of the prepared suite; MODE is bare or genops.
run_pass() {
    local mode=$1 xml=$2 prefix=()
    shift 2
    [ "$mode" = genops ] && prefix=(genops-run)
    rm -f "$xml"
    (cd "$suite_dir" && env "${common_env[@]}" "${suite_env[@]}" timeout "$limit" \
        "${prefix[@]}" python -m pytest -p no:cacheprovider -q --junitxml="$xml" "$@") \
        >"${xml%.xml}.log" 2>&1 || true
    [ -s "$xml" ] || echo "conformance: $mode run wrote no report (timed out or crashed): ${xml%.xml}.log" >&2
}

status=0
summary=()
for name in $suites; do
    prepare_suite "$name" || { status=1; summary+=("$name: not run"); continue; }
    out="$results/$name"
    for mode in bare genops; do
        echo "conformance: $name, $mode run"
        run_pass "$mode" "$out-$mode.xml" -n "$workers" "${suite_opts[@]}" "${suite_paths[@]}"
    done
    # A changed test runs again, alone, in both modes: a change that does not repeat is flaky.
    recheck=()
    if "$vpy" "$here/compare.py" --suite "$name" --bare "$out-bare.xml" --instrumented "$out-genops.xml" \
        --allow "$here/allowed-differences.txt" --nodeids-out "$out-changed.txt" --root "$suite_dir" \
        --root "$site" >/dev/null 2>&1; then :; fi
    if [ -s "$out-changed.txt" ]; then
        mapfile -t changed <"$out-changed.txt"
        echo "conformance: $name, ${#changed[@]} changed test(s) run again in both modes"
        for mode in bare genops; do
            run_pass "$mode" "$out-$mode-again.xml" -n 0 "${suite_opts[@]}" "${changed[@]}"
        done
        recheck=(--recheck-bare "$out-bare-again.xml" --recheck-instrumented "$out-genops-again.xml")
    fi
    set +e
    "$vpy" "$here/compare.py" --suite "$name" --bare "$out-bare.xml" --instrumented "$out-genops.xml" \
        --allow "$here/allowed-differences.txt" --root "$suite_dir" --root "$site" "${recheck[@]}" \
        | tee "$out-report.txt"
    verdict=${PIPESTATUS[0]}
    set -e
    [ "$verdict" = 0 ] || status=1
    summary+=("$(head -n 1 "$out-report.txt" | sed 's/^== //')")
done

kill "$sink" 2>/dev/null || true
wait "$sink" 2>/dev/null || true
echo
echo "=== conformance summary ($(( (SECONDS - started) / 60 )) min; reports in $results)"
printf '  %s\n' "${summary[@]}"
echo "  OTLP exports received from the genops-run runs: $(cat "$results/sink.json" 2>/dev/null || echo none)"
[ "$status" = 0 ] && echo "conformance: PASS" || echo "conformance: FAIL (tests above changed outcome under genops-run)"
exit "$status"
