"""A Bento served on 127.0.0.1: for as long as a block runs (deploy, tests, benchmark), or `make serve`.

`python -m pillars.bento.server [--port 3000]` imports models/service.bento into a private BentoML home
(~/.cache/pillars/serve) and serves it in the foreground: exactly the archive DVC tracks, whether it was
built here or pulled.
"""

import argparse
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.process import run, start, stop
from pillars.serve.capture import DIR_ENV

logger = logging.getLogger(__name__)
BENTOML = Path(sys.executable).parent / "bentoml"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def import_archive(archive: Path, bentoml_home: Path) -> str:
    """Import an exported Bento into a BentoML home; its tag."""
    env = {"BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    result = run(
        [str(BENTOML), "import", str(archive.resolve())], env=env, describe=lambda said: f"{archive}: {said}"
    )
    imported = re.search(r'tag="([^"]+)"', result.stdout)
    if imported is None:
        raise PillarsError(f"{archive}: bentoml import named no Bento: {result.stdout.strip()}")
    return imported.group(1)


@contextmanager
def served(
    target: str, bentoml_home: Path, ready_timeout_s: float, env: dict[str, str] | None = None
) -> Iterator[tuple[str, float]]:
    """Serve `target` (a Bento tag) on a free loopback port; yield its base URL and the seconds to ready."""
    port = free_port()
    environment = {"BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(prefix="bentoml-serve-") as log:  # nameless: not left behind if we are killed
        started = time.perf_counter()
        process = start(
            [str(BENTOML), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            log=log,
        )
        try:
            ready_s = _wait_ready(url, process, started, ready_timeout_s, log)
            try:
                yield url, ready_s
            except Exception:  # a failed request: the server's side of the story, before its log goes
                logger.error("last lines of the bentoml serve log:\n%s", _tail(log))
                raise
        finally:
            stop(process)


def _wait_ready(
    url: str, process: subprocess.Popen[bytes], started: float, timeout_s: float, log: IO[bytes]
) -> float:
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise PillarsError(f"bentoml serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise PillarsError(f"{url}/readyz did not answer 200 within {timeout_s} s:\n{_tail(log)}")


def _tail(log: IO[bytes], lines: int = 30) -> str:
    written = os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0)  # leaves the writers' offset alone
    return "\n".join(written.decode(errors="replace").splitlines()[-lines:])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.bento.server", description=__doc__)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--archive", type=Path, default=layout.SERVICE_ARCHIVE)
    args = parser.parse_args()
    if not args.archive.exists():
        raise PillarsError(
            f"{args.archive}: missing: no model is built yet; `make run` builds it (or `make pull`, when a DVC "
            "remote holds one)"
        )
    home = Path.home() / ".cache" / "pillars" / "serve"
    shutil.rmtree(home, ignore_errors=True)
    tag = import_archive(args.archive, home)
    print(f"serving {tag} on http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
    environment = {
        DIR_ENV: str(layout.SERVICE_LOG_DIR.resolve()),  # unless set: the monitor stage reads it from there
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    print(f"prediction log: {environment[DIR_ENV]}", flush=True)
    command = [str(BENTOML), "serve", tag, "--host", "127.0.0.1", "--port", str(args.port)]
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
