# plantgraph: two commands do all the set-up (see README): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.plantgraph-installed
NATIVE_STAMP := $(VENV)/.plantgraph-native-installed
NATIVE_SRC := native/b2mml_reader/Cargo.toml native/b2mml_reader/Cargo.lock native/b2mml_reader/pyproject.toml \
	$(wildcard native/b2mml_reader/src/*.rs)
TORCH_VERSION := 2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PLANTGRAPH_DATA ?= $(CURDIR)/data
# rustup's cargo, for the compiled B2MML reader (native/b2mml_reader)
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: venv demo test lint typecheck unit chromium neo4j-up neo4j-down stack bench clean

# The venv is reused when it exists; it is only (re)installed when pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null && [ "$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')" = "$(TORCH_VERSION)" ] \
	  || { echo ">> installing torch==$(TORCH_VERSION) first (pip; a local CPU wheel is used where one lies on disk)"; \
	       $(PIP) install --progress-bar off "torch==$(TORCH_VERSION)"; }
	$(PIP) install --progress-bar off -e ".[test]"
	@touch $(STAMP)

# The compiled reader of plain B2MML messages (Rust: maturin from PyPI, crates from crates.io),
# rebuilt only when its sources changed.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	@echo ">> building the compiled B2MML reader (native/b2mml_reader, cargo --release)"
	$(PIP) install --progress-bar off ./native/b2mml_reader
	@touch $(NATIVE_STAMP)

venv: $(STAMP) $(NATIVE_STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || { echo ">> installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

neo4j-up: venv
	@bash tools/neo4j.sh up

neo4j-down:
	@bash tools/neo4j.sh down

# Runs everything: lint, types, the unit and end-to-end suites, the Neo4j suite against a real server.
test: venv chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	@bash tools/run_tests.sh

demo: venv
	@bash tools/demo.sh

stack: venv
	@BACKEND=neo4j bash tools/demo.sh

bench: venv
	$(PY) -m benchmarks.run_all

clean:
	rm -rf data/ .mypy_cache .ruff_cache .pytest_cache
