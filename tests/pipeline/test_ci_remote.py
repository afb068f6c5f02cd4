"""`make ci-pull`: with the DVC_REMOTE_URL secret, a fresh clone gets the results from the remote and `dvc
repro` has nothing left to do; without it, the pipeline runs from scratch. The remote is a local folder (a
real DVC remote; cloud remotes differ only in their plugin)."""

from pathlib import Path

import pytest

from tests.helpers import committed_copy, make, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin(reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A committed, reproduced repository and a DVC remote holding its results."""
    folder = tmp_path_factory.mktemp("ci-remote")
    repo = committed_copy(reproduced, folder / "origin")
    secret = {"DVC_REMOTE_URL": str(folder / "dvc-remote")}
    make(repo, "ci-pull", env=secret)  # an empty remote: nothing to pull
    make(repo, "push", env=secret)  # what ci does on main
    return repo, folder / "dvc-remote"


def ci_pull(origin: Path, clone: Path, url: str, check: bool = True):
    """Clone `origin` as CI does, then `make ci-pull` with DVC_REMOTE_URL set to `url`."""
    run(["git", "clone", "-q", str(origin), str(clone)], clone.parent)
    return make(clone, "ci-pull", env={"DVC_REMOTE_URL": url}, check=check)


def test_a_fresh_clone_pulls_from_the_secret_remote(origin: tuple[Path, Path], tmp_path: Path) -> None:
    repo, remote = origin
    without = ci_pull(repo, tmp_path / "without", url="")
    assert "DVC_REMOTE_URL is not set: `dvc repro` will run the pipeline from scratch" in without.stderr
    assert not (tmp_path / "without/models/service.bento").exists()

    clone = tmp_path / "clone"
    ci_pull(repo, clone, url=str(remote))
    assert (clone / "models/service.bento").read_bytes() == (repo / "models/service.bento").read_bytes()
    assert "ci" in run(["dvc", "remote", "list", "--local"], clone).stdout
    assert run(["git", "status", "--porcelain"], clone).stdout == "", "the secret stays out of Git"
    status = run(["dvc", "status"], clone).stdout
    assert "up to date" in status, status


def test_a_remote_that_cannot_be_read_is_an_error_that_names_it(
    origin: tuple[Path, Path], tmp_path: Path
) -> None:
    result = ci_pull(origin[0], tmp_path / "clone", url="s3://pillars-no-such-bucket/x", check=False)
    assert result.returncode != 0
    assert "dvc pull from the DVC_REMOTE_URL remote failed" in result.stderr
    assert "dvc-s3" in result.stderr, "DVC says which plugin the remote needs"
