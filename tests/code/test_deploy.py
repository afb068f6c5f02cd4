"""Pillar 13, deploy: the verdicts from what the served Bento answered (tests/service serves a real one)."""

import pandas as pd
import pytest

from pillars.bento.parity import IN_SET
from pillars.core.params import DeployParams
from pillars.stages.deploy import Served, reports


def served(throughput_rps: float, p50_ms: float = 5.0) -> Served:
    answers = {
        "predictions": ["no", "yes"],
        "probabilities": [pd.DataFrame({"no": [0.9, 0.2], "yes": [0.1, 0.8]})],
        "uncertainty": [pd.DataFrame({"no": [True, False], "yes": [False, True]})],
    }
    return Served(
        bento="pillars-service:x",
        model_version="v",
        labels=["no", "yes"],
        bulk=answers,
        records=answers,
        ready_s=1.0,
        latency={"p50_ms": p50_ms, "p95_ms": p50_ms, "p99_ms": p50_ms},
        throughput_rps=throughput_rps,
        bulk_rows_per_s=1e5,
        served_rows=4,
        logged_rows=4,
    )


@pytest.mark.parametrize(("throughput_rps", "passed"), [(400.0, True), (50.0, True), (12.5, False)])
def test_a_model_that_collapses_under_load_fails_the_throughput_floor(
    throughput_rps: float, passed: bool
) -> None:
    settings = DeployParams.model_validate(
        {"min_throughput_rps": 50, "budget": {"p50_ms": 25, "p99_ms": 100}}
    )
    offline = pd.DataFrame(
        {"score": [0.1, 0.8], "label": [0, 1], f"{IN_SET}0": [True, False], f"{IN_SET}1": [False, True]}
    )
    verdicts, measurements = reports(served(throughput_rps), offline, settings)
    assert verdicts["checks"]["parity_bulk"] and verdicts["checks"]["latency"]
    assert verdicts["checks"]["throughput"] is passed
    assert verdicts["passed"] is passed
    assert verdicts["min_throughput_rps"] == 50
    assert measurements["throughput_rps"] == throughput_rps


def test_a_served_set_that_differs_from_assess_fails_parity() -> None:
    settings = DeployParams.model_validate(
        {"min_throughput_rps": 50, "budget": {"p50_ms": 25, "p99_ms": 100}}
    )
    offline = pd.DataFrame(
        {"score": [0.1, 0.8], "label": [0, 1], f"{IN_SET}0": [True, True], f"{IN_SET}1": [False, True]}
    )
    verdicts, _ = reports(served(400.0), offline, settings)
    assert not verdicts["checks"]["parity_bulk"] and not verdicts["checks"]["parity_records"]
