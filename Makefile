# visionloop — `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train]'
	touch $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

DEMOSTAMP := $(VENV)/.installed-demo

$(DEMOSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,serve]'
	touch $@

demo: $(DEMOSTAMP)
	$(BIN)/python -m visionloop.demo

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

unit: $(DEVSTAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

# The peer tool of bench/ingest.py lives in its own virtualenv (it must not change ours).
bench/.venv-dvc/bin/dvc:
	$(PYTHON) -m venv bench/.venv-dvc
	bench/.venv-dvc/bin/pip install --quiet dvc

bench: $(DEVSTAMP) bench/.venv-dvc/bin/dvc
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
