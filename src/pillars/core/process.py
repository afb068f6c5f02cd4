"""The one way pillars runs another program (dvc, git, gto, gh, docker, bentoml).

`run` captures the output and turns a failure into a PillarsError that names the command, its exit code and
what it said; `stream=True` lets the program write to the terminal instead (long dvc runs), and a failure
then points to that output.

`start` and `stop` own a long-running program (a served Bento) and every process it starts. The program runs
under a watchdog: this module run as a program (`python -m pillars.core.process COMMAND...`), in a session of
its own, reading a pipe whose only writer is the process that called `start`. When the pipe closes, by `stop`
or because that process ended in any way (SIGKILL included), or when the program exits, the watchdog stops
every process below it. It adopts orphans (`bentoml serve` starts its workers in sessions of their own, and
they would otherwise run on under init when their arbiter dies), so it finds them all; and a program whose
watchdog was killed gets SIGTERM.
"""

import contextlib
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from pillars.core.errors import PillarsError
from pillars.core.lifetime import STOPPING_SIGNALS, adopt_orphans, end_with_parent, exit_on_signals, status

STOP_TIMEOUT_S = 15


def run(
    command: Sequence[str],
    *,
    check: bool = True,
    stream: bool = False,
    merge_stderr: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    describe: Callable[[str], str] = str,
) -> subprocess.CompletedProcess[str]:
    """Run `command` to completion; with `check`, a non-zero exit is a PillarsError.

    `env` is added to this process's environment; `describe` rewrites the failure message (e.g. to redact
    a token, or to unwrap a tool's line breaks)."""
    environment = {**os.environ, **env} if env is not None else None
    output = None if stream else subprocess.PIPE
    try:
        result = subprocess.run(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT if merge_stderr and not stream else output,
            input=stdin,
            encoding="utf-8",
            errors="replace",
            env=environment,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise PillarsError(f"`{command[0]}`: not found on PATH") from None
    if check and result.returncode != 0:
        said = "see its output above" if stream else (result.stderr or result.stdout or "").strip()
        raise PillarsError(describe(f"`{shlex.join(command)}` failed (exit {result.returncode}): {said}"))
    return result


def start(command: Sequence[str], *, env: Mapping[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start `command` under a watchdog (see above), its output and the program's (stdout and stderr) to
    `log`; the returned process is the watchdog, which exits with the program's exit code."""
    return subprocess.Popen(
        [sys.executable, "-m", "pillars.core.process", *command],
        stdin=subprocess.PIPE,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a started program and every process below it: close the watchdog's pipe and wait while it sends
    them SIGTERM, and SIGKILL to those left after STOP_TIMEOUT_S."""
    if process.stdin is not None:
        process.stdin.close()
    process.wait()


def _watch(command: list[str]) -> int:
    """The watchdog: run `command` until it exits or stdin closes, then stop every process below this one;
    the program's exit code (128 + the signal if a signal ended it, as a shell reports it)."""
    adopt_orphans()
    exit_on_signals()  # SIGTERM to the watchdog stops the program too
    program = subprocess.Popen(  # this process has one thread, so preexec_fn is safe here
        command, stdin=subprocess.DEVNULL, preexec_fn=end_with_parent
    )
    try:
        select.select([sys.stdin, os.pidfd_open(program.pid)], [], [])
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING_SIGNALS)  # nothing interrupts the stopping
        _stop_descendants(program)
    code = program.wait()
    return code if code >= 0 else 128 - code


def _stop_descendants(program: subprocess.Popen[bytes]) -> None:
    """SIGTERM once to each process below this one, then SIGKILL to those still running after STOP_TIMEOUT_S."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    warned: set[int] = set()
    while running := _running_descendants(program):
        late = time.monotonic() > deadline
        for pid in running if late else running - warned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
        warned |= running
        time.sleep(0.05)


def _running_descendants(program: subprocess.Popen[bytes]) -> set[int]:
    """The processes below this one that have not exited, from /proc; the exited children are reaped on the
    way (`program` through its Popen, which keeps its exit code)."""
    program.poll()
    parent_of: dict[int, int] = {}
    exited: set[int] = set()
    for pid in (int(entry.name) for entry in Path("/proc").glob("[0-9]*")):
        try:
            state, parent_of[pid] = status(pid)
        except OSError:  # ended between the listing and the reading
            continue
        if state == "Z":
            exited.add(pid)
    me = os.getpid()
    for pid in exited - {program.pid}:
        if parent_of[pid] == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    below = {me}
    while grown := {pid for pid, parent in parent_of.items() if parent in below} - below:
        below |= grown
    return below - exited - {me}


if __name__ == "__main__":
    sys.exit(_watch(sys.argv[1:]))
