# Two commands do everything from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-load clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e './sdk[soap,store]'
	$(BIN)/pip install --quiet -e '.[dev,tracing]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/repairs-gateway demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -ra

# Benchmarks (not part of the tests): figures go to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench.bench_foundation
	$(BIN)/python -m bench.bench_civica_uh
	$(BIN)/python -m bench.bench_kirona_drs
	$(BIN)/python -m bench.bench_totalmobile
	$(BIN)/python -m bench.bench_hostile_backends
	$(BIN)/python -m bench.fault_campaign --bookings 1000 --seed 1
	$(BIN)/python -m bench.bench_booking_overhead
	$(BIN)/python -m bench.bench_booking_overhead --stagger 0.375
	$(BIN)/python -m bench.bench_rate_lease
	$(BIN)/python -m bench.bench_growth
	$(BIN)/python -m bench.bench_platform

bench-load: $(STAMP)
	$(BIN)/python -m bench.load_run --minutes 5 --db sqlite
	$(BIN)/python -m bench.load_run --minutes 5 --db postgres

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
