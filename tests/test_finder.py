"""The import hook, in real processes started through `genops-run` (checklist: Finder 9-20)."""

from __future__ import annotations

import subprocess
import sys
import zipfile


def _ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_plugin_runs_once_after_the_module_finished_executing(fake_site):
    app = fake_site.app("import fakesdk, fakesdk.client; import fakesdk; print(fakesdk.Client().call(2))")
    assert _ok(fake_site.run("python", app)) == ["('patched', 4)"]
    lines = fake_site.log_lines()
    assert len(lines) == 1 and lines[0].startswith("patch loaded=True executions=1")


def test_already_imported_module_is_hooked_at_once():
    from genops_autoinstrument.launch.finder import WatchingFinder

    finder = WatchingFinder()
    seen = []
    finder.watch("json", seen.append)
    assert seen == [sys.modules["json"]]


def test_circular_import_never_shows_a_half_built_module(fake_site):
    fake_site.module(
        "fakesdk/__init__.py",
        """
        EXECUTIONS = 1
        from . import cycle   # imports fakesdk back while it is half-built
        class Client:
            def call(self, x):
                return x * 2
        FULLY_LOADED = True
        """,
    )
    fake_site.module("fakesdk/cycle.py", "import fakesdk\nHALF = not hasattr(fakesdk, 'Client')\n")
    app = fake_site.app("import fakesdk; print(fakesdk.cycle.HALF, fakesdk.Client().call(1))")
    assert _ok(fake_site.run("python", app)) == ["True ('patched', 2)"]
    assert fake_site.log_lines()[0].startswith("patch loaded=True")


def test_threads_importing_at_once_all_see_the_patched_module(fake_site):
    fake_site.module(
        "fakesdk/__init__.py",
        """
        import time
        EXECUTIONS = 1
        time.sleep(0.2)   # keep the import in progress while other threads arrive
        class Client:
            def call(self, x):
                return x * 2
        FULLY_LOADED = True
        """,
    )
    app = fake_site.app(
        """
        import threading
        results = []
        def work():
            import fakesdk
            results.append(fakesdk.Client().call(1))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print(sorted(set(map(str, results))), len(results))
        """
    )
    assert _ok(fake_site.run("python", app, timeout=60)) == ["[\"('patched', 2)\"] 8"]
    assert len(fake_site.log_lines()) == 1


def test_a_plugin_that_raises_leaves_the_import_working(fake_site):
    app = fake_site.app("import fakesdk; import fakesdk; print(fakesdk.Client().call(2))")
    result = fake_site.run("python", app, env=fake_site.env(FAKE_PLUGIN_RAISE="1"))
    assert _ok(result) == ["4"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("genops:")]
    assert len(warnings) == 1 and "failed while patching fakesdk" in warnings[0] and "plugin exploded" in warnings[0]
    assert "Traceback" not in result.stderr


def test_reload_and_reimport_patch_again_never_twice(fake_site):
    app = fake_site.app(
        """
        import importlib, sys
        import fakesdk
        from genops_autoinstrument.api.instrumentor import is_genops_wrapped
        def depth(function):
            n = 0
            while is_genops_wrapped(function):
                n += 1
                function = function.__wrapped__
            return n
        print(fakesdk.Client().call(1), depth(fakesdk.Client.__dict__["call"]))
        importlib.reload(fakesdk)
        print(fakesdk.EXECUTIONS, fakesdk.Client().call(1), depth(fakesdk.Client.__dict__["call"]))
        del sys.modules["fakesdk"]
        import fakesdk as fresh
        print(fresh is not fakesdk, fresh.Client().call(1), depth(fresh.Client.__dict__["call"]))
        """
    )
    assert _ok(fake_site.run("python", app)) == [
        "('patched', 2) 1",
        "2 ('patched', 2) 1",
        "True ('patched', 2) 1",
    ]


def test_namespace_package_and_submodule_targets(fake_site):
    fake_site.module("nsroot/lib/__init__.py", "class Client:\n    def call(self, x):\n        return x\n")
    fake_site.dist("nsroot-lib", "1.0", ["nsroot"])
    fake_site.module(
        "genops_ns_plugin/__init__.py",
        """
        from genops_autoinstrument import GenOpsInstrumentor
        def wrapper(wrapped, instance, args, kwargs):
            return ("ns", wrapped(*args, **kwargs))
        def sub_wrapper(wrapped, instance, args, kwargs):
            return ("sub", wrapped(*args, **kwargs))
        class NsInstrumentor(GenOpsInstrumentor):
            watched_modules = ("nsroot.lib", "fakesdk.client")
            def instrumentation_dependencies(self):
                return ("nsroot-lib >= 1",)
            def patch(self):
                import sys
                if "nsroot.lib" in sys.modules:
                    self.wrap("nsroot.lib", "Client.call", wrapper)
                if "fakesdk.client" in sys.modules:
                    self.wrap("fakesdk.client", "Session.send", sub_wrapper)
        """,
    )
    fake_site.dist("genops-ns-plugin", "0.1", ["genops_ns_plugin"], "[genops_instrumentor]\nns = genops_ns_plugin:NsInstrumentor\n")
    app = fake_site.app("import nsroot.lib, fakesdk.client; print(nsroot.lib.Client().call(1), fakesdk.client.Session().send())")
    assert _ok(fake_site.run("python", app, env=fake_site.env(GENOPS_DISABLED_INSTRUMENTATIONS="fake"))) == ["('ns', 1) ('sub', 'sent')"]


def test_original_loaders_are_restored(fake_site):
    fake_site.module("fakesdk/data.txt", "payload")
    app = fake_site.app(
        """
        import importlib.resources, inspect, pkgutil
        from importlib.machinery import SourceFileLoader
        import fakesdk
        print(type(fakesdk.__loader__) is SourceFileLoader, type(fakesdk.__spec__.loader) is SourceFileLoader)
        print(importlib.resources.files("fakesdk").joinpath("data.txt").read_text())
        print("FULLY_LOADED" in inspect.getsource(fakesdk))
        print(sorted(m.name for m in pkgutil.iter_modules(fakesdk.__path__)))
        print(fakesdk.Client().call(1))
        """
    )
    assert _ok(fake_site.run("python", app)) == ["True True", "payload", "True", "['client']", "('patched', 2)"]


def test_python_dash_m_of_the_watched_package(fake_site):
    fake_site.module("fakesdk/__main__.py", "import fakesdk\nprint('main', fakesdk.Client().call(3))\n")
    assert _ok(fake_site.run("python", "-m", "fakesdk")) == ["main ('patched', 6)"]


def test_zipimported_target(fake_site, tmp_path):
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("fakesdk/__init__.py", "EXECUTIONS = 1\nclass Client:\n    def call(self, x):\n        return x * 2\nFULLY_LOADED = True\n")
    (fake_site.site / "fakesdk" / "__init__.py").unlink()
    (fake_site.site / "fakesdk" / "client.py").unlink()
    (fake_site.site / "fakesdk").rmdir()
    env = fake_site.env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{archive}"
    app = fake_site.app("import fakesdk, zipimport; print(type(fakesdk.__loader__) is zipimport.zipimporter, fakesdk.Client().call(1))")
    assert _ok(fake_site.run("python", app, env=env)) == ["True ('patched', 2)"]


def test_lazy_loader_runs_the_plugin_on_first_use(fake_site):
    app = fake_site.app(
        """
        import importlib.util, sys
        spec = importlib.util.find_spec("fakesdk")
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["fakesdk"] = module
        loader.exec_module(module)
        import os
        print("before", os.path.exists(os.environ["FAKE_PLUGIN_LOG"]))
        print(module.Client().call(1))
        """
    )
    assert _ok(fake_site.run("python", app)) == ["before False", "('patched', 2)"]
    assert len(fake_site.log_lines()) == 1


def test_coexists_with_pytest_assertion_rewriting(fake_site, tmp_path):
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_inner.py").write_text("import fakesdk\n\ndef test_patched():\n    value = fakesdk.Client().call(1)\n    assert value == ('patched', 3)\n")
    result = fake_site.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests))
    assert result.returncode == 1
    assert "assert ('patched', 2) == ('patched', 3)" in result.stdout, "pytest rewrote the assertion and the plugin patched"


def test_coexists_with_an_editable_install_finder(fake_site, tmp_path):
    elsewhere = tmp_path / "src"
    (elsewhere / "fakesdk").mkdir(parents=True)
    (fake_site.site / "fakesdk" / "__init__.py").rename(elsewhere / "fakesdk" / "__init__.py")
    (fake_site.site / "fakesdk" / "client.py").rename(elsewhere / "fakesdk" / "client.py")
    (fake_site.site / "fakesdk").rmdir()
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text(
        f"""
import sys, importlib.util
class EditableFinder:
    # Like setuptools' editable-install finder: appended last, maps a name to a source folder.
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == "fakesdk":
            return importlib.util.spec_from_file_location(fullname, {str(elsewhere / 'fakesdk' / '__init__.py')!r}, submodule_search_locations=[{str(elsewhere / 'fakesdk')!r}])
sys.meta_path.append(EditableFinder)
"""
    )
    env = fake_site.env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{user}"
    app = fake_site.app("import fakesdk; print(fakesdk.__file__.startswith(%r), fakesdk.Client().call(1))" % str(elsewhere))
    assert _ok(fake_site.run("python", app, env=env)) == ["True ('patched', 2)"]


def test_many_threads_importing_watched_and_unwatched_modules_do_not_deadlock(fake_site):
    for index in range(6):
        fake_site.module(f"other{index}/__init__.py", "import fakesdk\nimport json, email.message\nVALUE = fakesdk.Client().call(1)\n")
    app = fake_site.app(
        """
        import threading, importlib
        results = []
        def work(index):
            results.append(importlib.import_module(f"other{index}").VALUE)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads: thread.start()
        for thread in threads: thread.join(30)
        print(len(results), set(map(str, results)))
        """
    )
    assert _ok(fake_site.run("python", app, timeout=60)) == ["6 {\"('patched', 2)\"}"]


def test_warnings_as_errors_run_clean(fake_site):
    app = fake_site.app("import fakesdk, json; print(fakesdk.Client().call(1))")
    result = fake_site.run("python", "-W", "error", app)
    assert _ok(result) == ["('patched', 2)"]
    assert result.stderr == ""


def test_finder_ignores_unwatched_names_cheaply():
    from genops_autoinstrument.launch.finder import WatchingFinder

    finder = WatchingFinder()
    finder.watch("a_module_that_does_not_exist_xyz", lambda module: None)
    assert finder.find_spec("json") is None
    assert finder.find_spec("a_module_that_does_not_exist_xyz") is None


def test_a_plugin_that_raises_half_way_is_rolled_back(fake_site):
    app = fake_site.app("import fakesdk; print(fakesdk.Client().call(2))")
    result = fake_site.run("python", app, env=fake_site.env(FAKE_PLUGIN_RAISE="after-patching"))
    assert _ok(result) == ["4"], "what the plugin patched before it raised is undone"
    assert "plugin exploded half-way" in result.stderr
