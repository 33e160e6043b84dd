# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# requirements.lock is what a production install needs (runtime and the postgres extra);
# requirements-dev.lock adds the dev extra (tests, linters, type checkers) on the same runtime pins.
LOCKS  := requirements.lock requirements-dev.lock
# A changed lock or pyproject.toml changes the stamp's name, so the next target reinstalls.
STAMP  := $(VENV)/.installed-$(shell cat $(LOCKS) pyproject.toml | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9
# The unit tests on the lowest versions pyproject.toml allows, in a virtualenv of their own.
LOWEST := .venv-lowest
# MLflow for the integration tests' real tracking server: apart, as its pins clash with ours.
MLFLOW_VENV  := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(shell cat requirements-mlflow.lock | cksum | cut -d' ' -f1)
# The unit tests run on every core (pytest-xdist; `make unit UNIT_WORKERS=0` runs them in one process).
# The integration tests never do: they share one session stack (a broker, a Prefect server, a worker).
UNIT_WORKERS ?= auto
UNIT_TESTS   := -m "not integration" -n $(UNIT_WORKERS)
INTEGRATION_TESTS := -m integration -p no:xdist

.PHONY: setup mlflow-venv demo up test unit integration test-lowest lint bench bench-dq bench-gateway bench-faults bench-burst bench-flood bench-soak bench-cli lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCKS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python $(LOCKS)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

mlflow-venv: $(MLFLOW_STAMP)

$(MLFLOW_STAMP): requirements-mlflow.lock $(STAMP)
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(BIN)/uv pip sync -q --python $(MLFLOW_VENV)/bin/python requirements-mlflow.lock
	rm -f $(MLFLOW_VENV)/.installed-* && touch $@

demo: setup            ## start the local stack, emit one event of each type, follow the runs
	$(BIN)/aims demo $(DEMO_ARGS)

up: setup              ## the stack in the foreground until Ctrl-C
	$(BIN)/aims up

# Two runs, both must pass: the integration tests in one process first, then the unit tests on every
# core. Between them they run every test; PYTEST_ARGS goes to both (a selection must match tests in each).
test: setup mlflow-venv  ## every test: unit, property and integration (real Kafka, real Prefect)
	$(BIN)/pytest $(INTEGRATION_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest $(UNIT_TESTS) $(PYTEST_ARGS)

unit: setup            ## the unit and property tests, on every core
	$(BIN)/pytest $(UNIT_TESTS) $(PYTEST_ARGS)

integration: setup mlflow-venv  ## the real-stack tests, in one process
	$(BIN)/pytest $(INTEGRATION_TESTS) $(PYTEST_ARGS)

# Resolved afresh on every run (a few seconds): each direct dependency at the lowest version its bound
# allows, what they pull in at the newest. A failure here means a lower bound in pyproject.toml is false.
test-lowest: setup     ## the unit tests on the lowest versions pyproject.toml allows
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(BIN)/uv pip compile -q pyproject.toml --extra postgres --extra dev --resolution lowest-direct \
		--python $(LOWEST)/bin/python -o $(LOWEST)/requirements.txt
	$(BIN)/uv pip sync -q --python $(LOWEST)/bin/python $(LOWEST)/requirements.txt
	$(BIN)/uv pip install -q --python $(LOWEST)/bin/python --no-deps -e .
	$(LOWEST)/bin/pytest $(UNIT_TESTS) $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup           ## router throughput and latency against Prefect on PostgreSQL and SQLite
	$(BIN)/python -m bench.router $(BENCH_ARGS)

bench-dq: setup        ## GX validation vs. a numpy floor; data-changed event → recorded verdict; GX imports
	$(BIN)/python -m bench.data_quality $(BENCH_DQ_ARGS)

bench-gateway: setup   ## signed Slack clicks answered by the gateway vs. its health-check floor
	$(BIN)/python -m bench.gateway $(BENCH_GW_ARGS)

bench-faults: setup    ## events routed while a router joins, one is killed and the broker restarts
	$(BIN)/python -m bench.faults $(BENCH_FAULTS_ARGS)

bench-burst: setup     ## 10,000 data-changed events in a second: coalesced checks, all recorded, drain vs. the floor
	$(BIN)/python -m bench.burst $(BENCH_BURST_ARGS)

bench-flood: setup     ## 50,000 malformed records: the router's dead letters vs. a bare loop; good events' p99
	$(BIN)/python -m bench.flood $(BENCH_FLOOD_ARGS)

bench-soak: setup      ## 20 minutes at half the floor, a router, the broker and Prefect killed: lost, lag, memory
	$(BIN)/python -m bench.soak $(BENCH_SOAK_ARGS)

bench-cli: setup       ## start-up of a register command (`aims systems`) vs. `python -c pass`
	$(BIN)/python -m bench.cli_startup $(BENCH_CLI_ARGS)

# The runtime lock first; the dev lock is resolved against it (-c), so both carry the same runtime pins.
lock:                  ## re-resolve both locks after changing pyproject.toml
	$(BIN)/uv pip compile -q pyproject.toml --extra postgres --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile -q pyproject.toml --extra postgres --extra dev -c requirements.lock \
		--python-version 3.11 -o requirements-dev.lock
	$(BIN)/uv pip compile -q requirements-mlflow.in --python-version 3.11 -o requirements-mlflow.lock

clean:
	rm -rf .aims .pytest_cache .mypy_cache .ruff_cache
