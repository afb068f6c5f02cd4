"""`make pr-report`, the report the ci workflow posts on a pull request, on a real two-commit history: main
holds a reproduced pipeline, a branch tightens a validation threshold and reruns it."""

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import committed_copy, make, run, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def branch(reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reproduced pipeline committed on main, then a branch whose F1 threshold only some of the candidates
    that pass on main meet."""
    repo = committed_copy(reproduced, tmp_path_factory.mktemp("pr-report") / "repo")
    validation = json.loads((repo / "metrics/model_validation.json").read_text())
    f1 = sorted(
        candidate["valid"]["f1"] for candidate in validation["candidates"].values() if candidate["passed"]
    )
    run(["git", "checkout", "-q", "-b", "stricter-f1"], repo)
    write_params(repo, validate_model={"thresholds": {"f1": {"min": round((f1[0] + f1[-1]) / 2, 4)}}})
    rerun = run(["dvc", "repro"], repo).stdout
    assert "Stage 'featurize' didn't change, skipping" in rerun, (
        "a changed param reruns only what depends on it"
    )
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "stricter F1 threshold"], repo)
    return repo


def test_the_report_compares_the_branch_with_main(branch: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    make(
        branch,
        "pr-report",
        "BASE=main",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    report = (branch / "build/report/report.md").read_text()

    threshold = yaml.safe_load((branch / "params.yaml").read_text())["validate_model"]["thresholds"]["f1"][
        "min"
    ]
    validation = json.loads((branch / "metrics/model_validation.json").read_text())["candidates"]
    on_main = json.loads(run(["git", "show", "main:metrics/model_validation.json"], branch).stdout)[
        "candidates"
    ]
    failed = {family for family, result in validation.items() if not result["passed"]}
    newly_failed = {family for family in failed if on_main[family]["passed"]}
    assert newly_failed and failed != set(validation), "the new threshold splits the candidates"
    for family in newly_failed:
        f1 = validation[family]["checks"]["f1"]["value"]
        assert f"| {family} | FAIL (was pass) | f1 ({f1}) |" in report
    for family in set(validation) - failed:
        assert f"| {family} | pass |" in report

    params_rows = [line for line in report.splitlines() if "validate_model.thresholds.f1.min" in line]
    assert len(params_rows) == 1 and "0.6" in params_rows[0] and str(threshold) in params_rows[0]
    eligible = [line for line in report.splitlines() if "selection.json" in line and "| eligible" in line]
    before = json.loads(run(["git", "show", "main:metrics/selection.json"], branch).stdout)["eligible"]
    assert (
        len(eligible) == 1
        and f"| {before} " in eligible[0]
        and f"| {before - len(newly_failed)} " in eligible[0]
    )
    for family in failed:
        assert f"| {family} | not eligible" in report

    plots = branch / "build/report/plots"
    assert "vega" in (plots / "index.html").read_text()
    roc = json.loads((plots / "roc.vl.json").read_text())
    assert {row["rev"] for row in roc["data"]["values"]} == {"main", "workspace"}
    assert summary.read_text() == report, "the report is also the job summary in Actions"


def test_an_unknown_base_is_named(branch: Path) -> None:
    result = make(branch, "pr-report", "BASE=no-such-branch", check=False)
    assert result.returncode != 0
    assert "no-such-branch" in result.stderr
