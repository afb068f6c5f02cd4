"""Talking to GitHub Actions from the CI targets: step outputs, the job summary and the image name, read from the environment
that Actions sets (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_REPOSITORY); run locally, the same values are printed."""

import os
from pathlib import Path

REGISTRY = "ghcr.io"
LOCAL_IMAGE = "pillars-service"  # the image name outside Actions (docker build -t pillars-service:VERSION)


def set_outputs(**values: str) -> None:
    """Print each value as `name=value`, and append it to the step's outputs when run by Actions."""
    lines = [f"{name}={value}" for name, value in values.items()]
    for line in lines:
        if "\n" in line:
            raise ValueError(f"a step output must be one line: {line!r}")
        print(line)
    destination = os.environ.get("GITHUB_OUTPUT")
    if destination:
        with Path(destination).open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))


def add_summary(markdown: str) -> None:
    """Append Markdown to the job's summary page in Actions (nothing elsewhere)."""
    destination = os.environ.get("GITHUB_STEP_SUMMARY")
    if destination:
        with Path(destination).open("a", encoding="utf-8") as handle:
            handle.write(markdown)


def image_repository() -> str:
    """Where the service image goes: ghcr.io/OWNER/REPO (lower case, as registries require) in Actions."""
    repository = os.environ.get("GITHUB_REPOSITORY")
    return f"{REGISTRY}/{repository.lower()}" if repository else LOCAL_IMAGE
