"""The registry (pillar 12): real GTO round trips in temporary Git (and DVC) repositories, no mocks."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from pillars.core.errors import PillarsError
from pillars.lifecycle.registry import artifact_name, output_hashes
from tests.helpers import run

DVC_YAML = {"artifacts": {"model": {"path": "models/service.bento", "type": "model"}}}


def lock_text(md5: str, checked: str | None = None) -> str:
    """A small dvc.lock: data outputs, a data dependency, the feature pipeline, candidates, the archive, and
    the archive the deploy stage passed (`checked`, default: the packaged one)."""
    out = {"hash": "md5", "md5": md5}
    archive = {"path": "models/service.bento", "hash": "md5"}
    stages = {
        "ingest": {
            "cmd": "python -m pillars.stages.ingest",
            "deps": [{"path": "data/external", **out}],
            "outs": [{"path": "data/raw", **out, "md5": f"{md5}.dir"}],
        },
        "featurize": {
            "cmd": "python -m pillars.stages.featurize",
            "outs": [{"path": "data/features", **out}, {"path": "models/feature_pipeline.pkl", **out}],
        },
        "train": {"cmd": "python -m pillars.stages.train", "outs": [{"path": "models/candidates", **out}]},
        "package": {"cmd": "python -m pillars.stages.package", "outs": [archive | {"md5": f"bento-{md5}"}]},
        "deploy": {
            "cmd": "python -m pillars.stages.deploy",
            "deps": [archive | {"md5": checked or f"bento-{md5}"}],
        },
    }
    return yaml.safe_dump({"schema": "2.0", "stages": stages})


def commit(repo: Path, message: str, files: dict[str, str]) -> str:
    """Write the files, commit everything, and return the commit's SHA."""
    for name, text in files.items():
        (repo / name).write_text(text)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def pipeline_files(md5: str, seed: int, deployed: bool = True) -> dict[str, str]:
    """A pipeline's committed files; `deployed` False: a run whose deploy check failed on its new archive."""
    return {
        "dvc.yaml": yaml.safe_dump(DVC_YAML),
        "dvc.lock": lock_text(md5, checked=None if deployed else "bento-older"),
        "params.yaml": yaml.safe_dump({"train": {"seed": seed}}),
        "metrics/deploy_check.json": json.dumps(
            {"passed": deployed, "checks": {"parity_bulk": True, "throughput": deployed}}
        ),
    }


def registry(repo: Path, *arguments: str, check: bool = True, env: dict[str, str] | None = None):
    return run([sys.executable, "-m", "pillars.lifecycle.registry", *arguments], repo, env=env, check=check)


def release(repo: Path, *arguments: str, check: bool = True, env: dict[str, str] | None = None):
    """The registry commands of the release and deploy workflows."""
    return run([sys.executable, "-m", "pillars.ci.release", *arguments], repo, env=env, check=check)


def refused(repo: Path, *arguments: str, command=registry) -> str:
    """Run a registry command that must fail; return its stderr."""
    result = command(repo, *arguments, check=False)
    assert result.returncode == 2, result.stdout
    return result.stderr


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    (repo / "metrics").mkdir()
    return repo


def test_artifact_name_needs_exactly_one_artifact(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text(yaml.safe_dump(DVC_YAML))
    assert artifact_name(path) == "model"
    path.write_text(yaml.safe_dump({"stages": {}}))
    with pytest.raises(
        PillarsError, match=r"artifacts: expected exactly one entry \(the model\), found \[\]"
    ):
        artifact_name(path)
    path.write_text(yaml.safe_dump({"artifacts": {"a": {"path": "a"}, "b": {"path": "b"}}}))
    with pytest.raises(PillarsError, match=r"found \['a', 'b'\]"):
        artifact_name(path)
    with pytest.raises(PillarsError, match="missing; run the registry from the project's root"):
        artifact_name(tmp_path / "absent.yaml")


def test_output_hashes_are_the_data_and_model_outputs() -> None:
    assert output_hashes(lock_text("a" * 32)) == {
        "data/features": "a" * 32,
        "data/raw": "a" * 32 + ".dir",
        "models/feature_pipeline.pkl": "a" * 32,
    }


@pytest.mark.slow
def test_register_promote_and_which_round_trip(git_repo: Path) -> None:
    first = commit(git_repo, "first model", pipeline_files("a" * 32, seed=1))
    assert registry(git_repo, "register").stdout.strip() == "model@v0.1.0"
    assert "already registered as model@v0.1.0" in refused(git_repo, "register")
    registry(git_repo, "promote", "v0.1.0", "prod")
    assert "model@v0.1.0 is already in stage 'prod'" in refused(git_repo, "promote", "v0.1.0", "prod")

    second = commit(git_repo, "second model", pipeline_files("b" * 32, seed=2))
    assert registry(git_repo, "register", "--bump", "patch").stdout.strip() == "model@v0.1.1"
    registry(git_repo, "promote", "v0.1.1", "staging")

    prod = json.loads(registry(git_repo, "which", "prod").stdout)
    assert prod == {
        "artifact": "model",
        "version": "v0.1.0",
        "stage": "prod",
        "commit": first,
        "data": output_hashes(lock_text("a" * 32)),
        "params": {"train": {"seed": 1}},
    }
    staging = json.loads(registry(git_repo, "which", "staging").stdout)
    assert (staging["version"], staging["commit"], staging["params"]) == (
        "v0.1.1",
        second,
        {"train": {"seed": 2}},
    )
    assert staging["data"]["data/raw"] == "b" * 32 + ".dir"

    table = registry(git_repo, "show").stdout
    assert re.search(rf"v0\.1\.1\s+staging\s+{second[:12]}", table)
    assert re.search(rf"v0\.1\.0\s+prod\s+{first[:12]}", table)
    tags = set(run(["git", "tag"], git_repo).stdout.split())
    assert {"model@v0.1.0", "model@v0.1.1"} < tags
    assert {tag.rsplit("#", 1)[0] for tag in tags if re.fullmatch(r"model#\w+#\d+", tag)} == {
        "model#prod",
        "model#staging",
    }


@pytest.mark.slow
def test_refusals_name_the_problem(git_repo: Path) -> None:
    commit(git_repo, "first model", pipeline_files("a" * 32, seed=1))
    assert "no version is in stage 'prod'" in refused(git_repo, "which")
    assert "no version is in stage 'dev'" in refused(git_repo, "champion", "--stage", "dev")
    assert "version 'v0.1.0' is not registered; registered: none yet" in refused(
        git_repo, "promote", "v0.1.0", "prod"
    )
    assert "invalid choice: 'qa'" in refused(git_repo, "promote", "v0.1.0", "qa")

    (git_repo / "dvc.lock").write_text(lock_text("c" * 32))
    assert "uncommitted changes to dvc.lock: commit the run" in refused(git_repo, "register")
    assert run(["git", "tag"], git_repo).stdout == ""


@pytest.mark.slow
def test_champion_is_the_prod_model_as_committed(git_repo: Path) -> None:
    run(["dvc", "init", "-q"], git_repo)
    selected = git_repo / "models" / "selected"
    selected.mkdir(parents=True)
    (selected / "model.pkl").write_bytes(b"model v1\x00")
    (git_repo / "models" / "feature_pipeline.pkl").write_bytes(b"pipeline v1\x00")
    (git_repo / "models" / "service.bento").write_bytes(b"bento v1\x00")
    run(
        ["dvc", "add", "-q", "models/selected", "models/feature_pipeline.pkl", "models/service.bento"],
        git_repo,
    )
    commit(git_repo, "first model", {"dvc.yaml": yaml.safe_dump(DVC_YAML)})
    registry(git_repo, "register")
    registry(git_repo, "promote", "v0.1.0", "prod")

    (selected / "model.pkl").write_bytes(b"model v2\x00")  # a newer model, committed but not promoted
    run(["dvc", "add", "-q", "models/selected"], git_repo)
    commit(git_repo, "second model", {})

    assert "models/champion: model@v0.1.0 (prod" in registry(git_repo, "champion").stdout
    champion = git_repo / "models" / "champion"
    assert (champion / "model.pkl").read_bytes() == b"model v1\x00"
    assert (champion / "feature_pipeline.pkl").read_bytes() == b"pipeline v1\x00"
    assert (champion / "service.bento").read_bytes() == b"bento v1\x00", "shadow replays through it"

    assert "dvc.lock at commit" in refused(git_repo, "which")  # `dvc add`, not a pipeline: no lineage

    clone = git_repo.parent / "clone"  # another machine: the same Git history, no DVC cache, nothing pushed
    run(["git", "clone", "-q", str(git_repo), str(clone)], git_repo.parent)
    error = refused(clone, "champion")
    assert "models/selected/model.pkl at commit" in error
    assert "run `dvc push` (make push) on the machine that trained it" in error


def step_outputs(path: Path) -> dict[str, str]:
    """The outputs a step wrote to GITHUB_OUTPUT (name=value lines)."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.slow
def test_release_registers_only_a_new_model_and_publishes_its_tag(git_repo: Path, tmp_path: Path) -> None:
    """What the release workflow runs on every push to main (make release-version, make release-publish)."""
    outputs = tmp_path / "outputs"
    actions = {"GITHUB_OUTPUT": str(outputs), "GITHUB_REPOSITORY": "Some-Owner/Pillars"}
    commit(git_repo, "first model", pipeline_files("a" * 32, seed=1))
    release(git_repo, "version", env=actions)
    assert step_outputs(outputs) == {
        "version": "v0.1.0",
        "new": "true",
        "image": "ghcr.io/some-owner/pillars",
    }

    commit(git_repo, "README only", {"README.md": "same model"})
    outputs.unlink()
    release(git_repo, "version", env=actions)
    assert step_outputs(outputs)["version"] == "v0.1.0" and step_outputs(outputs)["new"] == "false"
    said = refused(git_repo, "publish", command=release)
    assert "HEAD" in said and "is not registered" in said

    commit(git_repo, "second model", pipeline_files("b" * 32, seed=2))
    outputs.unlink()
    release(git_repo, "version", env=actions)
    assert step_outputs(outputs)["version"] == "v0.2.0" and step_outputs(outputs)["new"] == "true"

    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    run(["git", "remote", "add", "origin", str(remote)], git_repo)
    assert release(git_repo, "publish").stdout.strip() == "pushed model@v0.2.0 to origin"
    tags = run(["git", "ls-remote", "--tags", "--refs", "origin"], git_repo).stdout.split()[1::2]
    assert tags == ["refs/tags/model@v0.2.0"], "only the new version's tag is pushed"


@pytest.mark.slow
def test_release_refuses_an_archive_the_deploy_check_failed(git_repo: Path, tmp_path: Path) -> None:
    """`dvc repro` wrote a new archive, then the deploy check failed: dvc.lock's deploy stage still names the
    older archive and the report says failed. Neither release nor the container build context ships it."""
    commit(git_repo, "model that failed its deploy check", pipeline_files("a" * 32, seed=1, deployed=False))
    said = refused(git_repo, "version", command=release)
    assert "not shippable" in said
    assert "is not the archive the deploy stage last passed (md5 bento-older)" in said
    assert "the deploy check failed: ['throughput']" in said
    assert not run(["git", "tag"], git_repo).stdout.strip(), "nothing registered"
    context = run(
        [sys.executable, "-m", "pillars.ci.container", "context", "--out", str(tmp_path / "ctx")],
        git_repo,
        check=False,
    )
    assert context.returncode == 2 and "not shippable" in context.stderr
    assert not (tmp_path / "ctx").exists()


@pytest.mark.slow
def test_check_ref_resolves_a_stage_assignment_tag(git_repo: Path, tmp_path: Path) -> None:
    """What the deploy workflow runs on a `NAME#STAGE#N` tag (make deploy-resolve)."""
    commit(git_repo, "first model", pipeline_files("a" * 32, seed=1))
    registry(git_repo, "register")
    registry(git_repo, "promote", "v0.1.0", "prod")
    outputs = tmp_path / "outputs"
    release(git_repo, "check-ref", "refs/tags/model#prod#1", env={"GITHUB_OUTPUT": str(outputs)})
    assert step_outputs(outputs) == {
        "name": "model",
        "version": "v0.1.0",
        "stage": "prod",
        "image": "pillars-service",
    }
    assert "not a GTO stage assignment tag" in refused(git_repo, "check-ref", "model@v0.1.0", command=release)
