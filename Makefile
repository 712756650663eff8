# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all reliability lint typecheck format install services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

services:
	@bash scripts/ensure-services.sh

## demo: API on :64000, workers, sandbox vendors, 20 phones, demo leads, live activity
demo: install
	@bash scripts/ensure-services.sh >/dev/null || true
	$(BIN)/cerniq demo

## test: the whole suite against real PostgreSQL and Redis (started if needed)
test: install services
	$(BIN)/python -m pytest -q

## reliability: only the fault-injection tests (kill workers, flush Redis, drop responses)
reliability: install services
	$(BIN)/python -m pytest -q -m reliability

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: install
	$(BIN)/mypy src

format: install
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

bench: install services
	@# the console scale benchmark runs its small size here (1M leads take minutes to generate)
	@for b in bench/bench_*.py; do echo "== $$b"; case $$b in \
	  *console_scale*) $(BIN)/python $$b --small || exit 1;; \
	  *) $(BIN)/python $$b || exit 1;; esac; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .cerniq
