"""The one way pillars runs another program (dvc, git, gto, gh, docker, bentoml).

`run` captures the output and turns a failure into a PillarsError that names the command, its exit code and
what it said; `stream=True` lets the program write to the terminal instead (long dvc runs), and a failure
then points to that output. `start` and `stop` own a long-running program (a served Bento) as a process
group, so stopping it stops its workers too.
"""

import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from pillars.core.errors import PillarsError

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
    """Start `command` in its own process group, its output (stdout and stderr) to `log`."""
    return subprocess.Popen(
        list(command),
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a started program and its children: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
