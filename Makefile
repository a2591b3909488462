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
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet -e '.[dev,train]'
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

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Without it (no apt, no root) the browser tests skip and say why; everything else still runs.
$(CHROMIUM):
	-$(SUDO) apt-get install -y --no-install-recommends chromium || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium) || \
		echo "chromium could not be installed: the browser tests will be skipped"

unit: $(DEVSTAMP) $(CHROMIUM)
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
