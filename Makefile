# pillars: every command a person or CI runs. `make run` sets up a fresh machine and runs the pipeline;
# `make test` runs the tests. The virtual environment is built from requirements.lock only.

PYTHON ?=
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# The interpreter setup builds the venv with: PYTHON if given (its version checked), else the first of
# Python 3.11, 3.12, 3.13 found (.ci/find-python says where it looks). Empty if none: setup says why.
FOUND_PYTHON := $(shell PYTHON='$(PYTHON)' sh .ci/find-python --with-version 2>/dev/null)
SETUP_VERSION := $(firstword $(FOUND_PYTHON))
SETUP_PYTHON := $(wordlist 2,$(words $(FOUND_PYTHON)),$(FOUND_PYTHON))
INSTALLED_VERSION := $(shell cat '$(VENV)/.installed' 2>/dev/null)
SEARCH_PATH := $(PATH)
export PATH := $(BIN):$(PATH)
export BENTOML_DO_NOT_TRACK := true
.DEFAULT_GOAL := help  # plain `make` lists the targets

.PHONY: help serve setup run repro deps init init-undo budget schema test test-fast lint format bench lock push pull clean sweep sweep-show \
	register promote registry which champion monitor monitor-demo retrain \
	ci-pull pr-report pr-comment sweep-report exp-push release-version release-publish bento-context \
	container-smoke deploy-resolve rollout monitor-alert retrain-pr fuzz

setup: $(VENV)/.installed  ## virtual environment from the pinned lock, on Python 3.11-3.13 (PYTHON=... to choose)

# The stamp holds the venv's Python version (major.minor). When the interpreter chosen above is another
# version (or none was found), python-changed (phony: always out of date) makes the stamp out of date and
# the venv is built again from scratch; otherwise a changed lock or pyproject.toml updates it in place.
$(VENV)/.installed: requirements.lock pyproject.toml $(if $(filter $(INSTALLED_VERSION),$(SETUP_VERSION)),,python-changed)
	@[ -n "$(SETUP_PYTHON)" ] || { PATH='$(SEARCH_PATH)' PYTHON='$(PYTHON)' sh .ci/find-python >/dev/null; exit 1; }
	@if [ -d $(VENV) ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != $(SETUP_VERSION) ]; then \
		echo "$(VENV) is not a Python $(SETUP_VERSION) environment: removing it"; rm -rf $(VENV); fi
	$(SETUP_PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	echo $(SETUP_VERSION) > $@

.PHONY: python-changed
python-changed:

help:  ## this list: every target and what it does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 18

run: setup  ## set up, then run the whole pipeline on the configured data (default: bundled Adult); where you stand
	dvc repro
	@python -m pillars.lifecycle.summary

repro: setup  ## rerun only what changed
	dvc repro

deps: setup  ## rewrite each stage's code deps in dvc.yaml to its import closure (the tests check them)
	python -m pillars.ci.stage_deps --write

.PHONY: docs
docs: setup  ## regenerate the generated tables in docs/ from the params model and the committed benchmark results
	python -m pillars.ci.docs

init: setup  ## your own data: params.yaml and the schema for DATA (a file or glob) and TARGET [TASK=...] [SEP=...] [POSITIVE=...] [BUDGET=10m] [FORCE=1]
	@[ -n "$(DATA)" ] && [ -n "$(TARGET)" ] || { echo "usage: make init DATA=path/to/data.csv TARGET=column [TASK=binary|multiclass|regression] [SEP=';'|'\\t'] [POSITIVE=label] [BUDGET=10m|quick] [FORCE=1]"; exit 1; }
	python -m pillars.init --data '$(DATA)' --target '$(TARGET)' $(if $(TASK),--task $(TASK)) $(if $(SEP),--sep '$(SEP)') $(if $(POSITIVE),--positive '$(POSITIVE)') $(if $(FORCE),--force) $(if $(BUDGET),--budget $(BUDGET))

init-undo: setup  ## undo the last make init: params.yaml and the schema from Git, its data copy and .dvc file removed (unless committed)
	python -m pillars.init.undo

budget: setup  ## size train so the next make run takes about MINUTES here (default 10): measured, written as counts
	python -m pillars.init.budget --minutes $(or $(MINUTES),10)

schema: setup  ## infer data/schema.yaml from the ingested data, for a person to review and commit
	dvc repro ingest
	python -m pillars.core.schema infer $(if $(FORCE),--force)

test: setup lint  ## lint and type check, then every test, two at a time: what main and the nightly run wait for
	pytest -n 2 --dist loadgroup

test-fast: setup lint  ## lint and type check, then the tests without a pipeline run, two at a time: what a pull request waits for
	pytest -m "not slow" -n 2

lint: setup  ## ruff (lint and format check) and mypy (strict on core/ and serve/)
	ruff check .
	ruff format --check .
	mypy

format: setup
	ruff format .
	ruff check --fix .

fuzz: setup  ## schemathesis against the served models/service.bento: EXAMPLES cases per operation (1000), no 5xx
	python -m pillars.bento.fuzz --examples $(or $(EXAMPLES),1000)

bench: setup  ## benchmarks: stages 1-6 (default and 100x data), the whole pipeline, the served model, model quality vs FLAML and default models, your own data in a budget, threads on a busy machine, the gate against chance, the shadow replay (speed, and challengers it blocks or passes), tuning on Dask; tests/benchmarks/results
	python tests/benchmarks/bench_data_pillars.py
	python tests/benchmarks/bench_pipeline.py
	python tests/benchmarks/bench_service.py
	python tests/benchmarks/bench_quality.py
	python tests/benchmarks/bench_own_data.py
	python tests/benchmarks/bench_threads.py
	python tests/benchmarks/bench_gate.py
	python tests/benchmarks/bench_shadow.py
	python tests/benchmarks/bench_challengers.py
	python tests/benchmarks/bench_scale.py

# One lock for Python 3.11-3.13 (--universal). --fork-strategy fewest: one version of each package for all
# three, so the pipeline's outputs do not depend on the interpreter; the check below fails if one forks.
lock:  ## re-pin every dependency after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --group dev --universal --python-version 3.11 --fork-strategy fewest \
		--generate-hashes -o requirements.lock
	@forked=$$(grep -oE '^[A-Za-z0-9._-]+==' requirements.lock | sort | uniq -d | tr -d =); \
	[ -z "$$forked" ] || { echo "requirements.lock pins more than one version of: $$forked" \
		"(pin one in pyproject.toml that every supported Python can install)"; exit 1; }

push: setup  ## upload DVC-tracked data and models to the default remote
	dvc push

pull: setup  ## download them (then `dvc repro` has nothing to do); a remote without them: says so and what to do instead
	python -m pillars.ci.remote pull

.PHONY: page
page: setup  ## the whole project on one page that opens offline: build/page.html (stage status, data, split, gate, model card, experiments, deploy, monitoring)
	python -m pillars.ci.page --out build/page.html

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build

# --- CI/CD: what .github/workflows/ run, one target per step (the tests run each of them here) ---------------
# Results for the workflows go to build/ (git-ignored); GitHub step outputs to $GITHUB_OUTPUT when set.

ci-pull: setup  ## CI: pull data and models from the DVC remote in DVC_REMOTE_URL (a secret) if set
	python -m pillars.ci.remote

pr-report: setup  ## the pull-request report against BASE (default origin/main): build/report/report.md + plots
	python -m pillars.ci.pr_report --base $(or $(BASE),origin/main) --out build/report

pr-comment: setup  ## post or update the sticky comment MARKER on pull request PR with BODY (GitHub CLI)
	python -m pillars.ci.github comment --pr $(PR) --body-file $(BODY) --marker $(MARKER)

sweep-report: setup  ## the experiments view (make exp) as Markdown for the sweep workflow's comment: build/sweep.md
	python -m pillars.lifecycle.sweep --show-only --out build/sweep.md

exp-push: setup  ## push HEAD's experiments (and their DVC data, if a remote is set) to the Git remote REMOTE
	python -m pillars.ci.remote push-experiments --git-remote $(or $(REMOTE),origin)

release-version: setup  ## register HEAD's model with GTO unless its model is registered already; print the version
	python -m pillars.ci.release version

release-publish: setup  ## push the registry tags of HEAD's version to the Git remote REMOTE
	python -m pillars.ci.release publish --git-remote $(or $(REMOTE),origin)

bento-context: setup  ## the container build context of models/service.bento (Dockerfile in env/docker/): build/bento
	python -m pillars.ci.container context --out build/bento

container-smoke: setup  ## run IMAGE with Docker, wait for /readyz, check predictions against the packaged model
	python -m pillars.ci.container smoke --image $(IMAGE)

deploy-resolve: setup  ## resolve a GTO stage assignment tag REF to the model version and its image
	python -m pillars.ci.release check-ref $(REF)

rollout:  ## placeholder: roll IMAGE out to STAGE on your platform (docs/ci-cd.md, "Deploying"); fails until configured
	@echo "rollout: $(IMAGE) -> $(STAGE): no deployment platform is configured; replace this target with your platform's command (docs/ci-cd.md, Deploying: kubectl or bentoml deploy)" >&2
	@exit 1

monitor-alert: setup  ## when metrics/monitoring.json says retrain: open or update the monitoring issue (GitHub CLI)
	python -m pillars.ci.monitor_alert

retrain-pr: setup  ## retrain on the labelled logs as an experiment, push it as a branch, open a pull request
	python -m pillars.ci.retrain_pr $(if $(LOGS),--logs $(LOGS)) $(if $(FEEDBACK),--feedback $(FEEDBACK)) $(if $(FORCE),--force)

serve: setup  ## serve the packaged model (models/service.bento) on 127.0.0.1 (PORT=3000; PILLARS_API_TOKEN=... to require a token)
	python -m pillars.bento.server --port $(or $(PORT),3000)

sweep: setup  ## queue and run the sweeps in params.yaml as DVC experiments, then compare them (JOBS=1)
	python -m pillars.lifecycle.sweep --jobs $(or $(JOBS),1) $(SWEEPS)

sweep-show: setup  ## the experiments so far: name, sweep, the params that differ, the primary metric and its change
	python -m pillars.lifecycle.sweep --show-only

.PHONY: exp plots
exp: sweep-show  ## the same as sweep-show

plots: setup  ## every plot of dvc.yaml on one page that opens offline: build/plots/index.html (dvc plots show)
	mkdir -p build
	dvc plots show --out build/plots

register: setup  ## register HEAD's model as a new version in the Git-tag registry (BUMP=major|minor|patch)
	python -m pillars.lifecycle.registry register $(if $(BUMP),--bump $(BUMP))

promote: setup  ## assign a registered version to a stage: make promote VERSION=v0.1.0 STAGE=dev|staging|prod
	@[ -n "$(VERSION)" ] && [ -n "$(STAGE)" ] || { echo "usage: make promote VERSION=v0.1.0 STAGE=dev|staging|prod"; exit 1; }
	python -m pillars.lifecycle.registry promote $(VERSION) $(STAGE)

registry: setup  ## the registry: versions, their stages and commits
	python -m pillars.lifecycle.registry show

which: setup  ## the version in a stage (STAGE=prod) and the data hashes and params that made it, as JSON
	python -m pillars.lifecycle.registry which $(or $(STAGE),prod)

champion: setup  ## fill models/champion/ with the model of the version in a stage (STAGE=prod)
	python -m pillars.lifecycle.registry champion --stage $(or $(STAGE),prod)

monitor: setup  ## the monitor stage on the logs under data/monitoring/logs: metrics/monitoring.{json,html}
	dvc repro monitor

monitor-demo: setup  ## replay held-out traffic, as drawn and shifted, through the served model; monitor both
	python -m pillars.monitoring.replay

retrain: setup  ## when the monitor says so: labelled logged rows -> new DVC-versioned source -> experiment
	python -m pillars.lifecycle.retrain $(if $(LOGS),--logs $(LOGS)) $(if $(FEEDBACK),--feedback $(FEEDBACK)) $(if $(FORCE),--force)
