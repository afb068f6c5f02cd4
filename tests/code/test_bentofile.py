"""The Bento's runtime pins (bentofile.yaml) must be the versions the project is locked to and tested with."""

import re

import yaml

from tests.helpers import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    return {
        normalized(found.group(1)): found.group(2) for line in lines if (found := PIN.match(line.strip()))
    }


def test_bentofile_packages_are_pinned_to_requirements_lock() -> None:
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    packages = bentofile["python"]["packages"]
    bento_pins = pins(packages)
    assert len(bento_pins) == len(packages), f"every Bento package needs an exact == pin: {packages}"
    locked = pins((ROOT / "requirements.lock").read_text().splitlines())
    assert {name: locked.get(name) for name in bento_pins} == bento_pins


def test_the_lock_pins_one_version_of_each_package_for_every_supported_python() -> None:
    """One lock for Python 3.11-3.13 with the same versions on each: the outputs cannot depend on the
    interpreter (the Bento's pins above then hold for every one of them)."""
    names = [
        normalized(found.group(1))
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if (found := PIN.match(line.strip()))
    ]
    assert sorted({name for name in names if names.count(name) > 1}) == []
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.14"' in pyproject
    runtime = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["docker"]["python_version"]
    assert runtime in {"3.11", "3.12", "3.13"}
