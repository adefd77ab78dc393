# Two commands do all the set-up (see README.md):
#   make demo   - create the environment, run the jobs end to end on the shipped transactions
#   make test   - create the environment, run the test suite
# Options: make demo LANDING=../shared/data/fraud-handbook/transactions   (all 153 days)
#          make demo LAKEHOUSE=/tmp/fraud-lakehouse                          (where local tables go)
# Also:    make lint, make validate (offline bundle validation), make wheel, make mlflow-ui

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
LANDING ?= data/transactions
LAKEHOUSE ?= .lakehouse
DEMO_ARGS ?=

STAMP := $(VENV)/.installed-stamp

.PHONY: demo test setup lint validate mlflow-ui clean wheel

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "Python 3.11 is required (found: $(PYTHON)); set PYTHON=/path/to/python3.11"; exit 1; }
	@command -v java >/dev/null 2>&1 || { echo "Java 17 (a JRE) is required by Spark: install openjdk-17-jre-headless"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install --quiet --compile-bytecode -e ".[local,dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	FRAUD_MLOPS_LOCAL_ROOT=$(abspath $(LAKEHOUSE)) $(VENV)/bin/fraud-mlops demo --landing $(LANDING) $(DEMO_ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

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
