#!/usr/bin/env bash
# Set up everything the test suites need on a fresh machine, then run the core's and every
# instrumentor's tests. The README's test command; .ci/run calls it too.
#   bash .ci/test.sh [pytest arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${TEST_PYTHON:-python3}
venv=${TEST_VENV:-$root/.venv-test}

# A real redis-server for the fleet-ledger tests (the test fixtures start and stop it).
if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing redis-server (apt-get)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "error: redis-server is not installed and cannot be installed here (needs root and apt-get)" >&2
        exit 1
    fi
fi

echo "setting up $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# The SDKs of some plugins need Python 3.11 in the plugin's range (langchain-core 1.8, haystack-ai 3.4,
# pydantic-ai-slim 2.78): on 3.10 such a plugin is installed without its SDK, and its tests skip saying so.
# langchain-mistralai is left out there too: it would bring langchain-core 1.7, out of that plugin's range,
# and a fail-closed run rightly refuses to start beside it.
py_minor=$("$python" -c 'import sys; print(sys.version_info[1])')
needs_311=(instrumentors/langchain/ instrumentors/haystack/ instrumentors/pydantic_ai/)
plugins=()
for plugin in instrumentors/*/; do
    [ -f "$plugin/pyproject.toml" ] || continue
    if [ "$py_minor" -lt 11 ] && [[ " ${needs_311[*]} " == *" $plugin "* ]]; then
        plugins+=("./${plugin%/}"); continue
    fi
    case "$plugin" in
        instrumentors/_template/) continue ;;
        # dspy's own requirements include litellm, whose published packages were compromised:
        # the DSPy plugin is tested with dspy installed without it (below).
        instrumentors/dspy/) plugins+=("./${plugin%/}"); continue ;;
        # crewai pins openai<3 and pydantic<2.13; the suite runs the newest of both (installed below).
        instrumentors/crewai/) plugins+=("./${plugin%/}"); continue ;;
    esac
    if grep -q '^instruments = ' "$plugin/pyproject.toml"; then
        plugins+=("./${plugin%/}[instruments]")
    else  # a plugin for any of several libraries (the wire layer): those the tests drive are installed below
        plugins+=("./${plugin%/}")
    fi
done
# Installed from wheels, not in editable mode: the tests exercise what users install.
# Beside them, what the tests drive: boto3 (the Bedrock example, Anthropic's Bedrock client),
# google-auth (Anthropic's Vertex client), real servers (FastAPI with its OpenTelemetry
# instrumentation for the zero-code baggage test), and the official OpenTelemetry OpenAI
# instrumentation (the double-counting tests; util-genai 1.3 broke its import, hence the pin).
"$venv/bin/python" -m pip install -q ".[test,redis,grpc]" "${plugins[@]}" \
    "boto3>=1.34,<2" "google-auth>=2.20,<3" "fastapi>=0.115,<1" "opentelemetry-instrumentation-fastapi>=0.60b0,<1" \
    "uvicorn>=0.30,<1" "gunicorn>=22,<28" "requests>=2.31,<3" \
    "langchain-core>=1.8,<2; python_version >= '3.11'" "langchain-openai>=1.8,<2; python_version >= '3.11'" "langchain>=1.5,<2; python_version >= '3.11'" \
    "aiohttp>=3.13,<4" "ollama>=0.6.3,<0.7" "cohere>=7.3,<8" "mistralai>=3.7,<4" "langchain-mistralai>=1.1.6,<2; python_version >= '3.11'" "pydantic-ai-slim[openai]>=2.78,<3; python_version >= '3.11'" "opentelemetry-instrumentation-openai-v2>=2.1b0,<3" "opentelemetry-util-genai==1.1b0"

# LlamaIndex's OpenAI connector pins openai<3 while the suite runs the newest openai (3.x), which
# its tests pass on: installed without its pins so the whole suite keeps one openai.
"$venv/bin/python" -m pip install -q --no-deps "llama-index-llms-openai==0.8.3"

# The GenAI utilities release that defines the shared inference-context key (1.3b0) breaks the
# official OpenAI instrumentation's import, which the suite also runs (hence 1.1b0 above): it is
# kept aside, for the counted-once tests that load it in a subprocess of their own.
"$venv/bin/python" -m pip install -q --no-deps --upgrade --target "$venv/extras/util-genai-1.3b0" "opentelemetry-util-genai==1.3b0"

# CrewAI without its pins (openai<3, pydantic<2.13: its OpenAI path works on the newest of both),
# and only what `import crewai` needs; never litellm (an optional extra of crewai).
"$venv/bin/python" -m pip install -q --no-deps "crewai==1.15.30" "crewai-core==1.15.30" "crewai-cli==1.15.30" \
    "appdirs==1.4.4" "jsonref==1.1.0" "portalocker==2.7.0" "pydantic-settings==2.16.3; python_version >= '3.11'" "pydantic-settings==2.15.0; python_version < '3.11'" "python-dotenv==1.2.4" \
    "chromadb==1.5.9" "overrides==7.7.0" "pybase64==1.5.1" "aiofiles==24.1.0" "tomli==2.0.2" "json5==0.10.0"

# DSPy without litellm: its default engine sends on sockets of its own and needs none of it.
"$venv/bin/python" -m pip install -q --no-deps "dspy==3.4.1"
"$venv/bin/python" -m pip install -q "regex>=2023.10.3" "orjson>=3.9" "tqdm>=4.66.1" "pyyaml>=6.0.1" "jsonschema>=4" \
    "diskcache>=5.6" "json-repair>=0.54.2" "tenacity>=8.2.3" "anyio>=4" "cachetools>=5.5" "cloudpickle>=3.1.2"
if "$venv/bin/python" -c "import litellm" 2>/dev/null; then
    echo "error: litellm is installed in $venv; the project must not depend on it" >&2
    exit 1
fi

# Every suite must be collected: the core's and each instrumentor's (on 3.10, those of the plugins
# above may instead be reported skipped, with their reason).
collected=$("$venv/bin/pytest" --collect-only -q -p no:cacheprovider 2>/dev/null | grep -E '::|^SKIPPED \[' || true)
for suite in tests examples "${plugins[@]}"; do
    suite=${suite#./}
    suite=${suite%\[instruments\]}
    found="^$suite/"
    if [ "$py_minor" -lt 11 ] && [[ " ${needs_311[*]} " == *" $suite/ "* ]]; then
        found="^($suite/|SKIPPED \[[0-9]+\] $suite/)"
    fi
    if ! grep -qE "$found" <<<"$collected"; then
        echo "error: pytest collected no test from $suite" >&2
        exit 1
    fi
done

cd "$root"
exec "$venv/bin/pytest" -p no:cacheprovider "$@"
