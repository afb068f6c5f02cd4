"""The registry as the release and deploy workflows use it (`make release-version`, `release-publish`,
`deploy-resolve`): step outputs for GitHub Actions around `pillars.lifecycle.registry`.

- `version`: HEAD's registered version, registered now unless its model already is; outputs version, new
  and the image name.
- `publish --git-remote R`: push HEAD's registration tag to R.
- `check-ref REF`: the version and stage a stage assignment tag names, and the image name.
"""

import argparse

from pillars.ci.actions import image_repository, set_outputs
from pillars.core.errors import run_cli
from pillars.lifecycle.registry import artifact_name, publish, release, stage_assignment


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.release", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="HEAD's version: registered now unless its model already is")
    publish_parser = commands.add_parser("publish", help="push HEAD's registration tag to a Git remote")
    publish_parser.add_argument("--git-remote", default="origin")
    check_parser = commands.add_parser("check-ref", help="the version and stage a stage assignment tag names")
    check_parser.add_argument("ref", help="e.g. model#prod#3 or refs/tags/model#prod#3")
    arguments = parser.parse_args()
    name = artifact_name()
    if arguments.command == "version":
        version, new = release(name)
        set_outputs(version=version, new=str(new).lower(), image=image_repository())
    elif arguments.command == "publish":
        print(f"pushed {publish(name, arguments.git_remote)} to {arguments.git_remote}")
    else:
        set_outputs(**stage_assignment(arguments.ref), image=image_repository())


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
