"""Plugins, entry points and processes (checklist: Plugins 21-25, Processes 26 and 28)."""

from __future__ import annotations

import json
import sys

from genops_autoinstrument import config
from genops_autoinstrument.api.instrumentor import GenOpsInstrumentor, is_genops_wrapped
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.pricing.usage import Usage

# A plugin that records a GenAI call through the engine for every Client.call.
RECORDING_PLUGIN = '''
from genops_autoinstrument import GenOpsInstrumentor
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage

def _call(wrapped, instance, args, kwargs):
    call = begin_call(CallRequest(provider="fake", operation="chat", request_model=args[0]))
    with call:
        result = wrapped(*args, **kwargs)
    call.finish(response_model=args[0], usage=Usage(input_tokens=3, output_tokens=4))
    return result

class LlmInstrumentor(GenOpsInstrumentor):
    watched_modules = ("fakellm",)
    def instrumentation_dependencies(self):
        return ()
    def patch(self):
        self.wrap("fakellm", "Client.call", _call)
'''


def _llm_site(fake_site):
    fake_site.module("fakellm/__init__.py", "class Client:\n    def call(self, model):\n        return 'answer from ' + model\n")
    fake_site.dist("fakellm", "1.0", ["fakellm"])
    fake_site.module("genops_llm_plugin/__init__.py", RECORDING_PLUGIN)
    fake_site.dist("genops-llm-plugin", "0.1", ["genops_llm_plugin"], "[genops_instrumentor]\nllm = genops_llm_plugin:LlmInstrumentor\n")
    return fake_site


def _console_spans(stdout: str) -> list[dict]:
    """Parse the ConsoleSpanExporter's JSON documents out of mixed output."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while True:
        start = stdout.find('{\n    "name"', index)
        if start < 0:
            return spans
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)


def test_broken_plugins_are_skipped_with_one_warning_each(fake_site):
    fake_site.module("genops_broken_plugin/__init__.py", "raise ImportError('missing dependency of the plugin')\n")
    fake_site.dist("genops-broken-plugin", "0.1", ["genops_broken_plugin"], "[genops_instrumentor]\nbroken = genops_broken_plugin:Plugin\n")
    fake_site.dist("genops-typo-plugin", "0.1", [], "[genops_instrumentor]\ntypo = genops_no_such_module:Plugin\n")
    app = fake_site.app("import fakesdk; print(fakesdk.Client().call(1))")
    result = fake_site.run("python", app)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('patched', 2)"
    assert "Traceback" not in result.stderr
    check = fake_site.run("--check")
    assert "broken [genops]" in check.stdout and "skipped: broken (ImportError: missing dependency of the plugin)" in check.stdout
    assert "typo [genops]" in check.stdout and "ModuleNotFoundError" in check.stdout


def test_plugin_whose_target_is_missing_is_never_imported(fake_site):
    fake_site.plugin(name="ghost", package="genops_ghost_plugin", requirements=("ghostsdk >= 1",))
    app = fake_site.app("import sys, fakesdk; print(fakesdk.Client().call(1), 'genops_ghost_plugin' in sys.modules, 'genops_fake_plugin' in sys.modules)")
    first = fake_site.run("python", app)
    second = fake_site.run("python", app)
    assert first.stdout == second.stdout == "('patched', 2) False True\n", first.stderr


def test_unused_plugin_costs_no_import(fake_site):
    app = fake_site.app("import sys; print('genops_fake_plugin' in sys.modules, 'fakesdk' in sys.modules, 'opentelemetry' in sys.modules)")
    fake_site.run("python", app)
    assert fake_site.run("python", app).stdout == "False False False\n"


def test_unsupported_target_version_is_one_warning_line(fake_site):
    fake_site.plugin(name="fake", requirements=("fakesdk >= 5",))
    result = fake_site.run("python", fake_site.app("import fakesdk; print(fakesdk.Client().call(1))"))
    assert result.returncode == 0
    assert result.stdout.strip() == "2"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genops: WARNING: plugin fake") and "fakesdk >= 5" in lines[0] and "1.2.0" in lines[0]


def test_activation_by_two_launchers_wraps_once(fake_site):
    app = fake_site.app(
        """
        import fakesdk
        from genops_fake_plugin import FakeInstrumentor
        FakeInstrumentor().instrument()   # as opentelemetry-instrument or the application would
        from genops_autoinstrument.api.instrumentor import is_genops_wrapped
        call = fakesdk.Client.__dict__["call"]
        print(fakesdk.Client().call(1), is_genops_wrapped(call), is_genops_wrapped(call.__wrapped__))
        """
    )
    assert fake_site.run("python", app).stdout == "('patched', 2) True False\n"


def test_two_plugins_for_one_library_record_one_span_and_one_cost():
    class Target:
        def call(self, model):
            return model.upper()

    def recording(wrapped, instance, args, kwargs):
        call = begin_call(CallRequest(provider="fake", operation="chat", request_model=args[0]))
        with call:
            result = wrapped(*args, **kwargs)
        call.finish(usage=Usage(input_tokens=1, output_tokens=1))
        return result

    class First(GenOpsInstrumentor):
        def instrumentation_dependencies(self):
            return ()

        def patch(self):
            self.wrap(sys.modules[__name__], "Holder.Target.call", recording)

    class Second(First):
        pass

    global Holder

    class Holder:
        pass

    Holder.Target = Target
    with capture(config.Settings()) as recorded:
        First().instrument()
        Second().instrument()
        assert is_genops_wrapped(Target.__dict__["call"])
        assert Target().call("m") == "M"
        First().uninstrument()
        Second().uninstrument()
    assert len(recorded.spans()) == 1
    tokens = recorded.metrics()["gen_ai.client.token.usage"]
    assert sorted(point.count for _, point in tokens) == [1, 1]
    assert "call" in Target.__dict__ and not is_genops_wrapped(Target.__dict__["call"])


def test_fork_child_exports_its_own_spans_only(fake_site):
    _llm_site(fake_site)
    app = fake_site.app(
        """
        import os, sys, fakellm
        client = fakellm.Client()
        client.call("parent-model")          # buffered in the batch processor when we fork
        pid = os.fork()
        if pid == 0:
            client.call("child-model")
            sys.stdout.flush()
            os._exit(0) if os.environ.get("HARD_EXIT") else sys.exit(0)
        os.waitpid(pid, 0)
        """
    )
    result = fake_site.run("python", app, env=fake_site.env(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="60000"))
    assert result.returncode == 0, result.stderr
    models = sorted(span["attributes"]["gen_ai.request.model"] for span in _console_spans(result.stdout))
    assert models == ["child-model", "parent-model"]


def test_buffered_spans_are_flushed_at_normal_exit(fake_site):
    _llm_site(fake_site)
    app = fake_site.app("import fakellm; print(fakellm.Client().call('gpt-test'))")
    result = fake_site.run("python", app, env=fake_site.env(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="60000", GENOPS_TEAM="search"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("answer from gpt-test\n")
    (span,) = _console_spans(result.stdout)
    assert span["name"] == "chat gpt-test" and span["kind"] == "SpanKind.CLIENT"
    assert span["attributes"]["genops.team"] == "search"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 3


def test_exit_is_bounded_when_the_collector_is_unreachable(fake_site):
    _llm_site(fake_site)
    app = fake_site.app("import fakellm; print(fakellm.Client().call('gpt-test'))")
    env = fake_site.env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # discard port: nothing listens
        OTEL_EXPORTER_OTLP_TIMEOUT="120",
        GENOPS_EXIT_FLUSH_SECONDS="1",
    )
    # Without the bounded exit flush the exporter would retry for two minutes; the subprocess
    # timeout turns a hang into a failure.
    result = fake_site.run("python", app, env=env, timeout=60)
    assert result.returncode == 0
    assert result.stdout == "answer from gpt-test\n"


def _console_metric_points(stdout: str, metric_name: str) -> list[tuple[str, float]]:
    """(service.instance.id, value) of every exported data point of one metric."""
    decoder = json.JSONDecoder()
    points, index = [], 0
    while True:
        start = stdout.find('{\n    "resource_metrics"', index)
        if start < 0:
            return points
        document, index = decoder.raw_decode(stdout, start)
        for resource_metrics in document["resource_metrics"]:
            instance = resource_metrics["resource"]["attributes"].get("service.instance.id")
            for scope in resource_metrics["scope_metrics"]:
                for metric in scope["metrics"]:
                    if metric["name"] == metric_name:
                        points.extend((instance, point["value"]) for point in metric["data"]["data_points"])


def test_fork_child_never_exports_the_parents_metrics(fake_site):
    _llm_site(fake_site)
    app = fake_site.app(
        """
        import os, sys, fakellm
        client = fakellm.Client()
        client.call("parent-model")
        pid = os.fork()
        if pid == 0:
            client.call("child-model")
            client.call("child-model")
            sys.exit(0)
        os.waitpid(pid, 0)
        """
    )
    result = fake_site.run("python", app, env=fake_site.env(OTEL_METRICS_EXPORTER="console", OTEL_TRACES_EXPORTER="console"))
    assert result.returncode == 0, result.stderr
    points = _console_metric_points(result.stdout, "genops.cost.unpriced_calls")
    assert sorted(value for _, value in points) == [1, 2], points
    assert len({instance for instance, _ in points}) == 2, "each process has its own service.instance.id"
    spans = _console_spans(result.stdout)
    instances = {span["attributes"]["gen_ai.request.model"]: span["resource"]["attributes"]["service.instance.id"] for span in spans}
    assert instances["parent-model"] != instances["child-model"]
