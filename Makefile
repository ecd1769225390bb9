# flowtrader: `make run` runs the product locally, `make test` runs the whole suite.
# Both set up what they need first (idempotently): a .venv with the pinned requirements.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
PYTEST_ARGS ?= -n 2 --dist loadfile  # two workers (CI is a 2-core box), a file per worker at a time

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
	$(PY) -m mypy chalicelib

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint
	@scripts/system_deps.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/ingress.py
	$(PY) bench/coldstart.py
	$(PY) bench/backtest_speed.py
	$(PY) bench/throughput.py
	$(PY) bench/pipeline.py
	$(PY) bench/decision_calls.py

backtest: install
	$(PY) -m backtest run --data backtest/data/IBM.csv --config backtest/data/sma_cross_daily.toml --out out/backtest

# One stage on AWS (docs/deploy.md): infra stack, config.json outputs, secret, app stack.
# Optional: ALARM_EMAIL=you@example.com, AWS_REGION / AWS_PROFILE as for the AWS CLI.
deploy: install
	$(PY) -m infra.deploy deploy --stage $(STAGE) $(if $(ALARM_EMAIL),--alarm-email $(ALARM_EMAIL))

destroy: install
	$(PY) -m infra.deploy destroy --stage $(STAGE) $(if $(YES),--yes)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
