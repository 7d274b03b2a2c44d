# ipe-lightning: `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Torch for machines without an NVIDIA GPU: the CPU build. GPU users keep the torch already in the
# venv, or choose one: `make install TORCH_SPEC="torch==2.5.1" TORCH_INDEX=https://download.pytorch.org/whl/cu121`.
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC ?=
TORCH_INDEX ?=
# SYSTEM_SITE=1 builds the venv on top of the system's packages (keeps a cluster's own torch).
SYSTEM_SITE ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-slow test-gpu test-all lint format bench clean clean-results

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install the package (CPU torch without a GPU)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; set PYTHON=...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(if $(SYSTEM_SITE),--system-site-packages) $(VENV)
	@if [ -n "$(TORCH_SPEC)" ]; then \
		echo "installing the chosen torch: $(TORCH_SPEC)"; \
		$(BIN)/pip install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); \
	elif $(BIN)/python -c 'import torch' 2>/dev/null; then \
		echo "keeping the installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the default (CUDA) torch build"; \
		$(BIN)/pip install "torch>=2.4"; \
	else \
		echo "no NVIDIA GPU: installing the CPU build $(TORCH_CPU_SPEC)"; \
		$(BIN)/pip install "$(TORCH_CPU_SPEC)" --extra-index-url $(TORCH_CPU_INDEX); \
	fi
	$(BIN)/pip install -e ".[dev,slurm]"
	@touch $@

run: install ## the main job on the embedded default (bundled photos, no download)
	$(BIN)/python run.py $(ARGS)

# The default suite runs in parallel (pytest-xdist, one worker per core, at most 4: each worker
# imports torch and Lightning); the slow suite stays serial (its tests time kills, locks and DDP
# collectives, and start processes of their own). TEST_WORKERS=0 runs the default suite serially.
TEST_WORKERS ?= auto
test: install ## the default test suite (slow end-to-end tests excluded), in parallel
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --maxprocesses=4) $(ARGS)

test-slow: install ## only the slow end-to-end tests (real run.py processes, DDP, resume)
	$(BIN)/python -m pytest -q -m slow $(ARGS)

test-gpu: install ## the GPU tests (skipped without CUDA)
	$(BIN)/python -m pytest -q -m gpu tests/gpu $(ARGS)

test-all: install ## every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -q -m "" $(ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## speed and memory benchmarks (JSON): data, decode, train, memory
	$(BIN)/python -m ipe_lightning.bench data
	$(BIN)/python -m ipe_lightning.bench decode
	$(BIN)/python -m ipe_lightning.bench train
	$(BIN)/python -m ipe_lightning.bench memory

clean: ## remove what install and the tools build (venv, caches); results are kept
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +

# Results are never removed by `clean`: outputs/ holds every run, multirun/ every sweep and the
# run store that lets sweeps reuse trainings.
clean-results: ## DELETE every run and sweep result: outputs/ and multirun/ (asks first)
	@printf "delete outputs/ and multirun/ (every result and the run store)? [y/N] "; \
	read answer; [ "$$answer" = y ] && rm -rf outputs multirun || echo "kept"
