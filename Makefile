# SWOOSH: `make run` starts the whole stack; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench determinism chaos cluster bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/swoosh dev

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# mypy does not follow setuptools' editable finder: it checks a tree of links named as installed.
TYPECHECK := build/typecheck/swoosh
lint: $(STAMP)
	mkdir -p $(TYPECHECK) && for d in workflows guards activities api worker chaos; do ln -sfn ../../../$$d $(TYPECHECK)/$$d; done
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench.reducer_bench
	$(BIN)/python -m tests.bench.e2e_bench $(BENCH_ARGS)

determinism: $(STAMP)
	$(BIN)/swoosh determinism --transitions 10000 --replicas 3 --seed 1 --snapshot-every 25

chaos: $(STAMP)
	$(BIN)/swoosh chaos --seed 1 --profile quick

# 10,000 projects against one worker: rates, latency against a single project's, worker memory.
bench-scale: $(STAMP)
	$(BIN)/python -m tests.bench.scale_bench --projects 10000

# Separate hosts in network namespaces (needs root): partitions, kills, restarts, a PostgreSQL cut.
cluster: $(STAMP)
	$(BIN)/swoosh cluster --profile full

clean:
	rm -rf $(VENV) .swoosh
