"""Pillar 15, monitor: logged production data vs the training reference, and a retrain decision.

Reads the prediction logs under `monitor.logs` (the service's, collected, and batch inference's) and the
ground truth under `monitor.feedback`, and compares them with the curated train split (inputs, as the model
sees them) and assess's test predictions (outputs). Writes metrics/monitoring.json (`dvc metrics diff`
shows what changed) and metrics/monitoring.html, a self-contained report that opens offline. A retrain
decision is a finding, not a failure: the stage succeeds and `make retrain` acts on it.
"""

from pathlib import Path

from pillars.core import layout, model_handoffs
from pillars.core.errors import run_cli
from pillars.core.io import write_text
from pillars.core.params import load_params
from pillars.monitoring.report import render_html
from pillars.monitoring.workspace import monitor_workspace


def main() -> None:
    params = load_params()
    report, distributions, _ = monitor_workspace(
        Path(params.monitor.logs), Path(params.monitor.feedback), params
    )
    model_handoffs.MONITORING_REPORT.write(report)
    write_text(layout.MONITORING_HTML, render_html(report, distributions))
    decision = report["decision"]
    print(f"monitor: {report['rows']['monitored']} rows monitored, decision: {decision['action']}")
    for reason in decision["reasons"]:
        print(f"  - {reason}")
    print(f"monitor: report in {layout.MONITORING_HTML}")


if __name__ == "__main__":
    run_cli(main)
