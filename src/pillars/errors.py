"""One error type for every problem a user can fix, and the edge that turns it into a clean exit."""

import subprocess
import sys
from collections.abc import Callable


class PillarsError(Exception):
    """A problem in the user's data, params or environment, with a message that says what and where."""


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's edge: a PillarsError becomes one readable line on stderr and exit code 2.

    Any other exception is a bug in pillars itself, so it keeps its traceback.
    """
    try:
        main()
    except PillarsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def command_output(*command: str) -> str:
    """A tool's standard output (dvc, git); its failure is a PillarsError naming the command and what it said."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        raise PillarsError(f"`{' '.join(command)}` failed ({result.returncode}): {said}")
    return result.stdout
