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

from fraud_mlops.reporting import charts
from fraud_mlops.reporting import data as D
from fraud_mlops.reporting.notebook import notebook_context

ctx = notebook_context("data-overview", globals().get("dbutils"), globals().get("display"))
lakehouse, model_name, show = ctx.lakehouse, ctx.model_name, ctx.show

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
