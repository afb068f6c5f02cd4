"""Benchmark of the shadow replay: 100,000 logged rows through the candidate and the champion, on 2 CPUs.

Not a pytest test. Run `python tests/benchmarks/bench_shadow.py` after `dvc repro package` (it needs
models/service.bento, a candidate model in models/candidates/ and the curated holdout split). The candidate is
the packaged serving model; the champion is the same serving path with another trained candidate's model
(a real, different model). 100,000 raw holdout rows (drawn with replacement, seeded) are scored by the
champion and logged with the service's own writer twice: as the service logs under light load (one row per
line) and as batch inference logs (10,000 rows per line). Each log is then replayed as the stage does
(`read_requests` + `shadow`): read, both models in batches of `shadow.batch_rows`, faithfulness, agreement
per slice. Once more with ground truth for every row, which adds the paired bootstrap of the gate.

Target: 100,000 logged rows replayed through both models in under 60 s, in the slowest of the four runs (one row
per line, with ground truth for every row).
Results go to tests/benchmarks/results/shadow.{json,md}; it exits with status 1 when the target is missed.
"""

import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from bench_data_pillars import CPU_LIMIT, REPO, Target, machine_facts, pin_cpus, write_results

from pillars.bento.archive import packaged_model
from pillars.bento.parity import raw_rows
from pillars.core import layout
from pillars.core.io import read_parquet
from pillars.core.params import Params, load_params
from pillars.core.schema import load_checked
from pillars.monitoring.logs import read_feedback
from pillars.monitoring.shadow import read_requests
from pillars.serve.capture import PredictionLog, log_line
from pillars.serve.estimators import load_model
from pillars.serve.model import ServingModel
from pillars.stages.shadow import shadow_as_params_set

ROWS = 100_000
SEED = 3
LIMIT_S = 60.0
LOGS = {"service": 1, "batch": 10_000}  # log -> rows per line
CHAMPION_FAMILIES = ("xgboost", "lightgbm", "catboost", "hist_gradient_boosting", "linear")


def champion_of(candidate: ServingModel) -> tuple[ServingModel, str]:
    """The candidate's serving path around another trained family's model: a real, different champion."""
    family = next(name for name in CHAMPION_FAMILIES if (layout.CANDIDATES_DIR / f"{name}.pkl").is_file())
    model = load_model((layout.CANDIDATES_DIR / f"{family}.pkl").read_bytes())
    return replace(candidate, model=model, version=f"champion-{family}"), family


def traffic(params: Params, serving: ServingModel) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """ROWS raw holdout rows as the service receives them, and their labels as clients report them."""
    curated = read_parquet(layout.curated_split("holdout"))
    columns = raw_rows(
        read_parquet(layout.RAW_DATA), curated, load_checked(params), params.dataset.placeholders
    )
    picked = np.random.default_rng(SEED).choice(len(curated), ROWS, replace=True)
    codes = curated[params.dataset.target].to_numpy().astype("int64")[picked]
    labels = np.asarray(serving.labels, dtype=object)[codes]
    return {item.name: columns[item.name][picked] for item in serving.fields}, labels


def write_log(
    folder: Path, source: str, champion: ServingModel, columns: dict[str, np.ndarray], per_line: int
) -> list[str]:
    """The champion's answers to every row, logged by the service's writer `per_line` rows a line; the ids."""
    scored = champion.score(champion.typed(columns))
    log = PredictionLog(folder, 64 * 2**20)
    request_ids = [f"r{row}" for row in range(ROWS)]
    for start in range(0, ROWS, per_line):
        line = slice(start, start + per_line)
        log.write(
            log_line(
                source=source,
                model_version=champion.version,
                request_ids=request_ids[line],
                rows=[0] * len(request_ids[line]),
                inputs={name: values[line] for name, values in columns.items()},
                predictions=scored.predictions[line],
                probabilities={label: values[line] for label, values in (scored.probabilities or {}).items()},
                time_utc=None,
            )
        )
    log.close()
    return request_ids


def timed_replay(
    params: Params, logs: Path, feedback: Path, candidate: ServingModel, champion: ServingModel
) -> dict:
    """The stage's work on one log: read it (and the feedback), replay through both models, report."""
    started = time.perf_counter()
    logged = read_requests(logs, params.shadow.window_rows)
    read_s = time.perf_counter() - started
    truth = read_feedback(feedback, params.dataset.target, logged.skipped)
    result = shadow_as_params_set(params, logged, truth, candidate, champion)
    total_s = time.perf_counter() - started
    report = result.report
    return {
        "rows": logged.rows,
        "lines": logged.lines,
        "read_s": round(read_s, 2),
        "candidate_s": round(result.seconds["candidate"], 2),
        "champion_s": round(result.seconds["champion"], 2),
        "total_s": round(total_s, 2),
        "faithful": report["faithful"]["champion"]["differ"] == 0 and report["rows"]["replayed"] == ROWS,
        "agreement": report["champion"]["agreement"],
        "labelled": report.get("labelled", {}).get("verdict"),
    }


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} of {machine['cpu_count']} CPUs, Python {machine['python']} "
        f"(`python tests/benchmarks/bench_shadow.py`): {results['rows']:,} logged rows; candidate "
        f"{results['candidate']}, champion: {results['champion']}; batches of {results['batch_rows']:,} rows.",
        "",
        "| log | rows per line | feedback (labelled verdict) | read s | candidate s | champion s | total s "
        "| faithful | agreement | target |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for run in results["runs"]:
        target = targets.get(run["name"])
        verdict = f"< {target.limit:g} s: {'pass' if target.passed else 'FAIL'}" if target else ""
        feedback = f"every row ({run['labelled']})" if run["feedback"] else "none"
        lines.append(
            f"| {run['log']} | {run['per_line']:,} | {feedback} | {run['read_s']:.2f} | "
            f"{run['candidate_s']:.2f} | {run['champion_s']:.2f} | {run['total_s']:.2f} | "
            f"{'yes' if run['faithful'] else 'NO'} | {run['agreement']} | {verdict} |"
        )
    lines += [
        "",
        "`total s` is the stage's work without process start and model loading: reading the log (and the "
        "feedback), both models, the report. With feedback for every row, the gate's paired comparison "
        "(`validate_model.evidence`: its bootstrap on every labelled row, overall and once per slice) takes "
        "most of it. The target holds for the slowest run.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    cpus = pin_cpus(CPU_LIMIT)
    os.chdir(REPO)
    started = datetime.now(UTC)
    params = load_params()
    candidate = packaged_model(layout.SERVICE_ARCHIVE)
    champion, family = champion_of(candidate)
    columns, labels = traffic(params, candidate)
    runs = []
    with tempfile.TemporaryDirectory(prefix="pillars-shadow-bench-") as home:
        for log, per_line in LOGS.items():
            logs, feedback, empty = (Path(home) / log / part for part in ("logs", "feedback", "none"))
            request_ids = write_log(logs, log, champion, columns, per_line)
            feedback.mkdir(parents=True)
            pd.DataFrame({"request_id": request_ids, "row": 0, params.dataset.target: labels}).to_parquet(
                feedback / "labels.parquet"
            )
            for folder in (empty, feedback):
                measured = timed_replay(params, logs, folder, candidate, champion)
                labelled = folder == feedback
                name = f"{log} log{', labelled' if labelled else ''}"
                runs.append({"name": name, "log": log, "per_line": per_line, "feedback": labelled} | measured)
                print(runs[-1], flush=True)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "rows": ROWS,
        "candidate": f"{candidate.version} ({type(candidate.model).__name__})",
        "champion": f"the {family} candidate's model in the same serving path",
        "batch_rows": params.shadow.batch_rows,
        "runs": runs,
    }
    slowest = max(runs, key=lambda run: run["total_s"])
    targets = {
        slowest["name"]: Target(
            f"{ROWS:,} logged rows through both models ({slowest['name']})",
            slowest["total_s"],
            LIMIT_S,
            "s",
        )
    }
    return write_results("shadow", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
