"""The plugin template is a working plugin: copied and renamed for a fake SDK, it records calls
in-process (sync, async, streams, native policy errors) and under a real `genops-run`."""

from __future__ import annotations

import ast
import asyncio
import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config
from genops_autoinstrument.api import Decision, PolicyViolation, semconv
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.governor import Governor, Ticket

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

TEMPLATE = Path(__file__).resolve().parents[1] / "instrumentors" / "_template"
# What a user replaces when copying the template, longest first.
NAMES = (("PROVIDERInstrumentor", "AcmeInstrumentor"), ("provider_sdk", "acme_sdk"), ("provider-sdk", "acme-sdk"), ("PROVIDER", "acme"))
MESSAGES = [{"role": "user", "content": "Say hello"}]

# The fake SDK the template's docstring describes; CALLS shows what reached the "network".
ACME_SDK = """
class APIError(Exception): pass
class RateLimitError(APIError): pass
class PermissionDeniedError(APIError): pass
"""
ACME_CLIENT = """
from types import SimpleNamespace as _Obj
CALLS = []

def _send(model, messages, max_tokens, stream):
    CALLS.append(model)
    usage = _Obj(input_tokens=7, output_tokens=5)
    if stream:
        return [_Obj(model=model, text="hel", usage=None), _Obj(model=model, text="lo", usage=usage)]
    return _Obj(model=model + "-2024", text="hello", usage=usage)

def _chunks(chunks):
    yield from chunks

async def _achunks(chunks):
    for chunk in chunks:
        yield chunk

class Client:
    base_url = "https://api.acme.test/v1"
    def create(self, *, model, messages, max_tokens=None, stream=False):
        response = _send(model, messages, max_tokens, stream)
        return _chunks(response) if stream else response

class AsyncClient:
    base_url = "https://api.acme.test/v1"
    async def create(self, *, model, messages, max_tokens=None, stream=False):
        response = _send(model, messages, max_tokens, stream)
        return _achunks(response) if stream else response
"""


def _render(text: str) -> str:
    for placeholder, name in NAMES:
        text = text.replace(placeholder, name)
    return text


@pytest.fixture
def acme_site(fake_site: Any) -> Any:
    """The template rendered as `genops-instrumentation-acme` beside the fake `acme-sdk` 1.0."""
    plugin = fake_site.root / "plugin"
    for source in TEMPLATE.rglob("*"):
        if source.is_file() and "__pycache__" not in source.parts:
            target = plugin / _render(str(source.relative_to(TEMPLATE)))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_render(source.read_text()))
    project = tomllib.loads((plugin / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    for package in packages:
        for module in (plugin / package).glob("*.py"):
            fake_site.module(f"{package}/{module.name}", module.read_text())
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["project"]["entry-points"].items()
    )
    instruments = project["project"]["optional-dependencies"]["instruments"]
    fake_site.dist(project["project"]["name"], project["project"]["version"], packages, entry_points, [f'{r}; extra == "instruments"' for r in instruments])
    fake_site.module("acme_sdk/__init__.py", ACME_SDK)
    fake_site.module("acme_sdk/client.py", ACME_CLIENT)
    fake_site.dist("acme-sdk", "1.0.0", ["acme_sdk"])
    return fake_site


@pytest.fixture
def acme(acme_site: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The rendered plugin instrumented in this process; the SDK imported after it (patched on import)."""
    monkeypatch.syspath_prepend(str(acme_site.site))
    plugin = importlib.import_module("genops_instrumentation_acme")
    instrumentor = plugin.AcmeInstrumentor()
    instrumentor.instrument()  # checks `acme-sdk >= 1, < 2` against the fake distribution
    try:
        yield SimpleNamespace(sdk=importlib.import_module("acme_sdk"), client=importlib.import_module("acme_sdk.client"))
    finally:
        instrumentor.uninstrument()
        for name in [name for name in sys.modules if name.split(".")[0] in ("acme_sdk", "genops_instrumentation_acme")]:
            del sys.modules[name]


def _create(acme: Any, mode: str, **kwargs: Any) -> Any:
    """One `create` through the sync or async client; a stream is read to its end."""
    if mode == "sync":
        result = acme.client.Client().create(**kwargs)
        return list(result) if kwargs.get("stream") else result

    async def run() -> Any:
        result = await acme.client.AsyncClient().create(**kwargs)
        return [chunk async for chunk in result] if kwargs.get("stream") else result

    return asyncio.run(run())


class _BudgetGovernor(Governor):
    """Blocks every call as an exhausted budget would."""

    active = True
    decision = Decision(result=semconv.RESULT_BLOCKED, policy_name="team-budget", reason_code=semconv.REASON_BUDGET_EXCEEDED, message="budget exhausted")

    def decide(self, request: Any, attribution: Any) -> Ticket:
        return Ticket(decision=self.decision)


def _imported(nodes: Any) -> list[str]:
    """The absolute module names imported by these AST nodes."""
    names: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or "")
    return names


def test_template_imports_only_the_plugin_kit_and_never_the_sdk_at_module_level():
    for source in (TEMPLATE / "genops_instrumentation_PROVIDER").glob("*.py"):
        tree = ast.parse(source.read_text())
        genops = [name for name in _imported(ast.walk(tree)) if name.split(".")[0] == "genops_autoinstrument"]
        assert all(name == "genops_autoinstrument.api" or name.startswith("genops_autoinstrument.api.") for name in genops), (source.name, genops)
        assert not [name for name in _imported(tree.body) if name.split(".")[0] == "provider_sdk"], source.name


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rendered_template_records_a_call(acme, mode):
    with capture(config.Settings()) as recorded:
        response = _create(acme, mode, model="acme-large", messages=MESSAGES, max_tokens=64)
    assert response.text == "hello" and acme.client.CALLS == ["acme-large"]
    (span,) = recorded.spans()
    assert span.name == "chat acme-large" and span.kind == SpanKind.CLIENT
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "acme"
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "acme-large-2024"
    assert (attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 5)
    assert (attributes[semconv.SERVER_ADDRESS], attributes[semconv.SERVER_PORT]) == ("api.acme.test", 443)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rendered_template_records_a_stream(acme, mode):
    with capture(config.Settings()) as recorded:
        chunks = _create(acme, mode, model="acme-large", messages=MESSAGES, stream=True)
    assert [chunk.text for chunk in chunks] == ["hel", "lo"]
    (span,) = recorded.spans()
    assert span.name == "chat acme-large"
    assert (span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 5)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_blocked_model_raises_the_sdks_error_before_sending(acme, mode):
    with capture(config.Settings(blocked_models=("acme-forbidden",))) as recorded:
        with pytest.raises(acme.sdk.PermissionDeniedError) as caught:
            _create(acme, mode, model="acme-forbidden", messages=MESSAGES)
    assert isinstance(caught.value, PolicyViolation) and isinstance(caught.value, acme.sdk.APIError)
    assert caught.value.reason_code == semconv.REASON_POLICY_DENY_MODEL
    assert acme.client.CALLS == []
    (span,) = recorded.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == semconv.REASON_POLICY_DENY_MODEL


def test_budget_block_raises_the_sdks_rate_limit_error(acme):
    with capture(config.Settings(), governor=_BudgetGovernor()):
        with pytest.raises(acme.sdk.RateLimitError) as caught:
            _create(acme, "sync", model="acme-large", messages=MESSAGES)
    assert isinstance(caught.value, PolicyViolation) and str(caught.value) == "budget exhausted"
    assert acme.client.CALLS == []


def _console_spans(stdout: str) -> list[dict]:
    """The ConsoleSpanExporter's JSON documents out of mixed output."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (start := stdout.find('{\n    "name"', index)) >= 0:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_rendered_template_under_genops_run(acme_site):
    check = acme_site.run("--check")
    assert "acme [genops] from genops-instrumentation-acme 0.1.0\n      supports: acme-sdk >= 1, < 2; installed: acme-sdk 1.0.0\n      will activate on import of acme_sdk\n" in check.stdout, check.stdout
    app = acme_site.app(
        """
        import acme_sdk.client
        client = acme_sdk.client.Client()
        print(client.create(model="acme-large", messages=[{"role": "user", "content": "hi"}]).text)
        try:
            client.create(model="acme-forbidden", messages=[])
        except acme_sdk.PermissionDeniedError as error:
            print("blocked", error.reason_code, acme_sdk.client.CALLS)
        """
    )
    env = acme_site.env(OTEL_TRACES_EXPORTER="console", GENOPS_BLOCKED_MODELS="acme-forbidden")
    result = acme_site.run("python", app, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"hello\nblocked {semconv.REASON_POLICY_DENY_MODEL} ['acme-large']\n"), result.stdout
    spans = {span["name"]: span for span in _console_spans(result.stdout)}
    assert set(spans) == {"chat acme-large", "chat acme-forbidden"}
    recorded = spans["chat acme-large"]
    assert recorded["kind"] == "SpanKind.CLIENT" and recorded["attributes"][semconv.GEN_AI_PROVIDER_NAME] == "acme"
    assert (recorded["attributes"]["gen_ai.usage.input_tokens"], recorded["attributes"]["gen_ai.usage.output_tokens"]) == (7, 5)
    assert spans["chat acme-forbidden"]["status"]["status_code"] == "ERROR"


def test_a_plugin_scope_that_fails_never_reaches_the_application():
    """The kit guards a plugin's scope: failing to enter or leave it is logged, the SDK call runs
    and the application gets its result or its own exception unchanged."""
    import contextlib

    from genops_autoinstrument.api import CallRequest, Prepared, RecordedMethod

    calls = []

    @contextlib.contextmanager
    def broken_on_exit(call, prepared):
        yield
        raise RuntimeError("plugin bug on exit")

    class BrokenOnEnter:
        def __enter__(self):
            raise RuntimeError("plugin bug on enter")

        def __exit__(self, *exc):
            calls.append("exit must not run")

    def prepare(instance, args, kwargs):
        return Prepared(CallRequest("acme", "chat", "acme-large"))

    def read(call, result, prepared, is_async):
        call.finish()
        return result

    def sdk_method(*args, **kwargs):
        calls.append("sent")
        return "answer"

    def failing_sdk_method(*args, **kwargs):
        raise ValueError("the SDK's own error")

    with capture(config.Settings()) as recorded:
        for scope in (broken_on_exit, lambda call, prepared: BrokenOnEnter()):
            method = RecordedMethod("acme test", prepare, read, scope)
            assert method.sync(sdk_method, None, (), {}) == "answer"
            with pytest.raises(ValueError, match="the SDK's own error"):
                method.sync(failing_sdk_method, None, (), {})
        spans = recorded.spans()
    assert calls == ["sent", "sent"]
    assert [span.status.status_code for span in spans] == [StatusCode.UNSET, StatusCode.ERROR] * 2
