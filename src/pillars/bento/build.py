"""The serving model into BentoML: a model in the store, a Bento around it, and a byte-stable archive.

BentoML stamps what a build cannot reproduce: creation times in bento.yaml and model.yaml, the build
interpreter's version, and archive members with their mtimes and owners (`shutil.make_archive`). The
archive written here has none of them: the records carry a fixed time and the runtime's Python (the
bentofile's `docker.python_version`), and the tar lists its members sorted, with a fixed mtime, owner and
mode. The model and Bento versions are content hashes of exactly what they hold, so equal inputs give an
equal archive, byte for byte, on any machine and with any supported interpreter.
"""

import contextlib
import io
import lzma
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from pillars.core.io import write_bytes
from pillars.serve.model import MODEL_NAME, SERVING_FILE, ServingModel, content_version, dumps

BENTO_NAME = "pillars-service"  # as in bentofile.yaml
MODEL_TAG_ENV = "PILLARS_MODEL_TAG"  # the service module resolves its model from this
FIXED_TIME = "1980-01-01T00:00:00+00:00"  # in the records; 315532800 s in the tar headers
FIXED_MTIME = 315_532_800
RECORDS = ("bento.yaml", "model.yaml")


def included_files(bentofile: Path, build_context: Path) -> list[Path]:
    """The source files the Bento includes (the bentofile's `include` globs), sorted."""
    patterns = yaml.safe_load(bentofile.read_text(encoding="utf-8")).get("include") or []
    files = {path for pattern in patterns for path in build_context.glob(pattern) if path.is_file()}
    return sorted(files)


def runtime_python(bentofile: Path) -> str:
    """The Python the Bento's container runs (`docker.python_version` in the bentofile)."""
    return str(yaml.safe_load(bentofile.read_text(encoding="utf-8"))["docker"]["python_version"])


def bento_version(serving: ServingModel, bentofile: Path, build_context: Path) -> str:
    """The Bento's version: a hash of its model, its bentofile and the sources it includes, by path."""
    sources = included_files(bentofile, build_context)
    return content_version(
        serving.version.encode(),
        bentofile.read_bytes(),
        *(
            path.relative_to(build_context).as_posix().encode() + b"\0" + path.read_bytes()
            for path in sources
        ),
    )


def without_none(value: Any) -> Any:
    """Metadata without unset (None) entries, which BentoML's model metadata cannot hold."""
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value if item is not None]
    return value


def save_model(serving: ServingModel) -> str:
    """Save the serving model into the BentoML model store (replacing an equal version); its tag."""
    import bentoml

    tag = f"{MODEL_NAME}:{serving.version}"
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.models.delete(tag)
    labels = {
        "task": serving.task,
        "dataset": str(serving.metadata["dataset"]),
        "family": str(serving.metadata["selection"]["model"]),
    }
    with bentoml.models.create(tag, labels=labels, metadata=without_none(dict(serving.metadata))) as model:
        Path(model.path_of(SERVING_FILE)).write_bytes(dumps(serving))
    return tag


def build_bento(serving: ServingModel, model_tag: str, bentofile: Path, build_context: Path) -> Path:
    """Build the Bento from the bentofile around this model; the folder BentoML built it in."""
    import bentoml

    os.environ[MODEL_TAG_ENV] = model_tag
    version = bento_version(serving, bentofile, build_context)
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.bentos.delete(f"{BENTO_NAME}:{version}")
    bento = bentoml.bentos.build_bentofile(
        str(bentofile.resolve()),
        version=version,
        build_ctx=str(build_context.resolve()),
        labels={"model": model_tag},
    )
    return Path(bento.path)


def normalised_record(text: str, python: str) -> str:
    """A bento.yaml or model.yaml with the fixed time and the runtime's Python in place of the build's."""
    record = yaml.safe_load(text)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: FIXED_TIME
                if key == "creation_time"
                else python
                if key == "python_version"
                else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    return yaml.safe_dump(fix(record), sort_keys=False, allow_unicode=True)


def archive_members(bento_dir: Path, python: str) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """The Bento folder as tar members: sorted, fixed mtime and owner, records normalised."""
    paths = sorted(bento_dir.rglob("*"), key=lambda path: path.relative_to(bento_dir).as_posix())
    for path in [bento_dir, *paths]:
        name = "." if path == bento_dir else f"./{path.relative_to(bento_dir).as_posix()}"
        info = tarfile.TarInfo(name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
        if path.is_dir():
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            yield info, None
            continue
        payload = path.read_bytes()
        if path.name in RECORDS:
            payload = normalised_record(payload.decode("utf-8"), python).encode("utf-8")
        elif path.name == "version.txt" and path.parent.name == "python":
            payload = f"{python}\n".encode()
        info.size, info.mode = len(payload), 0o755 if os.access(path, os.X_OK) else 0o644
        yield info, payload


def write_archive(bento_dir: Path, model_tag: str, archive: Path, python: str) -> None:
    """Write the Bento folder with its model as an xz-compressed tar (what `bentoml import` reads),
    atomically. As `bentoml export` does, the model is copied into the folder's models/ for the archive."""
    import bentoml

    models_dir = bento_dir / "models"
    models_dir.mkdir(exist_ok=True)
    try:
        bentoml.models.BentoModel(model_tag).resolve(models_dir)
        _write_tar(bento_dir, archive, python)
    finally:
        shutil.rmtree(models_dir, ignore_errors=True)


def _write_tar(bento_dir: Path, archive: Path, python: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, payload in archive_members(bento_dir, python):
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    compressed = lzma.compress(buffer.getvalue(), preset=6)
    write_bytes(archive, lambda path: path.write_bytes(compressed))
