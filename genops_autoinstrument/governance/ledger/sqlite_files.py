"""Where the SQLite ledger lives, and whether its file and folder can be trusted.

The file is trusted only when it is ours: never opened through a symbolic link, refused when it
or its folder belongs to another user or is writable by group or others; created 0600 in a 0700
folder. A relative ``XDG_STATE_HOME`` is ignored (the XDG spec says so), and no usable home is a
refusal rather than a file in the working directory.
"""

from __future__ import annotations

import os
import stat
import sys

from .base import LedgerRefused


def default_path() -> str:
    """``$XDG_STATE_HOME/genops/ledger.db`` (``~/.local/state/…``); the platform's app-data folder on macOS/Windows.

    A relative ``XDG_STATE_HOME`` is ignored, as the XDG spec says. Without an absolute home the
    ledger is refused (:class:`LedgerRefused`) rather than written under the working directory.
    """
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    else:
        xdg = os.environ.get("XDG_STATE_HOME", "")
        if sys.platform != "darwin" and os.path.isabs(xdg):
            base = xdg
        else:
            home = os.environ.get("HOME")
            if home is None:
                home = os.path.expanduser("~")  # the passwd entry, or "~" when there is none
            if not os.path.isabs(home):  # "" too (expanduser would make it "/")
                raise LedgerRefused(
                    "GenOps has no folder for its default SQLite ledger: HOME is not an absolute path and XDG_STATE_HOME "
                    "is not set to one; fix: set HOME or XDG_STATE_HOME to an absolute folder, or GENOPS_LEDGER_URL="
                    "sqlite:////absolute/path/ledger.db"
                )
            parts = ("Library", "Application Support") if sys.platform == "darwin" else (".local", "state")
            base = os.path.join(home, *parts)
    if not os.path.isabs(base):
        raise LedgerRefused(f"GenOps has no absolute folder for its default SQLite ledger (got {base!r}); fix: set GENOPS_LEDGER_URL=sqlite:///C:/path/ledger.db")
    return os.path.join(base, "genops", "ledger.db")


# --- the file: ours, never through a link -------------------------------------------------------------
def _refuse(path: str, problem: str, fix: str) -> LedgerRefused:
    return LedgerRefused(f"SQLite ledger {path} refused: {problem}; fix: {fix}")


def _check_owned(path: str, info: os.stat_result, kind: str, fix_mode: str) -> None:
    """Refuse ``path`` unless this user owns it and neither group nor others may write it."""
    uid = os.geteuid()
    if info.st_uid != uid:
        raise _refuse(path, f"the {kind} belongs to uid {info.st_uid}, not to this user (uid {uid})", "use a ledger of your own: GENOPS_LEDGER_URL=sqlite:////a/folder/of/yours/ledger.db")
    if info.st_mode & 0o022:
        raise _refuse(path, f"the {kind} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})", f"chmod {fix_mode} {path}")


def secure_directory(directory: str) -> None:
    """Create ``directory`` 0700 if missing; refuse one that another user could change (or point elsewhere)."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    if not hasattr(os, "geteuid"):  # Windows: no owners or modes to compare
        return
    if stat.S_ISLNK(info.st_mode):
        if info.st_uid != os.geteuid():
            raise _refuse(directory, f"the folder is a symbolic link owned by uid {info.st_uid}", "use a folder of your own, not a link another user controls")
        info = os.stat(directory)  # a link of our own: the folder it names must pass too
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(directory, "it is not a folder", "point GENOPS_LEDGER_URL at a file inside a folder")
    _check_owned(directory, info, "folder", "700")


def secure_file(path: str) -> None:
    """Create ``path`` 0600 (never through a link); refuse an existing link, non-file, or file of another user.

    The folder was checked first, so nobody else can swap the name between this check and SQLite's own open.
    """
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | nofollow | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        pass
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            info = os.lstat(name)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(name, "it is a symbolic link (GenOps never follows one to its ledger)", "replace the link with the file itself, or point GENOPS_LEDGER_URL at the real file")
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(name, "it is not a regular file", "point GENOPS_LEDGER_URL at a file path")
        if hasattr(os, "geteuid"):
            _check_owned(name, info, "file", "600")


# --- holders: who holds a reservation, and whether it still lives -------------------------------------
