"""The monitor workflow's alert (`make monitor-alert`): when metrics/monitoring.json says retrain, one open
issue says why, updated on every scheduled run while the model still needs retraining (never a pile of
duplicates). The step output `retrain` tells the workflow whether to start the retrain pull request."""

import argparse
import json
from pathlib import Path
from typing import Any

from pillars.ci.actions import set_outputs
from pillars.ci.github import run_link, upsert_issue
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli

ISSUE_TITLE = "Monitoring: the served model needs retraining"
ISSUE_LABEL = "monitoring"


def issue_body(report: dict[str, Any]) -> str:
    """The decision, its reasons, and the drifted features with their statistics, as Markdown."""
    decision = report["decision"]
    lines = [
        f"The monitor's decision for model version `{report['model_version']}` is **{decision['action']}** "
        f"({report['rows']} logged rows; run: {run_link()}).",
        "",
        *(f"- {reason}" for reason in decision["reasons"]),
    ]
    drifted = report["drift"]["drifted_features"]
    if drifted:
        lines += ["", "| feature | test | p-value | PSI | distance |", "| --- | --- | ---: | ---: | ---: |"]
        for name in drifted:
            feature = report["drift"]["features"][name]
            lines.append(
                f"| {name} | {feature['test']} | {feature['p_value']:.3g} | {feature['psi']:.3f} | "
                f"{feature['distance']:.3f} ({feature['distance_name']}) |"
            )
    lines += [
        "",
        "The retrain pull request (labelled logged rows as a new source, a DVC experiment, its comparison) "
        "follows from the same run; metrics/monitoring.html in the run's artifacts has the distributions.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.ci.monitor_alert", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--report", type=Path, default=layout.MONITORING_REPORT)
    args = parser.parse_args()
    if not args.report.is_file():
        raise PillarsError(f"{args.report}: no monitoring report; run `make monitor` first")
    report = json.loads(args.report.read_text(encoding="utf-8"))
    retrain = report["decision"]["action"] == "retrain"
    if retrain:
        number = upsert_issue(ISSUE_TITLE, issue_body(report), ISSUE_LABEL)
        print(f"monitor-alert: retrain; issue #{number}")
    else:
        print(f"monitor-alert: {report['decision']['action']}: {'; '.join(report['decision']['reasons'])}")
    set_outputs(retrain=str(retrain).lower())


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
