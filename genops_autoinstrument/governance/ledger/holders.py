"""Who holds a reservation: host scope, pid and process start time, so that the reservations of a
process killed mid-call can be reclaimed on the same host (and a reused pid is not mistaken for
the holder)."""

from __future__ import annotations

import os
import socket

def _proc_stat(pid: int | str) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a Linux process; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def _scope() -> str | None:
    """Where a pid means the same process: the boot and pid namespace on Linux, the host elsewhere; None on Windows."""
    if os.name == "nt":
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return f"{handle.read().strip()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return f"host:{socket.gethostname()}"


_me: tuple[int, str | None] = (-1, None)


def holder() -> str | None:
    """This process as a reservation holder: ``"<scope> <pid> <start>"`` (computed once per process)."""
    global _me
    pid = os.getpid()
    if _me[0] != pid:
        scope = _scope()
        started = _proc_stat("self")
        _me = (pid, None if scope is None else f"{scope} {pid} {started[1] if started else ''}")
    return _me[1]


def holder_gone(name: str) -> bool:
    """True when ``name``'s process is known dead here: no such pid, a zombie, or the pid reused since."""
    mine = holder()
    parts = name.split(" ")
    if mine is None or name == mine or len(parts) != 3 or parts[0] != mine.split(" ", 1)[0] or not parts[1].isdigit():
        return False  # another host or namespace (or ourselves): its pids mean nothing here
    pid = int(parts[1])
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # exists, under another user
    state = _proc_stat(pid)
    return state is not None and (state[0] in ("Z", "X") or bool(parts[2]) and state[1] != parts[2])
