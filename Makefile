# infracms: two commands on a fresh machine.
#   make run        set up and serve on http://127.0.0.1:8000 (SQLite, in-process executor)
#   make test       install what the tests need and run them all
#   make test-fast  the tests that need no root, host, browser or second server (while working)
#   make lock       refresh requirements.lock (running) and requirements-test.lock (running and
#                   testing): exact versions with hashes, from pyproject.toml

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

PIP_VERSION := 26.3
LOCK_VENV   := .venv-lock
FAST_TIER   := not (integration or postgres or e2e or interop or slow)
HEAVY_TIER  := integration or postgres or e2e or interop or slow
# The fast tier on both cores, a file per worker at a time (a module's shared fixtures
# are built once); the heavy tier stays serial: its tests share the test-host network,
# the local PostgreSQL and Redis, and the machine's root.
PARALLEL    := -n 2 --dist loadfile

.PHONY: run test test-fast lint format deps test-deps bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)

# Exactly the versions in the lock, checked against their hashes; then infracms itself,
# which adds nothing the lock does not have. Running needs requirements.lock only; the
# tests add their tooling from requirements-test.lock (the same versions, and more).
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP) requirements-test.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	touch $(TSTAMP)

# Refresh both locks (a reviewed change): the newest versions that pyproject.toml allows,
# the running lock constrained to the test lock's versions so that both agree.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools)
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --extra test --extra build --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements-test.lock pyproject.toml
	cp requirements-test.lock requirements.lock
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --extra build --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

deps: $(STAMP)

run: $(STAMP)
	$(BIN)/infracms init
	$(BIN)/infracms serve

test-deps: $(TSTAMP)
	bash scripts/install-test-deps.sh
	PYTHON=$(BIN)/python bash scripts/build-test-root.sh

# Everything: the fast tier (in parallel), then the heavy tier (serially).
test: test-deps
	INFRACMS_TEST_TIER=fast PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "$(FAST_TIER)" $(PARALLEL) -q
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "$(HEAVY_TIER)" --durations=10

test-fast: $(TSTAMP)
	INFRACMS_TEST_TIER=fast PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "$(FAST_TIER)" $(PARALLEL) -q

lint: $(TSTAMP)
	$(BIN)/ruff check infracms federation tests bench
	$(BIN)/ruff format --check infracms federation tests bench
	$(BIN)/mypy infracms federation
	$(BIN)/lint-imports

format: $(TSTAMP)
	$(BIN)/ruff format infracms federation tests bench
	$(BIN)/ruff check --fix infracms federation tests bench

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(LOCK_VENV) var build *.egg-info
