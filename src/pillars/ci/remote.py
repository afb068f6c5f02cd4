"""The DVC remote in CI (`make ci-pull`, `make exp-push`): results are pulled when a remote is configured,
recomputed otherwise.

The remote's URL comes from the `DVC_REMOTE_URL` secret and its credentials from the variables its DVC plugin
reads (for S3 `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; the plugin must be in the lock, e.g. `dvc[s3]`).
It is written to `.dvc/config.local`, never committed, as the default remote named `ci`. A pull request from a
fork sees no secrets: it runs the pipeline from scratch, which gives the same results, only slower.
"""

import argparse
import logging
import os

from pillars.core.errors import run_cli
from pillars.core.process import run

logger = logging.getLogger(__name__)
URL_ENV = "DVC_REMOTE_URL"
CI_REMOTE = "ci"


def configure_remote() -> bool:
    """Make the secret's remote the default (local config only); False when no secret is set."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return False
    run(["dvc", "remote", "add", "--local", "--force", "--default", CI_REMOTE, url])
    return True


def pull() -> None:
    """Pull whatever the remote has: `dvc repro` then recomputes only what is missing."""
    if not configure_remote():
        logger.info("ci-pull: %s is not set: `dvc repro` will run the pipeline from scratch", URL_ENV)
        return
    # a partial cache is fine (--allow-missing); a remote we cannot reach or read is not
    pulled = run(
        ["dvc", "pull", "--allow-missing"],
        describe=lambda said: f"dvc pull from the {URL_ENV} remote failed: {said}",
    )
    logger.info("%s", pulled.stdout.strip())
    logger.info("ci-pull: pulled from the %s remote (what it lacks, dvc repro recomputes)", URL_ENV)


def push_experiments(git_remote: str) -> None:
    """Push HEAD's experiments to the Git remote, and their data to the DVC remote when one is configured."""
    cache = [] if configure_remote() else ["--no-cache"]
    logger.info("%s", run(["dvc", "exp", "push", *cache, "--rev", "HEAD", git_remote]).stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.remote", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    push_parser = commands.add_parser("push-experiments", help="dvc exp push HEAD's experiments")
    push_parser.add_argument("--git-remote", default="origin")
    arguments = parser.parse_args()
    if arguments.command == "push-experiments":
        push_experiments(arguments.git_remote)
    else:
        pull()


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
