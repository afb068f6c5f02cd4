"""Stage deps are complete in practice, not only on paper: in the `reproduced` run every stage read only
files it declares (or writes), and editing a shared module makes `dvc status` name exactly the stages that
import it."""

import json
import re
from pathlib import Path

import pytest
import yaml

from pillars.ci.stage_deps import code_deps, covered, stage_modules
from tests.conftest import audit_dir
from tests.helpers import ROOT, committed_copy, run

pytestmark = pytest.mark.slow

# Read by a stage but not a dep, on purpose: the params file (dvc.yaml declares params key by key),
# Optuna's study storage, a resume cache whose content never changes the result
# (tests/pipeline/test_train_resume.py), and the recorder itself. Code is read as compiled files: each
# stands for its source file.
UNDECLARED = ("params.yaml", "models/optuna/", "tests/audit/")
COMPILED = re.compile(r"__pycache__/(?P<module>[^/.]+)\.[^/]+\.pyc$")


def stage_reads(repo: Path) -> dict[str, set[str]]:
    """The project files each stage's process read during the reproduced run."""
    modules = {module: stage for stage, module in stage_modules(repo / "dvc.yaml").items()}
    reads: dict[str, set[str]] = {}
    for record_file in audit_dir(repo).glob("*.json"):
        record = json.loads(record_file.read_text())
        stage = modules.get(record["module"])
        if stage is None:
            continue  # dvc itself, bentoml servers, git hooks ...
        # files of the project only: a relative name opened under a folder descriptor (rmtree of a
        # temporary folder) is resolved against the working directory by the recorder and named no file here
        inside = (
            Path(path) for path in record["read"] if Path(path).is_relative_to(repo) and Path(path).is_file()
        )
        names = (COMPILED.sub(r"\g<module>.py", path.relative_to(repo).as_posix()) for path in inside)
        reads.setdefault(stage, set()).update(names)
    return reads


def test_every_stage_reads_only_its_declared_deps(reproduced: Path) -> None:
    stages = yaml.safe_load((reproduced / "dvc.yaml").read_text())["stages"]
    # A stage whose outputs are all committed metrics was up to date in the fresh copy (byte-identical
    # outputs), so dvc did not run it: run it now, under the same recorder (its outputs do not change)
    skipped = sorted(set(stages) - set(stage_reads(reproduced)))
    recording = {"PYTHONPATH": str(ROOT / "tests/audit"), "PILLARS_AUDIT_DIR": str(audit_dir(reproduced))}
    for stage in skipped:
        run(["dvc", "repro", "--force", "--single-item", stage], reproduced, env=recording)
    reads = stage_reads(reproduced)
    assert set(reads) == set(stages), "every stage ran under the audit"
    undeclared = []
    for stage, paths in sorted(reads.items()):
        spec = stages[stage]
        allowed = [str(dep) for dep in spec.get("deps", [])] + [
            str(next(iter(out)) if isinstance(out, dict) else out)
            for kind in ("outs", "metrics", "plots")
            for out in spec.get(kind, [])
        ]
        undeclared += [
            f"stage {stage} read {path}, which is not a declared dep"
            for path in sorted(paths)
            if not covered(path, allowed) and not path.startswith(UNDECLARED)
        ]
    assert undeclared == []
    assert "metrics/train.json" in reads["assess"] and "data/raw/data.parquet" in reads["package"]
    assert "src/pillars/serve/service.py" in reads["package"]  # imported by bentoml build, by name


def test_editing_a_shared_module_changes_exactly_the_stages_that_import_it(
    reproduced: Path, tmp_path: Path
) -> None:
    repo = committed_copy(reproduced, tmp_path / "copy")
    module = "src/pillars/core/rules.py"
    importers = {stage for stage, deps in code_deps(repo / "dvc.yaml").items() if covered(module, deps)}
    assert {"cleanse", "standardize", "package"} <= importers < set(stage_modules(repo / "dvc.yaml"))
    with (repo / module).open("a", encoding="utf-8") as source:
        source.write("\n# an edit\n")
    changed = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    assert set(changed) == importers
