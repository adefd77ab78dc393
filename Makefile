# Two commands do all the set-up (see README.md):
#   make demo   - create the environment, run the jobs end to end on the shipped transactions
#   make test   - create the environment, run the test suite
# Both start a local PostgreSQL server for the online feature store (the pgserver wheel's binaries) and
# stop it afterwards, also when they fail.
# Options: make demo LANDING=../shared/data/fraud-handbook/transactions   (all 153 days)
#          make demo LAKEHOUSE=/tmp/fraud-lakehouse                          (where local tables go)
#          SPARK_REMOTE="local[2]" make demo                                (through Spark Connect)
#          make demo ONLINE_STORE_PORT=54339   make test TEST_ONLINE_STORE_PORT=54330   (0: a free port)
# Also:    make lint, make validate (offline bundle validation), make wheel, make mlflow-ui,
#          make connect-setup (Databricks Connect environment .venv-connect), make lock (upgrade uv.lock),
#          make online-store-up / online-store-down (the demo's PostgreSQL server, in $(LAKEHOUSE)/postgres),
#          make serve (real-time scoring: the @champion behind a REST endpoint on port 8000, after make demo)

# Python 3.12 (the runtime of record's): PYTHON=..., else python3.12 on PATH, else pyenv's 3.12.x.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12; do \
	  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
UV_VERSION := 0.13.9
VENV ?= .venv
CONNECT_VENV ?= .venv-connect
LANDING ?= data/transactions
LAKEHOUSE ?= .lakehouse
DEMO_ARGS ?=
# The online store's PostgreSQL: the demo's in $(LAKEHOUSE)/postgres on a fixed port; the tests' in a
# fresh temporary folder on a free port (0), so two test runs on one machine do not meet.
ONLINE_STORE_PORT ?= 54329
TEST_ONLINE_STORE_PORT ?= 0

STAMP := $(VENV)/.installed-stamp
CONNECT_STAMP := $(CONNECT_VENV)/.installed-stamp
UV := $(VENV)/bin/uv
# `fraud-mlops online-store run [--data-dir DIR] -- COMMAND`: start the server, run COMMAND with
# FRAUD_MLOPS_ONLINE_STORE set to its URL, stop the server (also when COMMAND fails or is interrupted;
# one already running is left running), exit with COMMAND's status.
DEMO_STORE := $(VENV)/bin/fraud-mlops online-store run --data-dir $(abspath $(LAKEHOUSE))/postgres --port $(ONLINE_STORE_PORT) --
TEST_STORE := $(VENV)/bin/fraud-mlops online-store run --port $(TEST_ONLINE_STORE_PORT) --

.PHONY: demo test test-faults setup lint validate mlflow-ui clean wheel lock connect-setup online-store-up online-store-down serve

define check_python
	@test -n "$(PYTHON)" || { echo "Python 3.12 is required and was not found: install it (e.g. pyenv install 3.12, or your package manager) or set PYTHON=/path/to/python3.12"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null || { echo "Python 3.12 is required (found: $(PYTHON)); set PYTHON=/path/to/python3.12"; exit 1; }
endef

# The environment is exactly uv.lock (uv sync --frozen): a fresh machine, CI and the wheel's tests
# get the same versions.
$(STAMP): pyproject.toml uv.lock
	$(check_python)
	@command -v java >/dev/null 2>&1 || { echo "Java 17 or 21 (a JRE) is required by Spark: install openjdk-17-jre-headless"; exit 1; }
	@test -x $(VENV)/bin/python && $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --compile-bytecode --python $(VENV)/bin/python --extra local --extra dev
	@touch $(STAMP)

# Databricks Connect: a separate environment, since databricks-connect replaces the pyspark module.
$(CONNECT_STAMP): pyproject.toml uv.lock $(STAMP)
	@test -x $(CONNECT_VENV)/bin/python || $(PYTHON) -m venv $(CONNECT_VENV)
	UV_PROJECT_ENVIRONMENT=$(CONNECT_VENV) $(UV) sync --quiet --frozen --compile-bytecode --python $(CONNECT_VENV)/bin/python --extra connect --extra dev
	@touch $(CONNECT_STAMP)

connect-setup: $(CONNECT_STAMP)
	@echo "Databricks Connect environment ready: $(CONNECT_VENV). Configure a profile (databricks auth login) and see README, Databricks Connect."

# Upgrade the lock to the newest versions the pins in pyproject.toml allow, then re-create .venv.
lock: $(STAMP)
	$(UV) lock --upgrade --python $(VENV)/bin/python

setup: $(STAMP)

demo: $(STAMP)
	FRAUD_MLOPS_LOCAL_ROOT=$(abspath $(LAKEHOUSE)) $(DEMO_STORE) $(VENV)/bin/fraud-mlops demo --landing $(LANDING) $(DEMO_ARGS)

test: $(STAMP)
	$(TEST_STORE) $(VENV)/bin/python -m pytest -q -m "not fault_injection" $(PYTEST_ARGS)

# Crash safety: each job killed in a child process at several points, then re-run (about 3 minutes).
test-faults: $(STAMP)
	$(TEST_STORE) $(VENV)/bin/python -m pytest -q -m fault_injection $(PYTEST_ARGS)

# Real-time scoring on the demo's lakehouse (run make demo first): the online store's server and the
# REST endpoint on http://127.0.0.1:$(SERVE_PORT) (POST /score, GET /health); Ctrl-C stops both.
SERVE_PORT ?= 8000
serve: $(STAMP)
	FRAUD_MLOPS_LOCAL_ROOT=$(abspath $(LAKEHOUSE)) $(DEMO_STORE) $(VENV)/bin/fraud-mlops serve --port $(SERVE_PORT)

# The demo's online store server on its own, left running (prints its URL and the export line);
# make demo then uses it and leaves it running.
online-store-up: $(STAMP)
	$(VENV)/bin/fraud-mlops online-store start --data-dir $(abspath $(LAKEHOUSE))/postgres --port $(ONLINE_STORE_PORT)

online-store-down: $(STAMP)
	$(VENV)/bin/fraud-mlops online-store stop --data-dir $(abspath $(LAKEHOUSE))/postgres

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests notebooks

# Offline bundle validation of every target (what `databricks bundle validate` checks, and more).
# prod needs its deploy-time values: BUNDLE_VAR_prod_service_principal and BUNDLE_VAR_alert_email in the
# environment, or VALIDATE_ARGS="--var prod_service_principal=<application-id> --var alert_email=<address>".
validate: $(STAMP)
	$(VENV)/bin/fraud-mlops validate $(VALIDATE_ARGS)

wheel: $(STAMP)
	$(VENV)/bin/python -m pip wheel --no-deps -w dist .

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath $(LAKEHOUSE))/mlflow.db --port 5000

clean:
	rm -rf $(LAKEHOUSE) dist build
