"""Pillar 12, the model registry: `python -m pillars.lifecycle.registry <command>` (or `make register`, `make promote`...).

Versions and stages are Git tags that GTO writes (`model@v0.2.0` registers a commit, `model#prod#3` assigns a
stage), so the registry lives in the repository: `git push --tags` publishes it, and "which model is in prod,
and which data and params made it?" is answered from Git alone. The artifact is the one entry of dvc.yaml's
`artifacts:` section; GTO itself reads only the tags (and an optional artifacts.yaml that we do not use).
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_bytes
from pillars.core.layout import (
    CHAMPION_ARCHIVE,
    CHAMPION_DIR,
    DEPLOY_REPORT,
    FEATURE_PIPELINE,
    SELECTED_MODEL,
    SERVICE_ARCHIVE,
)
from pillars.core.process import run

GTO = Path(sys.executable).parent / "gto"
DVC_YAML = Path("dvc.yaml")
DVC_LOCK = Path("dvc.lock")
STAGES = ("dev", "staging", "prod")
# The first version, when there is nothing to bump yet (GTO refuses a bump then)
FIRST_VERSION = {"major": "v1.0.0", "minor": "v0.1.0", "patch": "v0.0.1"}
# A registered commit must be the one that produced the model: these must be committed as they are
PIPELINE_FILES = ("dvc.yaml", "dvc.lock", "params.yaml", str(DEPLOY_REPORT))
# Model outputs whose hashes `which` reports beside the data/ outputs
LINEAGE_MODELS = (str(FEATURE_PIPELINE), "models/selected")
# What `champion` copies: the file at the version's commit -> the file in models/champion/
CHAMPION_FILES = {
    SELECTED_MODEL: CHAMPION_DIR / "model.pkl",
    FEATURE_PIPELINE: CHAMPION_DIR / "feature_pipeline.pkl",
    SERVICE_ARCHIVE: CHAMPION_ARCHIVE,  # the shadow stage replays logged traffic through it
}


@dataclass(frozen=True)
class Version:
    """One registered version of the artifact, as GTO reads it from the tags."""

    version: str
    commit: str
    stages: tuple[str, ...]
    created_at: str


def output(arguments: list[str], failure: str) -> str:
    """Run git or gto and return its stdout; a failure is a PillarsError with the tool's own words."""
    result = run(arguments, check=False, env={"GTO_EMOJIS": "false"})
    if result.returncode != 0:
        said = " ".join((result.stderr or result.stdout).split())  # GTO wraps its messages at 80 columns
        raise PillarsError(f"{failure}: {said}")
    return result.stdout


def gto(*arguments: str) -> str:
    return output([str(GTO), *arguments], f"gto {arguments[0]}")


def git(*arguments: str) -> str:
    return output(["git", *arguments], f"git {arguments[0]}")


def artifact_name(path: Path = DVC_YAML) -> str:
    """The name of the one artifact that dvc.yaml declares under `artifacts:`."""
    if not path.exists():
        raise PillarsError(f"{path}: missing; run the registry from the project's root")
    artifacts = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("artifacts") or {}
    if len(artifacts) != 1:
        raise PillarsError(
            f"{path}: artifacts: expected exactly one entry (the model), found {sorted(artifacts)}"
        )
    return next(iter(artifacts))


def registered(name: str) -> list[Version]:
    """The registered versions of the artifact, newest first, with their commits and current stages."""
    if not git("tag", "--list", f"{name}@*", f"{name}#*").strip():
        return []  # `gto show NAME` fails for an artifact without tags
    return [
        Version(
            version=entry["version"],
            commit=entry["commit_hexsha"],
            stages=tuple(stage["stage"] for stage in entry["stages"]),
            created_at=entry["created_at"],
        )
        for entry in json.loads(gto("show", name, "--json", "--registered-only"))
    ]


def in_stage(name: str, stage: str) -> Version:
    """The version currently assigned to `stage` (GTO: the latest assignment wins)."""
    for version in registered(name):
        if stage in version.stages:
            return version
    raise PillarsError(
        f"{name}: no version is in stage {stage!r}; promote one with "
        f"`python -m pillars.lifecycle.registry promote VERSION {stage}` (make promote VERSION=... STAGE={stage})"
    )


def check_committed() -> None:
    """Refuse to register when the pipeline files differ from HEAD: the tag would name the wrong model."""
    changed = git("status", "--porcelain", "--", *PIPELINE_FILES).splitlines()
    if changed:
        files = ", ".join(line[3:] for line in changed)
        raise PillarsError(
            f"uncommitted changes to {files}: commit the run that produced the model, then register"
        )


def register(name: str, bump: str) -> str:
    """Register HEAD as the next version (`bump` names the SemVer part); return its tag."""
    check_committed()
    head = git("rev-parse", "HEAD").strip()
    versions = registered(name)
    for version in versions:
        if version.commit == head:
            raise PillarsError(
                f"HEAD ({head[:12]}) is already registered as {name}@{version.version}; "
                "commit a new model (dvc repro, git commit) to register another version"
            )
    how = [f"--bump-{bump}"] if versions else ["--version", FIRST_VERSION[bump]]
    gto("register", name, head, *how)
    (new,) = (version for version in registered(name) if version.commit == head)
    return f"{name}@{new.version}"


def promote(name: str, version: str, stage: str) -> None:
    """Assign a registered version to a stage (a `NAME#STAGE#N` tag)."""
    versions = {entry.version: entry for entry in registered(name)}
    if version not in versions:
        known = ", ".join(versions) or "none yet (python -m pillars.lifecycle.registry register)"
        raise PillarsError(f"{name}: version {version!r} is not registered; registered: {known}")
    if stage in versions[version].stages:
        raise PillarsError(f"{name}@{version} is already in stage {stage!r}")
    gto("assign", name, "--version", version, "--stage", stage, "--simple", "false")


def model_hashes(lock_text: str) -> dict[str, str]:
    """The hashes that identify a model: the feature pipeline and the selected model in a dvc.lock."""
    hashes = output_hashes(lock_text)
    return {path: hashes.get(path, "") for path in LINEAGE_MODELS}


def deploy_problems(lock_text: str, verdicts: dict | None) -> list[str]:
    """Why the archive in a dvc.lock is not the one a passed deploy check served (empty: it is).

    DVC writes the package stage's archive whatever the deploy stage then finds, and records the deploy stage
    in dvc.lock only when it passes: a failed check leaves a lock whose deploy stage names an older archive
    (or none), and a report that says failed."""
    stages = (yaml.safe_load(lock_text) or {}).get("stages") or {}
    archive = str(SERVICE_ARCHIVE)

    def md5_of(stage: str, kind: str) -> str | None:
        entries = (stages.get(stage) or {}).get(kind) or []
        return next((entry.get("md5") for entry in entries if entry["path"] == archive), None)

    packaged, checked = md5_of("package", "outs"), md5_of("deploy", "deps")
    problems = []
    if packaged is None:
        problems.append(f"dvc.lock records no {archive} from the package stage")
    elif checked != packaged:
        problems.append(
            f"dvc.lock: {archive} (md5 {packaged}) is not the archive the deploy stage last passed "
            f"(md5 {checked or 'none'})"
        )
    if verdicts is None:
        problems.append(f"{DEPLOY_REPORT} is missing")
    elif not verdicts.get("passed"):
        failed = [check for check, passed in (verdicts.get("checks") or {}).items() if not passed]
        problems.append(f"{DEPLOY_REPORT}: the deploy check failed: {failed}")
    return problems


def check_deployable() -> None:
    """Refuse to ship an archive the deploy check did not pass (release, and the container build context)."""
    verdicts = json.loads(DEPLOY_REPORT.read_text(encoding="utf-8")) if DEPLOY_REPORT.is_file() else None
    problems = deploy_problems(DVC_LOCK.read_text(encoding="utf-8"), verdicts)
    if problems:
        raise PillarsError(
            "not shippable: " + "; ".join(problems) + ". Fix what the deploy check found, run `dvc repro` "
            "until it passes, and commit dvc.lock and the metrics"
        )


def release(name: str) -> tuple[str, bool]:
    """HEAD's version, registering HEAD (minor bump) only when its model differs from the newest version's:
    every push to main releases, but only a new model makes a new version, and never one whose archive failed
    the deploy check. Returns (version, new)."""
    check_committed()
    check_deployable()
    versions = registered(name)
    if versions:
        newest = versions[0]
        if model_hashes(read_at(newest.commit, "dvc.lock")) == model_hashes(
            DVC_LOCK.read_text(encoding="utf-8")
        ):
            return newest.version, False
    return register(name, "minor").split("@", 1)[1], True


def publish(name: str, git_remote: str) -> str:
    """Push the registration tag of HEAD's version: the registry is the Git remote's tags."""
    head = git("rev-parse", "HEAD").strip()
    at_head = [version.version for version in registered(name) if version.commit == head]
    if not at_head:
        raise PillarsError(
            f"{name}: HEAD ({head[:12]}) is not registered; run `python -m pillars.lifecycle.registry release`"
        )
    tag = f"{name}@{at_head[0]}"
    git("push", git_remote, f"refs/tags/{tag}")
    return tag


def stage_assignment(ref: str) -> dict[str, str]:
    """The artifact, version and stage that a GTO stage assignment tag (`NAME#STAGE#N`) names."""
    found = json.loads(gto("check-ref", ref.removeprefix("refs/tags/"), "--json") or "{}")
    if found.get("event") != "assignment":
        raise PillarsError(
            f"{ref}: not a GTO stage assignment tag (NAME#STAGE#N); found {found or 'nothing'}"
        )
    return {"name": found["artifact"], "version": found["version"], "stage": found["stage"]}


def table(name: str) -> str:
    """The registry as a table: each version with its stages, commit and registration time."""
    rows = [("version", "stages", "commit", "registered")]
    rows += [
        (entry.version, ",".join(entry.stages) or "-", entry.commit[:12], entry.created_at)
        for entry in registered(name)
    ]
    if len(rows) == 1:
        return f"{name}: no version registered yet (python -m pillars.lifecycle.registry register)"
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return f"artifact {name}\n" + "\n".join(line.rstrip() for line in lines)


def read_at(commit: str, path: str) -> str:
    """A file's text as committed in `commit`."""
    return output(["git", "show", f"{commit}:{path}"], f"{path} at commit {commit[:12]}")


def output_hashes(lock_text: str) -> dict[str, str]:
    """The md5 of every data/ output (and the model outputs) of every stage in a dvc.lock."""
    lock = yaml.safe_load(lock_text) or {}
    hashes = {
        out["path"]: out.get("md5")
        for stage in (lock.get("stages") or {}).values()
        for out in stage.get("outs") or []
        if out["path"].startswith("data/") or out["path"] in LINEAGE_MODELS
    }
    return dict(sorted(hashes.items()))


def lineage(name: str, stage: str) -> dict:
    """Which version is in `stage`, and the data hashes and params of the commit that made it."""
    version = in_stage(name, stage)
    return {
        "artifact": name,
        "version": version.version,
        "stage": stage,
        "commit": version.commit,
        "data": output_hashes(read_at(version.commit, "dvc.lock")),
        "params": yaml.safe_load(read_at(version.commit, "params.yaml")),
    }


def read_model_file(path: Path, commit: str) -> bytes:
    """A DVC-tracked file as of `commit`, from the local DVC cache or the default remote."""
    import dvc.api  # on first use: importing DVC costs half a second that the other commands do not need
    from dvc.exceptions import DvcException
    from dvc_data.index.index import DataIndexError  # a missing directory object is not a DvcException

    try:
        with dvc.api.open(str(path), repo=".", rev=commit, mode="rb") as handle:
            return handle.read()
    except (DvcException, DataIndexError, OSError) as error:
        raise PillarsError(
            f"{path} at commit {commit[:12]}: cannot be read ({error}); run `dvc push` (make push) on the "
            "machine that trained it, and check that this one reaches the DVC remote (make pull)"
        ) from None


def fill_champion(name: str, stage: str) -> Version:
    """Fill models/champion/ with the model, feature pipeline and Bento of the version in `stage`."""
    version = in_stage(name, stage)
    payloads = {target: read_model_file(source, version.commit) for source, target in CHAMPION_FILES.items()}
    for target, payload in payloads.items():  # both read before either is written
        write_bytes(target, lambda temporary, payload=payload: temporary.write_bytes(payload))
    return version


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.lifecycle.registry", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    register_parser = commands.add_parser("register", help="register HEAD as a new version")
    register_parser.add_argument("--bump", choices=tuple(FIRST_VERSION), default="minor")
    promote_parser = commands.add_parser("promote", help="assign a registered version to a stage")
    promote_parser.add_argument("version", help="e.g. v0.1.0")
    promote_parser.add_argument("stage", choices=STAGES)
    commands.add_parser("show", help="the versions with their stages and commits")
    which_parser = commands.add_parser(
        "which", help="the version in a stage and the data/params that made it"
    )
    which_parser.add_argument("stage", nargs="?", default="prod", choices=STAGES)
    champion_parser = commands.add_parser(
        "champion", help="fill models/champion/ from the version in a stage"
    )
    champion_parser.add_argument("--stage", default="prod", choices=STAGES)
    arguments = parser.parse_args()

    name = artifact_name()
    if arguments.command == "register":
        print(register(name, arguments.bump))
    elif arguments.command == "promote":
        promote(name, arguments.version, arguments.stage)
        print(f"{name}@{arguments.version} -> {arguments.stage}")
    elif arguments.command == "show":
        print(table(name))
    elif arguments.command == "which":
        print(json.dumps(lineage(name, arguments.stage), indent=2, ensure_ascii=False))
    else:
        version = fill_champion(name, arguments.stage)
        print(f"{CHAMPION_DIR}: {name}@{version.version} ({arguments.stage}, commit {version.commit[:12]})")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
