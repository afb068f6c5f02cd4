"""One error type for every problem a user can fix, and the edge that turns it into a clean exit."""

import argparse
import logging
import os
import sys
from collections.abc import Callable

from pillars.core.lifetime import end_with_dvc, exit_on_signals


class PillarsError(Exception):
    """A problem in the user's data, params or environment, with a message that says what and where."""


def run_cli(main: Callable[[], None], *, parses_arguments: bool = False) -> None:
    """Run an entry point: logging set up once (progress lines on stderr), and a PillarsError as one
    readable line on stderr with exit code 2.

    An entry point that takes no arguments (every stage: params.yaml says what to do) still answers
    `--help` with its module's description, and refuses any other argument with its usage line, before it
    does anything; one that parses its own says `parses_arguments=True`.

    Any other exception is a bug in pillars itself, so it keeps its traceback. SIGTERM and SIGHUP end the
    entry point through its `finally` blocks, so the servers and workers it started stop with it. A DVC
    stage (DVC sets DVC_STAGE) also ends when its dvc does: dvc records no outputs then and its lock is
    gone, so the stage would only hold resources, or write outputs while a new run writes them too.
    """
    if not parses_arguments:
        module = sys.modules[main.__module__]
        name = module.__spec__.name if module.__spec__ is not None else main.__module__
        argparse.ArgumentParser(
            prog=f"python -m {name}",
            description=module.__doc__,
            epilog="It takes no arguments: params.yaml holds its settings.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        ).parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    exit_on_signals()
    if "DVC_STAGE" in os.environ:
        end_with_dvc()
    try:
        main()
    except PillarsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
