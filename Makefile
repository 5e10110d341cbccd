# make run: the whole mesh on this machine.  make test: the test suite.
# make test T=tests/mesh: one folder or file.  make check: lint.  make bench: every benchmark -> docs/benchmarks.md (installs rsyslog, a peer, and wrk).
# All create .venv and install logmesh into it on first use: run only what the mesh needs,
# the others also the test, lint and Elasticsearch extras (.venv/.dev).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check bench torture clean

$(BIN)/logmesh: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(BIN)/logmesh

$(VENV)/.dev: $(BIN)/logmesh
	$(BIN)/pip install -q -e '.[dev,elasticsearch]'
	touch $(VENV)/.dev

run: $(BIN)/logmesh
	$(BIN)/logmesh up

# The web UI's pure modules first (node's own runner, no npm), then pytest; with T=path only
# pytest, on that folder or file.
T ?=
test: $(VENV)/.dev
	$(if $(T),,node --test tests/logs/web/js/*.test.mjs)
	$(BIN)/python -m pytest -q $(T)

check: $(VENV)/.dev
	$(BIN)/ruff check logmesh tests bench

bench: $(VENV)/.dev
	@command -v rsyslogd >/dev/null || { apt-get update -qq && apt-get install -y -qq rsyslog >/dev/null; }
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/run_all.py

# make torture: 10 minutes of crashes, damage and a full disk against real processes, seeds printed.
torture: $(VENV)/.dev
	$(BIN)/python bench/torture.py --seconds 600

clean:
	rm -rf $(VENV) data .pytest_cache
