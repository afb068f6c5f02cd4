"""How many threads a model fits with: a function of the data, never of the machine or its load.

Thread count can change XGBoost's and LightGBM's results, so `train.n_jobs: auto` decides it from the train
matrix alone: one thread while a boosting round's work (rows x features) is below `ONE_THREAD_CELLS`, where
the work per thread is too small to pay for handing it out and waiting for it (and on a busy machine a second
thread waits for a core another process holds), else `train.max_threads`. Measured on 2 cores
(tests/benchmarks/results/threads.md): at 3,000 x 50 one XGBoost thread was faster than two; at 30,000 x 76
two threads took 0.67x the time of one.
"""

from pillars.core.params import TrainParams

ONE_THREAD_CELLS = 1_000_000  # rows x features below which every fit runs one thread


def threads_for(settings: TrainParams, rows: int, features: int) -> int:
    """The thread count for fits on a train matrix of `rows` x `features`: `train.n_jobs` when it is a
    number, else (auto) 1 for small work and `train.max_threads` above it."""
    if settings.n_jobs != "auto":
        return settings.n_jobs
    return 1 if rows * features < ONE_THREAD_CELLS else settings.max_threads


def with_threads(settings: TrainParams, rows: int, features: int) -> TrainParams:
    """The train settings with `n_jobs` resolved to a count for this matrix (what every fit reads)."""
    return settings.model_copy(update={"n_jobs": threads_for(settings, rows, features)})
