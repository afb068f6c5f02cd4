"""Benchmark: threads per fit on 2 cores, idle and with one competing CPU-bound process, spinning or passive.

Run by `make bench` (not a pytest test). XGBoost and LightGBM fit 100 rounds (30 on the largest shape) of a
seeded synthetic binary matrix at four sizes, with 1 and 2 threads, with OpenMP's threads spinning while they
wait (`OMP_WAIT_POLICY=ACTIVE`) or sleeping (`PASSIVE`, what importing pillars sets), each in a fresh
process, idle and again with a `while True: pass` process on the machine. What it shows decides
`train.n_jobs: auto` (pillars.training.threads: one thread below a million cells per round) and the waiting
policy. Results: tests/benchmarks/results/threads.{json,md}; targets: passive waiting keeps a competed fit
within 1.5x of its idle time at the thread count `auto` picks.
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from bench_data_pillars import CPU_LIMIT, REPO, Target, machine_facts, pin_cpus, write_results

sys.path.insert(0, str(REPO / "src"))
from pillars.core.lifetime import end_with_parent  # the competitor ends with this benchmark
from pillars.training.threads import ONE_THREAD_CELLS

SHAPES = ((300, 20, 100), (3_000, 50, 100), (30_000, 76, 100), (300_000, 50, 30))  # rows, columns, rounds
BUSY_LIMIT = 1.5
FIT = """
import json, sys, time
import numpy as np
family, rows, columns, threads, rounds = sys.argv[1], *map(int, sys.argv[2:])
generator = np.random.default_rng(0)
x = generator.normal(size=(rows, columns)).astype("float32")
y = (x[:, 0] + x[:, 1] * x[:, 2] + generator.normal(size=rows) > 0).astype(int)
if family == "xgboost":
    import xgboost
    model = xgboost.XGBClassifier(n_estimators=rounds, n_jobs=threads, tree_method="hist", max_depth=6)
else:
    import lightgbm
    model = lightgbm.LGBMClassifier(n_estimators=rounds, n_jobs=threads, verbose=-1, deterministic=True,
                                    force_row_wise=True)
started = time.perf_counter()
model.fit(x, y)
print(json.dumps(time.perf_counter() - started))
"""


def fit_seconds(family: str, shape: tuple[int, int, int], threads: int, policy: str) -> float:
    """One fit in a fresh process (OpenMP reads its waiting policy when it loads)."""
    rows, columns, rounds = shape
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    command = [sys.executable, "-c", FIT, family, str(rows), str(columns), str(threads), str(rounds)]
    return float(
        json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    )


def measure(family: str, shape: tuple[int, int, int], threads: int, policy: str) -> dict:
    """Idle, then with one competing CPU-bound process; the least of two runs each."""
    idle = min(fit_seconds(family, shape, threads, policy) for _ in range(2))
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=end_with_parent)
    try:
        busy = min(fit_seconds(family, shape, threads, policy) for _ in range(2))
    finally:
        competitor.kill()
        competitor.wait()
    return {"idle_s": round(idle, 3), "busy_s": round(busy, 3)}


def auto_threads(shape: tuple[int, int, int]) -> int:
    return 1 if shape[0] * shape[1] < ONE_THREAD_CELLS else 2


def targets_of(results: dict) -> dict[str, Target]:
    """Passive waiting at the count `auto` picks: competed time within BUSY_LIMIT of idle."""
    targets = {}
    for row in results["runs"]:
        if row["policy"] == "PASSIVE" and row["threads"] == row["auto_threads"]:
            name = f"{row['family']} {row['rows']} x {row['columns']}"
            targets[name] = Target(
                f"{name}: competed / idle", row["busy_s"] / row["idle_s"], BUSY_LIMIT, "x", kind="max"
            )
    return targets


def write_markdown(path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`): one fit per fresh "
        "process, the least of two; `busy`: with one `while True: pass` process on the machine. `auto`: the "
        "thread count `train.n_jobs: auto` picks.",
        "",
        "| family | rows x columns (rounds) | waiting | threads | idle s | busy s | busy / idle |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in results["runs"]:
        auto = " (auto)" if row["threads"] == row["auto_threads"] else ""
        lines.append(
            f"| {row['family']} | {row['rows']:,} x {row['columns']} ({row['rounds']}) | {row['policy'].lower()} | "
            f"{row['threads']}{auto} | {row['idle_s']:.3f} | {row['busy_s']:.3f} | "
            f"{row['busy_s'] / row['idle_s']:.2f}x |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    runs = []
    for family in ("xgboost", "lightgbm"):
        for shape in SHAPES:
            for policy in ("ACTIVE", "PASSIVE"):
                for threads in (1, 2):
                    measured = measure(family, shape, threads, policy)
                    rows, columns, rounds = shape
                    runs.append(
                        {
                            "family": family,
                            "rows": rows,
                            "columns": columns,
                            "rounds": rounds,
                            "policy": policy,
                            "threads": threads,
                            "auto_threads": auto_threads(shape),
                        }
                        | measured
                    )
                    print(runs[-1], flush=True)
    results = {"started": started.isoformat(timespec="seconds"), "machine": machine_facts(cpus), "runs": runs}
    return write_results("threads", results, targets_of(results), write_markdown)


if __name__ == "__main__":
    sys.exit(main())
