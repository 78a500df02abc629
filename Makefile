# pcsync developer entry points. Each target creates .venv itself on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := demo

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: set up, then run pcsync end to end in ./demo
demo: $(STAMP)


	$(BIN)/pcsync demo --dir $(DEMO)
	$(BIN)/pcsync --config $(DEMO)/pcsync.toml runs

## test: set up, then run the whole test suite (SQLite and PostgreSQL), one worker per core
test: $(STAMP)
	$(BIN)/pytest -n auto --dist worksteal

## lint: style and types, as CI runs them
lint: $(STAMP)
	$(BIN)/ruff check sync connectors reconciliation tests bench
	$(BIN)/ruff format --check sync connectors reconciliation tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: the benchmarks (prints lines/s, peak RSS and ratios to their baselines)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/connector_stream.py
	$(BIN)/python bench/sync_ingest.py
	$(BIN)/python bench/reconcile_scale.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
