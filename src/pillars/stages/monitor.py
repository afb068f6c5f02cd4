"""Pillar 15, monitor: logged production data vs the training reference, and a retrain decision.

Reads the prediction logs under `monitor.logs` (the service's, collected, and batch inference's) and the
ground truth under `monitor.feedback`, and compares them with the curated train split (inputs, as the model
sees them) and assess's test predictions (outputs). Writes metrics/monitoring.json (`dvc metrics diff`
shows what changed) and metrics/monitoring.html, a self-contained report that opens offline. A retrain
decision is a finding, not a failure: the stage succeeds and `make retrain` acts on it.
"""

from pathlib import Path
from typing import Any

from pillars import layout
from pillars.errors import run_cli
from pillars.io import read_parquet, write_json, write_text
from pillars.monitor_report import render_html
from pillars.monitoring import Monitored, monitor, read_monitored
from pillars.params import Params, load_params
from pillars.stages.infer import packaged_model


def monitor_workspace(
    logs: Path, feedback: Path, params: Params
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], Monitored]:
    """Logs and feedback against this workspace's packaged model and reference: the report, the binned
    distributions of its plots, and the monitored rows."""
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    monitored = read_monitored(logs, feedback, serving, params.dataset.target)
    report, distributions = monitor(
        monitored,
        read_parquet(layout.curated_split("train")),
        read_parquet(layout.TEST_PREDICTIONS),
        serving,
        params,
    )
    return report, distributions, monitored


def main() -> None:
    params = load_params()
    report, distributions, _ = monitor_workspace(
        Path(params.monitor.logs), Path(params.monitor.feedback), params
    )
    write_json(layout.MONITORING_REPORT, report)
    write_text(layout.MONITORING_HTML, render_html(report, distributions))
    decision = report["decision"]
    print(f"monitor: {report['rows']['monitored']} rows monitored, decision: {decision['action']}")
    for reason in decision["reasons"]:
        print(f"  - {reason}")
    print(f"monitor: report in {layout.MONITORING_HTML}")


if __name__ == "__main__":
    run_cli(main)
