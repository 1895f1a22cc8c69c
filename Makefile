# infracms: two commands on a fresh machine.
#   make run    set up and serve on http://127.0.0.1:8000 (SQLite, in-process executor)
#   make test   install what the tests need and run them all

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format deps test-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

deps: $(STAMP)

run: $(STAMP)
	$(BIN)/infracms init
	$(BIN)/infracms serve

test-deps: $(STAMP)
	bash scripts/install-test-deps.sh
	PYTHON=$(BIN)/python bash scripts/build-test-root.sh

test: test-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check infracms federation tests bench
	$(BIN)/ruff format --check infracms federation tests bench
	$(BIN)/mypy infracms federation

format: $(STAMP)
	$(BIN)/ruff format infracms federation tests bench
	$(BIN)/ruff check --fix infracms federation tests bench

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
