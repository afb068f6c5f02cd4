"""`make fuzz`: schemathesis against the exported Bento, served on 127.0.0.1: no generated request may get a 5xx.

Schemathesis reads the service's own OpenAPI document and sends valid and invalid requests made from it
(coverage and fuzzing phases, seeded): wrong types, missing and extra fields, boundary values, odd headers and
bodies. The suite runs a bounded number of cases (tests/service); `make fuzz EXAMPLES=...` runs the long one.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from pillars.bento.server import import_archive, served
from pillars.core import layout
from pillars.core.errors import run_cli
from pillars.serve.capture import DIR_ENV

SCHEMATHESIS = Path(sys.executable).with_name("st")


def schemathesis(url: str, examples: int, seed: int, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run schemathesis against a served Bento with the one check that matters here: no server error
    (`report_dir` must exist: it gets the reports and schemathesis's cache)."""
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/docs.json",
            "--checks=not_a_server_error",
            f"--max-examples={examples}",
            f"--seed={seed}",
            "--workers=2",
            "--no-color",
            f"--report-dir={report_dir}",
        ],
        cwd=report_dir,  # schemathesis keeps a cache in its working directory
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.bento.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per API operation and phase")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pillars-fuzz-") as home:
        tag = import_archive(layout.SERVICE_ARCHIVE, Path(home))
        env = {"PILLARS_API_TOKEN": "", DIR_ENV: str(Path(home) / "prediction-logs")}
        with served(tag, Path(home), 60, env) as (url, _):
            run = schemathesis(url, arguments.examples, arguments.seed, Path(home))
    print(run.stdout, end="")
    print(run.stderr, end="", file=sys.stderr)
    sys.exit(run.returncode)


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
