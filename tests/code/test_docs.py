"""The docs cannot go stale: every make target, `python -m` module, repository path, params key and link a
page names exists, every generated table equals what its source gives now, and the README stays a short
entry point. The checks are shown to fail, naming the page, the line and the thing, on pages made to break."""

import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pillars.ci import docs
from pillars.core.errors import PillarsError
from tests.helpers import ROOT

BENCHMARKS = ROOT / "tests/benchmarks"
PAGES = docs.pages(ROOT)


def test_the_docs_have_a_page_per_task_and_an_index_naming_each() -> None:
    index = (ROOT / "docs/README.md").read_text(encoding="utf-8")
    names = {page.name for page in PAGES if page.parent == ROOT / "docs"} - {"README.md"}
    assert names >= {"own-data.md", "params.md", "data-contract.md", "models-and-gate.md", "design.md"}
    assert [name for name in sorted(names) if f"]({name})" not in index] == []


def test_every_generated_block_is_current() -> None:
    assert docs.stale_blocks(ROOT, PAGES) == [], "run `make docs`"


def test_every_target_module_path_key_and_link_a_page_names_exists() -> None:
    assert docs.broken_references(ROOT, PAGES) == []


def test_the_readme_is_short_and_links_only_to_docs_pages() -> None:
    assert docs.readme_problems(ROOT) == []


@pytest.mark.parametrize("result", sorted(path.stem for path in (BENCHMARKS / "results").glob("*.json")))
def test_each_committed_benchmark_table_is_what_its_script_writes_from_the_result(
    result: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The docs copy tests/benchmarks/results/NAME.md; that table must be the script's rendering of NAME.json."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    script = importlib.import_module(f"bench_{result}")
    target = importlib.import_module("bench_data_pillars").Target
    results = json.loads((BENCHMARKS / "results" / f"{result}.json").read_text(encoding="utf-8"))
    known = {field.name for field in dataclasses.fields(target)}
    targets = {
        name: target(**{key: value for key, value in stated.items() if key in known})
        for name, stated in results.get("targets", {}).items()
    }
    if hasattr(script, "write_markdown"):
        script.write_markdown(tmp_path / "table.md", results, targets)
        table = (tmp_path / "table.md").read_text(encoding="utf-8")
    else:
        table = script.table(results, targets)
    assert table == (BENCHMARKS / "results" / f"{result}.md").read_text(encoding="utf-8")


def test_the_params_reference_covers_every_section_and_nested_key() -> None:
    reference = docs.params_reference()
    for section in ("dataset", "compute", "ingest", "train", "validate_model", "monitor", "sweeps"):
        assert f"### `{section}`" in reference
    for key in ("train.pruner.round_interval", "monitor.drift.p_value", "curate.split.by", "dataset.schema"):
        assert f"| `{key}` |" in reference
    assert "`ingest.sources[]` with `kind: http`" in reference


@pytest.mark.parametrize(
    ("key", "known"),
    [
        ("train.metric", True),
        ("validate_model.thresholds", True),
        ("train.families.xgboost.space.max_depth", True),
        ("train.families.<name>.start", True),
        ("monitor.replay.shift.age", True),
        ("dataset.schema", True),
        ("train.metrc", False),
        ("curate.split.train.low", False),
        ("monitor.drift.p_value.max", False),
    ],
)
def test_a_params_key_is_known_only_when_the_model_has_it(key: str, known: bool) -> None:
    assert docs.is_params_key(key) is known


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A small Git repository with a Makefile, a dvc.yaml, one module and a benchmark result."""
    (tmp_path / "src/pillars").mkdir(parents=True)
    (tmp_path / "src/pillars/tool.py").write_text("def main() -> None:\n    pass\n", encoding="utf-8")
    (tmp_path / "Makefile").write_text("run:  ## the pipeline\n\tdvc repro\n", encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: x\n    outs: [data/out]\n", encoding="utf-8"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data/schema.yaml").write_text("columns: {}\n", encoding="utf-8")
    (tmp_path / "tests/benchmarks/results").mkdir(parents=True)
    (tmp_path / "tests/benchmarks/results/speed.md").write_text("| run | s |\n| --- | ---: |\n| a | 2 |\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# readme\n\n[other](docs/other.md)\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_a_page_naming_what_does_not_exist_fails_naming_the_page_the_line_and_the_thing(
    repository: Path,
) -> None:
    page = repository / "docs/page.md"
    page.write_text(
        "\n".join(
            [
                "# Page",
                "Run `make run`, then `make runn`; `train.metric` and `data/out/x.parquet` exist.",
                "`python -m pillars.tool` runs, `python -m pillars.gone` does not; `pillars.tool.main` is there.",
                "Look at `data/schema.yaml`, not `data/scheme.yaml`; `train.metrc` is a typo; `pillars.tool.nope`.",
                "See [other](other.md#a-section), [missing](missing.md) and [a heading](other.md#no-such).",
                "```bash",
                "make rnu   # in a shell block, commands are checked; data/example.csv is not",
                "```",
            ]
        ),
        encoding="utf-8",
    )
    assert docs.broken_references(repository, [page]) == [
        "docs/page.md:2: make target `runn` is not defined in the Makefile",
        "docs/page.md:3: `python -m pillars.gone`: no such module under src/",
        "docs/page.md:4: path `data/scheme.yaml` is neither in the repository nor a DVC output of dvc.yaml",
        "docs/page.md:4: params key `train.metrc` is not in the params model (src/pillars/core/params.py)",
        "docs/page.md:4: module `pillars.tool.nope` does not exist under src/",
        "docs/page.md:5: link `missing.md`: docs/missing.md does not exist",
        "docs/page.md:5: link `other.md#no-such`: docs/other.md has no heading #no-such",
        "docs/page.md:7: make target `rnu` is not defined in the Makefile",
    ]


def test_renaming_a_make_target_fails_the_pages_that_name_it(repository: Path) -> None:
    page = repository / "docs/page.md"
    page.write_text("Start with `make run`.\n", encoding="utf-8")
    assert docs.broken_references(repository, [page]) == []
    (repository / "Makefile").write_text("go:  ## the pipeline\n\tdvc repro\n", encoding="utf-8")
    assert docs.broken_references(repository, [page]) == [
        "docs/page.md:1: make target `run` is not defined in the Makefile"
    ]


def test_a_stale_block_fails_naming_page_and_block_until_make_docs_rewrites_it(
    repository: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = repository / "docs/bench.md"
    page.write_text(
        "# Speed\n\n<!-- generated: benchmark speed -->\n| run | s |\n| a | 1 |\n<!-- end generated -->\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(repository)
    monkeypatch.setattr(sys, "argv", ["docs", "--check"])
    with pytest.raises(PillarsError, match="1 problem"):
        docs.main()
    assert "docs/bench.md:3: generated block 'benchmark speed': differs" in capsys.readouterr().out
    assert "| a | 1 |" in page.read_text(encoding="utf-8")  # --check rewrites nothing

    monkeypatch.setattr(sys, "argv", ["docs"])
    docs.main()
    assert "| a | 2 |" in page.read_text(encoding="utf-8")
    assert docs.stale_blocks(repository, docs.pages(repository)) == []


def test_an_unknown_block_or_a_missing_result_is_named(repository: Path) -> None:
    page = repository / "docs/page.md"
    page.write_text(
        "<!-- generated: tables -->\n<!-- end generated -->\n"
        "<!-- generated: benchmark gone -->\n<!-- end generated -->\n",
        encoding="utf-8",
    )
    assert docs.stale_blocks(repository, [page]) == [
        "docs/page.md:1: generated block 'tables': no such kind of block (known: params, benchmark STEM)",
        "docs/page.md:3: generated block 'benchmark gone': tests/benchmarks/results/gone.md does not exist",
    ]


def test_a_long_readme_or_one_linking_outside_docs_fails(repository: Path) -> None:
    readme = repository / "README.md"
    readme.write_text("[gone](docs/gone.md) [setup](setup.md) [site](https://example.org)\n" + "line\n" * 200)
    assert docs.readme_problems(repository) == [
        "README.md: 201 lines, more than 200",
        "README.md:1: link `docs/gone.md` is not a page under docs/",
        "README.md:1: link `setup.md` is not a page under docs/",
    ]
