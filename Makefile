# The two commands a new user needs:
#   make up    install into .venv and run the factory (embedded PostgreSQL, nothing else needed)
#   make test  install into .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

up: install
	$(BIN)/factory up

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q tests/unit

bench: install
	$(BIN)/python bench/queue.py

clean:
	rm -rf $(VENV) .pytest_cache
