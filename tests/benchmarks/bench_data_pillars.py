"""Benchmark of the data pillars (stages 1-6) on the bundled data and on a 100x upsampled copy.

Run by `make bench` (not a pytest test). Everything runs in a temporary copy of the working tree, so the
repository itself only gains tests/benchmarks/results/data_pillars.{json,md}. Per stage it records the wall
time and the peak resident memory of the stage's own process (`ru_maxrss` from `os.wait4`). The stage
processes are pinned to at most two CPUs, as on the CI machine the targets are stated for. It exits with
status 1 when a target is missed.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "tests" / "benchmarks" / "results"
STAGES = ("ingest", "validate_data", "cleanse", "standardize", "curate", "featurize")
FACTOR = 100  # the upsampled run has FACTOR times the rows of the bundled data
SEED = 20240601  # seeds the row sampling and the jitter of the upsampled data
CPU_LIMIT = 2  # the targets are stated for a 2-core machine
DEFAULT_WALL_LIMIT_S = 20.0
UPSAMPLED_WALL_LIMIT_S = 300.0
UPSAMPLED_PEAK_LIMIT_MIB = 8 * 1024.0
NEVER_COPIED = (".venv", ".git", ".dvc/cache", ".dvc/tmp")
BIN = Path(sys.executable).parent  # the virtualenv's bin: python and dvc (not resolved: a venv symlink)


class BenchError(RuntimeError):
    """A step of the benchmark failed (a stage exited non-zero, git or dvc failed)."""


@dataclass(frozen=True)
class Measurement:
    """One process run: its wall time and its own peak resident memory."""

    name: str
    seconds: float
    peak_mib: float


@dataclass(frozen=True)
class Target:
    """One target from an issue: a ceiling (`max`) or a floor (`min`) on a measured value."""

    name: str
    measured: float
    limit: float
    unit: str
    kind: str = "max"  # max: measured < limit; min: measured >= limit

    @property
    def passed(self) -> bool:
        return self.measured < self.limit if self.kind == "max" else self.measured >= self.limit

    @property
    def stated(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{'<' if self.kind == 'max' else '>='} {self.limit:,g}{unit}"

    @property
    def shortfall(self) -> str:
        """How far a missed target is off, in percent of the target."""
        return f"{abs(self.measured - self.limit) / self.limit:.1%}"


def pin_cpus(limit: int) -> list[int]:
    """Restrict this process (and so its children) to at most `limit` CPUs; return the CPUs used."""
    cpus = sorted(os.sched_getaffinity(0))[:limit]
    os.sched_setaffinity(0, cpus)
    return cpus


def run_checked(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a short helper command (git, dvc config) and return its stdout; raise with its output on failure."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise BenchError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def copy_working_tree(destination: Path) -> None:
    """Copy the tracked and untracked-but-not-ignored files of the repo, then make the copy a Git repo."""
    listing = run_checked(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO)
    for name in sorted(set(filter(None, listing.split("\0")))):
        source = REPO / name
        if name.startswith(NEVER_COPIED) or not source.is_file():  # not a file: deleted but still tracked
            continue
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / name)
    # a cache of its own: nothing is restored from, or written to, a cache shared with the real repo
    (destination / ".dvc" / "config.local").write_text(
        f"[cache]\n    dir = {destination / '.dvc' / 'cache'}\n"
    )
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]
    run_checked([*git, "-c", "init.defaultBranch=main", "init", "-q"], destination)
    run_checked([*git, "add", "-A"], destination)
    run_checked([*git, "commit", "-q", "--no-verify", "-m", "benchmark copy"], destination)


def child_env(work: Path) -> dict[str, str]:
    """The environment of the stage processes: the venv first on PATH, the copy's own `pillars` package."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(work / "src")  # ahead of the editable install, which points at the real repo
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("VIRTUAL_ENV", None)
    return env


def run_measured(name: str, command: list[str], work: Path, env: dict[str, str], log: Path) -> Measurement:
    """Run one command to completion; its wall time and its own `ru_maxrss` (KiB on Linux)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, so tell Popen
    if process.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"{name}: `{' '.join(command)}` exited with {process.returncode}:\n{tail}")
    return Measurement(name, round(seconds, 3), round(usage.ru_maxrss / 1024, 1))


def run_stages(work: Path, env: dict[str, str], logs: Path) -> list[Measurement]:
    """Run stages 1-6 one after the other as `python -m pillars.stages.<name>`, measuring each."""
    measurements = []
    for stage in STAGES:
        command = [sys.executable, "-m", f"pillars.stages.{stage}"]
        measurement = run_measured(stage, command, work, env, logs / f"{stage}.log")
        print(f"  {stage:<14} {measurement.seconds:8.2f} s {measurement.peak_mib:9.1f} MiB", flush=True)
        measurements.append(measurement)
    return measurements


def upsample(frame: pd.DataFrame, factor: int, rng: np.random.Generator) -> pd.DataFrame:
    """Sample `factor` x the rows with replacement and jitter every number by -1, 0 or +1.

    The jitter makes most repeated rows distinct; it is clipped to the column's original [min, max], so
    ranges stay as in the source. Text columns are sampled unchanged.
    """
    rows = rng.integers(0, len(frame), size=len(frame) * factor)
    sample = frame.take(rows).reset_index(drop=True)
    for name in frame.columns:
        dtype = frame[name].dtype
        is_number = pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype)
        if not is_number or pd.api.types.is_bool_dtype(dtype):
            continue
        jitter = rng.integers(-1, 2, size=len(sample), dtype=np.int8)
        jittered = sample[name].add(jitter).clip(lower=frame[name].min(), upper=frame[name].max())
        sample[name] = jittered.astype(dtype)
    return sample


def write_upsampled_source(work: Path, factor: int, seed: int) -> tuple[int, float]:
    """Upsample the first ingest source of the copy, point the copy's params.yaml at it; rows and seconds."""
    from pillars.core.io import read_file  # the pipeline's own reader

    start = time.perf_counter()
    params_path = work / "params.yaml"
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    source = params["ingest"]["sources"][0]
    if source.get("kind") != "file":
        raise BenchError(f"ingest.sources[0] is a {source.get('kind')!r} source; the benchmark needs a file")
    path = Path(source["path"])
    frame = read_file(work / path, source.get("format", "auto"), source.get("sep"))
    upsampled = upsample(frame, factor, np.random.default_rng(seed))
    target = path.with_name(f"{path.stem}_x{factor}.parquet")
    upsampled.to_parquet(work / target, index=False)
    source["path"] = target.as_posix()
    source.pop("sep", None)  # a Parquet file now
    if source.get("format", "auto") != "auto":
        source["format"] = "parquet"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return len(upsampled), round(time.perf_counter() - start, 3)


def cleanse_rows(work: Path) -> dict:
    """Rows in, out and quarantined, from the copy's metrics/cleanse.json."""
    report = json.loads((work / "metrics" / "cleanse.json").read_text(encoding="utf-8"))
    return {**report["rows"], "quarantined_by_reason": report["quarantined_by_reason"]}


def run_summary(rows: int, stages: list[Measurement], work: Path) -> dict:
    """One run's totals, per-stage numbers and cleanse row counts."""
    return {
        "rows": rows,
        "wall_s": round(sum(stage.seconds for stage in stages), 3),
        "peak_mib": max(stage.peak_mib for stage in stages),
        "stages": [asdict(stage) for stage in stages],
        "cleanse": cleanse_rows(work),
    }


def machine_facts(cpus: list[int]) -> dict:
    """Where the numbers were measured."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_used": len(cpus),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    """The tables for the README: one line per run, then seconds and peak memory per stage."""

    def verdict(*names: str) -> str:
        missed = [name for name in names if not targets[name].passed]
        return "pass" if not missed else "FAIL: " + ", ".join(missed)

    default, upsampled, machine = results["default"], results["upsampled"], results["machine"]
    repro = default["dvc_repro"]
    lines = [
        f"Measured on {machine['cpus_used']} of {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"{machine['platform'].split('-')[0]} {machine['machine']} (`make bench`).",
        "",
        "| run | rows | wall s | peak MiB | target | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| default, `dvc repro featurize` | {default['rows']:,} | {repro['seconds']:.1f} | "
        f"{repro['peak_mib']:,.0f} | < {DEFAULT_WALL_LIMIT_S:.0f} s | {verdict('default_dvc_repro_wall_s')} |",
        f"| default, stages 1-6 | {default['rows']:,} | {default['wall_s']:.1f} | "
        f"{default['peak_mib']:,.0f} | < {DEFAULT_WALL_LIMIT_S:.0f} s | {verdict('default_stages_wall_s')} |",
        f"| {FACTOR}x upsampled, stages 1-6 | {upsampled['rows']:,} | {upsampled['wall_s']:.1f} | "
        f"{upsampled['peak_mib']:,.0f} | < {UPSAMPLED_WALL_LIMIT_S:.0f} s, "
        f"< {UPSAMPLED_PEAK_LIMIT_MIB / 1024:.0f} GiB | "
        f"{verdict('upsampled_stages_wall_s', 'upsampled_peak_mib')} |",
        "",
        f"| stage | default s | default peak MiB | {FACTOR}x s | {FACTOR}x peak MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for small, large in zip(default["stages"], upsampled["stages"], strict=True):
        lines.append(
            f"| {small['name']} | {small['seconds']:.2f} | {small['peak_mib']:,.0f} | "
            f"{large['seconds']:.2f} | {large['peak_mib']:,.0f} |"
        )
    for label, run in (("default", default), (f"{FACTOR}x", upsampled)):
        rows = run["cleanse"]
        lines.append(
            f"\n{label}: cleanse kept {rows['clean']:,} of {rows['raw']:,} rows and quarantined "
            f"{rows['quarantined']:,} {rows['quarantined_by_reason']}."
        )
    lines.append(
        "\nPeak MiB is the peak resident memory of each stage's own process; for `dvc repro` it is the "
        "largest of dvc and the stages it ran."
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_results(stem: str, results: dict, targets: dict[str, Target], markdown: Callable) -> int:
    """Write RESULTS_DIR/<stem>.json and .md with the pass/fail of every target; 1 if one was missed."""
    results |= {
        "targets": {name: asdict(target) | {"passed": target.passed} for name, target in targets.items()},
        "passed": all(target.passed for target in targets.values()),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown(RESULTS_DIR / f"{stem}.md", results, targets)
    print(f"results: {RESULTS_DIR / stem}.json, .md")
    missed = [target for target in targets.values() if not target.passed]
    for target in missed:
        bound = "at least" if target.kind == "min" else "at most"
        print(
            f"target missed: {target.name}: {target.measured:,.6g} {target.unit}, {bound} {target.limit:,.6g}"
        )
    return 1 if missed else 0


def main() -> int:
    """Run both benchmarks, write the results, and return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = parser.parse_args()
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-"))
    work, logs = scratch / "repo", scratch / "logs"
    print(f"benchmark copy: {work} (CPUs {cpus})", flush=True)
    try:
        copy_working_tree(work)
        env = child_env(work)
        print("default data: dvc repro -f featurize", flush=True)
        dvc = [str(BIN / "dvc"), "repro", "--force", "featurize"]
        repro = run_measured("dvc repro featurize", dvc, work, env, logs / "dvc_repro.log")
        print(f"  {repro.seconds:.2f} s, peak {repro.peak_mib:.1f} MiB", flush=True)
        print("default data: stages 1-6", flush=True)
        default_stages = run_stages(work, env, logs / "default")
        default_rows = json.loads((work / "data" / "raw" / "manifest.json").read_text())["rows"]
        default = run_summary(default_rows, default_stages, work) | {"dvc_repro": asdict(repro)}
        print(f"{FACTOR}x upsampled data (seed {SEED})", flush=True)
        rows, generate_s = write_upsampled_source(work, FACTOR, SEED)
        print(f"  {rows:,} rows written in {generate_s:.1f} s; stages 1-6", flush=True)
        upsampled = run_summary(rows, run_stages(work, env, logs / "upsampled"), work)
        upsampled |= {"factor": FACTOR, "seed": SEED, "generate_s": generate_s}
    except BenchError as error:
        print(f"benchmark failed: {error}\n(logs in {logs})", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    targets = {
        "default_dvc_repro_wall_s": Target(
            "default_dvc_repro_wall_s", repro.seconds, DEFAULT_WALL_LIMIT_S, "s"
        ),
        "default_stages_wall_s": Target(
            "default_stages_wall_s", default["wall_s"], DEFAULT_WALL_LIMIT_S, "s"
        ),
        "upsampled_stages_wall_s": Target(
            "upsampled_stages_wall_s", upsampled["wall_s"], UPSAMPLED_WALL_LIMIT_S, "s"
        ),
        "upsampled_peak_mib": Target(
            "upsampled_peak_mib", upsampled["peak_mib"], UPSAMPLED_PEAK_LIMIT_MIB, "MiB"
        ),
    }
    results = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "default": default,
        "upsampled": upsampled,
        "benchmark_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return write_results("data_pillars", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
