"""Loaded by every Python process of a `dvc repro` that the tests audit (PYTHONPATH=tests/audit): it records
which files the process read, so a test can check that each stage reads only its declared deps.

Active only when PILLARS_AUDIT_DIR is set; it writes one JSON file per process there at exit: the main
module and the paths read (Python's `open` audit events, and pillars' own `pillars.read` events for files
that native readers such as Arrow open without Python seeing it).
"""

import atexit
import json
import os
import sys
from pathlib import Path

AUDIT_DIR = os.environ.get("PILLARS_AUDIT_DIR")
MODULE = sys.orig_argv[sys.orig_argv.index("-m") + 1] if "-m" in sys.orig_argv[:-1] else ""
STAGE = MODULE.startswith("pillars.stages.")
if AUDIT_DIR and STAGE:  # stage processes only: an audit hook slows every process it is in
    _read: set[str] = set()

    def _hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(flag in mode for flag in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
            )
            if isinstance(path, str | bytes | os.PathLike) and not writing:
                _read.add(str(Path(os.fsdecode(path)).absolute()))
        elif event == "pillars.read":
            _read.add(str(Path(args[0]).absolute()))

    def _write() -> None:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        record = {"module": getattr(spec, "name", None), "cwd": str(Path.cwd()), "read": sorted(_read)}
        (Path(AUDIT_DIR) / f"{os.getpid()}.json").write_text(json.dumps(record), encoding="utf-8")

    sys.addaudithook(_hook)
    atexit.register(_write)
