# citycase — the two commands a newcomer needs: `make run` and `make test`.
# Every target creates .venv and installs the project into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test bench lint format infra-up infra-down migrate clean web chromium manifest-tools

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# The browser console (web/): Node.js packages exactly as package-lock.json pins them, installed
# again only when package.json or the lock changes; the build (vue-tsc type check, then Vite) again
# only when a source changes (web/dist/index.html, written by each build, is its stamp).
WEB_INSTALLED := web/node_modules/.installed
WEB_BUILT := web/dist/index.html
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/tsconfig.node.json

$(WEB_INSTALLED): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(WEB_BUILT): $(WEB_INSTALLED) $(WEB_SOURCES)
	cd web && npm run build
	@touch $@

## web: build the browser console into web/dist (served at / by make run)
web: $(WEB_BUILT)

## chromium: Debian's Chromium for the browser tests (tests/browser), installed when missing
chromium:
	deploy/local/chromium.sh

## manifest-tools: docker-compose (Debian) and a pinned kustomize (.cache/bin), which check deploy/ offline
manifest-tools:
	deploy/local/manifest-tools.sh

## run: every service in one process (SQLite files, embedded event log) on http://127.0.0.1:8000, data in var/;
## `make run PORT=8080 DATA=/tmp/city` serves on another port with another data folder
run: $(STAMP) web
	$(if $(DATA),CITYCASE_DATA_DIR='$(DATA)' )$(BIN)/python -m services run all --mode embedded$(if $(PORT), --port $(PORT))

## test: the whole suite; starts the local PostgreSQL and Kafka when they are not running, builds the
## console, installs Chromium for its browser tests and the manifests' checkers when missing
test: $(STAMP) infra-up web chromium manifest-tools
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests — that is a failure" >&2; exit 1; fi; \
	exit $$status

## bench: the benchmark (PostgreSQL + Kafka, each service its own process) → bench/results.json, bench/README.md
bench: $(STAMP) web chromium
	CITYCASE_PG_DATABASES="citycase citycase_test citycase_bench" deploy/local/up.sh
	$(BIN)/python -m bench

## lint: ruff (lint + format check) and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## infra-up / infra-down: local PostgreSQL (Debian packages) and Kafka (KRaft, jars from Maven Central)
infra-up:
	deploy/local/up.sh

infra-down:
	deploy/local/down.sh

## migrate: bring every service schema to head (production mode: PostgreSQL)
migrate: $(STAMP)
	$(BIN)/python -m services migrate all --mode production

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
