"""The service benchmark in its smoke form, on the model the pipeline selected: it must keep running on
whatever `select` ships (it once read an XGBoost booster from the served model and stopped when the ensemble
was selected, and nothing noticed)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pillars.bento.archive import packaged_model
from pillars.core import layout


@pytest.mark.slow
def test_the_service_benchmark_runs_on_the_selected_model(reproduced: Path, tmp_path: Path) -> None:
    bench = reproduced / "tests/benchmarks/bench_service.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--smoke", "--out", str(tmp_path)],
        cwd=reproduced,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "service.json").read_text())
    shipped = packaged_model(reproduced / layout.SERVICE_ARCHIVE)
    assert results["served"]["model_version"] == shipped.version
    assert results["in_process"]["model"] == type(shipped.model).__name__
    ratios = np.array(list(results["ratios"].values()), dtype="float64")
    assert np.isfinite(ratios).all() and (ratios > 0).all(), results["ratios"]
    assert set(results["targets"]) == {"latency_ratio", "requests_per_s", "bulk_ratio"}
    assert type(shipped.model).__name__ in (tmp_path / "service.md").read_text()
