"""The packaged Bento as a container, for the release workflows: its build context; a smoke test of the image.

There is no Docker engine here, so images are built in CI (docker/build-push-action). `context --out DIR`
extracts models/service.bento into DIR: `bentoml build` already wrote the Dockerfile into it
(env/docker/Dockerfile, with env/docker/entrypoint.sh), so DIR is the build context as it stands, and it
holds the model itself. It prints `dockerfile=...` and `bento=...` lines, which a workflow can append to
$GITHUB_OUTPUT.

`smoke --image IMAGE` runs the built image as a release would (`bentoml serve` of the Bento on port 3000
inside), waits for /readyz, sends the first rows of the held-out split to /predict and checks that the
answers are the packaged model's, scored in-process: same model version and labels, probabilities within
`deploy.tolerance`. The container is removed whatever happens.
"""

import argparse
import http.client
import logging
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml

from pillars.bento.archive import packaged_model
from pillars.bento.client import Client, as_json_columns, as_records
from pillars.bento.parity import offline_predictions, parity, raw_rows, record_uncertainty
from pillars.bento.server import free_port
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet
from pillars.core.params import load_params
from pillars.core.process import run
from pillars.core.schema import load_checked
from pillars.lifecycle.registry import check_deployable
from pillars.serve.capture import DIR_ENV
from pillars.serve.model import Scored, ServingModel

logger = logging.getLogger(__name__)
DOCKERFILE = Path("env/docker/Dockerfile")
MANIFEST = Path("bento.yaml")
CONTAINER_PORT = 3000  # the image's entrypoint runs `bentoml serve $BENTO_PATH`, on BentoML's default port
LOG_LINES = 40  # of `docker logs`, shown when the container does not answer
SHOWN_DIFFERENCES = 10


def bento_tag(manifest: dict[str, Any]) -> str:
    """The Bento's tag, name:version, from its bento.yaml."""
    return f"{manifest['name']}:{manifest['version']}"


def model_dirs(manifest: dict[str, Any]) -> list[Path]:
    """The model folders a Bento's manifest refers to (top level, and per service in spec 2)."""
    services = manifest.get("services") or []
    entries = [
        *(manifest.get("models") or []),
        *(model for service in services for model in service.get("models") or []),
    ]
    return [Path("models", *entry["tag"].split(":", 1)) for entry in entries if "tag" in entry]


def read_manifest(context: Path, archive: Path) -> dict[str, Any]:
    """The Bento's bento.yaml, once the context holds everything to build and serve it: the Dockerfile and
    the models the manifest names."""
    if not (context / MANIFEST).is_file():
        raise PillarsError(f"{archive}: not a Bento, it lacks {MANIFEST}; rerun `dvc repro package`")
    manifest = yaml.safe_load((context / MANIFEST).read_text(encoding="utf-8"))
    wanted = [DOCKERFILE] + [folder / "model.yaml" for folder in model_dirs(manifest)]
    if missing := [str(path) for path in wanted if not (context / path).is_file()]:
        raise PillarsError(
            f"{archive}: not a complete Bento build context, it lacks {missing}; rerun `dvc repro package`"
        )
    return manifest


def plain_members(bento: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """The archive's members, all plain files and folders inside it: no absolute path, no `..`, no link or
    device (tarfile's "data" filter, which Python 3.11.0-3.11.3 lack, checks the same)."""
    members = bento.getmembers()
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise PillarsError(
                f"{archive}: refusing to extract {member.name!r}: not a plain file or folder inside it"
            )
    return members


def extract_context(archive: Path, out: Path) -> str:
    """Extract an exported Bento into `out`, replacing it whole (never half-written); the Bento's tag."""
    if not archive.is_file():
        raise PillarsError(f"{archive}: missing; run `dvc repro package` or `make pull`")
    if out.exists() and not out.is_dir():
        raise PillarsError(f"{out}: exists and is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        try:
            with tarfile.open(archive) as bento:
                members = plain_members(bento, archive)
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later: also drops special permissions
                    bento.extractall(staged, members, filter="data")
                else:
                    bento.extractall(staged, members)
        except (OSError, tarfile.TarError) as error:
            raise PillarsError(f"{archive}: cannot extract it as a Bento ({error})") from error
        tag = bento_tag(read_manifest(staged, archive))
        replace_dir(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return tag


def replace_dir(new: Path, target: Path) -> None:
    """Put `new` in place of `target` by renames: `target` is always either the old or the new folder."""
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(old / target.name)
    new.rename(target)
    shutil.rmtree(old)


def docker(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; its output (stdout and stderr together) and exit code."""
    return run(["docker", *arguments], check=False, merge_stderr=True)


@contextmanager
def container(image: str, port: int, env: dict[str, str]) -> Iterator[str]:
    """`image` running detached with its port on 127.0.0.1:`port`; its id. On an error its log is printed;
    it is removed in the end."""
    options = [item for name, value in env.items() for item in ("--env", f"{name}={value}")]
    started = docker(
        "run", "--detach", "--rm", "--publish", f"127.0.0.1:{port}:{CONTAINER_PORT}", *options, image
    )
    if started.returncode != 0:
        raise PillarsError(f"docker run {image} failed ({started.returncode}): {started.stdout.strip()}")
    container_id = started.stdout.strip().splitlines()[-1]
    try:
        yield container_id
    except BaseException:
        log = docker("logs", container_id).stdout.splitlines()[-LOG_LINES:]
        logger.error("last lines of `docker logs %s`:\n%s", container_id, "\n".join(log))
        raise
    finally:
        removed = docker("rm", "--force", container_id)
        if removed.returncode != 0:
            logger.warning("docker rm --force %s: %s", container_id, removed.stdout.strip())


def wait_ready(url: str, timeout_s: float) -> float:
    """Seconds until `url`/readyz answers 200; an error after `timeout_s`."""
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < timeout_s:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return elapsed
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise PillarsError(f"{url}/readyz did not answer 200 within {timeout_s:g} s")


def expected_answer(expected: Scored, row: int, labels: tuple[str, ...]) -> dict[str, Any]:
    """The packaged model's answer for one row, in the fields /predict answers with."""
    probabilities = expected.probabilities
    answer: dict[str, Any] = {
        "prediction": expected.predictions[row],
        "probabilities": {label: float(values[row]) for label, values in probabilities.items()}
        if probabilities is not None
        else None,
    }
    if expected.intervals is not None:
        answer["interval"] = [float(end[row]) for end in expected.intervals]
    if expected.sets is not None:
        answer["set"] = [label for label, inside in zip(labels, expected.sets[row], strict=True) if inside]
    return answer


def differences(
    answer: list[dict[str, Any]],
    expected: Scored,
    offline: pd.DataFrame,
    serving: ServingModel,
    tolerance: float,
) -> list[str]:
    """How the served answers differ from the packaged model's, one line per problem (none: they agree).

    Each row goes through deploy's `parity` on its own, so the rules are the deploy stage's (labels exact;
    within the tolerance: the positive class's probability, every class's, or the relative value) and the
    message can name the row."""
    if len(answer) != len(expected.predictions):
        return [f"{len(answer)} answers to {len(expected.predictions)} records"]
    problems = []
    if versions := sorted({str(row.get("model_version")) for row in answer} - {serving.version}):
        problems.append(f"model version {versions} served; {layout.SERVICE_ARCHIVE} holds {serving.version}")
    labels = list(serving.labels)
    for row, served in enumerate(answer):
        as_parity = {
            "predictions": [served.get("prediction")],
            "probabilities": [pd.DataFrame([served.get("probabilities") or {}]).reindex(columns=labels)],
            "uncertainty": [record_uncertainty([served], labels)],
        }
        if not parity(as_parity, offline.iloc[[row]], labels, tolerance)["passed"]:
            got = {key: served.get(key) for key in ("prediction", "probabilities", "interval", "set")}
            problems.append(
                f"row {row}: expected {expected_answer(expected, row, serving.labels)}, got {got}"
            )
    return problems


def smoke(image: str, port: int, rows: int, timeout_s: float) -> None:
    """Run the image and check its /predict answers on held-out rows against the packaged model."""
    params = load_params()
    schema = load_checked(params)
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    holdout = layout.curated_split("holdout")
    frame = read_parquet(holdout).head(rows)
    if frame.empty:
        raise PillarsError(f"{holdout}: no rows to send")
    raw = raw_rows(read_parquet(layout.RAW_DATA), frame, schema, params.dataset.placeholders)
    columns = {field.name: raw[field.name] for field in serving.fields}
    expected = serving.score(serving.typed(columns))
    offline = offline_predictions(frame, expected.scores, serving.task, serving.threshold, serving.conformal)
    records = as_records(as_json_columns(columns, 0, len(frame)))
    url = f"http://127.0.0.1:{port}"
    with container(image, port, {DIR_ENV: "off"}) as container_id:
        ready_s = wait_ready(url, timeout_s)
        try:
            answer = Client(url).post("/predict", {"records": records})
        except (OSError, http.client.HTTPException) as error:
            raise PillarsError(f"{url}/predict: {error!r}") from error
    problems = differences(answer, expected, offline, serving, params.deploy.tolerance)
    if problems:
        shown = problems[:SHOWN_DIFFERENCES]
        if len(problems) > SHOWN_DIFFERENCES:
            shown.append(f"... and {len(problems) - SHOWN_DIFFERENCES} more")
        raise PillarsError(
            f"container-smoke: {image} does not answer like {layout.SERVICE_ARCHIVE} "
            f"on the first {len(frame)} rows of {holdout} (tolerance {params.deploy.tolerance:g}):\n"
            + "\n".join(shown)
        )
    logger.info(
        "container-smoke: %s (%s) ready in %.1f s; %d held-out rows answered like %s (model %s)",
        image,
        container_id[:12],
        ready_s,
        len(frame),
        layout.SERVICE_ARCHIVE,
        serving.version,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.container", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    context = commands.add_parser("context", help="extract the Bento's build context")
    context.add_argument("--out", type=Path, default=Path("build/bento"))
    check = commands.add_parser("smoke", help="run an image and check its answers")
    check.add_argument("--image", required=True)
    check.add_argument("--port", type=int, help="host port on 127.0.0.1 (default: a free one)")
    check.add_argument("--rows", type=int, default=20, help="held-out rows to send")
    check.add_argument("--timeout", type=float, default=180, help="seconds allowed until /readyz answers 200")
    args = parser.parse_args()
    if args.command == "context":
        check_deployable()  # the archive leaves here for the image: only one the deploy check passed
        tag = extract_context(layout.SERVICE_ARCHIVE, args.out)
        print(f"dockerfile={args.out / DOCKERFILE}\nbento={tag}")
    else:
        if args.rows < 1:
            parser.error("--rows must be at least 1")
        smoke(args.image, args.port or free_port(), args.rows, args.timeout)


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
