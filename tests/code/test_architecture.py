"""The tree is the architecture: each package imports only the packages below it, no module imports a stage,
every stage declares its import closure as deps, and the Bento ships exactly the serving code."""

from pathlib import Path

import pytest

from pillars.bento.build import included_files
from pillars.ci.stage_deps import (
    code_deps,
    import_closure,
    imported_modules,
    problems,
    rewritten,
    stage_modules,
)
from tests.helpers import ROOT

SOURCE = ROOT / "src"
ALLOWED = {  # package -> the packages of ours it may import (besides itself)
    "core": set(),
    "compute": {"core"},
    "training": {"core", "serve", "compute"},  # the fitted models of our own that ship (serve.estimators)
    "init": {"core", "compute", "training"},  # make budget measures trials of the training families
    "serve": {"core"},
    "bento": {"core", "serve"},
    "monitoring": {"core", "serve", "bento"},
    "lifecycle": {"core", "serve", "bento", "monitoring"},
    "ci": {"core", "compute", "training", "init", "serve", "bento", "monitoring", "lifecycle"},
    "stages": {"core", "compute", "training", "init", "serve", "bento", "monitoring", "lifecycle", "ci"},
}


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted((SOURCE / "pillars").rglob("*.py"))
    }


def test_every_module_lives_in_a_known_package() -> None:
    loose = [
        name
        for name in modules()
        if name.count(".") < 2 and name != "pillars" and name.split(".")[1] not in ALLOWED
    ]
    assert loose == []


def test_packages_import_only_the_packages_below_them() -> None:
    wrong = []
    for name, path in modules().items():
        if name == "pillars":
            continue
        package = name.split(".")[1]
        for imported in imported_modules(path, name, SOURCE):
            target = imported.split(".")[1] if imported.count(".") else None
            if target is not None and target != package and target not in ALLOWED[package]:
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_no_module_imports_a_stage_module() -> None:
    importers = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        for imported in imported_modules(path, name, SOURCE)
        if imported.startswith("pillars.stages.") and imported != name
    ]
    assert importers == []


def test_every_stage_declares_its_import_closure() -> None:
    assert problems(ROOT / "dvc.yaml") == []


def test_the_bento_ships_exactly_the_service_closure() -> None:
    closure = import_closure("pillars.serve.service", SOURCE)
    shipped = set(included_files(ROOT / "bentofile.yaml", SOURCE))
    assert shipped == closure | set((SOURCE / "pillars/serve").glob("*.py"))
    assert not {path for path in shipped if "ci" in path.parts or "stages" in path.parts}


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """pillars.stages.a imports core.b inside a function; core.b imports core.c; core.d is never imported."""
    files = {
        "pillars/__init__.py": "",
        "pillars/stages/__init__.py": "",
        "pillars/stages/a.py": "def main():\n    from pillars.core import b\n",
        "pillars/core/__init__.py": "",
        "pillars/core/b.py": "from .c import VALUE\n",
        "pillars/core/c.py": "VALUE = 1\n",
        "pillars/core/d.py": "",
    }
    for name, text in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_text(text)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:  # stage a\n    cmd: python -m pillars.stages.a\n    deps:\n"
        "      - src/pillars/stages/a.py\n      - data/x   # data\n"
    )
    return tmp_path


def test_closure_follows_function_level_relative_and_transitive_imports(toy_project: Path) -> None:
    source = toy_project / "src"
    closure = {path.relative_to(source).as_posix() for path in import_closure("pillars.stages.a", source)}
    assert closure == {
        "pillars/__init__.py",
        "pillars/stages/__init__.py",
        "pillars/stages/a.py",
        "pillars/core/__init__.py",
        "pillars/core/b.py",
        "pillars/core/c.py",
    }


def test_a_folder_is_declared_only_when_every_module_in_it_is_imported(toy_project: Path) -> None:
    assert code_deps(toy_project / "dvc.yaml") == {
        "a": [
            "src/pillars/__init__.py",
            "src/pillars/core/__init__.py",
            "src/pillars/core/b.py",
            "src/pillars/core/c.py",
            "src/pillars/stages",  # both of its modules; core/d.py is never imported
        ]
    }


def test_missing_deps_are_named_then_rewritten_keeping_the_rest(toy_project: Path) -> None:
    dvc_yaml = toy_project / "dvc.yaml"
    found = problems(dvc_yaml)
    assert (
        "stage a: src/pillars/core/c.py is imported (from pillars.stages.a) but not a declared dep" in found
    )
    dvc_yaml.write_text(rewritten(dvc_yaml.read_text(), code_deps(dvc_yaml)))
    assert problems(dvc_yaml) == []
    assert "- data/x   # data" in dvc_yaml.read_text() and "# stage a" in dvc_yaml.read_text()
    assert stage_modules(dvc_yaml) == {"a": "pillars.stages.a"}


def test_a_template_a_module_renders_is_a_dep_of_the_stage(toy_project: Path) -> None:
    source = toy_project / "src"
    (source / "pillars/core/c.py").write_text(
        'CARD = "card.md.j2"\nTEMPLATES = (CARD, "page.html.j2")\nVALUE = 1\n'
    )
    closure = {path.relative_to(source).as_posix() for path in import_closure("pillars.stages.a", source)}
    assert {"pillars/core/card.md.j2", "pillars/core/page.html.j2"} <= closure
    dvc_yaml = toy_project / "dvc.yaml"
    assert "stage a: src/pillars/core/card.md.j2 is read (from pillars.stages.a) but not a declared dep" in (
        problems(dvc_yaml)
    )
