# The two commands a new user needs:
#   make up    install into .venv and run the factory (embedded PostgreSQL, nothing else needed)
#   make test  install into .venv and run the whole test suite
# Both install from the lock files, hashes checked, nothing resolved at install time:
# requirements.txt for `make up`, requirements-test.txt (the same pins plus the test
# extras) for `make test`. After changing dependencies in pyproject.toml: `make lock`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
UV_VERSION := 0.13.9
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --no-header
BUILD_REQUIRES := setuptools>=77

.PHONY: install install-test up test test-fast sdk-range bench lock clean

install: $(STAMP)

install-test: $(TEST_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-test.txt
	touch $(TEST_STAMP)

up: install
	$(BIN)/factory up

test: install-test
	$(BIN)/python -m pytest -q

test-fast: install-test
	$(BIN)/python -m pytest -q tests/unit

# The e2e worker tests against the lowest and highest claude-agent-sdk pyproject.toml admits.
sdk-range: install-test
	VENV=$(VENV) .ci/sdk-range both

bench: install
	$(BIN)/python bench/queue.py

# Re-resolve the lock files (keeping every pin that still fits) with uv, from PyPI.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	echo "$(BUILD_REQUIRES)" | $(BIN)/uv pip compile pyproject.toml - $(LOCK_FLAGS) -o requirements.txt
	echo "$(BUILD_REQUIRES)" | $(BIN)/uv pip compile pyproject.toml - --extra test $(LOCK_FLAGS) \
		-o requirements-test.txt

clean:
	rm -rf $(VENV) .pytest_cache
