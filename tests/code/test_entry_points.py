"""Every `python -m pillars...` entry point answers `--help` (exit 0, what it does) before it does anything,
and one that takes no arguments (every stage: params.yaml holds its settings) refuses an argument with its
usage line instead of ignoring it and running. In this process: `--help` exits before any work."""

import importlib
import re
import sys

import pytest

from pillars.core.errors import run_cli
from tests.helpers import ROOT

SOURCE = ROOT / "src"


def entry_points() -> dict[str, bool]:
    """Each module that runs through run_cli -> whether it parses arguments of its own."""
    found = {}
    for path in sorted((SOURCE / "pillars").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if match := re.search(r"^\s*run_cli\(main(, parses_arguments=True)?\)$", text, flags=re.MULTILINE):
            found[".".join(path.relative_to(SOURCE).with_suffix("").parts)] = match.group(1) is not None
    return found


ENTRY_POINTS = entry_points()


def test_the_entry_points_are_found() -> None:
    assert len(ENTRY_POINTS) >= 30
    assert not ENTRY_POINTS["pillars.stages.train"] and ENTRY_POINTS["pillars.init.__main__"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_says_what_it_does_and_exits(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(module).main
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exited:
        main() if ENTRY_POINTS[module] else run_cli(main)  # their own parser, or run_cli's
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


@pytest.mark.parametrize("module", [module for module, parses in ENTRY_POINTS.items() if not parses])
def test_an_entry_point_without_arguments_refuses_one(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(module).main
    monkeypatch.setattr(sys, "argv", [module, "--data", "x"])
    with pytest.raises(SystemExit) as exited:
        run_cli(main)
    assert exited.value.code == 2
    assert f"usage: python -m {module}" in capsys.readouterr().err


def test_a_stage_help_names_the_stage_and_where_its_settings_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module("pillars.stages.ingest").main
    monkeypatch.setattr(sys, "argv", ["ingest", "--help"])
    with pytest.raises(SystemExit):
        run_cli(main)
    shown = capsys.readouterr().out
    assert (
        shown.startswith("usage: python -m pillars.stages.ingest")
        and "params.yaml holds its settings" in shown
    )
