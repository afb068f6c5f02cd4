"""The DVC remote: `make pull` for a person; in CI (`make ci-pull`, `make exp-push`, no command given), results
are pulled when a remote is configured, recomputed otherwise.

The remote's URL comes from the `DVC_REMOTE_URL` secret and its credentials from the variables its DVC plugin
reads (for S3 `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; the plugin must be in the lock, e.g. `dvc[s3]`).
It is written to `.dvc/config.local`, never committed, as the default remote named `ci`. A pull request from a
fork sees no secrets: it runs the pipeline from scratch, which gives the same results, only slower.

`make pull` on a fresh clone meets the template's default remote, a folder nothing was pushed to yet: it says
so in one message (not DVC's list of every missing hash) with what to do instead, and fails.
"""

import argparse
import logging
import os

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import first_line
from pillars.core.process import run

logger = logging.getLogger(__name__)
URL_ENV = "DVC_REMOTE_URL"
CI_REMOTE = "ci"
INSTEAD = (
    "Nothing is lost: `make run` rebuilds every output from the data params.yaml names (the bundled data "
    "by default).\nTo share results through a remote: `dvc remote add --default NAME URL` (a folder, s3://, "
    "gs://, ssh://, ...; a cloud remote needs its DVC plugin, e.g. dvc[s3]), then `make push` where the "
    "pipeline ran."
)


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


def pull_workspace() -> None:
    """`make pull`: this commit's data and models from the default DVC remote, or one message that says why
    not and what to do instead."""
    from dvc.exceptions import CheckoutError  # importing DVC takes a second that --help does not need
    from dvc.repo import Repo

    for library in ("dvc", "dvc_data"):  # their warnings list every missing hash; the exceptions say enough
        logging.getLogger(library).setLevel(logging.CRITICAL)
    with Repo() as repo:
        name = repo.config["core"].get("remote")
        if name is None:
            raise PillarsError(f"make pull: no default DVC remote is configured.\n{INSTEAD}")
        where = f"the DVC remote {name!r} ({repo.config['remote'].get(name, {}).get('url')})"
        try:
            stats = repo.pull()["stats"]
        except CheckoutError as error:
            raise PillarsError(
                f"make pull: {where} does not have this commit's data and models ({len(error.target_infos)} "
                f"outputs are neither there nor in the local cache; nothing was pushed there yet?).\n{INSTEAD}"
            ) from None
        except Exception as error:  # a missing plugin is an ImportError; storage libraries have their own
            raise PillarsError(
                f"make pull: could not pull from {where}: {first_line(error)}\n{INSTEAD}"
            ) from None
    changed = ", ".join(f"{count} {what}" for what, count in stats.items() if count)
    logger.info("pulled from %s: %s", where, changed or "everything was here already")


def push_experiments(git_remote: str) -> None:
    """Push HEAD's experiments to the Git remote, and their data to the DVC remote when one is configured."""
    cache = [] if configure_remote() else ["--no-cache"]
    logger.info("%s", run(["dvc", "exp", "push", *cache, "--rev", "HEAD", git_remote]).stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.ci.remote", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("pull", help="make pull: this commit's data and models from the default DVC remote")
    push_parser = commands.add_parser("push-experiments", help="dvc exp push HEAD's experiments")
    push_parser.add_argument("--git-remote", default="origin")
    arguments = parser.parse_args()
    if arguments.command == "push-experiments":
        push_experiments(arguments.git_remote)
    elif arguments.command == "pull":
        pull_workspace()
    else:
        pull()


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
