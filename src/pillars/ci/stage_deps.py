"""Stage code dependencies by construction: each stage's deps in dvc.yaml are its import closure.

A stage runs `python -m pillars.stages.<stage>`; every project module that module imports, directly or
through others (imports inside functions included, and the packages' `__init__.py` files), shapes what the
stage writes, so each must be a dep of the stage, as its file or as the package folder when the stage
imports every module in it. `python -m pillars.ci.stage_deps` (`make deps`) lists what is missing or
surplus; `--write` rewrites the `src/` deps of every stage in dvc.yaml to the closure, and leaves the other
deps, and all comments, as they are.
"""

import argparse
import ast
import io
import re
import sys
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from pillars.core.errors import PillarsError, run_cli

PACKAGE = "pillars"
SOURCE_ROOT = Path("src")
DVC_YAML = Path("dvc.yaml")
RUNTIME_IMPORTS = "RUNTIME_IMPORTS"
TEMPLATES = "TEMPLATES"
IMPORTS_EVERY_MODULE = "IMPORTS_EVERY_MODULE"
STAGE_COMMAND = re.compile(r"python -m (pillars\.stages\.\w+)")


def module_file(module: str, root: Path = SOURCE_ROOT) -> Path | None:
    """The file of a project module or package (`__init__.py`), None if it is not ours."""
    path = root.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def imported_modules(path: Path, module: str, root: Path = SOURCE_ROOT) -> set[str]:
    """The project modules a file imports anywhere in it (`from pillars.x import y` counts `pillars.x.y`
    when y is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {
                f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}", root)
            }
    return {name for name in found if name.split(".")[0] == PACKAGE and module_file(name, root)}


def declared_names(path: Path, constant: str) -> set[str]:
    """The names a file lists in a module-level `CONSTANT = (...)` of literals (or of names bound to
    literals above it); none if it has no such constant."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    literals: dict[str, object] = {}
    for node in tree.body:
        if (
            not isinstance(node, ast.Assign)
            or len(node.targets) != 1
            or not isinstance(node.targets[0], ast.Name)
        ):
            continue
        name = node.targets[0].id
        if name == constant:
            items = node.value.elts if isinstance(node.value, ast.Tuple | ast.List) else []
            return {
                str(literals[item.id] if isinstance(item, ast.Name) else ast.literal_eval(item))
                for item in items
            }
        if isinstance(node.value, ast.Constant):
            literals[name] = node.value.value
    return set()


def runtime_imports(path: Path, module: str) -> set[str]:
    """The modules a file imports by name at run time, which no import statement shows: those it names in
    `RUNTIME_IMPORTS` (the package stage has BentoML import the service module), and every module beside a
    package's `__init__` that sets `IMPORTS_EVERY_MODULE` (the model families, found at import)."""
    named = declared_names(path, RUNTIME_IMPORTS)
    if path.name != "__init__.py" or not _sets(path, IMPORTS_EVERY_MODULE):
        return named
    return named | {f"{module}.{sibling.stem}" for sibling in path.parent.glob("*.py") if sibling != path}


def _sets(path: Path, constant: str) -> bool:
    """Whether a file assigns a module-level `CONSTANT`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == constant for target in node.targets)
        for node in tree.body
    )


def templates(path: Path) -> set[Path]:
    """The templates a module renders (`TEMPLATES`, files beside it, see `pillars.core.templates`)."""
    return {path.parent / name for name in declared_names(path, TEMPLATES)}


def import_closure(module: str, root: Path = SOURCE_ROOT) -> set[Path]:
    """Every project file that importing `module` runs or reads: its imports (and runtime imports), theirs,
    their packages' inits, and the templates they render."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]  # parent packages run first
        path = module_file(name, root)
        if path is None:
            raise PillarsError(f"{name}: no such module under {root}")
        pending += sorted((imported_modules(path, name, root) | runtime_imports(path, name)) - seen)
    files = {path for name in seen if (path := module_file(name, root)) is not None}
    return files | {template for path in files for template in templates(path)}


def declared_paths(closure: set[Path], project: Path = Path()) -> list[str]:
    """The closure as dvc.yaml deps, relative to the project: a package folder when the closure holds all of
    its modules, the file otherwise."""
    package_root = project / SOURCE_ROOT / PACKAGE
    folders = sorted({path.parent for path in closure}, key=lambda folder: len(folder.parts))
    whole: list[Path] = []
    for folder in folders:
        if folder == package_root or any(parent in whole for parent in folder.parents):
            continue
        if set(folder.rglob("*.py")) <= closure:
            whole.append(folder)
    files = [path for path in closure if not any(folder in path.parents for folder in whole)]
    return sorted(path.relative_to(project).as_posix() for path in [*whole, *files])


def stage_modules(dvc_yaml: Path = DVC_YAML) -> dict[str, str]:
    """Each stage's entry module, from its `cmd`."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    modules = {}
    for name, stage in stages.items():
        match = STAGE_COMMAND.search(str(stage.get("cmd", "")))
        if match is None:
            raise PillarsError(
                f"{dvc_yaml}: stage {name}: cmd does not run `python -m pillars.stages.<stage>`"
            )
        modules[name] = match.group(1)
    return modules


def declared_deps(dvc_yaml: Path = DVC_YAML) -> dict[str, list[str]]:
    """Each stage's deps as dvc.yaml lists them."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    return {name: [str(dep) for dep in stage.get("deps") or []] for name, stage in stages.items()}


def covered(path: str, deps: list[str]) -> bool:
    """Whether a project path is a dep itself or lies in a folder that is."""
    return any(path == dep or path.startswith(f"{dep.rstrip('/')}/") for dep in deps)


def closures(dvc_yaml: Path = DVC_YAML) -> dict[str, set[Path]]:
    """Each stage's import closure (the files, under the project's src/)."""
    source = dvc_yaml.parent / SOURCE_ROOT
    return {stage: import_closure(module, source) for stage, module in stage_modules(dvc_yaml).items()}


def code_deps(dvc_yaml: Path = DVC_YAML) -> dict[str, list[str]]:
    """Each stage's import closure as the deps it must declare."""
    return {stage: declared_paths(closure, dvc_yaml.parent) for stage, closure in closures(dvc_yaml).items()}


def problems(dvc_yaml: Path = DVC_YAML) -> list[str]:
    """Missing and surplus code deps, one line each, naming the stage and the module."""
    found = []
    project = dvc_yaml.parent
    declared = declared_deps(dvc_yaml)
    modules = stage_modules(dvc_yaml)
    for stage, closure in closures(dvc_yaml).items():
        deps = declared[stage]
        found += [
            f"stage {stage}: {path} is {'imported' if path.endswith('.py') else 'read'} (from {modules[stage]}) "
            "but not a declared dep"
            for path in sorted(path.relative_to(project).as_posix() for path in closure)
            if not covered(path, deps)
        ]
        expected = declared_paths(closure, project)
        found += [
            f"stage {stage}: dep {dep} is code the stage does not import"
            for dep in deps
            if dep.startswith(f"{SOURCE_ROOT.as_posix()}/") and dep not in expected
        ]
    return found


def rewritten(text: str, code_deps: dict[str, list[str]]) -> str:
    """dvc.yaml with each stage's `src/` deps replaced by `code_deps`, first in its deps list; other deps and
    every comment stay as they are (a YAML round trip, in dvc.yaml's own layout)."""
    yaml_file = YAML()
    yaml_file.indent(mapping=2, sequence=4, offset=2)
    yaml_file.width = 4096  # never fold a long line
    document = yaml_file.load(text)
    for stage, paths in code_deps.items():
        deps = document["stages"][stage].get("deps")
        if deps is None:
            continue
        kept = [(index, dep) for index, dep in enumerate(deps) if not str(dep).startswith(f"{SOURCE_ROOT}/")]
        replaced = CommentedSeq([*paths, *(dep for _, dep in kept)])
        for new_index, (old_index, _) in enumerate(kept, start=len(paths)):
            if old_index in deps.ca.items:  # a kept dep's comment moves with it
                replaced.ca.items[new_index] = deps.ca.items[old_index]
        document["stages"][stage]["deps"] = replaced
    out = io.StringIO()
    yaml_file.dump(document, out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.ci.stage_deps", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help="rewrite the src/ deps in dvc.yaml")
    args = parser.parse_args()
    if args.write:
        DVC_YAML.write_text(rewritten(DVC_YAML.read_text(encoding="utf-8"), code_deps()), encoding="utf-8")
    found = problems()
    if found:
        print("\n".join(found), file=sys.stderr)
        raise PillarsError(f"{DVC_YAML}: {len(found)} code dep problem(s); `make deps` rewrites them")
    print(f"{DVC_YAML}: every stage declares exactly its import closure")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
