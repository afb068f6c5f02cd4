"""The docs cannot go stale: generated blocks are rewritten from their sources, and every make target,
module, path and params key a page names is checked against the repository.

A generated block is `<!-- generated: NAME -->` ... `<!-- end generated -->` in README.md or a page under
docs/. `params` is the params reference, read off the typed model in src/pillars/core/params.py (types,
defaults, constraints, and the docstrings and comments beside the fields); `benchmark STEM` is the table a
benchmark script wrote from its committed result, tests/benchmarks/results/STEM.md. `python -m
pillars.ci.docs` (`make docs`) rewrites every block; `--check` rewrites nothing and fails, naming the page
and line, when a block differs from what would be written or a page names a make target, a `python -m`
module, a repository path or a params key that does not exist.
"""

import argparse
import ast
import fnmatch
import functools
import inspect
import io
import re
import subprocess
import tokenize
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import ColumnName, Params

BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL
)
RESULTS = Path("tests/benchmarks/results")
README_MAX_LINES = 200
# A page may name paths under these folders, and these files at the top; each must exist.
PATH_ROOTS = ("src", "tests", "data", "metrics", "models", "docs", ".github", ".ci", ".dvc")
TOP_FILES = {
    "params.yaml",
    "dvc.yaml",
    "dvc.lock",
    "Makefile",
    "pyproject.toml",
    "requirements.lock",
    "bentofile.yaml",
}
FILE_SUFFIXES = {"json", "jsonl", "yaml", "yml", "csv", "parquet", "py", "md", "html", "pkl", "bento", "j2"}
MAKE = re.compile(r"(?<![\w-])make((?:\s+[A-Z_]+=\S*)*)\s+([a-z][a-z0-9-]*)")
PYTHON_M = re.compile(r"python -m ([\w.<>]+)")
SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)\s*(\w*)")
SHELLS = {"", "bash", "sh", "shell", "console"}  # fenced code whose commands are checked
CONSTRAINTS = {  # pydantic's constraint attributes, in words
    "ge": "≥ {}",
    "gt": "> {}",
    "le": "≤ {}",
    "lt": "< {}",
    "min_length": "at least {} long",
    "max_length": "at most {} long",
    "pattern": "matches `{}`",
}
YAML_END = "\n...\n"  # what PyYAML ends a lone scalar with


# --- the params reference ----------------------------------------------------------------------------------


@dataclass
class Table:
    """One table of the params reference: a section (or one kind of a list's items) and its keys."""

    title: str
    about: str
    rows: list[tuple[str, ...]] = field(default_factory=list)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


@functools.cache
def _comments(source_file: str) -> dict[str, dict[str, str]]:
    """class name -> field name -> the comment lines above the field and at the end of its line."""
    text = Path(source_file).read_text(encoding="utf-8")
    by_line = {
        token.start[0]: token.string.removeprefix("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    }
    found: dict[str, dict[str, str]] = {}
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                above: list[str] = []
                line = statement.lineno - 1
                while line in by_line and lines[line - 1].lstrip().startswith("#"):
                    above.insert(0, by_line[line])
                    line -= 1
                trailing = [
                    by_line[n]
                    for n in range(statement.lineno, (statement.end_lineno or 0) + 1)
                    if n in by_line
                ]
                found.setdefault(node.name, {})[statement.target.id] = " ".join(above + trailing)
    return found


def _field_comment(model: type[BaseModel], name: str) -> str:
    return _comments(inspect.getsourcefile(model) or "").get(model.__name__, {}).get(name, "")


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _members(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)


def _bounds(metadata: list[Any]) -> list[str]:
    """A field's constraints in words, from pydantic's metadata (annotated-types' Ge, Le, MinLen... objects
    each carry one of these attributes)."""
    said = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            said += _bounds(item.metadata)
            continue
        for attribute, words in CONSTRAINTS.items():
            if (value := getattr(item, attribute, None)) is not None:
                said.append("not empty" if (attribute, value) == ("min_length", 1) else words.format(value))
    return said


def _type_text(annotation: Any) -> str:
    """How a value of this type is written in params.yaml, in words."""
    if annotation is type(None):
        return "null"
    if _is_model(annotation):
        return "section"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        bounds = _bounds(list(args[1:]))
        return _type_text(args[0]) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin is Literal:
        names = [f"`{value}`" for value in args]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_text(member) for member in args))
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if origin is dict:
        return f"mapping of `{_key_placeholder(args[0])}` to {_type_text(args[1])}"
    return "any" if annotation is object else getattr(annotation, "__name__", str(annotation))


def _key_placeholder(annotation: Any) -> str:
    """What stands for any key of a mapping in a dotted params key."""
    return "<column>" if annotation is ColumnName else "<name>"


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if isinstance(info.default, BaseModel):
        return "as below"
    dumped = yaml.safe_dump(info.default, default_flow_style=True, width=1000)
    return f"`{dumped.removesuffix(YAML_END).strip()}`"


def _tables(model: type[BaseModel], prefix: str, table: Table, tables: list[Table]) -> None:
    """Add a row per key of `model` under `prefix` to `table`, descending into nested sections; each kind
    of a list of alternatives (ingest's sources) gets a table of its own."""
    for name, info in model.model_fields.items():
        key = f"{prefix}.{info.alias or name}"
        constraint = ", ".join(_bounds(info.metadata))
        meaning = _field_comment(model, name) or next(
            (member.__doc__ for member in _members(info.annotation) if _is_model(member)), ""
        )
        table.rows.append(
            (f"`{key}`", _type_text(info.annotation), _default_text(info), constraint, _one_line(meaning))
        )
        _nested(info.annotation, key, table, tables)


def _nested(annotation: Any, key: str, table: Table, tables: list[Table]) -> None:
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        _tables(annotation, key, table, tables)
    elif origin is Annotated:
        _nested(args[0], key, table, tables)
    elif origin is dict:
        _nested(args[1], f"{key}.{_key_placeholder(args[0])}", table, tables)
    elif origin is list:
        _nested(args[0], f"{key}[]", table, tables)
    elif origin in (Union, types.UnionType):
        models = [member for member in args if _is_model(member)]
        if len(models) == 1:
            _nested(models[0], key, table, tables)
        for member in models if len(models) > 1 else []:
            kind = next(
                f"{name}: {get_args(info.annotation)[0]}"
                for name, info in member.model_fields.items()
                if get_origin(info.annotation) is Literal and len(get_args(info.annotation)) == 1
            )
            alternative = Table(f"`{key}` with `{kind}`", _one_line(member.__doc__))
            tables.append(alternative)
            _tables(member, key, alternative, tables)


def _markdown(table: Table, heading: bool) -> str:
    about = [table.about] if table.about else []
    intro = [f"### {table.title}", "", *about] if heading else [f"{table.title}: {table.about}"]
    header = ["", "| key | type | default | constraint | meaning |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(intro + header + ["| " + " | ".join(row) + " |" for row in table.rows])


def params_reference() -> str:
    """Every key of params.yaml, a table per section: its type, default, constraint and meaning."""
    parts = []
    for name, info in Params.model_fields.items():
        section = Table(f"`{name}`", _one_line(_field_comment(Params, name)))
        tables = [section]
        if _is_model(info.annotation):
            section.about = _one_line(info.annotation.__doc__)
            _tables(info.annotation, name, section, tables)
        else:
            row = (f"`{name}`", _type_text(info.annotation), _default_text(info), "", section.about)
            section.rows.append(row)
        parts += [_markdown(table, heading=table is section) for table in tables]
    return "\n\n".join(parts)


# --- generated blocks ----------------------------------------------------------------------------------------


def block_text(name: str, root: Path) -> str:
    """What the block NAME holds now."""
    kind, _, argument = name.partition(" ")
    if name == "params":
        return params_reference()
    if kind == "benchmark" and argument:
        result = root / RESULTS / f"{argument}.md"
        if not result.is_file():
            raise PillarsError(f"{result.relative_to(root)} does not exist")
        return result.read_text(encoding="utf-8").strip()
    raise PillarsError("no such kind of block (known: params, benchmark STEM)")


def regenerated(text: str, root: Path) -> str:
    """The page with every generated block rewritten (one that cannot be is left for `stale_blocks` to name)."""

    def fresh(match: re.Match[str]) -> str:
        try:
            return f"{match[1]}\n{block_text(match['name'], root)}\n\n{match[4]}"
        except PillarsError:
            return match[0]

    return BLOCK.sub(fresh, text)


def pages(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def stale_blocks(root: Path, checked: list[Path]) -> list[str]:
    """`page:line: generated block NAME differs ...` for each block that `make docs` would rewrite."""
    found = []
    for page in checked:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            try:
                fresh = f"\n{block_text(match['name'], root)}\n\n"
            except PillarsError as error:
                fresh, problem = None, str(error)
            else:
                problem = "differs from what `make docs` writes now"
            if fresh != match["body"]:
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{page.relative_to(root)}:{line}: generated block {match['name']!r}: {problem}")
    return found


# --- references --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    """What a page may name: make targets, tracked paths and DVC outputs, modules under src/."""

    root: Path

    @functools.cached_property
    def targets(self) -> set[str]:
        text = (self.root / "Makefile").read_text(encoding="utf-8")
        return set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", text, flags=re.MULTILINE))

    @functools.cached_property
    def paths(self) -> set[str]:
        """Files Git tracks or would track (not ignored), and every folder above them."""
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        files = {path for path in listed if path and (self.root / path).exists()}
        return files | {str(parent) for path in files for parent in Path(path).parents if parent != Path()}

    @functools.cached_property
    def outputs(self) -> list[str]:
        """Every output, metric and plot a stage of dvc.yaml declares."""
        stages = yaml.safe_load((self.root / "dvc.yaml").read_text(encoding="utf-8")).get("stages", {})
        return [
            entry if isinstance(entry, str) else next(iter(entry))
            for stage in stages.values()
            for kind in ("outs", "metrics", "plots")
            for entry in stage.get(kind) or []
        ]

    def has_path(self, pattern: str) -> bool:
        """Whether a path (`<x>` and `*` match anything, `{a,b}` either) is tracked or a DVC output, or
        lies under or above one."""
        if match := re.search(r"\{([^{}]*)\}", pattern):
            return all(
                self.has_path(pattern[: match.start()] + choice + pattern[match.end() :])
                for choice in match[1].split(",")
            )
        pattern = re.sub(r"<[^>]*>", "*", pattern).rstrip("/")
        if any(fnmatch.fnmatchcase(path, pattern) for path in self.paths):
            return True
        parts = pattern.split("/")
        return any(
            all(fnmatch.fnmatchcase(have, want) for have, want in zip(output.split("/"), parts, strict=False))
            for output in self.outputs
        )

    def has_module(self, dotted: str) -> bool:
        """Whether `pillars.x.y` is a module, or a name defined at the top of one (`pillars.x.y.Name`)."""
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            base = self.root / "src" / Path(*parts[:cut])
            source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
            if source.is_file():
                return cut == len(parts) or parts[cut] in _top_level_names(str(source))
        return False

    def runs_module(self, dotted: str) -> bool:
        base = self.root / "src" / Path(*dotted.split("."))
        return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()


@functools.cache
def _top_level_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(Path(source).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def is_params_key(dotted: str, annotation: Any = Params) -> bool:
    """Whether `a.b.c` names a key the params model accepts (`<x>` stands for any key of a mapping)."""
    head, _, rest = dotted.partition(".")
    origin, args = get_origin(annotation), get_args(annotation)
    if not dotted:
        return True
    if _is_model(annotation):
        fields = {info.alias or name: info for name, info in annotation.model_fields.items()}
        return head in fields and is_params_key(rest, fields[head].annotation)
    if origin is Annotated:
        return is_params_key(dotted, args[0])
    if origin in (Union, types.UnionType):
        return any(is_params_key(dotted, member) for member in args)
    if origin is dict:
        allowed = get_args(args[0]) if get_origin(args[0]) is Literal else None
        fits = head.startswith("<") or allowed is None or head in allowed
        return fits and is_params_key(rest, args[1])
    return annotation is object


def _span_problems(span: str, repository: Repository) -> Iterator[str]:
    yield from _command_problems(span, repository)
    candidate = span.split(": ")[0]
    if (
        re.fullmatch(r"[a-z_]+(\.[\w<>-]+)+", candidate)
        and candidate.split(".")[0] in Params.model_fields
        and candidate.rsplit(".", 1)[1] not in FILE_SUFFIXES
        and not is_params_key(candidate)
    ):
        yield f"params key `{candidate}` is not in the params model (src/pillars/core/params.py)"
    if re.fullmatch(r"pillars(\.\w+)+", span) and not repository.has_module(span):
        yield f"module `{span}` does not exist under src/"
    for token in span.split():
        token = token.strip("\"',;:()")
        is_path = token.split("/")[0] in PATH_ROOTS and "/" in token
        if (is_path or token in TOP_FILES) and not repository.has_path(token):
            yield f"path `{token}` is neither in the repository nor a DVC output of dvc.yaml"


def _command_problems(text: str, repository: Repository) -> Iterator[str]:
    for match in MAKE.finditer(text):
        if match[2] not in repository.targets:
            yield f"make target `{match[2]}` is not defined in the Makefile"
    for match in PYTHON_M.finditer(text):
        module = match[1]  # `pillars.stages.<stage>` and `pillars...` stand for several: not checked
        if (
            module.startswith("pillars")
            and not re.search(r"<|\.$", module)
            and not repository.runs_module(module)
        ):
            yield f"`python -m {module}`: no such module under src/"


def _link_problems(page: Path, target: str, repository: Repository) -> Iterator[str]:
    if re.match(r"[a-z]+:", target):
        return
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page.resolve()
    try:
        relative = str(linked.relative_to(repository.root.resolve()))
    except ValueError:
        yield f"link `{target}` leaves the repository"
        return
    if path and not repository.has_path(relative):
        yield f"link `{target}`: {relative} does not exist"
    elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text(encoding="utf-8")):
        yield f"link `{target}`: {relative} has no heading #{anchor}"


def _anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    headings = re.findall(r"^#+\s+(.*?)\s*$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_references(root: Path, checked: list[Path]) -> list[str]:
    """`page:line: what` for each make target, module, path, params key or link that names nothing.

    Code spans and links are checked, and the commands (`make X`, `python -m X`) in shell code blocks;
    paths in code blocks are not, since a block may show paths of your own. Generated blocks are checked
    against their source instead."""
    repository = Repository(root)
    found = []
    for page in checked:
        language = None  # inside a fenced block: its language ("" when none is given)
        text = BLOCK.sub(
            lambda match: match[1] + "\n" * match["body"].count("\n") + match[4],
            page.read_text(encoding="utf-8"),
        )
        for number, line in enumerate(text.splitlines(), start=1):
            if fence := FENCE.match(line):
                language = fence[2] if language is None else None
            elif language is None:
                problems = [
                    problem for span in SPAN.finditer(line) for problem in _span_problems(span[2], repository)
                ]
                links = LINK.finditer(SPAN.sub("", line))
                problems += [
                    problem for link in links for problem in _link_problems(page, link[1], repository)
                ]
                found += [f"{page.relative_to(root)}:{number}: {problem}" for problem in problems]
            elif language in SHELLS:
                found += [
                    f"{page.relative_to(root)}:{number}: {problem}"
                    for problem in _command_problems(line, repository)
                ]
    return found


def readme_problems(root: Path) -> list[str]:
    """The README is an entry point: at most README_MAX_LINES lines, and its links lead to docs pages."""
    readme = root / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    found = (
        [f"README.md: {len(lines)} lines, more than {README_MAX_LINES}"]
        if len(lines) > README_MAX_LINES
        else []
    )
    for number, line in enumerate(lines, start=1):
        for link in LINK.finditer(SPAN.sub("", line)):
            path = link[1].partition("#")[0]
            if (
                path
                and not re.match(r"[a-z]+:", path)
                and not (path.startswith("docs/") and (root / path).is_file())
            ):
                found.append(f"README.md:{number}: link `{link[1]}` is not a page under docs/")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.docs", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="rewrite nothing; fail naming each stale block and broken reference",
    )
    args = parser.parse_args()
    root = Path()
    checked = pages(root)
    if not args.check:
        for page in checked:
            text = page.read_text(encoding="utf-8")
            if (fresh := regenerated(text, root)) != text:
                page.write_text(fresh, encoding="utf-8")
                print(f"{page}: generated blocks rewritten")
    found = stale_blocks(root, checked) + broken_references(root, checked) + readme_problems(root)
    if found:
        print("\n".join(found))
        raise PillarsError(
            f"{len(found)} problem(s) in the docs"
            + ("; `make docs` rewrites stale blocks" if args.check else "")
        )
    print(f"{len(checked)} pages: generated blocks current, every reference exists")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
