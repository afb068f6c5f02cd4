"""`make retrain-pr`: the retrain experiment (`pillars.lifecycle.retrain`) proposed as a pull request.

The experiment becomes a branch on the Git remote, its data goes to the DVC remote in `DVC_REMOTE_URL` (the
pull request's CI must pull the labelled data), and the pull request says why the monitor asked for it and
compares the experiment with its baseline (the PR's own CI then adds the full report).
"""

from pillars.ci.github import upsert_pull_request
from pillars.ci.remote import URL_ENV, configure_remote
from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import load_params
from pillars.core.process import run
from pillars.lifecycle.retrain import LABELLED_DATA, arguments, retrain_from_arguments
from pillars.lifecycle.sweep import dvc, experiments_table

RETRAIN_BRANCH_PREFIX = "retrain/"
GIT_REMOTE = "origin"


def propose(name: str, reasons: list[str], comparison: str) -> int:
    """The experiment as a branch on the Git remote, its data on the DVC remote, and a pull request that
    says why and compares it with its baseline (the PR's own CI then adds the full report)."""
    branch = f"{RETRAIN_BRANCH_PREFIX}{name}"
    base = run(["git", "branch", "--show-current"]).stdout
    dvc("exp", "branch", name, branch)
    dvc("exp", "push", GIT_REMOTE, name)  # the experiment's outputs to the default (CI) DVC remote
    run(["git", "push", "--force", GIT_REMOTE, f"refs/heads/{branch}"])
    body = "\n".join(
        [
            "The monitor asked for retraining:",
            "",
            *(f"- {reason}" for reason in reasons),
            "",
            f"This branch adds the labelled logged rows ({LABELLED_DATA}, DVC-tracked) as an ingestion source "
            f"and carries the DVC experiment `{name}`, which reran the pipeline up to `assess`:",
            "",
            comparison,
        ]
    )
    return upsert_pull_request(branch, base.strip() or "main", f"Retrain on monitored data ({name})", body)


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    if not configure_remote():
        raise PillarsError(
            f"retrain-pr needs the DVC remote in {URL_ENV}: the pull request's CI must pull the labelled data"
        )
    params = load_params()
    experiment = retrain_from_arguments(args, params)
    number = propose(experiment.name, experiment.reasons, experiments_table(params))
    print(f"retrain: experiment {experiment.name} is pull request #{number}")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
