# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9

.PHONY: setup demo up test unit integration lint bench bench-dq bench-gateway bench-faults bench-cli lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: setup            ## start the local stack, emit one event of each type, follow the runs
	$(BIN)/aims demo $(DEMO_ARGS)

up: setup              ## the stack in the foreground until Ctrl-C
	$(BIN)/aims up

test: setup            ## every test: unit, property and integration (real Kafka, real Prefect)
	$(BIN)/pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: setup
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup           ## router throughput and latency against Prefect on PostgreSQL and SQLite
	$(BIN)/python -m bench.router $(BENCH_ARGS)

bench-dq: setup        ## GX validation vs. a numpy floor; data-changed event → recorded verdict; GX imports
	$(BIN)/python -m bench.data_quality $(BENCH_DQ_ARGS)

bench-gateway: setup   ## signed Slack clicks answered by the gateway vs. its health-check floor
	$(BIN)/python -m bench.gateway $(BENCH_GW_ARGS)

bench-faults: setup    ## events routed while a router joins, one is killed and the broker restarts
	$(BIN)/python -m bench.faults $(BENCH_FAULTS_ARGS)

bench-cli: setup       ## start-up of a register command (`aims systems`) vs. `python -c pass`
	$(BIN)/python -m bench.cli_startup $(BENCH_CLI_ARGS)

lock:                  ## re-resolve requirements.lock after changing pyproject.toml
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf .aims .pytest_cache .mypy_cache .ruff_cache
