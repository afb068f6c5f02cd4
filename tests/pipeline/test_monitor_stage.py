"""The monitor stage on a fresh `dvc repro`: quiet on held-out data, forgiving and counting on bad input."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pillars.bento.archive import packaged_model
from pillars.core.params import load_params
from pillars.monitoring.analysis import monitor
from pillars.monitoring.logs import read_monitored

pytestmark = pytest.mark.slow


def test_held_out_rows_raise_no_false_alarm(reproduced: Path) -> None:
    """The pipeline monitors batch inference's log of the ~5,000 holdout rows against the train split."""
    report = json.loads((reproduced / "metrics/monitoring.json").read_text())
    assert report["rows"]["monitored"] > 4_500
    assert report["drift"]["drifted_features"] == []
    assert not any(drift["drifted"] for drift in report["drift"]["prediction"].values())
    assert report["quality"]["alerts"] == []
    assert report["decision"]["action"] == "none" and report["decision"]["retrain"] is False
    assert set(report["drift"]["features"]) == set(report["quality"]["fields"])
    html = (reproduced / "metrics/monitoring.html").read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html


def test_bad_monitoring_input_is_skipped_counted_and_not_fatal(reproduced: Path, tmp_path: Path) -> None:
    logs, feedback = tmp_path / "logs", tmp_path / "feedback"
    logs.mkdir()
    feedback.mkdir()
    shutil.copy(reproduced / "data/monitoring/logs/batch/holdout.jsonl", logs / "batch.jsonl")
    good = json.loads((logs / "batch.jsonl").read_text().splitlines()[0])
    rows = len(good["request_id"])
    other_version = good | {"model_version": "0000000000000000"}
    schema_change = good | {
        "inputs": {k: v for k, v in good["inputs"].items() if k != "age"} | {"years": [1] * rows}
    }
    wrong_type = good | {"inputs": good["inputs"] | {"age": ["old"] * rows}}
    lines = ['{"log_format": 1, "request_id": ["x"', "not json at all"]
    lines += [json.dumps(record) for record in (other_version, schema_change, wrong_type)]
    (logs / "service.jsonl").write_text("\n".join(lines) + "\n")
    pd.DataFrame({"request_id": ["x"], "label": [">50K"]}).to_csv(feedback / "no_target.csv", index=False)
    pd.DataFrame(
        {"request_id": ["holdout.parquet"] * 3, "row": [0, 1, 2], "income": ["<=50K", ">50K", "maybe"]}
    ).to_csv(feedback / "labels.csv", index=False)
    params = load_params(reproduced / "params.yaml")
    serving = packaged_model(reproduced / "models/service.bento")
    report, _ = monitor(
        read_monitored(logs, feedback, serving, params.dataset.target),
        pd.read_parquet(reproduced / "data/curated/train.parquet"),
        pd.read_parquet(reproduced / "data/predictions/test.parquet"),
        serving,
        params,
    )
    assert report["skipped"] == {
        "corrupt_lines": 2,
        "other_model_version": rows,
        "schema_change": 2 * rows,
        "feedback_files": 1,
        "unknown_labels": 1,
        "unmatched_feedback": 0,
    }
    examples = report["skipped_examples"]
    assert "service.jsonl:1" in examples["corrupt_lines"][0]
    assert "0000000000000000" in examples["other_model_version"][0]
    assert "age" in examples["schema_change"][0] and "years" in examples["schema_change"][0]
    assert "no_target.csv" in examples["feedback_files"][0] and "income" in examples["feedback_files"][0]
    assert report["rows"] == {"logged": 4 * rows, "monitored": rows, "labelled": 2}
    assert any("skipped" in alert for alert in report["quality"]["alerts"])
    assert report["decision"]["action"] == "none"  # the good rows are still monitored
