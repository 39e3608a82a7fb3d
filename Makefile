# The Makefile is the interface: `make run` (the default pipeline) and `make test` (the test suite) both create
# the virtual environment they need on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=
# `make test` runs the suite in one process; PYTEST_WORKERS=auto (or N) runs it on pytest-xdist workers, tests
# sharing a module- or session-level fixture on one worker (tests/helpers/xdist_groups.py). Not the default: on 2
# cores it was not measured faster (docs/development.md).
PYTEST_WORKERS ?= 0
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadgroup)
# GPU tests run in the vLLM venv when there is one (requirements-gpu.txt: vLLM's pins clash with Prefect's)
GPU_PY ?= $(if $(wildcard .venv-gpu/bin/python),.venv-gpu/bin/python,$(PY))

.PHONY: setup run pipeline test test-services test-fast test-slow e2e test-team test-gpu lint fmt world bench mlflow-ui clean

$(STAMP): pyproject.toml requirements-rl-clients.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps --upgrade --target .rl-clients -r requirements-rl-clients.txt  # RL clients
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project (CPU torch 2.13.0)

run: $(STAMP)  ## run the default SPCT pipeline on the embedded world and print the results table
	$(VENV)/bin/grm run --config $(CONFIG)

pipeline: run

test: $(STAMP)  ## the CPU test suite (unit, integration, e2e) but the service stacks; GPU tests are skipped
	$(PY) -m pytest -m "not gpu and not services" $(XDIST) $(PYTEST_ARGS)

test-services: $(STAMP)  ## the tests that start real service stacks (PostgreSQL, S3, auth'd MLflow/Prefect); CI runs it too
	$(PY) -m pytest -m "services and not gpu" $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit tests only (seconds)
	$(PY) -m pytest -m "not slow and not gpu and not e2e" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

e2e: $(STAMP)
	$(PY) -m pytest -m "e2e and not gpu" $(PYTEST_ARGS)

test-team: $(STAMP)  ## the team stack end to end (PostgreSQL, S3, MLflow + Prefect servers; docs/team.md); also in `make test-services`
	$(PY) -m pytest tests/e2e/test_team_stack.py $(PYTEST_ARGS)

test-gpu:  ## tests/gpu: vLLM sampler, HF sampler on CUDA, 2-GPU DDP SFT; each skips with its reason without CUDA
	$(GPU_PY) -m pytest -m gpu tests/gpu $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

world: $(STAMP)  ## write the embedded world's splits to data/world/
	$(VENV)/bin/grm world --output data/world

bench: $(STAMP)
	$(PY) bench/sampling.py

mlflow-ui: $(STAMP)  ## browse runs of the embedded store at http://127.0.0.1:5000
	$(VENV)/bin/mlflow server --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root mlruns/artifacts --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) .rl-clients .pytest_cache .ruff_cache
