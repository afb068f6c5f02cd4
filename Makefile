# pillars: every command a person or CI runs. `make run` sets up a fresh machine and runs the pipeline;
# `make test` runs the tests. The virtual environment is built from requirements.lock only.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export BENTOML_DO_NOT_TRACK := true

.PHONY: serve setup run repro schema test test-fast lint format bench lock push pull clean sweep sweep-show \
	register promote registry which champion monitor monitor-demo retrain

setup: $(VENV)/.installed  ## virtual environment from the pinned lock

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "pillars needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

run: setup  ## set up, then run the whole pipeline on the configured data (default: bundled Adult)
	dvc repro

repro: setup  ## rerun only what changed
	dvc repro

schema: setup  ## infer data/schema.yaml from the ingested data, for a person to review and commit
	dvc repro ingest
	python -m pillars.schema infer $(if $(FORCE),--force)

test: setup lint  ## lint, then every test (code, data, pipeline)
	pytest

test-fast: setup  ## the unit tests only (no dvc repro)
	pytest -m "not slow"

lint: setup
	ruff check .
	ruff format --check .

format: setup
	ruff format .
	ruff check --fix .

bench: setup  ## benchmarks: stages 1-6 (default and 100x data), the whole pipeline, the served model; tests/benchmarks/results
	python tests/benchmarks/bench_data_pillars.py
	python tests/benchmarks/bench_pipeline.py
	python tests/benchmarks/bench_service.py

lock:  ## re-pin every dependency after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --group dev --python-version 3.11 --generate-hashes -o requirements.lock

push: setup  ## upload DVC-tracked data and models to the default remote
	dvc push

pull: setup  ## download them (then `dvc repro` has nothing to do)
	dvc pull

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

serve: setup  ## serve the packaged model (models/service.bento) on 127.0.0.1 (PORT=3000; PILLARS_API_TOKEN=... to require a token)
	python -m pillars.local_server --port $(or $(PORT),3000)

sweep: setup  ## queue and run the sweeps in params.yaml as DVC experiments, then compare them (JOBS=1)
	python -m pillars.sweep --jobs $(or $(JOBS),1) $(SWEEPS)

sweep-show: setup  ## the comparison table of the experiments so far
	python -m pillars.sweep --show-only

register: setup  ## register HEAD's model as a new version in the Git-tag registry (BUMP=major|minor|patch)
	python -m pillars.registry register $(if $(BUMP),--bump $(BUMP))

promote: setup  ## assign a registered version to a stage: make promote VERSION=v0.1.0 STAGE=dev|staging|prod
	@[ -n "$(VERSION)" ] && [ -n "$(STAGE)" ] || { echo "usage: make promote VERSION=v0.1.0 STAGE=dev|staging|prod"; exit 1; }
	python -m pillars.registry promote $(VERSION) $(STAGE)

registry: setup  ## the registry: versions, their stages and commits
	python -m pillars.registry show

which: setup  ## the version in a stage (STAGE=prod) and the data hashes and params that made it, as JSON
	python -m pillars.registry which $(or $(STAGE),prod)

champion: setup  ## fill models/champion/ with the model of the version in a stage (STAGE=prod)
	python -m pillars.registry champion --stage $(or $(STAGE),prod)

monitor: setup  ## the monitor stage on the logs under data/monitoring/logs: metrics/monitoring.{json,html}
	dvc repro monitor

monitor-demo: setup  ## replay held-out traffic, as drawn and shifted, through the served model; monitor both
	python -m pillars.replay

retrain: setup  ## when the monitor says so: labelled logged rows -> new DVC-versioned source -> experiment
	python -m pillars.retrain $(if $(LOGS),--logs $(LOGS)) $(if $(FEEDBACK),--feedback $(FEEDBACK)) $(if $(FORCE),--force)
