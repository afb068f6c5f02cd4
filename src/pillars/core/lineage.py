"""Lineage as content hashes of the files a stage declares as deps: what made a model, without dvc.lock.

A file's hash is the SHA-256 of its bytes; a folder's is the SHA-256 of its files' relative paths and
hashes, in sorted order, so the same content gives the same hash on any machine (no times, no owners).
"""

import hashlib
from collections.abc import Iterable
from pathlib import Path

from pillars.core.errors import PillarsError


def content_hash(path: Path) -> str:
    """`sha256:<hex>` of a file, or of every file below a folder (by relative path)."""
    if path.is_file():
        return f"sha256:{_file_digest(path)}"
    if not path.is_dir():
        raise PillarsError(f"{path}: missing; cannot record the lineage of what is not there")
    digest = hashlib.sha256()
    for file in sorted(item for item in path.rglob("*") if item.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_digest(file)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def lineage(paths: Iterable[Path]) -> dict[str, str]:
    """The content hash of each path, keyed by its POSIX path."""
    return {path.as_posix(): content_hash(path) for path in paths}


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
