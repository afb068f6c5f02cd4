"""`dvc repro` in a fresh copy of the repository (the `reproduced` fixture): it reproduces the committed
dvc.lock and every output byte for byte, with no exception (the Bento archive and the deploy verdicts
included), reruns identically, and its outputs survive a round trip through the default DVC remote.
"""

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run

pytestmark = pytest.mark.slow


def lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())


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
    }


def test_fresh_copy_reproduces_the_committed_lock_and_outputs(reproduced: Path) -> None:
    assert (reproduced / "dvc.lock").read_bytes() == (ROOT / "dvc.lock").read_bytes()
    assert set(lock(ROOT)["stages"]) >= {"package", "deploy", "infer", "monitor"}
    assert len(output_paths(reproduced)) >= 10
    committed = run(["git", "status", "--porcelain", "--untracked-files=no"], reproduced).stdout
    assert committed == "", f"a fresh repro changed committed files:\n{committed}"


def test_a_second_repro_finds_everything_up_to_date(reproduced: Path) -> None:
    """Byte-identical reruns are checked above (a fresh repro against the lock committed from another run)
    and by .ci/run (`dvc repro --force` on every other Python); here: nothing is left to run."""
    before = digests(reproduced)
    assert "Data and pipelines are up to date" in run(["dvc", "repro"], reproduced).stdout
    assert digests(reproduced) == before


def test_push_clone_pull_round_trip(reproduced: Path, tmp_path: Path) -> None:
    # The committed default remote lives under ~/.cache; a private HOME keeps it inside this test.
    home = {"HOME": str(tmp_path / "home")}
    run(["dvc", "push"], reproduced, env=home)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(reproduced), str(clone)], tmp_path)
    assert not (clone / "data/features").exists()
    run(["dvc", "pull"], clone, env=home)
    assert digests(clone) == digests(reproduced)
    assert "up to date" in run(["dvc", "status"], clone, env=home).stdout
