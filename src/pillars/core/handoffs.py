"""Typed hand-offs between stages: a JSON file one stage writes and later stages read, with its model.

Each file has one pydantic model (a Contract) that declares the keys its readers rely on. The writer checks
its payload against the model before writing it (and writes the payload itself, so the bytes do not depend
on the model); a reader gets the typed model back. A renamed or missing key fails at once with the file and
the key, in the stage that broke the contract, not minutes later in one that reads it. Keys no reader relies
on (counts, reports for people) pass through unchecked. The contracts live beside their writers' concern:
`data_handoffs` (ingest to featurize) and `model_handoffs` (train to monitor).
"""

from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pillars.core.errors import PillarsError
from pillars.core.io import read_json, write_json


class Contract(BaseModel):
    """The keys a hand-off's readers rely on; others pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def as_written(self) -> dict[str, Any]:
        """The content as the file holds it (keys sorted, no defaults added): for a reader that passes it on
        whole, into another report or the Bento's metadata."""
        return dict(sorted(self.model_dump(mode="json", exclude_unset=True).items()))


T = TypeVar("T", bound=BaseModel)


class Handoff(Generic[T]):
    """A JSON file and its model: `write` checks a payload and writes it; `read` gives the model back."""

    def __init__(self, path: Path, model: type[T]) -> None:
        self.path, self.model = path, model

    def check(self, payload: Any) -> T:
        """The payload as the model, or a PillarsError naming the file and each wrong key."""
        try:
            return self.model.model_validate(payload)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: {problem['msg']}"
                for problem in error.errors()
            )
            raise PillarsError(f"{self.path}: {problems}") from None

    def write(self, payload: Any) -> None:
        self.check(payload)
        write_json(self.path, payload)

    def read(self) -> T:
        """The file as the model; a file from another version of pillars names its stale keys and says to
        run the stage that writes it again."""
        payload = read_json(self.path)
        try:
            return self.check(payload)
        except PillarsError as error:
            raise PillarsError(
                f"{error} (written by another version: `dvc repro --force` rewrites it)"
            ) from None
