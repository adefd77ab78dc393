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

from fraud_mlops.reporting import charts
from fraud_mlops.reporting import data as D
from fraud_mlops.reporting.notebook import notebook_context

ctx = notebook_context("monitoring-report", globals().get("dbutils"), globals().get("display"))
lakehouse, model_name, show = ctx.lakehouse, ctx.model_name, ctx.show

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
