"""The one registry of fork and exit handlers runs them by rank, whatever the registration order."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_fork_and_exit_handlers_run_by_rank_once_each():
    program = textwrap.dedent(
        """
        import os, sys
        from genops_autoinstrument import lifecycle as lc

        def note(label):
            def handler():
                sys.stdout.write(f"{os.getpid() == PARENT and 'parent' or 'child'}:{label}\\n")
                sys.stdout.flush()
            return handler

        PARENT = os.getpid()
        summary, engine, governance, deferred = note("summary"), note("engine"), note("governance"), note("deferred")
        for handler, rank in ((summary, lc.FORK_SUMMARY), (engine, lc.FORK_ENGINE), (governance, lc.FORK_GOVERNANCE), (deferred, lc.FORK_DEFERRED)):
            lc.on_fork_child(handler, rank)
        lc.on_fork_child(engine, lc.FORK_ENGINE)  # a second registration is ignored
        telemetry, printed, flushed = note("exit-telemetry"), note("exit-summary"), note("exit-deferred")
        for handler, rank in ((telemetry, lc.EXIT_TELEMETRY), (printed, lc.EXIT_SUMMARY), (flushed, lc.EXIT_DEFERRED)):
            lc.at_exit(handler, rank)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "child:deferred",
        "child:governance",
        "child:engine",
        "child:summary",
        "parent:exit-deferred",
        "parent:exit-summary",
        "parent:exit-telemetry",
    ]
