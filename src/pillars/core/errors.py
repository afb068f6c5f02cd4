"""One error type for every problem a user can fix, and the edge that turns it into a clean exit."""

import logging
import sys
from collections.abc import Callable


class PillarsError(Exception):
    """A problem in the user's data, params or environment, with a message that says what and where."""


def run_cli(main: Callable[[], None]) -> None:
    """Run an entry point: logging set up once (progress lines on stderr), and a PillarsError as one
    readable line on stderr with exit code 2.

    Any other exception is a bug in pillars itself, so it keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        main()
    except PillarsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
