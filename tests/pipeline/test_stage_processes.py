"""No process outlives its stage: `dvc repro deploy` killed while the stage serves its Bento (SIGKILL or
SIGTERM; to dvc alone, or to dvc and the stage, as `timeout` does to its process group) leaves no process
behind: the stage ends with dvc, and `bentoml serve` and its workers with the stage. The stage is given more
requests than it could send in the test's time, so only stopping ends it in time."""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.helpers import BIN, committed_copy, project_env, running, still_running_after, write_params

READY_S = 240  # for the stage to read its data, import the archive and serve it, on a busy machine
END_S = 60  # for the stage and its server to stop once killed (the server has STOP_TIMEOUT_S for SIGTERM)
ENDLESS = 10_000_000  # single-row requests timed by the stage: hours of them


def serving(dvc: psutil.Process) -> bool:
    """Whether a `bentoml serve` below dvc answers /readyz."""
    for process in running(dvc.children(recursive=True)):
        try:
            command = process.cmdline()
        except psutil.NoSuchProcess:
            continue
        if command[1:2] == [str(BIN / "bentoml")] and command[2:3] == ["serve"]:
            port = command[command.index("--port") + 1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False
    return False


def in_repo(repo: Path) -> list[psutil.Process]:
    """Processes running in the repository copy (dvc, the stage and what it started inherit its directory)."""
    found = []
    for process in running(psutil.process_iter()):
        try:
            if Path(process.cwd()).is_relative_to(repo):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("group", [False, True], ids=["dvc", "dvc-and-stage"])
def test_killing_dvc_while_deploy_serves_leaves_no_process(
    signum: signal.Signals, group: bool, reproduced: Path, tmp_path: Path, watched: list[psutil.Process]
) -> None:
    repo = committed_copy(reproduced, tmp_path / "repo")
    write_params(repo, deploy={"latency_requests": ENDLESS})
    dvc = subprocess.Popen(
        ["dvc", "repro", "--force", "--single-item", "deploy"],
        cwd=repo,
        # TMPDIR: the stage's BentoML home, here even if it is killed. SHELL: dvc starts the stage through it,
        # and a POSIX sh (Debian's dash, CI's when SHELL is unset) stays between dvc and the stage
        env=project_env({"TMPDIR": str(tmp_path), "SHELL": "/bin/sh"}),
        start_new_session=True,  # a process group of dvc and the stage, without this test
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dvc_process = psutil.Process(dvc.pid)
    watched.append(dvc_process)
    try:
        deadline = time.monotonic() + READY_S
        while not serving(dvc_process):
            assert dvc.poll() is None, f"dvc repro deploy exited ({dvc.returncode}) before its server was up"
            assert time.monotonic() < deadline, f"no bentoml serve below dvc answered within {READY_S} s"
            time.sleep(0.5)
        watched += dvc_process.children(recursive=True)  # the stage, the watchdog, bentoml serve, its workers
        if group:
            os.killpg(dvc.pid, signum)
        else:
            dvc.send_signal(signum)
        dvc.wait(timeout=END_S)
    finally:
        dvc.kill()  # if the test failed before dvc ended
        dvc.wait()
    assert [process.cmdline() for process in still_running_after(watched, END_S)] == []
    leftovers = in_repo(repo)  # also any started after the listing above
    watched += leftovers
    assert leftovers == []
