"""`dvc repro` in a fresh copy of the repository (the `reproduced` fixture): it reproduces the committed
dvc.lock byte for byte, reruns identically, and its outputs survive a round trip through the default DVC
remote.

Two outputs are not byte-stable by nature, and are declared so in dvc.yaml and the README: the Bento archive
(BentoML stamps creation times; the metadata has the git revision) and the deploy check (timings). Their
hashes are left out of the comparisons below, and nothing else is.
"""

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run

pytestmark = pytest.mark.slow


NOT_BYTE_STABLE = ("models/service.bento", "metrics/deploy_check.json")


def stable_lock(repo: Path) -> dict:
    """dvc.lock without the hashes of the outputs that are not byte-stable (wherever they appear)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if entry["path"] in NOT_BYTE_STABLE:
                entry.pop("md5"), entry.pop("size")
    return lock


def output_paths(repo: Path) -> list[Path]:
    """Every file DVC tracks as a stage output, metrics included."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    roots = [repo / out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    return sorted(
        path for root in roots for path in ([root] if root.is_file() else root.rglob("*")) if path.is_file()
    )


def digests(repo: Path) -> dict[str, str]:
    return {
        str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in output_paths(repo)
        if str(path.relative_to(repo)) not in NOT_BYTE_STABLE
    }


def test_fresh_copy_reproduces_the_committed_lock(reproduced: Path) -> None:
    assert stable_lock(reproduced) == stable_lock(ROOT)
    assert set(stable_lock(ROOT)["stages"]) >= {"package", "deploy", "infer"}
    assert len(output_paths(reproduced)) >= 10


def test_rerun_gives_byte_identical_outputs(reproduced: Path) -> None:
    before = digests(reproduced)
    run(["dvc", "repro", "--force"], reproduced)
    assert digests(reproduced) == before
    assert "Data and pipelines are up to date" in run(["dvc", "repro"], reproduced).stdout


def test_push_clone_pull_round_trip(reproduced: Path, tmp_path: Path) -> None:
    # The committed default remote lives under ~/.cache; a private HOME keeps it inside this test.
    home = {"HOME": str(tmp_path / "home")}
    run(["dvc", "push"], reproduced, env=home)
    # Commit what this run produced, as a user does before pushing: the archive's hash is this run's own
    run(["git", "add", "-A"], reproduced)
    run(["git", "commit", "-qm", "reproduced outputs", "--allow-empty"], reproduced)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(reproduced), str(clone)], tmp_path)
    assert not (clone / "data/features").exists()
    run(["dvc", "pull"], clone, env=home)
    assert digests(clone) == digests(reproduced)
    assert "up to date" in run(["dvc", "status"], clone, env=home).stdout
