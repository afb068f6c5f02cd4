"""What is inside an exported Bento archive, read without BentoML."""

import tarfile
from pathlib import Path

from pillars.core.errors import PillarsError
from pillars.serve.model import SERVING_FILE, ServingModel, loads


def packaged_model(archive: Path) -> ServingModel:
    """The serving model inside an exported Bento."""
    try:
        with tarfile.open(archive) as bento:
            member = next(name for name in bento.getnames() if name.endswith(f"/{SERVING_FILE}"))
            payload = bento.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, StopIteration) as error:
        raise PillarsError(
            f"{archive}: not an exported pillars Bento ({error!r}); run `dvc repro package`"
        ) from error
    return loads(payload)
