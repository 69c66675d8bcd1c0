"""The launcher, through real `genops-run` subprocesses (checklist: Launcher 1-8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import genops_autoinstrument
from genops_autoinstrument.launch import launcher


def test_exit_code_streams_and_pid_are_the_programs_own(fake_site):
    app = fake_site.app(
        """
        import os, sys
        print("out", os.getpid())
        sys.stderr.write("err\\n")
        sys.exit(7)
        """
    )
    process = subprocess.Popen([fake_site.launcher, "python", app], env=fake_site.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 7
    assert out.split() == ["out", str(process.pid)], "exec, not a child: the PID is the launcher's"
    assert err == "err\n"


def test_signals_reach_the_program(fake_site):
    app = fake_site.app(
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([fake_site.launcher, "python", app], env=fake_site.env(), stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 42


def test_stdin_is_passed_through(fake_site):
    app = fake_site.app("import sys; print(sys.stdin.read().upper())")
    result = subprocess.run([fake_site.launcher, "python", app], env=fake_site.env(), input="hello", capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "HELLO"


def test_python_dash_m_and_plugin_activation(fake_site):
    fake_site.module("mypkg/__init__.py", "")
    fake_site.module("mypkg/__main__.py", "import fakesdk; print(fakesdk.Client().call(2))")
    result = fake_site.run("python", "-m", "mypkg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('patched', 4)"


def test_console_script_is_instrumented(fake_site, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "fake-tool"
    script.write_text(f"#!{sys.executable}\nimport fakesdk\nprint(fakesdk.Client().call(1))\n")
    script.chmod(0o755)
    env = fake_site.env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = fake_site.run("fake-tool", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('patched', 2)"


def test_command_not_found_is_127_with_one_line(fake_site):
    result = fake_site.run("no-such-command-xyz", "arg")
    assert result.returncode == 127
    assert result.stderr == "genops-run: command not found: no-such-command-xyz\n"


def test_python_module_launcher_matches(fake_site):
    result = fake_site.run(sys.executable, "-m", "genops_autoinstrument", "python", fake_site.app("import fakesdk; print(fakesdk.Client().call(3))"), launcher=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('patched', 6)"


def test_help_and_version(fake_site):
    version = fake_site.run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"genops-run {genops_autoinstrument.__version__}"
    usage = fake_site.run("--help")
    assert usage.returncode == 0 and "usage: genops-run" in usage.stdout and "--check" in usage.stdout


def test_invalid_environment_stops_before_the_program_with_status_2(fake_site):
    app = fake_site.app("print('the app ran')")
    result = fake_site.run("python", app, env=fake_site.env(GENOPS_FAIL_MODE="sometimes"))
    assert result.returncode == 2
    assert "the app ran" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "GENOPS_FAIL_MODE" in lines[0] and "'sometimes'" in lines[0] and "open, closed" in lines[0]
    assert "Traceback" not in result.stderr


def test_check_lists_plugins_and_validates(fake_site):
    fake_site.plugin(name="ghost", package="genops_ghost_plugin", requirements=("notinstalledsdk >= 1",))
    fake_site.plugin(name="old", package="genops_old_plugin", requirements=("fakesdk >= 5",))
    result = fake_site.run("--check", env=fake_site.env(GENOPS_DISABLED_INSTRUMENTATIONS="nothing"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "configuration: ok" in out
    assert "fake [genops]" in out and "will activate on import of fakesdk" in out and "fakesdk 1.2.0" in out
    assert "ghost [genops]" in out and "skipped: target not installed" in out
    assert "old [genops]" in out and "skipped: unsupported version" in out
    disabled = fake_site.run("--check", env=fake_site.env(GENOPS_DISABLED_INSTRUMENTATIONS="fake"))
    assert "skipped: disabled by configuration" in disabled.stdout
    invalid = fake_site.run("--check", env=fake_site.env(GENOPS_LOG_LEVEL="loud", GENOPS_BUDGETS="team=lots"))
    assert invalid.returncode == 2
    assert "configuration: INVALID" in invalid.stdout and "GENOPS_LOG_LEVEL" in invalid.stdout and "GENOPS_BUDGETS" in invalid.stdout


def test_users_own_sitecustomize_runs_exactly_once(fake_site, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    marker = tmp_path / "user-sitecustomize.log"
    (user / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\n")
    env = fake_site.env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{user}"
    app = fake_site.app("import sitecustomize, fakesdk, sys; print(sitecustomize.__file__); print(fakesdk.Client().call(1))")
    result = fake_site.run("python", app, env=env)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran\n"
    assert result.stdout.splitlines() == [str(user / "sitecustomize.py"), "('patched', 2)"]


def test_failing_user_sitecustomize_is_reported_like_python_does(fake_site, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text("raise ValueError('user bug')\n")
    env = fake_site.env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{user}"
    result = fake_site.run("python", fake_site.app("print('app')"), env=env)
    assert result.returncode == 0
    assert result.stdout.strip() == "app"
    assert "Error in sitecustomize" in result.stderr and "user bug" in result.stderr


def test_usercustomize_behaves_as_without_the_launcher(fake_site, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "usercustomize.py").write_text("import builtins; builtins.USERCUSTOMIZE_RAN = True\n")
    env = fake_site.env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{user}"
    app = fake_site.app("import builtins; print(getattr(builtins, 'USERCUSTOMIZE_RAN', False))")
    bare = fake_site.run("python", app, env=env, launcher=False)
    launched = fake_site.run("python", app, env=env)
    assert launched.returncode == 0
    assert launched.stdout == bare.stdout


def test_isolation_flags_are_warned_about(fake_site):
    app = fake_site.app("print('ok')")
    for flag in ("-I", "-E", "-S", "-uE"):
        result = fake_site.run("python", flag, app)
        assert result.returncode == 0
        assert result.stdout.strip() == "ok"
        assert f"'{flag}' makes Python ignore PYTHONPATH or site" in result.stderr
    quiet = fake_site.run("python", "-W", "ignore::ImportWarning", "-X", "dev", app)
    assert "makes Python ignore" not in quiet.stderr


def test_isolation_warning_parser():
    assert launcher.isolation_warning(["python3", "-I", "app.py"])
    assert launcher.isolation_warning(["/usr/bin/python3.11", "-bS", "app.py"])
    assert launcher.isolation_warning(["python", "-W", "error::ImportError", "app.py"]) is None
    assert launcher.isolation_warning(["python", "app.py", "-I"]) is None
    assert launcher.isolation_warning(["uvicorn", "-E"]) is None


def test_disabled_leaves_meta_path_and_modules_untouched(fake_site):
    app = fake_site.app("import sys; print(len(sys.meta_path)); print(sorted(sys.modules)); print(sys.path)")
    bare = fake_site.run("python", app, launcher=False)
    disabled = fake_site.run("python", app, env=fake_site.env(GENOPS_ENABLED="false"))
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout == bare.stdout
    enabled = fake_site.run("python", app)
    assert enabled.stdout.splitlines()[0] == str(int(bare.stdout.splitlines()[0]) + 1)


def test_disabled_instrumentations_skip_plugins_by_name(fake_site):
    app = fake_site.app("import fakesdk; print(fakesdk.Client().call(1))")
    for variable in ("GENOPS_DISABLED_INSTRUMENTATIONS", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"):
        result = fake_site.run("python", app, env=fake_site.env(**{variable: "other, fake"}))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "2"


def test_child_processes_are_instrumented_and_bootstrap_runs_once(fake_site):
    app = fake_site.app(
        """
        import multiprocessing, subprocess, sys

        def work(_):
            import fakesdk, sys
            from genops_autoinstrument.launch.finder import get_finder
            return (fakesdk.Client().call(1), sys.meta_path.count(get_finder()))

        if __name__ == "__main__":
            child = subprocess.run([sys.executable, "-c", "import fakesdk; print(fakesdk.Client().call(5))"], capture_output=True, text=True)
            print("subprocess", child.stdout.strip())
            for method in ("spawn", "forkserver"):
                with multiprocessing.get_context(method).Pool(2) as pool:
                    print(method, pool.map(work, range(2)))
        """
    )
    result = fake_site.run("python", app, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "subprocess ('patched', 10)"
    assert lines[1] == "spawn [(('patched', 2), 1), (('patched', 2), 1)]"
    assert lines[2] == "forkserver [(('patched', 2), 1), (('patched', 2), 1)]"


def test_bootstrap_folder_holds_only_sitecustomize():
    folder = launcher.bootstrap_dir()
    assert sorted(path.name for path in folder.iterdir() if path.name != "__pycache__") == ["sitecustomize.py"]


def test_bootstrap_error_is_logged_and_the_program_still_starts(fake_site):
    app = fake_site.app("import fakesdk; print('started', fakesdk.Client().call(1))")
    assert fake_site.run("python", app).returncode == 0  # writes the start-up cache
    # Corrupt the cache in a way that passes its checks but breaks the bootstrap.
    import marshal

    cache_file = next((fake_site.cache / "genops").glob("boot-*.marshal"))
    data = marshal.loads(cache_file.read_bytes())
    data["plugins"] = [("broken",)]
    cache_file.write_bytes(marshal.dumps(data))
    result = fake_site.run("python", app)
    assert result.returncode == 0
    assert result.stdout.strip() == "started 2"
    assert "genops: warning: bootstrap failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_start_up_cache_avoids_scanning_entry_points(fake_site):
    app = fake_site.app("import sys; print(sorted(m for m in ('importlib.metadata', 'importlib_metadata', 'opentelemetry', 'logging', 'typing') if m in sys.modules))")
    first = fake_site.run("python", app, env=fake_site.env(GENOPS_TEAM="search"))
    second = fake_site.run("python", app, env=fake_site.env(GENOPS_TEAM="search"))
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    bare = fake_site.run("python", app, launcher=False)
    assert second.stdout == bare.stdout, "a cached start imports nothing heavy"
    # Installing a distribution invalidates the cache: the new plugin is found.
    fake_site.plugin(name="late", package="genops_late_plugin")
    time.sleep(0.01)
    os.utime(fake_site.site)
    check = fake_site.run("python", fake_site.app("import fakesdk; from genops_autoinstrument.launch import activation; print(sorted(i.__class__.__module__ for i in activation.instances().values()))", "probe.py"))
    assert check.stdout.strip() == "['genops_fake_plugin', 'genops_late_plugin']", check.stderr


def test_a_changed_environment_is_validated_again(fake_site):
    app = fake_site.app("print('ran')")
    assert fake_site.run("python", app, env=fake_site.env(GENOPS_MODEL_POLICY="warn")).returncode == 0
    result = fake_site.run("python", app, env=fake_site.env(GENOPS_MODEL_POLICY="lenient"))
    assert result.returncode == 2 and "GENOPS_MODEL_POLICY" in result.stderr


def test_working_directory_is_unchanged(fake_site, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = fake_site.run("python", "-c", "import os; print(os.getcwd())", cwd=workdir)
    assert Path(result.stdout.strip()) == workdir


def test_plugin_variables_are_validated_and_misspellings_rejected(fake_site):
    fake_site.module(
        "genops_vars_plugin/__init__.py",
        """
        from genops_autoinstrument import GenOpsInstrumentor
        from genops_autoinstrument import config
        class VarsInstrumentor(GenOpsInstrumentor):
            environment_variables = (config.plugin_variable("GENOPS_VARS_FAST_MODE", "choice:on|off", "on", "A plugin switch."),)
            def instrumentation_dependencies(self):
                return ("fakesdk >= 1",)
            def patch(self):
                pass
        """,
    )
    fake_site.dist("genops-vars-plugin", "0.1", ["genops_vars_plugin"], "[genops_instrumentor]\nvars = genops_vars_plugin:VarsInstrumentor\n", ['fakesdk>=1; extra == "instruments"'])
    app = fake_site.app("print('ran')")
    assert fake_site.run("python", app, env=fake_site.env(GENOPS_VARS_FAST_MODE="off")).stdout == "ran\n"
    bad = fake_site.run("python", app, env=fake_site.env(GENOPS_VARS_FAST_MODE="maybe"))
    assert bad.returncode == 2 and "GENOPS_VARS_FAST_MODE" in bad.stderr and "on, off" in bad.stderr
    typo = fake_site.run("python", app, env=fake_site.env(GENOPS_BUDGET="team=5/day"))
    assert typo.returncode == 2 and "GENOPS_BUDGET" in typo.stderr and "did you mean GENOPS_BUDGETS" in typo.stderr
    from genops_autoinstrument.launch.launcher import bootstrap_dir

    bootstrap_only = fake_site.env(GENOPS_SOMETHING_ELSE="1", PYTHONPATH=f"{bootstrap_dir()}{os.pathsep}{fake_site.site}")
    for _ in range(2):  # every start warns once, not only the one that filled the start-up cache
        unknown = fake_site.run("python", app, env=fake_site.env(GENOPS_SOMETHING_ELSE="1"))
        assert unknown.returncode == 0 and unknown.stdout == "ran\n"
        assert unknown.stderr.count("unknown variable GENOPS_SOMETHING_ELSE is ignored") == 1, unknown.stderr
        started = fake_site.run("python", app, env=bootstrap_only, launcher=False)  # the bootstrap alone
        assert started.stderr.count("unknown variable GENOPS_SOMETHING_ELSE is ignored") == 1, started.stderr
    check = fake_site.run("--check")
    assert "variable GENOPS_VARS_FAST_MODE (choice:on|off, default on): A plugin switch." in check.stdout


def test_relative_and_symlinked_launcher_still_instruments_children_elsewhere(fake_site, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "genops-run").symlink_to(fake_site.launcher)
    app = fake_site.app(
        """
        import subprocess, sys
        import fakesdk
        print("parent", fakesdk.Client().call(1))
        child = subprocess.run([sys.executable, "-c", "import fakesdk; print('child', fakesdk.Client().call(1))"], cwd="/", capture_output=True, text=True)
        print(child.stdout.strip())
        """
    )
    result = subprocess.run(["./links/genops-run", "python", app], cwd=tmp_path, env=fake_site.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["parent ('patched', 2)", "child ('patched', 2)"]


def test_start_up_cache_holds_no_secrets_and_is_private(fake_site):
    secret = "hcaik_SECRET123"
    env = fake_site.env(OTEL_EXPORTER_OTLP_HEADERS=f"x-honeycomb-team={secret}", GENOPS_LEDGER_URL="redis://:s3cr3tpass@127.0.0.1:6390/0")
    assert fake_site.run("python", "-c", "pass", env=env).returncode == 0
    (cache_file,) = (fake_site.cache / "genops").glob("boot-*.marshal")
    content = cache_file.read_bytes()
    assert secret.encode() not in content and b"s3cr3tpass" not in content
    assert cache_file.stat().st_mode & 0o077 == 0


def test_a_misspelt_variable_never_echoes_its_value(fake_site):
    result = fake_site.run("python", "-c", "pass", env=fake_site.env(GENOPS_LEDGER_URLS="redis://:hunter2@10.0.0.1:6379/0"))
    assert result.returncode == 2
    assert "hunter2" not in result.stderr and "did you mean GENOPS_LEDGER_URL" in result.stderr


def test_invalid_opentelemetry_variables_stop_the_launcher(fake_site):
    app = fake_site.app("print('ran')")
    for variable, value, accepted in (
        ("OTEL_TRACES_EXPORTER", "otlpp", "console, none, otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/jsonn", "grpc or http/protobuf"),
        ("OTEL_TRACES_SAMPLER", "always_of", "parentbased_always_on"),
    ):
        result = fake_site.run("python", app, env=fake_site.env(**{variable: value}))
        assert result.returncode == 2, (variable, result.stdout, result.stderr)
        assert variable in result.stderr and value in result.stderr and accepted in result.stderr
        assert result.stdout == ""


def test_bootstrap_goes_first_even_after_a_users_sitecustomize_folder(fake_site, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import builtins; builtins.USER_SITECUSTOMIZE = True\n")
    env = fake_site.env()
    env["PYTHONPATH"] = f"{user}{os.pathsep}{env['PYTHONPATH']}"
    app = fake_site.app("import builtins, fakesdk; print(getattr(builtins, 'USER_SITECUSTOMIZE', False), fakesdk.Client().call(1))")
    result = fake_site.run("python", app, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ('patched', 2)"
