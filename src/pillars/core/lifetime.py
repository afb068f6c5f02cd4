"""How long a pillars process lives, so that nothing it started outlives it (Linux: `prctl` through ctypes,
and process file descriptors).

A signal that stops a program ends it as an exception would, so `finally` blocks and context managers stop
the servers and workers it started; it may ask to end with its parent, or with the dvc that runs it as a
stage; and a watchdog may keep hold of its descendants whose parent died, to stop them too.
"""

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_LIBC = ctypes.CDLL(None, use_errno=True)
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _prctl(option: int, value: int) -> None:
    """Linux's process control; elsewhere (macOS) nothing: a stage then outlives a killed dvc, as before."""
    if not sys.platform.startswith("linux"):
        return
    if _LIBC.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _exit(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # the exit code a shell reports for a program ended by that signal


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit in the main thread: by default they end the process at once, and
    its `finally` blocks, which stop what it started, never run. A signal ignored from the start stays
    ignored (`nohup` ignores SIGHUP)."""
    for signum in STOPPING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _exit)


def end_with_parent() -> None:
    """Linux sends this process SIGTERM when its parent ends (strictly: the parent's thread that started it;
    not if the parent ended before this call)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def adopt_orphans() -> None:
    """A descendant whose parent ends becomes this process's child, not init's, so this process can still
    find it below itself and stop it."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def end_with_dvc() -> None:
    """SIGTERM to this DVC stage when the dvc that runs it ends (Linux; elsewhere nothing).

    Not its parent: dvc starts a stage's command through $SHELL, and a POSIX sh (Debian's dash) stays
    between the two as the parent, alive after dvc has gone. A thread waits on the dvc process instead."""
    if not hasattr(os, "pidfd_open"):
        return
    try:
        dvc = os.pidfd_open(_stage_runner())
    except ProcessLookupError:  # dvc ended before this stage got here
        os.kill(os.getpid(), signal.SIGTERM)
        return
    threading.Thread(target=_terminate_when_ended, args=(dvc,), name="end-with-dvc", daemon=True).start()


def _terminate_when_ended(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable once that process has ended
    os.kill(os.getpid(), signal.SIGTERM)


def _stage_runner() -> int:
    """The process that started this stage: the nearest ancestor whose environment lacks this stage's
    DVC_STAGE (dvc sets it for the command it starts, so a shell in between carries it too)."""
    stage = os.environ["DVC_STAGE"]
    pid = os.getppid()
    while pid > 1 and _environment_value(pid, "DVC_STAGE") == stage:
        pid = status(pid)[1]
    return pid


def _environment_value(pid: int, name: str) -> str | None:
    """A variable of the environment process `pid` started with (None if unset or unreadable)."""
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, _, value = entry.partition(b"=")
            if key.decode(errors="replace") == name:
                return value.decode(errors="replace")
    return None


def status(pid: int) -> tuple[str, int]:
    """The state letter ("Z": exited, not yet reaped) and the parent of process `pid`, from /proc (the
    fields after the name, which may hold spaces and ")"); OSError if it has gone."""
    state, parent = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[:2]
    return state, int(parent)
