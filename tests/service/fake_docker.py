"""A stand-in for the `docker` CLI: no Docker engine runs here, so the smoke test's calls are mocked.

It implements only what `pillars.ci.container smoke` calls, and refuses anything else:
- `run --detach --rm --publish 127.0.0.1:PORT:3000 [--env K=V]... IMAGE`: IMAGE is a Bento directory (a
  build context from `pillars.ci.container context`); it is served as the image's entrypoint would
  (`bentoml serve $BENTO_PATH`, in an empty BentoML home) on 127.0.0.1:PORT, in the background; prints an id;
- `logs ID`: the server's output so far;
- `rm --force ID`: stops the server and its workers and records the id in `removed`.
State lives in $FAKE_DOCKER_STATE: per container `<id>.pid`, `<id>.log` and a BentoML home.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

STATE = Path(os.environ["FAKE_DOCKER_STATE"])
BENTOML = Path(sys.executable).parent / "bentoml"
RUN = re.compile(r"run --detach --rm --publish 127\.0\.0\.1:(\d+):3000((?: --env [^ =]+=\S*)*) (\S+)")


def run(command: str) -> int:
    matched = RUN.fullmatch(command)
    if matched is None:
        return refuse(command)
    port, options, image = matched.groups()
    container_id = uuid.uuid4().hex
    env = dict(option.split("=", 1) for option in options.split(" --env ")[1:])
    home = STATE / f"{container_id}-home"
    with (STATE / f"{container_id}.log").open("wb") as log:
        server = subprocess.Popen(
            [str(BENTOML), "serve", image, "--host", "127.0.0.1", "--port", port],
            env={**os.environ, **env, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (STATE / f"{container_id}.pid").write_text(str(server.pid))
    print(container_id)
    return 0


def logs(container_id: str) -> int:
    log = STATE / f"{container_id}.log"
    if not log.exists():
        print(f"Error response from daemon: No such container: {container_id}", file=sys.stderr)
        return 1
    sys.stdout.write(log.read_text(errors="replace"))
    return 0


def alive(pid: int) -> bool:
    """Running, not a zombie (the server is nobody's child once `run` has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def remove(container_id: str) -> int:
    pid_file = STATE / f"{container_id}.pid"
    if not pid_file.exists():
        print(f"Error response from daemon: No such container: {container_id}", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text())
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sent)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive(pid):
            break
    pid_file.unlink()
    shutil.rmtree(STATE / f"{container_id}-home", ignore_errors=True)
    with (STATE / "removed").open("a") as removed:
        removed.write(container_id + "\n")
    print(container_id)
    return 0


def refuse(command: str) -> int:
    print(f"fake docker: not a call pillars.ci.container makes: docker {command}", file=sys.stderr)
    return 125


def main(arguments: list[str]) -> int:
    match arguments:
        case ["run", *_]:
            return run(" ".join(arguments))
        case ["logs", container_id]:
            return logs(container_id)
        case ["rm", "--force", container_id]:
            return remove(container_id)
    return refuse(" ".join(arguments))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
