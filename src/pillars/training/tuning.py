"""Optuna studies that give the same trials wherever and however widely they run.

A study runs in rounds of `train.round_size` trials. A round's trials are proposed together, before any of
them runs: trial k (the k-th to finish, counting from 0) by a TPE sampler seeded with `seed + k` from the
trials that finished in earlier rounds. They then run - one after another in this process, or at the same
time on a Dask cluster's workers (`pillars.compute`) - and the pruner judges each against the trials of
earlier rounds only (`EarlierRounds`): what trials of one round could see of each other depends on timing,
what earlier rounds left does not. So the trials, their values and the chosen model are the same for any
number of workers, and a round size of 1 is the sequential study (trial k proposed from the k trials
before it).

Every trial records its round (a user attribute) before it runs. A run that stops mid-round (killed,
interrupted) leaves that round's unfinished trials RUNNING with their hyperparameters: the next run runs
them again before proposing anything, so a resumed study equals an uninterrupted one. On Dask, a task
whose worker dies is run again on another (distributed's own rescheduling); a trial is saved as finished
the moment its result reaches this process, so a lost worker loses no finished trial.
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from distributed import Client, Future, as_completed
from distributed.client import FutureCancelledError
from optuna.pruners import BasePruner, MedianPruner
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from threadpoolctl import threadpool_limits

from pillars.compute.cluster import dask_client
from pillars.core.errors import PillarsError
from pillars.core.metrics import METRICS
from pillars.core.params import ComputeParams, SearchDimension, TrainParams
from pillars.training.budget import ROUND, Limits
from pillars.training.cv import Pooled, cross_validate
from pillars.training.families import FAMILIES
from pillars.training.families.spec import Fitted, Report, TrainingData

logger = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def open_storage(url: str) -> str | BaseStorage:
    """An Optuna storage from a URL; `journal:///path` is a journal file that several processes can share."""
    if url.startswith("journal:///"):
        path = Path(url.removeprefix("journal:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def study_name(
    family: str,
    settings: TrainParams,
    data_fingerprint: str,
    folds: int | None = None,
    external_memory: bool = False,
) -> str:
    """Names a study by what decides its trials (not by its budget, so raising n_trials continues it);
    `folds` when the trials are scored by cross-validation (small data), the round size when above 1, and
    whether XGBoost trains in external memory (its quantiles come from the file's row groups)."""
    config = settings.families[family]
    identity = {
        "family": family,
        "fixed": config.fixed,
        "space": {name: dimension.model_dump() for name, dimension in config.space.items()},
        "start": config.start,
        "metric": settings.metric,
        "seed": settings.seed,
        "pruner": settings.pruner.model_dump(),
        "steps": [settings.cv_folds, settings.warm_start_step, settings.patience],
        "threads": settings.n_jobs,  # thread count can change a boosting library's result
        "data": data_fingerprint,
    }
    if folds is not None:  # holdout studies keep the names they always had
        identity["tuning"] = {"method": "cv", "folds": folds}
    if settings.round_size > 1:  # so do sequential ones (a round of one trial)
        identity["round_size"] = settings.round_size
    if external_memory:
        identity["train_matrix"] = "external_memory"
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{family}-{digest}"


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict:
    """Hyperparameters for one trial, drawn from the search space in params."""
    values: dict = {}
    for name, dimension in space.items():
        if dimension.type == "categorical":
            values[name] = trial.suggest_categorical(name, dimension.choices)
        elif dimension.type == "int":
            values[name] = trial.suggest_int(name, int(dimension.low), int(dimension.high), log=dimension.log)
        else:
            values[name] = trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)
    return values


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The finished trials (complete or pruned), in proposal order."""
    return study.get_trials(deepcopy=False, states=FINISHED)


class _EarlierTrials:
    """A study as a pruner reads it, without the trials of round `current` and later."""

    def __init__(self, study: optuna.Study, current: int) -> None:
        self._study, self._current = study, current

    def get_trials(
        self, deepcopy: bool = True, states: Iterable[TrialState] | None = None
    ) -> list[FrozenTrial]:
        trials = self._study.get_trials(deepcopy=deepcopy, states=states)
        return [trial for trial in trials if trial.user_attrs.get(ROUND, -1) < self._current]

    def __getattr__(self, name: str) -> object:
        return getattr(self._study, name)


class EarlierRounds(BasePruner):
    """A pruner that judges a trial of round `current` only against trials of earlier rounds."""

    def __init__(self, pruner: BasePruner, current: int) -> None:
        self.pruner, self.current = pruner, current

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.pruner.prune(_EarlierTrials(study, self.current), trial)


@dataclass(frozen=True)
class TrialJob:
    """One proposed trial, everything a worker needs to run it (the data travel beside it)."""

    family: str
    study: str
    trial_id: int
    number: int
    round: int
    hyper: dict
    settings: TrainParams


Outcome = tuple[TrialState, float | None]  # COMPLETE with its value, or PRUNED
Execute = Callable[[list[TrialJob], TrainingData, Pooled | None], Iterator[tuple[TrialJob, Outcome]]]


def _pruner(settings: TrainParams) -> MedianPruner:
    return MedianPruner(
        n_startup_trials=settings.pruner.n_startup_trials, n_warmup_steps=settings.pruner.n_warmup_steps
    )


def run_trial(job: TrialJob, data: TrainingData, pooled: Pooled | None) -> Outcome:
    """Fit one proposed trial, reporting to its study's storage (in this process or on a worker); with
    `pooled` (small data), its value is the mean score over the folds of train + valid."""
    pruner = EarlierRounds(_pruner(job.settings), job.round)
    storage = open_storage(job.settings.storage)
    study = optuna.load_study(study_name=job.study, storage=storage, pruner=pruner)
    trial = optuna.Trial(study, job.trial_id)

    def report(step: int, value: float) -> None:
        trial.report(value, step)  # a step reported before (a task run again) is ignored, with a warning
        if trial.should_prune():
            raise optuna.TrialPruned()

    try:
        fitted = fit_trial(job.family, job.hyper, data, pooled, job.settings, report)
    except optuna.TrialPruned:
        return TrialState.PRUNED, None
    return TrialState.COMPLETE, fitted.value


def fit_trial(
    family: str, hyper: dict, data: TrainingData, pooled: Pooled | None, settings: TrainParams, report: Report
) -> Fitted:
    """What a trial fits, with `train.n_jobs` threads: the configuration on train scored on valid, or (with
    `pooled`, small data) over the folds of train + valid."""
    try:
        with threadpool_limits(settings.n_jobs):
            if pooled is not None:
                return cross_validate(family, hyper, pooled, settings, report)
            return FAMILIES[family].fit(hyper, data, settings, report)
    except TypeError as error:  # an argument the estimator does not take: a params mistake
        raise PillarsError(f"params.yaml: train.families.{family}: {error}") from error


def run_here(
    jobs: list[TrialJob], data: TrainingData, pooled: Pooled | None
) -> Iterator[tuple[TrialJob, Outcome]]:
    """The local engine: a round's trials one after another, in this process."""
    for job in jobs:
        yield job, run_trial(job, data, pooled)


class OnCluster:
    """The Dask engine: a round's trials at the same time on the cluster's workers (one task each, the
    data sent to every worker once), each outcome yielded as it arrives. Sent data is not recomputable:
    when a worker dies holding its last copy (Dask keeps one copy of what no task waits for), the trials
    that needed it are cancelled, so the data is sent again and they run again (at most `RESENDS` times a
    round)."""

    RESENDS = 3

    def __init__(self, client: Client) -> None:
        self.client = client
        self.shared: dict[int, Future] = {}  # id of the data in this process -> its copy on the workers

    def _share(self, data: object) -> Future | None:
        if data is None:
            return None
        if id(data) not in self.shared:
            self.shared[id(data)] = self.client.scatter(data, broadcast=True, hash=False)
        return self.shared[id(data)]

    def _submit(self, job: TrialJob, data: TrainingData, pooled: Pooled | None) -> Future:
        return self.client.submit(run_trial, job, self._share(data), self._share(pooled), pure=False)

    def __call__(
        self, jobs: list[TrialJob], data: TrainingData, pooled: Pooled | None
    ) -> Iterator[tuple[TrialJob, Outcome]]:
        sent = 0  # how many times this round sent the data again; a future's number says which copy it used
        futures = {self._submit(job, data, pooled): (job, sent) for job in jobs}
        finished = as_completed(list(futures))
        for future in finished:
            job, copy = futures.pop(future)
            try:
                outcome = future.result()
            except FutureCancelledError:
                if copy == sent:  # the copy in use was lost (the other cancelled trials used it too)
                    if sent == self.RESENDS:
                        raise PillarsError(
                            f"train: the cluster lost the training data {sent + 1} times in a round "
                            "(its workers keep dying): see the workers' logs"
                        ) from None
                    logger.warning("train: a worker died with the training data: sending it again")
                    self.shared.clear()
                    sent += 1
                retried = self._submit(job, data, pooled)
                futures[retried] = (job, sent)
                finished.add(retried)
                continue
            yield job, outcome


@contextmanager
def trial_runner(compute: ComputeParams) -> Iterator[Execute]:
    """What runs the trials: this process (`compute.engine: local`) or the Dask cluster (`dask`)."""
    if compute.engine == "local":
        yield run_here
        return
    with dask_client(compute) as client:
        yield OnCluster(client)


def _unfinished(study: optuna.Study) -> list[FrozenTrial]:
    """Trials a stopped run proposed and never finished (RUNNING, with their round recorded); trials
    without a round (stopped while being proposed, or from older versions) are marked failed, which every
    reader ignores."""
    left = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if ROUND in trial.user_attrs:
            left.append(trial)
        else:
            study.tell(trial.number, state=TrialState.FAIL)
    return left


def _begun(study: optuna.Study) -> bool:
    """Whether the study holds a trial proposed whole (with its round), finished, or waiting to be asked:
    else its first trial, the start point, is still to be proposed (a run may have stopped proposing it)."""
    return any(
        ROUND in trial.user_attrs or trial.state in (*FINISHED, TrialState.WAITING)
        for trial in study.get_trials(deepcopy=False)
    )


def _load(
    name: str, settings: TrainParams, sampler: optuna.samplers.BaseSampler | None = None
) -> optuna.Study:
    """The study as storage holds it now (a fresh connection: nothing cached from before a round)."""
    return optuna.load_study(study_name=name, storage=open_storage(settings.storage), sampler=sampler)


def _job(family: str, name: str, trial: FrozenTrial | optuna.Trial, settings: TrainParams) -> TrialJob:
    config = settings.families[family]
    hyper = {**config.fixed, **trial.params}
    return TrialJob(family, name, trial._trial_id, trial.number, trial.user_attrs[ROUND], hyper, settings)


def _propose(
    family: str, name: str, settings: TrainParams, done: int, room: int, round_index: int
) -> list[TrialJob]:
    """The next round's trials (at most `room`), proposed from the trials finished so far (`done` of them):
    trial k by a sampler seeded with seed + k. Each trial records its round once all the round's
    hyperparameters are stored: a run stopped while proposing leaves trials without a round, which the next
    run fails and proposes again, the same way (a trial with a round always has all its hyperparameters)."""
    config = settings.families[family]
    trials = []
    for offset in range(min(settings.round_size, room)):
        sampler = optuna.samplers.TPESampler(seed=settings.seed + done + offset, constant_liar=False)
        trials.append(_load(name, settings, sampler).ask())
        suggest(trials[-1], config.space)
    for trial in trials:
        trial.set_user_attr(ROUND, round_index)
    return [_job(family, name, trial, settings) for trial in trials]


def run_study(
    family: str,
    data: TrainingData,
    settings: TrainParams,
    name: str,
    pooled: Pooled | None = None,
    execute: Execute = run_here,
    limits: Limits | None = None,
    progress: "Progress | None" = None,
) -> optuna.Study:
    """Run rounds of trials until `limits` are reached (default: the family's `n_trials`), resuming what
    storage already has; `execute` runs a round's trials (here, or on a cluster) and yields each outcome as
    it comes, to be saved at once; `progress` says so on the terminal."""
    config = settings.families[family]
    limits = limits or Limits(config.n_trials)
    progress = progress or Progress(limits.trials)
    direction = METRICS[data.task][settings.metric].direction
    storage = open_storage(settings.storage)
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    taken = limits.taken(finished_trials(study))
    if progress.resumed(family, taken, limits):  # trials an earlier run finished
        logger.info(
            "train: %s: resuming study %s with %d of %d trials finished",
            family,
            name,
            len(taken),
            limits.trials,
        )
    jobs = [_job(family, name, trial, settings) for trial in _unfinished(study)]  # a stopped run's round
    if config.start and not _begun(study):
        study.enqueue_trial(config.start)  # the first trial: the library's defaults
    started = time.monotonic()
    while jobs or not limits.reached(finished := finished_trials(study)):
        if settings.timeout_s is not None and time.monotonic() - started > settings.timeout_s:
            logger.info("train: %s: timeout after %d trials", family, len(limits.taken(finished)))
            break
        if not jobs:
            rounds = [trial.user_attrs.get(ROUND, -1) for trial in study.get_trials(deepcopy=False)]
            done, room = len(finished), limits.room(finished)
            jobs = _propose(family, name, settings, done, room, max(rounds, default=-1) + 1)
        study = _load(name, settings)
        for job, (state, value) in execute(jobs, data, pooled):
            study.tell(job.number, value, state=state)
            progress.told(family, study, job.number, limits)
        jobs = []
    return _load(name, settings)


class Progress:
    """One terminal line per finished trial: its value, the best so far, the time elapsed and an estimate of
    the time left. The estimate scales the work still to do (counted: `total` in the limits' units, trials
    or budget seconds) by the time the work done took (measured); it goes to the terminal, never to outputs."""

    def __init__(self, total: float) -> None:
        self.total, self.done, self.started = total, 0.0, time.monotonic()
        self.counted: set[tuple[str, int]] = set()  # (family, trial number) of the trials told or resumed

    def skip(self, work: float) -> None:
        """Work this run will not do (a family that stopped early)."""
        self.total -= work

    def resumed(self, family: str, trials: list[FrozenTrial], limits: Limits) -> int:
        """Trials an earlier run finished: work this run will not do; how many."""
        earlier = [trial for trial in trials if (family, trial.number) not in self.counted]
        self.counted |= {(family, trial.number) for trial in earlier}
        self.skip(limits.work_of(earlier))
        return len(earlier)

    def told(self, family: str, study: optuna.Study, number: int, limits: Limits) -> None:
        trials = finished_trials(study)
        trial = next(trial for trial in trials if trial.number == number)
        self.counted.add((family, number))
        self.done += limits.work_of([trial])
        elapsed = time.monotonic() - self.started
        left = max(self.total - self.done, 0.0) * elapsed / self.done if self.done else float("nan")
        outcome = "pruned" if trial.state == TrialState.PRUNED else f"{trial.value:.4f}"
        completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
        best = f"{study.best_value:.4f}" if completed else "-"
        logger.info(
            "train: %s: trial %d/%d: %s (best %s) | %s elapsed, about %s left",
            family,
            len(trials),
            limits.trials,
            outcome,
            best,
            _duration(elapsed),
            _duration(left),
        )


def _duration(seconds: float) -> str:
    """`1m05s`, `12s`; `?` before anything is known."""
    if seconds != seconds:  # NaN
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
