"""A stage's local Dask cluster ends with the stage, however it ends: on SIGTERM the stage closes it (run_cli
turns the signal into SystemExit), on SIGKILL each worker sees the pipe from its parent close and exits."""

import select
import signal
import subprocess
import sys

import psutil
import pytest

from tests.helpers import still_running_after

WAIT_S = 60  # for the cluster to start, or for its processes to end
STAGE = """
import os, time
from pillars.compute.cluster import dask_client
from pillars.core.errors import run_cli
from pillars.core.params import ComputeParams

def main() -> None:
    with dask_client(ComputeParams(engine="dask", workers=2)) as client:
        print(*client.run(os.getpid).values(), flush=True)
        time.sleep(300)

run_cli(main)
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_workers_end_with_the_stage(signum: signal.Signals, watched: list[psutil.Process]) -> None:
    stage = subprocess.Popen([sys.executable, "-c", STAGE], stdout=subprocess.PIPE, text=True)
    watched.append(psutil.Process(stage.pid))
    try:
        assert select.select([stage.stdout], [], [], WAIT_S)[0], "the local cluster did not start in time"
        assert len(stage.stdout.readline().split()) == 2, "the local cluster did not start its workers"
        watched += watched[0].children(recursive=True)  # the workers, multiprocessing's resource tracker
        stage.send_signal(signum)
        stage.wait(timeout=WAIT_S)
    finally:
        stage.kill()
        stage.wait()
    assert [process.cmdline() for process in still_running_after(watched, WAIT_S)] == []
