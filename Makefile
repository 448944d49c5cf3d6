# KAM: the two commands. On a fresh machine with Python 3.11 and make:
#   make demo   set everything up, generate the embedded demo and run the nightly job on it
#   make test   set everything up (incl. a PostgreSQL from Debian) and run the whole test suite
# CI runs `.ci/run`, which is exactly `make test`.

PYTHON        ?= python3
UV_VERSION    ?= 0.13.9
TOOLS         ?= .tools
DEMO_DIR      ?= demo
WAREHOUSE_DIR ?= warehouse
AIRFLOW_HOME  ?= $(CURDIR)/.airflow
CUSTOMERS     ?= 10000
AS_OF         ?= 2026-11-22
PYTEST_ARGS   ?=
# two test processes, a test file each at a time (its module fixtures run once): CI has 2 cores
PYTEST_WORKERS ?= 2

# `setup` syncs .venv from the lock, so the other targets run in it as it is.
UV     := $(TOOLS)/bin/uv
UV_RUN := $(UV) run --no-sync

# Copy instead of hard-linking from uv's cache (no warning when the cache is on another disk),
# and never fetch a managed Python: use $(PYTHON).
export UV_LINK_MODE ?= copy
export UV_PYTHON_DOWNLOADS ?= never

# PostgreSQL's server binaries (Debian: /usr/lib/postgresql/<major>/bin); the tests start their own.
PG_BINDIR_GLOB ?= /usr/lib/postgresql/*/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold

.DEFAULT_GOAL := help
.PHONY: help setup postgres chromium compose test demo bench lint airflow clean

help: ## list the targets
	@echo "KAM make targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-9s %s\n", $$1, $$2}'
	@echo "Variables: PYTHON=$(PYTHON) PYTEST_ARGS='...' PYTEST_WORKERS=$(PYTEST_WORKERS) CUSTOMERS=$(CUSTOMERS) AS_OF=$(AS_OF)"

setup: $(TOOLS)/.uv-$(UV_VERSION) ## install uv into .tools, then the locked environment into .venv
	$(UV) sync --frozen --all-extras --python $(PYTHON)

# uv lives in its own small venv: `uv sync` would remove it from .venv (it is not in the lock).
$(TOOLS)/.uv-$(UV_VERSION):
	@set -e; \
	if [ ! -x $(TOOLS)/bin/pip ]; then \
	  rm -rf $(TOOLS); \
	  $(PYTHON) -m venv $(TOOLS) || { \
	    echo "$(PYTHON) -m venv failed: on Debian/Ubuntu install python3-venv (apt-get install python3-venv)"; \
	    exit 1; }; \
	fi; \
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION); \
	rm -f $(TOOLS)/.uv-*; touch $@
	@$(UV) --version

# Installs without Debian's default "main" cluster, so no server is created or started: the tests
# initdb and start their own throwaway server (tests/postgres_server.py).
postgres: ## install PostgreSQL server binaries from Debian if missing (starts no server)
	@if ls $(PG_BINDIR_GLOB)/pg_ctl >/dev/null 2>&1; then \
	  echo "PostgreSQL found: $$(ls -d $(PG_BINDIR_GLOB) | sort -V | tail -n 1)"; exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "PostgreSQL server binaries not found under $(PG_BINDIR_GLOB) and this is not a Debian-like system."; \
	  echo "Install PostgreSQL >= 13 yourself and point KAM_TEST_PG_BINDIR at its bin folder."; exit 1; \
	fi; \
	if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	  echo "PostgreSQL is missing and installing it needs root: run 'make postgres' as root (no sudo here)."; exit 1; \
	fi; \
	set -ex; \
	$(APT) update; \
	$(APT) install postgresql-common; \
	$(SUDO) sed -ri 's/^#?\s*create_main_cluster\b.*/create_main_cluster = false/' \
	  /etc/postgresql-common/createcluster.conf; \
	$(APT) install postgresql; \
	ls -d $(PG_BINDIR_GLOB)

# Debian's Chromium, headless: the run-report test and the Airflow end-to-end test take screenshots.
chromium: ## install Chromium from Debian if missing (headless browser for the report and UI tests)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "Chromium found: $$(command -v chromium || command -v chromium-browser)"; exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "Chromium not found and this is not a Debian-like system: install chromium yourself."; exit 1; \
	fi; \
	if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	  echo "Chromium is missing and installing it needs root: run 'make chromium' as root (no sudo here)."; exit 1; \
	fi; \
	set -ex; \
	$(APT) update; \
	$(APT) install chromium

# Docker cannot run in CI, but its compose CLI can check docker-compose.yml: Debian's docker-compose.
compose: ## install a docker compose CLI from Debian if missing (the compose-file test runs it)
	@if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then \
	  echo "docker compose CLI found"; exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "no docker compose CLI and this is not a Debian-like system: install docker-compose yourself."; exit 1; \
	fi; \
	set -ex; \
	$(APT) update; \
	$(APT) install docker-compose

test: setup postgres chromium compose ## set up, then run the whole test suite (PYTEST_ARGS='-k x' passes through)
	$(UV_RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: setup ## set up, generate the demo sources and run the nightly job on them
	$(UV_RUN) kam demo-data --customers $(CUSTOMERS) --as-of $(AS_OF)
	$(UV_RUN) kam run --as-of $(AS_OF)

bench: setup ## set up, then run the nightly benchmark
	$(UV_RUN) python benchmarks/nightly.py

lint: setup ## ruff check
	$(UV_RUN) ruff check .

# Airflow 3 on this machine: metadata in $(AIRFLOW_HOME), the KAM DAGs unpaused, the pools created,
# the embedded demo generated first if it is not there. `airflow standalone` runs the API server,
# scheduler, DAG processor and triggerer and prints the admin password.
AIRFLOW_ENV = AIRFLOW_HOME=$(AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	KAM_CONFIG=$${KAM_CONFIG:-$(CURDIR)/kam.yaml}

airflow: setup ## run Airflow 3 on http://localhost:8080 with the KAM DAGs unpaused on the demo
	@[ -f $(DEMO_DIR)/crm.db ] || [ -n "$$KAM_CRM_URL" ] || \
	  $(UV_RUN) kam demo-data --customers $(CUSTOMERS) --as-of $(AS_OF)
	mkdir -p $(AIRFLOW_HOME)
	$(AIRFLOW_ENV) $(UV_RUN) airflow db migrate
	$(AIRFLOW_ENV) $(UV_RUN) python -m pipelines.dag_support pools > $(AIRFLOW_HOME)/kam-pools.json
	$(AIRFLOW_ENV) $(UV_RUN) airflow pools import $(AIRFLOW_HOME)/kam-pools.json
	@echo "Airflow on http://localhost:8080 (user admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)."
	@echo "Run the demo night: airflow dags trigger kam_nightly --logical-date $(AS_OF)T00:00:00+00:00 (or ▶ in the UI)."
	$(AIRFLOW_ENV) $(UV_RUN) airflow standalone

clean: ## remove the environments, the demo data and the warehouse
	rm -rf .venv $(TOOLS) $(DEMO_DIR) $(WAREHOUSE_DIR) .pytest_cache .ruff_cache
