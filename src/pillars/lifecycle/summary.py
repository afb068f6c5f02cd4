"""The end of `make run`: where you stand, in a few lines read from the reports the stages wrote.

The selected model and how it was chosen, its test metric beside the untuned model a person would fit first
(train's baseline: the best family's library defaults, on the same test rows), the gate's verdict, the
deployment check's, monitoring's decision, and where to look next: the model card, the plots, the
monitoring page and the command that serves the model.
"""

from pillars.core import layout, model_handoffs
from pillars.core.errors import run_cli
from pillars.core.model_handoffs import (
    AssessReport,
    DeployReport,
    ModelValidation,
    MonitoringReport,
    Selection,
)


def _value(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def where_you_stand(
    selection: Selection,
    validation: ModelValidation,
    assess: AssessReport,
    deploy: DeployReport,
    monitoring: MonitoringReport,
    measured_here: bool,
) -> list[str]:
    """The lines, from the reports' contents (pure: the tests give it reports). `measured_here`: the
    deployment check ran on this machine (its timings are in build/); on a fresh clone dvc restores its
    committed verdict without running it, and the lines say so once."""
    metric, chosen = selection.metric, selection.model
    baseline = assess.baseline
    selected, default = assess.test.get(metric), baseline[metric]
    gap = "" if selected is None or default is None else f" ({selected - default:+.4f})"
    failed = sorted(name for name, entry in validation.candidates.items() if not entry.passed)
    return [
        "where you stand:",
        f"  selected model: {chosen} ({selection.reason})",
        f"  test {metric}: {_value(selected)} vs {_value(default)} for {baseline['family']} with its "
        f"library's defaults{gap}",
        f"  gate (validate_model): {len(validation.candidates) - len(failed)} of "
        f"{len(validation.candidates)} candidates passed"
        + (f"; not passed: {', '.join(failed)} (see {layout.MODEL_VALIDATION_REPORT})" if failed else ""),
        "  deployment check: "
        + (
            "passed"
            if deploy.passed
            else "FAILED: " + ", ".join(name for name, ok in deploy.checks.items() if not ok)
        )
        + f" ({deploy.bento})"
        + (
            f"; its timings: {layout.DEPLOY_TIMINGS}"
            if measured_here
            else "; not measured on this machine: its committed verdict was up to date, so dvc did not run "
            "it (`dvc repro --force deploy` measures here)"
        ),
        f"  monitoring: {monitoring.decision.action}: {'; '.join(monitoring.decision.reasons)}",
        f"  model card: {layout.MODEL_CARD}",
        f"  plots: make plots (build/plots/index.html, opens offline; data in {layout.ASSESS_PLOTS_DIR}/)",
        f"  monitoring page: {layout.MONITORING_HTML}",
        "  everything on one page: make page (build/page.html)",
        "  serve it: make serve (http://127.0.0.1:3000; the API described at /docs.json)",
    ]


def main() -> None:
    lines = where_you_stand(
        model_handoffs.SELECTION.read(),
        model_handoffs.MODEL_VALIDATION.read(),
        model_handoffs.ASSESS_REPORT.read(),
        model_handoffs.DEPLOY_REPORT.read(),
        model_handoffs.MONITORING_REPORT.read(),
        measured_here=layout.DEPLOY_TIMINGS.exists(),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    run_cli(main)
