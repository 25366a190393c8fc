# The two commands of the README: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
GATEWAY_PORT ?= 8080
SIMULATOR_PORT ?= 9100

.PHONY: install run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group dev
	touch $(STAMP)

install: $(STAMP)

## Start the simulated providers and the gateway serving examples/standalone (Ctrl-C stops both).
run: install
	@$(BIN)/modelyard simulate --port $(SIMULATOR_PORT) & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT INT TERM; \
	echo "gateway: http://127.0.0.1:$(GATEWAY_PORT)/v1  (API key: sk-modelyard-demo)"; \
	$(BIN)/modelyard serve --manifests examples/standalone --host 127.0.0.1 --port $(GATEWAY_PORT)

## Lint, type-check, then the whole test suite.
test: install lint typecheck unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -p no:cacheprovider

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
