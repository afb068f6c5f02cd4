"""Shared fixtures: the project's own params and schema, and temporary copies of the repository."""

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from pillars.core.params import Params, parse_params
from pillars.core.schema import DataSchema, load_schema
from tests.helpers import ROOT, copy_repository, deep_merge, make, running, with_task

pytest_plugins = ["tests.scheduling"]  # make test: how the two workers share the work


@pytest.fixture(scope="session", autouse=True)
def private_bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Stages and servers started by the tests use their own BentoML store, not the user's ~/bentoml."""
    os.environ["BENTOML_HOME"] = str(tmp_path_factory.mktemp("bentoml"))
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"


@pytest.fixture(scope="session")
def default_params_raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def make_params(default_params_raw: dict) -> Callable[..., Params]:
    """Params from the committed params.yaml with some sections overridden."""

    def make(**overrides: dict) -> Params:
        return parse_params(
            deep_merge(with_task(default_params_raw, overrides.get("dataset", {}).get("task")), overrides)
        )

    return make


@pytest.fixture(scope="session")
def adult_schema() -> DataSchema:
    return load_schema(ROOT / "data" / "schema.yaml")


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh copy of the repository in a temporary directory, ready for `dvc repro`."""
    return copy_repository(tmp_path / "repo")


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository after a full `dvc repro` on the default data (shared: it takes minutes).

    Every Python process of the run records the files it read (tests/audit/sitecustomize.py) in
    `audit_dir(repo)`, for the test that each stage reads only its declared deps."""
    repo = copy_repository(tmp_path_factory.mktemp("reproduced") / "repo")
    audit = audit_dir(repo)
    audit.mkdir()
    auditing = {"PYTHONPATH": str(ROOT / "tests/audit"), "PILLARS_AUDIT_DIR": str(audit)}
    make(repo, "repro", env=auditing)  # as the workflows do; the project's environment
    return repo


def audit_dir(repo: Path) -> Path:
    """Where the `reproduced` run's processes recorded what they read (beside the copy, not in it)."""
    return repo.parent / "reads"


@pytest.fixture
def watched() -> Iterator[list[psutil.Process]]:
    """Processes a test starts and expects to end: those still running after it are killed, so a failed test
    leaves none behind."""
    processes: list[psutil.Process] = []
    yield processes
    for process in running(processes):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
