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
