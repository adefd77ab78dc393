# Databricks notebook source
# MAGIC %md
# MAGIC # The data: volumes, fraud rate, amounts, scenarios, quarantine
# MAGIC
# MAGIC What the ingestion job built, as pictures: daily volumes and fraud rate (gold), amounts of genuine
# MAGIC and fraudulent transactions, frauds by simulated scenario (silver, for analysis only: the scenario
# MAGIC leaks the label and is never a feature) and the quarantine's reasons. It imports the same library
# MAGIC as the jobs (`fraud_mlops`).
# MAGIC
# MAGIC * **On Databricks**: attach the bundle's wheel and set the widgets.
# MAGIC * **Locally**: run `make demo` first, then `.venv/bin/python notebooks/data_overview.py`; the figures
# MAGIC   are written to `.lakehouse/figures/` (`FRAUD_FIGURES_DIR`).

# COMMAND ----------

import os

from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse
from fraud_mlops.platform.session import get_spark
from fraud_mlops.reporting import charts
from fraud_mlops.reporting import data as D

catalog = os.environ.get("FRAUD_CATALOG", "fraud_dev")
schema = os.environ.get("FRAUD_SCHEMA", "fraud")
figures = os.environ.get("FRAUD_FIGURES_DIR", os.path.join(os.environ.get("FRAUD_MLOPS_LOCAL_ROOT", ".lakehouse"), "figures"))
try:  # Databricks widgets when run as a notebook there
    dbutils.widgets.text("catalog", catalog)  # type: ignore[name-defined]
    dbutils.widgets.text("schema", schema)  # type: ignore[name-defined]
    catalog = dbutils.widgets.get("catalog")  # type: ignore[name-defined]
    schema = dbutils.widgets.get("schema")  # type: ignore[name-defined]
except NameError:
    pass
model_name = os.environ.get("FRAUD_MODEL_NAME", f"{catalog}.{schema}.fraud_detector")

spark = get_spark("data-overview")
lakehouse = Lakehouse(spark, LakehouseConfig.from_env(catalog, schema))
configure_mlflow(lakehouse.config)
written = []


def show(fig, name):
    """Save the figure under ``figures`` (PNG) and display it where a notebook can."""
    written.append(str(charts.save(fig, figures, name)))
    try:
        display(fig)  # type: ignore[name-defined]  # Databricks and Jupyter
    except NameError:
        print(f"figure: {written[-1]}")

# COMMAND ----------

# MAGIC %md ## Daily volumes and fraud rate

# COMMAND ----------

show(charts.daily_volume(D.daily_summary(lakehouse)), "data_daily_volume")

# COMMAND ----------

# MAGIC %md ## Amounts by class

# COMMAND ----------

show(charts.amount_by_class(D.amount_sample(lakehouse)), "data_amount_by_class")

# COMMAND ----------

# MAGIC %md ## Frauds by scenario

# COMMAND ----------

show(charts.count_bars(D.scenario_counts(lakehouse), "scenario", "n_frauds", "Frauds by simulated scenario", "frauds"), "data_fraud_by_scenario")

# COMMAND ----------

# MAGIC %md ## Quarantine reasons

# COMMAND ----------

show(charts.count_bars(D.quarantine_reasons(lakehouse), "reason", "n_rows", "Quarantined rows by reason", "rows"), "data_quarantine_reasons")
