"""A program started with core.process.start, and every process it starts, ends with whoever started it:
on `stop`, when the starter is killed (SIGTERM or SIGKILL), or when the program itself exits."""

import contextlib
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pillars.core.process import start, stop
from tests.helpers import still_running_after

WAIT_S = 20  # for a starter or a program to come up, or for processes to end
# The started program: one child in its own process group and one in a session of its own (as circus
# starts the workers of `bentoml serve`); it writes the three pids, then sleeps or exits with the given code.
PROGRAM = """
import os, subprocess, sys, time
from pathlib import Path
children = [subprocess.Popen(["sleep", "300"]), subprocess.Popen(["sleep", "300"], start_new_session=True)]
pids = Path(sys.argv[1])
pids.with_suffix(".part").write_text(" ".join(str(pid) for pid in [os.getpid(), *(c.pid for c in children)]))
pids.with_suffix(".part").rename(pids)
if len(sys.argv) > 2:
    sys.exit(int(sys.argv[2]))
time.sleep(300)
"""
# A pillars entry point that starts the command after its log's path, and stops it when it ends
STARTER = """
import sys, time
from pathlib import Path
from pillars.core.errors import run_cli
from pillars.core.process import start, stop

def main() -> None:
    with Path(sys.argv[1]).open("wb") as log:
        process = start(sys.argv[2:], env={}, log=log)
        try:
            time.sleep(300)
        finally:
            stop(process)

run_cli(main, parses_arguments=True)
"""


def program_processes(pids: Path) -> list[psutil.Process]:
    """The program and its two children, once it has written their pids (those still there: a program that
    exits takes its children with it)."""
    deadline = time.monotonic() + WAIT_S
    while not pids.exists():
        assert time.monotonic() < deadline, "the started program did not write its pids"
        time.sleep(0.05)
    found = []
    for pid in pids.read_text().split():
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(psutil.Process(int(pid)))
    return found


def program(tmp_path: Path, *exit_code: str) -> list[str]:
    """The command of the program, writing its pids in tmp_path, sleeping or exiting with `exit_code`."""
    return [sys.executable, "-c", PROGRAM, str(tmp_path / "pids"), *exit_code]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_the_program_and_its_children_end_when_the_starter_is_killed(
    signum: signal.Signals, tmp_path: Path, watched: list[psutil.Process]
) -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "log"), *program(tmp_path)])
    watched.append(psutil.Process(starter.pid))
    try:
        watched += program_processes(tmp_path / "pids")
        watched += psutil.Process(starter.pid).children()  # the watchdog
        starter.send_signal(signum)
        assert starter.wait(timeout=WAIT_S) == (-signum if signum == signal.SIGKILL else 128 + signum)
    finally:
        starter.kill()
        starter.wait()
    assert [process.cmdline() for process in still_running_after(watched, WAIT_S)] == []


def test_stop_ends_the_program_and_its_children(tmp_path: Path, watched: list[psutil.Process]) -> None:
    with (tmp_path / "log").open("wb") as log:
        process = start(program(tmp_path), env={}, log=log)
        watched += [psutil.Process(process.pid), *program_processes(tmp_path / "pids")]
        stop(process)
    assert process.returncode == 128 + signal.SIGTERM  # the program's, as a shell reports it
    assert still_running_after(watched, 0) == []


def test_a_program_that_exits_leaves_no_orphan_and_its_exit_code(
    tmp_path: Path, watched: list[psutil.Process]
) -> None:
    with (tmp_path / "log").open("wb") as log:
        process = start(program(tmp_path, "3"), env={}, log=log)
        watched += [psutil.Process(process.pid), *program_processes(tmp_path / "pids")]
        assert process.wait(timeout=WAIT_S) == 3
    assert still_running_after(watched, 0) == []


# dvc as far as a stage can tell: it starts the stage's command through /bin/sh with DVC_STAGE set, then waits.
# Debian's sh (dash) stays between the two as the stage's parent, alive after dvc has gone.
RUNNER = """
import os, subprocess, sys
subprocess.Popen(["/bin/sh", "-c", sys.argv[1]], env={**os.environ, "DVC_STAGE": "deploy"}).wait()
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_stage_below_a_shell_ends_with_its_dvc(
    signum: signal.Signals, tmp_path: Path, watched: list[psutil.Process]
) -> None:
    stage = shlex.join([sys.executable, "-c", STARTER, str(tmp_path / "log"), *program(tmp_path)])
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, stage])
    watched.append(psutil.Process(runner.pid))
    try:
        watched += program_processes(tmp_path / "pids")
        below_runner = psutil.Process(runner.pid).children(recursive=True)  # sh, the stage, the watchdog, ...
        assert "sh" in [process.name() for process in below_runner]  # the shell stays between
        watched += below_runner
        runner.send_signal(signum)
        runner.wait(timeout=WAIT_S)
    finally:
        runner.kill()
        runner.wait()
    assert [process.cmdline() for process in still_running_after(watched, WAIT_S)] == []
