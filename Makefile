# The two commands: `make demo` runs the product, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PG_ADMIN ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: demo test test-fast lint bench bench-quick bench-data services chromium audio clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# constraints.txt pins every package (and dependency) to the versions the suite last passed with,
# so two new machines install the same; `make constraints` refreshes it from the newest releases.
$(VENV)/.base: $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.test: $(VENV)/.base setup.cfg constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin
	.venv-pin/bin/pip install -q --upgrade pip && .venv-pin/bin/pip install -q -e '.[test]'
	.venv-pin/bin/pip freeze --exclude-editable > constraints.txt
	rm -rf .venv-pin
	@echo "constraints.txt refreshed: run make test, then commit it"

demo: $(VENV)/.base audio
	mkdir -p var
	$(BIN)/contactcenter demo

services:
	./scripts/ensure-services.sh

chromium:
	./scripts/ensure-chromium.sh

# The IVR's prompts: Debian's espeak-ng speaks the words, sox converts (and reads MP3 uploads).
audio:
	./scripts/ensure-audio.sh

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite on SQLite, then the store tests again on PostgreSQL. Both halves always run
# (CI shows every failure at once); the target fails at the end if either failed.
test: $(VENV)/.test services chromium audio lint
	@sqlite=0; pg=0; \
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 || sqlite=$$?; \
	CCTEST_STORE_PG=1 CCTEST_PG_ADMIN=$(PG_ADMIN) $(BIN)/pytest -q -p no:cacheprovider -m store || pg=$$?; \
	echo "make test: SQLite half exit $$sqlite, PostgreSQL half exit $$pg"; \
	[ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]

# The quick tier while working: unit and integration tests, no browser, no soak (SQLite only),
# in two workers (most tests wait on sockets, not the CPU); `make test` stays one process.
test-fast: $(VENV)/.test services audio lint
	$(BIN)/pytest -q -p no:cacheprovider -n 2 -m "not e2e and not slow"

bench: $(VENV)/.test services audio
	$(BIN)/python -m bench.run $(ARGS)

bench-quick: $(VENV)/.test services audio
	$(BIN)/python -m bench.run --quick

# N calls (and N*0.3 cases) loaded into a fresh PostgreSQL database, then each report, export,
# IVR look-up and retention run measured (README, Performance); N=10000000 for a city's decade.
N ?= 1000000
bench-data: $(VENV)/.test services
	CCTEST_PG_ADMIN=$(PG_ADMIN) $(BIN)/python -m bench.data --calls $(N) $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
