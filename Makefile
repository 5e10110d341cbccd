# make run: the whole mesh on this machine.  make test: the test suite.
# make check: lint.  make bench: every benchmark -> docs/benchmarks.md (installs rsyslog, a peer).
# All create .venv and install logmesh into it on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check bench torture clean

$(BIN)/logmesh: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,elasticsearch]'
	touch $(BIN)/logmesh

run: $(BIN)/logmesh
	$(BIN)/logmesh up

test: $(BIN)/logmesh
	$(BIN)/python -m pytest -q

check: $(BIN)/logmesh
	$(BIN)/ruff check logmesh tests bench

bench: $(BIN)/logmesh
	@command -v rsyslogd >/dev/null || { apt-get update -qq && apt-get install -y -qq rsyslog >/dev/null; }
	$(BIN)/python bench/run_all.py

# make torture: 10 minutes of crashes, damage and a full disk against real processes, seeds printed.
torture: $(BIN)/logmesh
	$(BIN)/python bench/torture.py --seconds 600

clean:
	rm -rf $(VENV) data .pytest_cache
