"""Tuning on a real `dask.distributed` local cluster (two worker processes): rounds of trials give the same
trials, models and outputs as `compute.engine: local`, whatever the number of workers; a worker killed
mid-study loses no finished trial; a run stopped mid-round resumes to the same study."""

import contextlib
import os
import pickle
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from pillars.compute.cluster import dask_client
from pillars.core.errors import PillarsError
from pillars.core.params import ComputeParams, parse_params
from pillars.stages.train import Trained, train, trial_table
from pillars.training.budget import Limits
from pillars.training.families.spec import TrainingData
from pillars.training.tuning import OnCluster, finished_trials, run_here, run_study
from tests.helpers import deep_merge

pytestmark = pytest.mark.slow

FAMILIES = {
    "xgboost": {"n_trials": 7, "fixed": {"n_estimators": 80, "early_stopping_rounds": 10}},
    "lightgbm": {"n_trials": 5, "fixed": {"n_estimators": 80, "early_stopping_rounds": 10}},
}


def data() -> TrainingData:
    generator = np.random.default_rng(5)
    x = generator.normal(size=(1600, 6)).astype("float32")
    y = (x[:, 0] + 0.7 * x[:, 1] * x[:, 2] + generator.normal(scale=0.7, size=1600) > 0).astype("int64")
    return TrainingData(x[:1200], y[:1200], x[1200:], y[1200:], "binary")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
        Client(local) as client,
    ):
        yield client


def same(left: Trained, right: Trained) -> None:
    assert left.summary == right.summary
    for family in FAMILIES:
        assert left.tables[family].equals(right.tables[family]), family
    for name, model in left.models.items():
        assert pickle.dumps(model) == pickle.dumps(right.models[name]), name


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, default_params_raw: dict) -> Trained:
    """The local engine's result: what every other run must give, byte for byte."""
    storage = tmp_path_factory.mktemp("local") / "studies.db"
    settings = parse_params(deep_merge(default_params_raw, {"train": params_overrides(storage)}))
    return train(settings, data(), "fingerprint", run_here)


def params_overrides(storage: Path, round_size: int = 3) -> dict:
    return {
        "storage": f"sqlite:///{storage}",
        "candidates": list(FAMILIES),
        "families": FAMILIES,
        "round_size": round_size,
        "n_jobs": 1,
        "drop_margin": None,  # every family tuned to its n_trials
        "small_data": {"max_rows": 0},
        "pruner": {"n_startup_trials": 2, "n_warmup_steps": 0, "round_interval": 5},
    }


def test_two_workers_give_what_the_local_engine_gives(
    local_run, cluster, make_params, tmp_path: Path
) -> None:
    settings = make_params(train=params_overrides(tmp_path / "studies.db"))
    on_cluster = train(settings, data(), "fingerprint", OnCluster(cluster))
    same(on_cluster, local_run)
    pruned = sum(summary.get("pruned", 0) for summary in local_run.summary.values())
    assert pruned > 0, "the pruner took part (else the rounds' pruning view is untested)"


def test_one_worker_gives_the_same_too(local_run, make_params, tmp_path: Path) -> None:
    settings = make_params(train=params_overrides(tmp_path / "studies.db"))
    with dask_client(ComputeParams(engine="dask", workers=1)) as client:
        assert len(client.nthreads()) == 1
        same(train(settings, data(), "fingerprint", OnCluster(client)), local_run)


def test_round_size_decides_the_trials(local_run, make_params, tmp_path: Path) -> None:
    settings = make_params(train=params_overrides(tmp_path / "studies.db", round_size=1))
    sequential = train(settings, data(), "fingerprint", run_here)
    assert not sequential.tables["xgboost"].equals(local_run.tables["xgboost"])


def test_a_killed_worker_loses_no_finished_trial(local_run, make_params, tmp_path: Path) -> None:
    storage = tmp_path / "studies.db"
    settings = make_params(train=params_overrides(storage))
    result: dict = {}
    with dask_client(ComputeParams(engine="dask", workers=2)) as client:
        pids = client.run(os.getpid)  # worker address -> its process

        execute = OnCluster(client)

        def run() -> None:
            result["trained"] = train(settings, data(), "fingerprint", execute)

        runner = threading.Thread(target=run)
        runner.start()
        deadline, busy = time.monotonic() + 120, []
        while time.monotonic() < deadline and not busy:
            time.sleep(0.05)
            if finished_before_kill(storage):
                busy = [address for address, tasks in client.processing().items() if tasks]
        assert busy, "a worker was running a trial when it was killed"
        holders = {address for future in list(execute.shared.values()) for address in holds(client, future)}
        victim = next((address for address in busy if address in holders), busy[0])  # the data's copy too
        os.kill(pids[victim], signal.SIGKILL)
        runner.join(timeout=300)
    assert "trained" in result
    same(result["trained"], local_run)


def holds(client: Client, future: object) -> tuple[str, ...]:
    """The workers holding a copy of a future's data."""
    return tuple(client.who_has([future]).get(future.key, ()))


def test_trials_whose_data_the_cluster_lost_run_again(
    local_run, cluster, make_params, tmp_path: Path
) -> None:
    """Sent data has no recipe to rebuild it: lost with a worker, its trials are cancelled, and the round
    sends it again and runs them (here the copy is dropped on purpose, as it goes when its worker dies)."""
    settings = make_params(train=params_overrides(tmp_path / "studies.db"))
    lost: list[str] = []

    class Losing(OnCluster):
        def _submit(self, job, data, pooled):  # the round's first trials are sent; then their data is lost
            future = super()._submit(job, data, pooled)
            if not lost:
                lost.extend(shared.key for shared in self.shared.values())
                self.client.cancel(list(self.shared.values()))
            return future

    same(train(settings, data(), "fingerprint", Losing(cluster)), local_run)
    assert lost


def finished_before_kill(storage: Path) -> bool:
    """At least one trial finished and another reporting: the moment to kill its worker. Optuna creates
    the study's tables one by one, so they are read only once both exist."""
    if not storage.exists():
        return False
    with contextlib.closing(sqlite3.connect(storage)) as connection:
        tables = {
            name for (name,) in connection.execute("select name from sqlite_master where type = 'table'")
        }
        if not {"trials", "trial_intermediate_values"} <= tables:
            return False
        states = dict(connection.execute("select state, count(*) from trials group by state").fetchall())
        reporting = connection.execute(
            "select count(*) from trials t where state = 'RUNNING' and exists "
            "(select 1 from trial_intermediate_values v where v.trial_id = t.trial_id)"
        ).fetchone()[0]
    return states.get("COMPLETE", 0) >= 1 and reporting >= 1


class StoppedError(Exception):
    """A run stopped mid-round (killed, interrupted)."""


def test_a_run_stopped_mid_round_resumes_to_the_same_study(local_run, make_params, tmp_path: Path) -> None:
    settings = make_params(train=params_overrides(tmp_path / "studies.db")).train
    outcomes: list = []

    def stops_in_round_two(jobs, data, pooled):  # round one's 3 trials, then one of round two's (after the
        # first trial's round 0)
        for outcome in run_here(jobs, data, pooled):
            if len(outcomes) == 4:
                raise StoppedError
            outcomes.append(outcome)
            yield outcome

    run_study(
        "xgboost", data(), settings, "stopped", limits=Limits(1)
    )  # as train runs it: the defaults alone
    with pytest.raises(StoppedError):
        run_study("xgboost", data(), settings, "stopped", execute=stops_in_round_two)
    study = run_study("xgboost", data(), settings, "stopped")
    assert trial_table(finished_trials(study), "maximize").equals(local_run.tables["xgboost"])


def test_an_unreachable_scheduler_names_the_address(monkeypatch) -> None:
    monkeypatch.setattr("pillars.compute.cluster.CONNECT_TIMEOUT", "2s")
    with (
        pytest.raises(
            PillarsError, match=r"compute.address: no Dask scheduler answers at 'tcp://127.0.0.1:9'"
        ),
        dask_client(ComputeParams(engine="dask", address="tcp://127.0.0.1:9")),
    ):
        pass
