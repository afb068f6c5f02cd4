"""The candidate model families: every module of this package that declares `FAMILY = Family(...)` (see
`spec.Family`) is one, found at import. Adding a family is adding one such module; params.yaml then lists its
name under `train.candidates` with its search space under `train.families`."""

import importlib
import pkgutil

from pillars.core.errors import PillarsError
from pillars.core.params import TrainParams
from pillars.training.families.spec import Family

IMPORTS_EVERY_MODULE = True  # for the stage deps: importing this package runs every module beside it


def _discovered() -> dict[str, Family]:
    """Each family module's `FAMILY`, by name, in module order (the helpers here declare none)."""
    found: dict[str, Family] = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        family = getattr(importlib.import_module(f"{__name__}.{module}"), "FAMILY", None)
        if isinstance(family, Family):
            found[family.name] = family
    return found


FAMILIES: dict[str, Family] = _discovered()


def check_families(settings: TrainParams) -> None:
    """Every family params.yaml names (candidates and settings) is one of ours: a typo stops the run before
    anything is written, naming the key."""
    for key, names in (
        ("train.candidates", settings.candidates),
        ("train.families", list(settings.families)),
    ):
        if unknown := [name for name in names if name not in FAMILIES]:
            raise PillarsError(
                f"params.yaml: {key}: {unknown} is not a model family (one of {sorted(FAMILIES)}; a family is a "
                "module of src/pillars/training/families declaring FAMILY)"
            )
