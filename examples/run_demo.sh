#!/usr/bin/env bash
# The README demo: two unmodified OpenAI apps run under `genops-run` against a local stand-in
# for the OpenAI API, printing their spans (console exporter) and GenOps' cost summary.
#
#   python3 -m venv .venv && .venv/bin/pip install -e . -e 'instrumentors/openai[instruments]'
#   PATH=$PWD/.venv/bin:$PATH bash examples/run_demo.sh
#
# Any GENOPS_* / OTEL_* variable already set in the environment overrides the demo defaults.
set -euo pipefail

cd "$(dirname "$0")/.."                      # the repo root, wherever the script is called from
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"

if ! command -v genops-run >/dev/null 2>&1; then
    echo "run_demo.sh: genops-run is not on PATH. Install and retry:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install -e . -e 'instrumentors/openai[instruments]'" >&2
    echo "  PATH=\$PWD/.venv/bin:\$PATH bash examples/run_demo.sh" >&2
    exit 1
fi

if ! "$PYTHON" -c "import openai" >/dev/null 2>&1; then
    echo "run_demo.sh: the demo apps need the openai SDK: pip install openai  (or -e 'instrumentors/openai[instruments]')" >&2
    exit 1
fi

workdir="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The local endpoint, on a free port (it writes the port once it is listening).
"$PYTHON" examples/local_provider/server.py --port 0 --port-file "$workdir/port" >"$workdir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    [ -s "$workdir/port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run_demo.sh: the local endpoint failed to start:" >&2
        cat "$workdir/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ ! -s "$workdir/port" ]; then
    echo "run_demo.sh: the local endpoint did not start within 10s" >&2
    exit 1
fi
port="$(cat "$workdir/port")"
echo "== local OpenAI-compatible endpoint on http://127.0.0.1:$port/v1"

# 2. The apps, unchanged, configured the way any OpenAI app is, plus GenOps attribution.
export OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
export OPENAI_API_KEY="sk-demo"
export GENOPS_TEAM="${GENOPS_TEAM:-demo}"
export GENOPS_PROJECT="${GENOPS_PROJECT:-readme}"
export GENOPS_SUMMARY="${GENOPS_SUMMARY:-1}"
export GENOPS_PRICING_FILE="${GENOPS_PRICING_FILE:-examples/demo_prices.toml}"  # prices for the local server
export GENOPS_BUDGETS="${GENOPS_BUDGETS:-team=5/day}"
export GENOPS_LEDGER_URL="${GENOPS_LEDGER_URL:-memory://}"  # keep the demo's spend out of your real ledger
export OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-genops-demo}"
export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-console}"
export OTEL_METRICS_EXPORTER="${OTEL_METRICS_EXPORTER:-none}"
export OTEL_LOGS_EXPORTER="${OTEL_LOGS_EXPORTER:-none}"

for app in examples/openai_chat.py examples/openai_streaming.py; do
    echo
    echo "== genops-run $(basename "$PYTHON") $app"
    genops-run "$PYTHON" "$app"
done
