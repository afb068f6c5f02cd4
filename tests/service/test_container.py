"""`pillars.ci.container`: the build context CI builds the image from, and the smoke test CI runs on the image.

No Docker engine runs here, so Docker is mocked: the smoke tests put a fake `docker` first on PATH
(tests/service/fake_docker.py), whose `run` serves the extracted build context with `bentoml serve` as the
image's entrypoint does, so the real smoke logic runs against a really served model. Everything is read
from a `dvc repro` copy of the repository, never from the workspace's outputs.
"""

import dataclasses
import os
import re
import shutil
import socket
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from pillars.bento.archive import packaged_model
from pillars.bento.parity import offline_predictions, raw_rows
from pillars.bento.server import free_port
from pillars.ci.container import differences, expected_answer, extract_context
from pillars.core import layout
from pillars.core.errors import PillarsError
from pillars.core.io import read_parquet
from pillars.core.params import load_params
from pillars.core.schema import load_checked
from pillars.serve.model import SERVING_FILE, dumps, loads
from tests.helpers import BIN, run

pytestmark = pytest.mark.slow

FAKE_DOCKER = Path(__file__).with_name("fake_docker.py")


@pytest.fixture(scope="module")
def context(reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reproduced copy's Bento extracted as a build context (shared by the smoke tests)."""
    out = tmp_path_factory.mktemp("context") / "bento"
    extract_context(reproduced / layout.SERVICE_ARCHIVE, out)
    return out


@pytest.fixture
def docker_env(tmp_path: Path) -> dict[str, str]:
    """PATH with the fake `docker` first, and the folder where it keeps its containers."""
    bin_dir, state = tmp_path / "bin", tmp_path / "docker-state"
    bin_dir.mkdir()
    state.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_DOCKER}" "$@"\n')
    script.chmod(0o755)
    return {
        "PATH": os.pathsep.join([str(bin_dir), str(BIN), os.environ["PATH"]]),
        "FAKE_DOCKER_STATE": str(state),
    }


def smoke(repo: Path, env: dict[str, str], *options: str):
    return run(
        [str(BIN / "python"), "-m", "pillars.ci.container", "smoke", *options], repo, env=env, check=False
    )


def removed(env: dict[str, str]) -> list[str]:
    """The ids the fake `docker rm --force` was called with."""
    path = Path(env["FAKE_DOCKER_STATE"]) / "removed"
    return path.read_text().split() if path.exists() else []


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_context_is_the_bento_build_context(reproduced: Path, tmp_path: Path) -> None:
    """The CLI extracts the Bento with its generated Dockerfile (the image serves on port 3000 through
    BentoML's entrypoint), the manifest, the model it names and the service code; a rerun replaces it
    whole."""
    out = tmp_path / "build" / "bento"
    result = run(
        [str(BIN / "python"), "-m", "pillars.ci.container", "context", "--out", str(out)], reproduced
    )
    manifest = yaml.safe_load((out / "bento.yaml").read_text())
    tag = f"{manifest['name']}:{manifest['version']}"
    assert result.stdout.splitlines() == [f"dockerfile={out / 'env/docker/Dockerfile'}", f"bento={tag}"]
    dockerfile = (out / "env/docker/Dockerfile").read_text()
    assert "EXPOSE 3000" in dockerfile
    assert re.search(r"^ENTRYPOINT .*env/docker/entrypoint\.sh", dockerfile, re.M)
    assert (out / "env/docker/entrypoint.sh").is_file()
    assert (out / "src/pillars/serve/service.py").is_file()
    [model] = [model["tag"] for service in manifest["services"] for model in service["models"]]
    model_dir = out / "models" / Path(*model.split(":"))
    assert (model_dir / "model.yaml").is_file()
    assert (model_dir / SERVING_FILE).is_file()

    (out / "stale.txt").write_text("from an older build")
    assert extract_context(reproduced / layout.SERVICE_ARCHIVE, out) == tag
    assert not (out / "stale.txt").exists()
    assert (out / "env/docker/Dockerfile").read_text() == dockerfile
    assert sorted(path.name for path in out.parent.iterdir()) == ["bento"]  # no temporary folders left


def test_context_refuses_incomplete_or_unsafe_archives(context: Path, tmp_path: Path) -> None:
    """An archive without the Dockerfile, or with a member outside the context, is refused and leaves the
    output as it was."""
    out = tmp_path / "bento"
    out.mkdir()
    (out / "previous.txt").write_text("kept")
    without_dockerfile = tmp_path / "incomplete.bento"
    with tarfile.open(without_dockerfile, "w:xz") as bento:
        bento.add(context, arcname=".", filter=lambda m: None if m.name.endswith("Dockerfile") else m)
    with pytest.raises(PillarsError, match=r"lacks \['env/docker/Dockerfile'\]"):
        extract_context(without_dockerfile, out)
    escaping = tmp_path / "escaping.bento"
    with tarfile.open(escaping, "w:xz") as bento:
        bento.add(context / "bento.yaml", arcname="../bento.yaml")
    with pytest.raises(PillarsError, match=r"refusing to extract '\.\./bento\.yaml'"):
        extract_context(escaping, out)
    linked = tmp_path / "linked.bento"
    link = tarfile.TarInfo("env/docker/Dockerfile")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with tarfile.open(linked, "w:xz") as bento:
        bento.addfile(link)
    with pytest.raises(PillarsError, match="refusing to extract 'env/docker/Dockerfile': not a plain file"):
        extract_context(linked, out)
    linked.unlink()
    with pytest.raises(PillarsError, match="missing"):
        extract_context(tmp_path / "absent.bento", out)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bento", "escaping.bento", "incomplete.bento"]
    assert [path.name for path in out.iterdir()] == ["previous.txt"]


def test_differences_name_the_row(reproduced: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged model's own answers agree; a probability off by more than the tolerance, another model
    version or a missing answer are named."""
    monkeypatch.chdir(reproduced)
    params = load_params()
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    frame = read_parquet(layout.curated_split("holdout")).head(3)
    raw = raw_rows(read_parquet(layout.RAW_DATA), frame, load_checked(params), params.dataset.placeholders)
    expected = serving.score(serving.typed({field.name: raw[field.name] for field in serving.fields}))
    offline = offline_predictions(frame, expected.scores, serving.task, serving.threshold, serving.conformal)
    answer = [
        expected_answer(expected, row, serving.labels) | {"model_version": serving.version}
        for row in range(3)
    ]
    tolerance = params.deploy.tolerance
    assert differences(answer, expected, offline, serving, tolerance) == []
    assert all(row["set"] for row in answer), "the packaged model answers with its conformal sets"
    wrong_set = [dict(row) for row in answer]
    wrong_set[0]["set"] = [label for label in serving.labels if label not in answer[0]["set"]]
    (problem,) = differences(wrong_set, expected, offline, serving, tolerance)
    assert problem.startswith("row 0: expected {'prediction': ") and "'set': " in problem

    label = serving.labels[-1]  # binary parity compares the positive class's probability
    answer[1]["probabilities"] = answer[1]["probabilities"] | {
        label: answer[1]["probabilities"][label] + 0.01
    }
    answer[2]["model_version"] = "0123456789abcdef"
    problems = differences(answer, expected, offline, serving, tolerance)
    assert len(problems) == 2
    assert (
        problems[0]
        == f"model version ['0123456789abcdef'] served; models/service.bento holds {serving.version}"
    )
    assert problems[1].startswith("row 1: expected {'prediction': ")
    assert differences(answer[:2], expected, offline, serving, tolerance) == ["2 answers to 3 records"]


def test_smoke_passes_when_the_image_serves_the_packaged_model(
    reproduced: Path, context: Path, docker_env: dict[str, str]
) -> None:
    port = free_port()
    result = smoke(reproduced, docker_env, "--image", str(context), "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert (
        "20 held-out rows answered like models/service.bento" in result.stderr
    )  # logged, as every progress line
    assert len(removed(docker_env)) == 1
    assert not listening(port)


def test_smoke_names_the_rows_another_model_answers_differently(
    reproduced: Path, context: Path, docker_env: dict[str, str], tmp_path: Path
) -> None:
    """The image serves a model whose labels are swapped: every row differs, the first ten are named."""
    tampered = shutil.copytree(context, tmp_path / "tampered")
    [pickled] = tampered.glob(f"models/*/*/{SERVING_FILE}")
    serving = loads(pickled.read_bytes())
    pickled.write_bytes(dumps(dataclasses.replace(serving, labels=serving.labels[::-1])))
    result = smoke(reproduced, docker_env, "--image", str(tampered))
    assert result.returncode == 2
    assert f"error: container-smoke: {tampered} does not answer like models/service.bento" in result.stderr
    assert re.search(r"^row 0: expected \{'prediction': .+\}, got \{'prediction': .+\}$", result.stderr, re.M)
    assert "... and 10 more" in result.stderr
    assert len(removed(docker_env)) == 1


def test_smoke_fails_with_the_log_when_the_image_never_gets_ready(
    reproduced: Path, docker_env: dict[str, str], tmp_path: Path
) -> None:
    """An image that cannot serve (here: not a Bento) fails after --timeout, showing the container's log."""
    not_a_bento = tmp_path / "not-a-bento"
    not_a_bento.mkdir()
    result = smoke(reproduced, docker_env, "--image", str(not_a_bento), "--timeout", "3")
    assert result.returncode == 2
    assert re.search(
        r"^error: http://127\.0\.0\.1:\d+/readyz did not answer 200 within 3 s$", result.stderr, re.M
    )
    assert "last lines of `docker logs" in result.stderr
    assert "Failed to load bento" in result.stderr
    assert len(removed(docker_env)) == 1
