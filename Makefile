# `make worker` and `make test` are the only commands a fresh clone needs:
# each installs into .venv first when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install worker dev beat test lint bench clean chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sqlalchemy]'
	touch $(STAMP)

install: $(STAMP)

# The example application's database (modules/invoicing): the worker relays its outbox.
worker dev: export HEXA_OUTBOX_URL ?= $(or $(DATABASE_URL),sqlite:///.hexa/app.db)

worker: $(STAMP)
	$(BIN)/hexa worker

# The worker, restarted whenever a .py file under modules/, hexa/ or a project package changes.
dev: $(STAMP)
	$(BIN)/hexa worker --reload

# Celery Beat: sends every @module_task(schedule=...) when due (state in .hexa/).
beat: $(STAMP)
	$(BIN)/hexa beat

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Fault injection on a RabbitMQ node and a Redis of its own (never the shared ones);
# ends with a table: scenario, sent, completed, lost, duplicated, recovery time.
chaos: $(STAMP)
	$(BIN)/python -m pytest tests/chaos -m chaos $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check hexa modules tests examples benchmarks
	$(BIN)/mypy hexa
	$(BIN)/mypy --strict --warn-unused-ignores tests/typing

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,sqlalchemy,bench]'
	touch $(BENCH_STAMP)

# hexa's defaults against raw Celery's defaults, Dramatiq and taskiq, and hexa against raw
# Celery with hexa's settings, on real workers (RabbitMQ + Redis): docs/benchmarks.md, .png,
# and README's Performance table. QUICK=1: small blocks, about 2 minutes, written to
# build/bench-quick/ (CI runs it). ONLY="sync publish": some scenarios only.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) .hexa .mypy_cache .pytest_cache .ruff_cache
