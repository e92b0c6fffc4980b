# `make worker` and `make test` are the only commands a fresh clone needs: each installs into
# .venv first, when something is missing, what it needs and no more (a worker never waits
# for the dev tools).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Extras of pyproject.toml the worker needs besides hexa itself (space-separated); `make
# test` installs them too, with the dev tools. sqlalchemy: the example app's outbox relay.
WORKER_EXTRAS := sqlalchemy
# A link tree (not an import hook) so type checkers outside this folder see `hexa` too.
EDITABLE := --config-settings editable_mode=strict
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# The link tree has one link per file: a file added under hexa/ means installing again.
FILES := $(VENV)/.hexa-files
HEXA_FILES := $(sort $(shell find hexa -name '*.py' -o -name py.typed))

comma := ,
empty :=
space := $(empty) $(empty)
# `.[a,b]` for the extras a and b; `.` for none.
spec = .$(if $(strip $(1)),[$(subst $(space),$(comma),$(strip $(1)))])

# uv installs what pip would, downloading in parallel: a fresh clone's runtime install takes
# about 10 s instead of pip's 35 s (measured here, empty caches). Like pip, it compiles modules
# when first imported, not at install time. The PYTHONWARNINGS filter hides setuptools' notice
# that a strict editable install was made.
UV := $(BIN)/uv
define install_into_venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install --quiet 'uv>=0.5'
	PYTHONWARNINGS="ignore:Editable installation" \
	  $(UV) pip install --quiet --python $(BIN)/python $(EDITABLE) -e '$(call spec,$(1))'
endef

.PHONY: install worker dev beat test lint bench clean chaos FORCE

$(FILES): FORCE
	@mkdir -p $(VENV)
	@echo '$(HEXA_FILES)' | cmp -s - $@ || echo '$(HEXA_FILES)' > $@

$(RUNTIME): pyproject.toml $(FILES)
	$(call install_into_venv,$(WORKER_EXTRAS))
	touch $@

$(DEV): pyproject.toml $(FILES)
	$(call install_into_venv,dev $(WORKER_EXTRAS))
	touch $@ $(RUNTIME)

# Everything: hexa, the worker's extras and the dev tools (tests, lint, bench).
install: $(DEV)

# The example application's database (modules/invoicing): the worker relays its outbox.
worker dev: export HEXA_OUTBOX_URL ?= $(or $(DATABASE_URL),sqlite:///.hexa/app.db)

worker: $(RUNTIME)
	$(BIN)/hexa worker

# The worker, restarted whenever a .py file under modules/, hexa/ or a project package changes.
dev: $(RUNTIME)
	$(BIN)/hexa worker --reload

# Celery Beat: sends every @module_task(schedule=...) when due (state in .hexa/).
beat: $(RUNTIME)
	$(BIN)/hexa beat

# One test file after another. TEST_JOBS="-n 3 --dist loadfile" runs three files at a time
# (a file's tests, workers and fixtures stay in one process): 14 -> about 5 minutes here, but
# under that load some timing races still show (an embedded-broker `--wait` past 30 s, seen
# once in three runs), so it is not the default yet.
TEST_JOBS ?=
test: $(DEV)
	$(BIN)/python -m pytest $(TEST_JOBS) $(PYTEST_ARGS)

# Fault injection on a RabbitMQ node and a Redis of its own (never the shared ones);
# ends with a table: scenario, sent, completed, lost, duplicated, recovery time.
chaos: $(DEV)
	$(BIN)/python -m pytest tests/chaos -m chaos $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check hexa modules tests examples benchmarks
	$(BIN)/mypy hexa
	$(BIN)/mypy --strict --warn-unused-ignores tests/typing

BENCH := $(VENV)/.installed-bench

$(BENCH): pyproject.toml $(FILES)
	$(call install_into_venv,dev bench $(WORKER_EXTRAS))
	touch $@ $(DEV) $(RUNTIME)

# hexa's defaults against raw Celery's defaults, Dramatiq and taskiq, and hexa against raw
# Celery with hexa's settings, on real workers (RabbitMQ + Redis): docs/benchmarks.md, .png,
# and README's Performance table. QUICK=1: small blocks, about 2 minutes, written to
# build/bench-quick/ (CI runs it). ONLY="sync publish": some scenarios only.
bench: $(BENCH)
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) build/__editable__.* .hexa .mypy_cache .pytest_cache .ruff_cache
