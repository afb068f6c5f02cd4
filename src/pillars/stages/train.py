"""Pillar 7, train: one Optuna-tuned model per candidate family.

Each family gets a study in persistent storage (`train.storage`: SQLite by default, any Optuna storage URL,
or `journal:///path` for a journal file), named after its search space, the metric, the seed and the
feature data, so an interrupted run resumes where it stopped and a changed setup starts a new study. Trials
run in rounds proposed from the trials finished before them (`pillars.training.tuning`), in this process or
on a Dask cluster (`compute.engine`): same data and params give the same models, byte for byte, however
many workers ran them.

After the families: the ensemble candidate (`pillars.training.ensemble`, weights from the held-out scores) and,
for a binary task, each candidate's decision threshold tuned on the same held-out scores
(`pillars.training.threshold`); both go to metrics/train.json.

Small data (train + valid at most `train.small_data.max_rows` rows, see `pillars.training.cv`): every trial is
scored by k-fold cross-validation on train + valid, the chosen configuration is refit on train + valid, and
its out-of-fold predictions are written beside the model for validate_model and select. metrics/train.json
says which tuning ran.
"""

import logging
from typing import NamedTuple

import optuna
import pandas as pd
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from pillars.core import data_handoffs, layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import (
    write_bytes,
    write_parquet,
    write_pickle,
)
from pillars.core.metrics import METRICS, predict_scores
from pillars.core.params import ENSEMBLE, Params, TrainParams, load_params
from pillars.serve.estimators import Blend, blend_scores
from pillars.training.budget import Limits, first_limits, kept_families, share, tuning_limits, tuning_order
from pillars.training.cv import Pooled, cross_validate, pool, refit, tuning_summary, uses_cv
from pillars.training.ensemble import select_weights
from pillars.training.families import FAMILIES, check_families
from pillars.training.families.spec import TrainingData
from pillars.training.matrices import data_fingerprint, load_training_data
from pillars.training.oof import oof_table
from pillars.training.threads import with_threads
from pillars.training.threshold import tune_threshold
from pillars.training.tuning import (
    Execute,
    Progress,
    finished_trials,
    run_here,
    run_study,
    study_name,
    trial_runner,
)

logger = logging.getLogger(__name__)


def check_external_memory(data: TrainingData, settings: TrainParams) -> None:
    """Out of core, only XGBoost trains: any other candidate is an error naming the params to change."""
    able = [name for name, family in FAMILIES.items() if family.out_of_core]
    others = [name for name in settings.candidates if name not in able]
    if data.in_external_memory and others:
        raise PillarsError(
            f"train: train has {len(data.y_train)} rows, more than train.external_memory_rows "
            f"({settings.external_memory_rows}), so it trains out of core, which only {' and '.join(able)} "
            f"can: set train.candidates to {able} (now also {others}), or raise train.external_memory_rows "
            "if the matrix fits in memory"
        )


def trial_table(trials: list[optuna.trial.FrozenTrial], direction: str) -> pd.DataFrame:
    """Finished trials in order: their params, value, state and the best value so far (no durations)."""
    rows = []
    best = None
    for index, trial in enumerate(trials):
        value = trial.value if trial.state == TrialState.COMPLETE else None
        if value is not None and (
            best is None or (value > best if direction == "maximize" else value < best)
        ):
            best = value
        rows.append(
            {"trial": index, "state": trial.state.name.lower(), "value": value, "best_value": best}
            | {f"param_{name}": param for name, param in sorted(trial.params.items())}
        )
    return pd.DataFrame(rows)


class Trained(NamedTuple):
    """What train returns: per family the model, the trial table, the summary (metrics/train.json) and, for
    small-data tuning, the out-of-fold predictions; how the tuning was done; and the baseline: the library
    defaults (first trial) of the family whose defaults scored best, the untuned model a person would fit,
    for assess to set beside the selected model on test."""

    models: dict
    tables: dict[str, pd.DataFrame]
    summary: dict
    tuning: dict
    out_of_fold: dict[str, pd.DataFrame]
    baseline: object


Tuned = dict[str, tuple[list[optuna.trial.FrozenTrial], str | None]]  # family -> its trials, why it stopped


class Final(NamedTuple):
    """A configuration fitted for good: the model, its scores on the held-out rows (valid, or out of fold),
    and for small data its out-of-fold predictions and the rounds the refit used."""

    model: object
    held_out: object
    out_of_fold: pd.DataFrame | None = None
    refit_rounds: int | None = None


def fit_final(
    family: str, hyper: dict, data: TrainingData, pooled: Pooled | None, settings: TrainParams
) -> Final:
    """Fit a configuration on train (scored on valid), or (small data) once more over the folds for its
    out-of-fold predictions, then on train + valid."""
    if pooled is None:
        model = FAMILIES[family].fit(hyper, data, settings, _ignore).model
        return Final(model, predict_scores(model, data.x_valid, data.task))
    checked = cross_validate(family, hyper, pooled, settings, _ignore)
    model = refit(family, hyper, pooled, settings, checked.refit_rounds)
    oof = oof_table(checked.out_of_fold, pooled.folds, len(data.y_train))
    return Final(model, checked.out_of_fold, oof, checked.refit_rounds)


def tune(
    settings: TrainParams, data: TrainingData, names: dict[str, str], pooled: Pooled | None, execute: Execute
) -> Tuned:
    """Every family's study (`pillars.training.budget`): first each family's first trial (the library's
    defaults); then the families within `train.drop_margin` of the best first trial, cheapest first, each up
    to its `n_trials` and its share of what is left of `train.budget`. Per family, in `train.candidates`'
    order: the trials its result comes from, and why it stopped after its first trial (None: it did not)."""
    total = settings.budget.seconds if settings.budget else sum(settings.families[f].n_trials for f in names)
    progress = Progress(total)

    def run(family: str, limits: Limits) -> list[optuna.trial.FrozenTrial]:
        study = run_study(family, data, settings, names[family], pooled, execute, limits, progress)
        return limits.taken(finished_trials(study))

    firsts = {family: run(family, first_limits(settings, family)) for family in names}
    work = {family: first_limits(settings, family).work_of(trials) for family, trials in firsts.items()}
    maximize = METRICS[data.task][settings.metric].direction == "maximize"
    values = {family: trials[0].value for family, trials in firsts.items()}
    kept = kept_families(values, maximize, settings.drop_margin)
    best = max(values.values()) if maximize else min(values.values())
    reasons = {
        family: f"first trial {values[family]:.6g} is more than train.drop_margin ({settings.drop_margin}) "
        f"from the best first trial ({best:.6g})"
        for family in names
        if family not in kept
    }
    for family in reasons:
        logger.info("train: %s: stops after its first trial: %s", family, reasons[family])
        if settings.budget is None:
            progress.skip(settings.families[family].n_trials - 1)
    taken = dict(firsts)
    spent = sum(work.values())
    order = tuning_order(kept, work)
    for position, family in enumerate(order):
        extra = share(settings, spent, len(order) - position)
        limits = tuning_limits(settings, family, None if extra is None else work[family] + extra)
        taken[family] = run(family, limits)
        spent += limits.work_of(taken[family]) - work[family]
    return {family: (taken[family], reasons.get(family)) for family in names}


def _ignore(step: int, value: float) -> None:
    """A report that goes nowhere: refits and final runs are not trials."""


def train(params: Params, data: TrainingData, data_fingerprint: str, execute: Execute = run_here) -> Trained:
    """Tune and fit every candidate family (`execute` runs each round of trials: here, or on a cluster), then
    the ensemble of them, and (binary) tune each candidate's decision threshold on the held-out rows; return
    the models, trial tables and the summary metrics."""
    settings = with_threads(params.train, len(data.y_train), data.x_valid.shape[1])
    check_external_memory(data, settings)
    models, tables, summary, out_of_fold = {}, {}, {}, {}
    held_out: dict = {}  # per candidate: its scores on the held-out rows (valid, or out of fold)
    tuning = tuning_summary(data, settings) | {"threads": settings.n_jobs}
    pooled = pool(data, settings) if uses_cv(data, settings) else None
    if pooled is not None:
        logger.info(
            "train: small data (%d rows in train + valid, at most %d): %d-fold cross-validation",
            len(pooled.y),
            settings.small_data.max_rows,
            pooled.k,
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = pooled.k if pooled is not None else None
    names = {
        family: study_name(family, settings, data_fingerprint, folds, data.in_external_memory)
        for family in settings.candidates
    }
    direction = METRICS[data.task][settings.metric].direction
    pick = max if direction == "maximize" else min  # the first of equal values, as Optuna picks
    bests = {}
    with threadpool_limits(settings.n_jobs):
        studies = tune(settings, data, names, pooled, execute)
        tuning["dropped"] = {family: reason for family, (_, reason) in studies.items() if reason}
        for family, (taken, _) in studies.items():
            completed = [trial for trial in taken if trial.state == TrialState.COMPLETE]
            if not completed:
                raise PillarsError(
                    f"train: {family}: every trial was pruned or failed; widen train.families.{family}.space"
                )
            best = bests[family] = pick(completed, key=lambda trial: trial.value)
            hyper = {**settings.families[family].fixed, **best.params}
            tables[family] = trial_table(taken, direction)
            summary[family] = {
                "best_value": round(float(best.value), 6),
                "trials": len(tables[family]),
                "pruned": int((tables[family]["state"] == "pruned").sum()),
                # the first trial is the start point, the library's defaults: did no tuned trial beat them?
                "best_is_defaults": best.number == 0 and bool(settings.families[family].start),
                "best_params": {key: _plain(value) for key, value in sorted(best.params.items())},
            }
            final = fit_final(family, hyper, data, pooled, settings)
            models[family], held_out[family] = final.model, final.held_out
            if final.out_of_fold is not None:
                out_of_fold[family] = final.out_of_fold
            if final.refit_rounds is not None:
                summary[family]["refit_rounds"] = final.refit_rounds
            logger.info(
                "train: %s: best %s %.4f after %d trials",
                family,
                settings.metric,
                best.value,
                len(tables[family]),
            )
        firsts = {family: trials[0] for family, (trials, _) in studies.items()}
        default = pick(firsts, key=lambda family: firsts[family].value)
        if bests[default].number == firsts[default].number:  # tuning found nothing better: the same model
            baseline = models[default]
        else:
            first = {**settings.families[default].fixed, **firsts[default].params}
            baseline = fit_final(default, first, data, pooled, settings).model
    tuning["baseline"] = {"family": default, "value": round(float(firsts[default].value), 6)}
    y_held_out = data.y_valid if pooled is None else pooled.y
    if settings.blends:
        fitted = select_weights(held_out, y_held_out, data.task, settings.metric, settings.ensemble.size)
        members = {name: models[name] for name in fitted.weights}
        models[ENSEMBLE] = Blend(members, fitted.weights, data.task == "regression", settings.n_jobs)
        held_out[ENSEMBLE] = blend_scores(held_out, fitted.weights)
        summary[ENSEMBLE] = {"best_value": round(fitted.value, 6), "weights": fitted.weights}
        if pooled is not None:
            out_of_fold[ENSEMBLE] = oof_table(held_out[ENSEMBLE], pooled.folds, len(data.y_train))
        logger.info("train: ensemble: %s %.4f with weights %s", settings.metric, fitted.value, fitted.weights)
    if data.task == "binary":
        for name in models:
            summary[name]["threshold"] = tune_threshold(
                y_held_out, held_out[name], settings.threshold
            ).report()
    return Trained(models, tables, summary, tuning, out_of_fold, baseline)


def _plain(value: object) -> object:
    return round(value, 8) if isinstance(value, float) else value


def main() -> None:
    params = load_params()
    check_families(params.train)
    manifest = data_handoffs.FEATURE_MANIFEST.read()
    data = load_training_data(manifest, params.dataset.task, params.train.external_memory_rows)
    with trial_runner(params.compute) as execute:
        trained = train(params, data, data_fingerprint(), execute)
    for name, model in trained.models.items():
        write_pickle(layout.candidate_model(name), model)
    write_pickle(layout.BASELINE_MODEL, trained.baseline)
    for family, table in trained.tables.items():
        write_bytes(layout.trials_table(family), lambda path, table=table: table.to_csv(path, index=False))
    for family, predictions in trained.out_of_fold.items():
        write_parquet(layout.candidate_oof(family), predictions)
    best_params = {
        family: entry.pop("best_params")
        for family, entry in trained.summary.items()
        if family in trained.tables
    }
    model_handoffs.BEST_PARAMS.write(best_params)
    model_handoffs.TRAIN_REPORT.write(
        {"metric": params.train.metric, "tuning": trained.tuning, "candidates": trained.summary},
    )


if __name__ == "__main__":
    run_cli(main)
