"""The project page (`make page`): one HTML file that opens offline in a browser with every section and
nothing fetched, the same bytes for the same repository state, and each stage's status as DVC sees it; and
`make pull` against a remote without this commit's data, which says so in one message."""

import json
import re
from pathlib import Path

import pytest
import yaml

from pillars.ci.page import pipeline_stages
from tests.browser import visit
from tests.helpers import copy_repository, make, run

SECTIONS = ["pipeline", "data", "split", "models", "card", "experiments", "deploy", "monitoring"]
PAGE = Path("build/page.html")
MAX_BYTES = 2_000_000
# Per section (by id): its text length, and how many tables and charts it holds
SECTION_CONTENT = (
    "[...document.querySelectorAll('section[id]')]"
    ".map(s => [s.id, s.innerText.length, s.querySelectorAll('table, svg').length])"
)


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a commit of a repository of its own, to clone."""
    return copy_repository(tmp_path_factory.mktemp("page") / "source")


def fresh_clone(source: Path, destination: Path) -> Path:
    """A clone of `source`: its committed files (the reports included), no DVC data, nothing built."""
    run(["git", "clone", "--quiet", str(source), str(destination)], source)
    return destination


@pytest.fixture(scope="module")
def fresh_page(committed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make page` in a fresh clone: the committed reports, no DVC data, deploy not run here."""
    clone = fresh_clone(committed, tmp_path_factory.mktemp("clone") / "repo")
    make(clone, "page")
    return clone / PAGE


@pytest.mark.slow
def test_the_page_opens_offline_with_every_section_and_fetches_nothing(fresh_page: Path) -> None:
    html = fresh_page.read_text(encoding="utf-8")
    assert len(html.encode()) < MAX_BYTES
    assert "<script" not in html.lower()
    assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.IGNORECASE)  # no address
    visited = visit(fresh_page.as_uri(), SECTION_CONTENT)
    assert visited.requests == [fresh_page.as_uri()]
    assert visited.failed == []
    assert visited.console == []
    assert [section for section, _, _ in visited.value] == SECTIONS
    assert [section for section, text, _ in visited.value if text < 80] == []
    tabled = [
        section for section, _, shown in visited.value if shown
    ]  # experiments: prose when there are none
    assert set(SECTIONS) - set(tabled) <= {"experiments"}


@pytest.mark.slow
def test_two_fresh_clones_give_the_same_bytes(committed: Path, fresh_page: Path, tmp_path: Path) -> None:
    other = fresh_clone(committed, tmp_path / "repo")
    make(other, "page")
    assert (other / PAGE).read_bytes() == fresh_page.read_bytes()


@pytest.mark.slow
def test_the_deployment_check_says_where_it_was_measured(
    committed: Path, fresh_page: Path, tmp_path: Path
) -> None:
    """A fresh clone did not run deploy (its verdict is committed): the page says how to measure here; with
    the measurements there, it shows them."""
    assert "Not measured on this machine" in fresh_page.read_text(encoding="utf-8")
    assert "dvc repro --force deploy" in fresh_page.read_text(encoding="utf-8")
    repo = fresh_clone(committed, tmp_path / "repo")
    timings = {"ready_s": 3.25, "latency": {"p50_ms": 4.5, "p99_ms": 7.75}, "throughput_rps": 531.0}
    (repo / "build").mkdir()
    (repo / "build/deploy_check.json").write_text(json.dumps(timings))
    make(repo, "page")
    html = (repo / PAGE).read_text(encoding="utf-8")
    assert "Not measured on this machine" not in html
    assert all(shown in html for shown in ("3.25", "7.75", "531"))


def test_each_stage_shows_the_status_dvc_gives_it(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never run (no record in dvc.lock), changed (a param it declares), its data not in the workspace (a
    fresh clone); every stage after the stages it reads from."""
    lock = yaml.safe_load((repo_copy / "dvc.lock").read_text())
    last = list(lock["stages"])[-1]
    del lock["stages"][last]
    (repo_copy / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["dataset"]["task"] = "multiclass" if params["dataset"]["task"] != "multiclass" else "binary"
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(repo_copy)
    stages = pipeline_stages()
    by_name = {stage.name: stage for stage in stages}
    assert by_name[last].status == "never run"
    declaring = [
        name
        for name, stage in yaml.safe_load(Path("dvc.yaml").read_text())["stages"].items()
        if "dataset.task" in stage.get("params", []) and name != last
    ]
    assert declaring
    for name in declaring:
        assert by_name[name].status == "changed"
        assert "params.yaml:dataset.task: modified" in by_name[name].changes
    assert any(change.endswith(": not in cache") for change in stages[0].changes)  # no DVC data here
    placed: set[str] = set()
    for stage in stages:
        assert placed.issuperset(stage.upstream), stage.name
        placed.add(stage.name)


def test_make_pull_without_the_data_on_the_remote_says_what_to_do(repo_copy: Path, tmp_path: Path) -> None:
    """A fresh clone's `make pull` meets a remote nothing was pushed to: one message, not a hash per file."""
    run(["dvc", "remote", "add", "--local", "--default", "empty", str(tmp_path / "remote")], repo_copy)
    pulled = make(repo_copy, "pull", check=False)
    said = (pulled.stdout + pulled.stderr).strip()
    assert pulled.returncode != 0
    assert "md5:" not in said and len(said.splitlines()) <= 6, said
    assert "does not have this commit's data" in said
    assert "make run" in said and "dvc remote add" in said


def test_make_pull_without_a_remote_says_what_to_do(repo_copy: Path) -> None:
    run(["dvc", "remote", "default", "--unset"], repo_copy)
    pulled = make(repo_copy, "pull", check=False)
    assert pulled.returncode != 0
    assert "no default DVC remote is configured" in pulled.stderr
    assert "make run" in pulled.stderr
