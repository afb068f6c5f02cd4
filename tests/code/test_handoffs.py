"""The typed hand-offs between stages: what the stages wrote for the bundled pipeline (the committed reports)
fits each contract and reads back as written; a renamed or missing key fails at once, naming the file and
the key, on writing and on reading."""

import json
import subprocess
from pathlib import Path

import pytest
from pydantic import RootModel

from pillars.core import data_handoffs, model_handoffs
from pillars.core.errors import PillarsError
from pillars.core.handoffs import Contract, Handoff
from tests.helpers import ROOT

HANDOFFS = data_handoffs.HANDOFFS + model_handoffs.HANDOFFS
COMMITTED = [handoff for handoff in HANDOFFS if handoff.path.parts[0] == "metrics"]  # in Git; data/: DVC's
WITH_KEYS = [
    handoff for handoff in COMMITTED if not issubclass(handoff.model, RootModel)
]  # not name -> value


def git_ls_files(folder: str) -> set[str]:
    listed = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def committed(handoff: Handoff) -> dict:
    return json.loads((ROOT / handoff.path).read_text(encoding="utf-8"))


def test_every_hand_off_is_a_committed_report_or_a_dvc_output() -> None:
    """The reports under metrics/ are committed, so the tests below read what the stages wrote; the rest
    are DVC outputs under data/ (their payloads are checked below as their writers shape them)."""
    tracked = git_ls_files("metrics")
    assert {handoff.path.as_posix() for handoff in COMMITTED} <= tracked and len(COMMITTED) >= 8
    assert {handoff.path.parts[0] for handoff in HANDOFFS} == {"metrics", "data"}


@pytest.mark.parametrize("handoff", COMMITTED, ids=lambda handoff: handoff.path.as_posix())
def test_a_written_report_reads_back_as_written(handoff: Handoff, workspace: Path) -> None:
    payload = committed(handoff)
    handoff.write(payload)
    assert (workspace / handoff.path).read_bytes() == (ROOT / handoff.path).read_bytes()
    read = handoff.read()
    assert (read.as_written() if isinstance(read, Contract) else read.model_dump(mode="json")) == payload


@pytest.mark.parametrize("handoff", WITH_KEYS, ids=lambda handoff: handoff.path.as_posix())
def test_a_renamed_key_fails_naming_the_file_and_the_key(handoff: Handoff, workspace: Path) -> None:
    payload = committed(handoff)
    key = next(name for name, field in handoff.model.model_fields.items() if field.is_required())
    payload[f"{key}_renamed"] = payload.pop(key)
    with pytest.raises(PillarsError, match=rf"^{handoff.path.as_posix()}: {key}: Field required"):
        handoff.write(payload)
    assert not (workspace / handoff.path).exists(), "nothing written"
    (workspace / handoff.path).parent.mkdir(parents=True)
    (workspace / handoff.path).write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(PillarsError, match=rf"{key}: Field required.*dvc repro --force"):
        handoff.read()


def test_a_nested_key_is_named_by_its_path(workspace: Path) -> None:
    report = committed(model_handoffs.MODEL_VALIDATION)
    family = next(iter(report["candidates"]))
    del report["candidates"][family]["passed"]
    with pytest.raises(
        PillarsError, match=rf"^metrics/model_validation.json: candidates\.{family}\.passed: "
    ):
        model_handoffs.MODEL_VALIDATION.write(report)


def test_a_wrong_type_is_named_with_what_was_expected(workspace: Path) -> None:
    report = committed(model_handoffs.SELECTION) | {"eligible": "five"}
    with pytest.raises(
        PillarsError, match=r"^metrics/selection.json: eligible: Input should be a valid integer"
    ):
        model_handoffs.SELECTION.write(report)


def test_the_data_hand_offs_take_what_the_data_stages_write(workspace: Path) -> None:
    """The hand-offs under data/ (DVC outputs, not in Git), from payloads shaped as their writers shape them."""
    data_handoffs.STANDARD_COLUMNS.write({"age": {"source": "Age", "dtype": "Int64", "role": "numeric"}})
    data_handoffs.TARGET_ENCODING.write(
        {"task": "binary", "column": "income", "labels": {"<=50K": 0, ">50K": 1}}
    )
    data_handoffs.COLUMN_SELECTION.write(
        {"target": "income", "features": {"age": "numeric"}, "dropped": {"id": "identifier"}, "lineage": []}
    )
    data_handoffs.FEATURE_MANIFEST.write(
        {"target": "income", "inputs": {"age": "numeric"}, "features": [{"name": "age", "source": "age"}]}
    )
    assert data_handoffs.STANDARD_COLUMNS.read().root["age"].role == "numeric"
    assert data_handoffs.COLUMN_SELECTION.read().features == {"age": "numeric"}
    with pytest.raises(PillarsError, match=r"^data/standard/columns.json: age\.role: Input should be "):
        data_handoffs.STANDARD_COLUMNS.write({"age": {"source": "Age", "dtype": "Int64", "role": "number"}})
