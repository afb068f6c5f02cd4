"""`make init-undo`: take back the last `make init`. params.yaml and the schema come back from Git (hand
edits made since go too), and the data folder init tracked with DVC stops being tracked: its .dvc file and
.gitignore entry go, and so does the folder when init copied it there. A committed .dvc file is left
alone (undo that with Git)."""

import json
import shutil
from pathlib import Path

import yaml

from pillars.core.errors import run_cli
from pillars.core.params import PARAMS_FILE
from pillars.core.process import run

LOCK_FILE = "dvc.lock"
UNDO_RECORD = Path(".dvc/tmp/pillars-init.json")  # what the last init made (DVC's tmp folder: ignored by Git)


def untrack(folder: Path, copied: bool) -> str:
    """Stop DVC tracking `folder` unless its .dvc file is in Git; remove the folder when init copied it."""
    dvc_file = folder.with_name(f"{folder.name}.dvc")
    if run(["git", "ls-tree", "--name-only", "HEAD", "--", str(dvc_file)]).stdout.strip():
        return f"kept {folder} and {dvc_file}: the .dvc file is committed (undo that with Git)"
    if dvc_file.exists():
        run(["dvc", "remove", str(dvc_file)])
    # DVC staged what it added (core.autostage): the index goes back to the commit for these files too
    run(["git", "reset", "-q", "--", str(dvc_file), str(folder.parent / ".gitignore")])
    if copied:
        shutil.rmtree(folder, ignore_errors=True)
        return f"removed {folder} (init's copy) and {dvc_file}"
    return f"removed {dvc_file}; your files in {folder} stay"


def main() -> None:
    done = []
    if UNDO_RECORD.exists():
        record = json.loads(UNDO_RECORD.read_text(encoding="utf-8"))
        done.append(untrack(Path(record["folder"]), record["copied"]))
        schema = record["schema"]
    else:
        done.append(f"no data folder to untrack ({UNDO_RECORD}: no make init recorded)")
        schema = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))["dataset"]["schema"]
    run(["git", "checkout", "HEAD", "--", str(PARAMS_FILE), schema, LOCK_FILE])
    # init's budget ran stages 1-6 on the new data: their outputs go back to what dvc.lock names, if cached
    restored = run(["dvc", "checkout", "--quiet"], check=False).returncode == 0
    done.append(
        "stage outputs restored from the DVC cache"
        if restored
        else "some stage outputs are not in the DVC cache: make run rebuilds them"
    )
    UNDO_RECORD.unlink(missing_ok=True)
    print("\n".join([f"init-undo: {PARAMS_FILE}, {schema} and {LOCK_FILE} restored from Git", *done]))


if __name__ == "__main__":
    run_cli(main)
