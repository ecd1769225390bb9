# flowtrader: `make run` runs the product locally, `make test` runs the whole suite.
# Both set up what they need first (idempotently): a .venv with the pinned requirements.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
PYTEST_ARGS ?=

.PHONY: install run test lint format bench backtest deploy destroy clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

run: install
	$(PY) -m devstack

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/ingress.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
