"""How `pytest -n 2 --dist loadgroup` (make test) shares the work: every test that stands on the shared
`reproduced` run goes to one worker, so the minutes it takes are spent once, and the other tests go by
module, so a module's fixtures are set up once.

xdist's own `xdist_group` marker cannot do it under pytest 9 (xdist 3.8 renames `item._nodeid`, which pytest
9 no longer reads), so the workers write down which of their tests use the fixture, and the controller's
scheduler groups by that list.
"""

import shutil
import tempfile
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

GROUPED_FIXTURE = "reproduced"
GROUPS_FILE = "pillars_groups"  # workerinput key: where a worker writes its grouped test ids


GROUPS_FOLDER = pytest.StashKey[Path]()


def _groups_folder(config: pytest.Config) -> Path:
    """A folder the controller makes once per run, for the workers' lists."""
    if GROUPS_FOLDER not in config.stash:
        config.stash[GROUPS_FOLDER] = Path(tempfile.mkdtemp(prefix="pillars-xdist-"))
    return config.stash[GROUPS_FOLDER]


class SharedFixtureScheduling(LoadScopeScheduling):
    """Load-scope scheduling whose scope is the shared fixture for the tests that use it, else the module."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)
        self.folder = _groups_folder(config)
        self.grouped: set[str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self.grouped is None:  # first asked once every worker has collected (and written its list)
            self.grouped = {line for path in self.folder.glob("*") for line in path.read_text().splitlines()}
        return GROUPED_FIXTURE if nodeid in self.grouped else nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    """Ours for `--dist loadgroup`; xdist's own otherwise."""
    return SharedFixtureScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def pytest_configure_node(node: WorkerController) -> None:
    node.workerinput[GROUPS_FILE] = str(_groups_folder(node.config) / node.gateway.id)


def pytest_unconfigure(config: pytest.Config) -> None:
    if GROUPS_FOLDER in config.stash:
        shutil.rmtree(config.stash[GROUPS_FOLDER], ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: write down the ids of the collected tests that use the shared fixture."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and GROUPS_FILE in workerinput:
        grouped = [item.nodeid for item in items if GROUPED_FIXTURE in getattr(item, "fixturenames", ())]
        Path(workerinput[GROUPS_FILE]).write_text("\n".join(grouped))
