"""`.ci/find-python`, which `make` asks for the interpreter: a supported one, or a message that says what to do."""

import subprocess
import sys

from tests.helpers import ROOT

FIND_PYTHON = ROOT / ".ci/find-python"


def find(*arguments: str, python: str) -> subprocess.CompletedProcess:
    """The script with PYTHON set (no other Python is looked for then)."""
    environment = {"PATH": "/usr/bin:/bin", "PYTHON": python}
    return subprocess.run(
        ["sh", str(FIND_PYTHON), *arguments], capture_output=True, text=True, env=environment, check=False
    )


def test_a_given_supported_interpreter_is_used_with_its_version() -> None:
    found = find("--with-version", python=sys.executable)
    assert found.returncode == 0, found.stderr
    version, path = found.stdout.split()
    assert version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert path == sys.executable or path.endswith(("python3", f"python{version}"))


def test_an_unsupported_or_missing_interpreter_is_refused_with_what_to_do() -> None:
    for python in ("/bin/false", "/nonexistent/python3.13"):
        refused = find(python=python)
        assert refused.returncode == 1
        assert "3.11, 3.12 or 3.13" in refused.stderr and "PYTHON=" in refused.stderr
