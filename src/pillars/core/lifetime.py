"""How long a pillars process lives, so that nothing it started outlives it (Linux: `prctl` through ctypes).

A signal that stops a program ends it as an exception would, so `finally` blocks and context managers stop
the servers and workers it started; it may ask to end with its parent; and a watchdog may keep hold of its
descendants whose parent died, to stop them too.
"""

import ctypes
import os
import signal
import sys
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
