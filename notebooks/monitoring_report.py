# Databricks notebook source
# MAGIC %md
# MAGIC # Monitoring: drift, quality, alerts and retraining over time
# MAGIC
# MAGIC The `monitoring_metrics` table over the monitoring runs: PSI of every feature per window (0.2 and
# MAGIC more is drift), AP and card precision@100 once labels are known, card alerts per day against the
# MAGIC budget, and the alert and retraining flags. Each monitoring run adds a window; run the monitoring
# MAGIC job daily (or over several windows) to see trends.
# MAGIC
# MAGIC * **On Databricks**: attach the bundle's wheel and set the widgets.
# MAGIC * **Locally**: run `make demo` first, then `.venv/bin/python notebooks/monitoring_report.py`; the figures
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

spark = get_spark("monitoring-report")
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

# MAGIC %md ## PSI per feature and window

# COMMAND ----------

psi = D.monitoring_rows(lakehouse, ["psi"])
show(charts.psi_heatmap(psi), "monitoring_psi")

# COMMAND ----------

# MAGIC %md ## Quality once labels are known

# COMMAND ----------

rows = D.monitoring_rows(lakehouse)
show(charts.metrics_over_time(rows, ["average_precision", "card_precision_top_100", "precision_within_budget"],
                              "Quality of the champion on labelled days"), "monitoring_quality")

# COMMAND ----------

# MAGIC %md ## Alerts against the budget, alerts and retraining triggers

# COMMAND ----------

show(charts.metrics_over_time(rows, ["alerts_per_day_mean", "alert_budget"], "Card alerts per day (mean) and budget"),
     "monitoring_alerts_per_day")
show(charts.metrics_over_time(rows, ["alert", "retrain"], "Alert and retraining flags (1 = raised)"),
     "monitoring_flags")
print(rows[rows["breached"]].to_string() if rows["breached"].any() else "no breach")
