# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the gold features
# MAGIC
# MAGIC Exploratory look at the card-fraud feature table built by the ingestion job. It imports the same
# MAGIC library the jobs use (`fraud_mlops`), so what you see here is exactly what training and scoring read.
# MAGIC
# MAGIC * **On Databricks**: attach the bundle's wheel (or `%pip install` it) and set the widgets.
# MAGIC * **Locally**: run `make demo` first, then `.venv/bin/python notebooks/explore_features.py`
# MAGIC   (the `# COMMAND ----------` cells run top to bottom as a script).

# COMMAND ----------

from pyspark.sql import functions as F

from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraud_mlops.platform import config as C
from fraud_mlops.reporting.notebook import notebook_context

lakehouse = notebook_context("explore-features", globals().get("dbutils")).lakehouse
gold = lakehouse.read(C.GOLD_FEATURES)
print(f"{lakehouse.ref(C.GOLD_FEATURES).full_name}: {gold.count():,} rows, version {lakehouse.version(C.GOLD_FEATURES)}")

# COMMAND ----------

# MAGIC %md ## Daily volumes and fraud rate (gold_daily_fraud_summary)

# COMMAND ----------

lakehouse.read(C.GOLD_DAILY_SUMMARY).orderBy("tx_date").show(10)

# COMMAND ----------

# MAGIC %md ## Each feature's mean for genuine vs fraudulent transactions
# MAGIC A feature whose means differ a lot between the classes is informative; terminal risk and the
# MAGIC amount ratio should stand out (fraud scenarios 2 and 3 of the simulator).

# COMMAND ----------

means = gold.groupBy(LABEL_COLUMN).agg(*[F.avg(c).alias(c) for c in FEATURE_COLUMNS]).toPandas()
print(means.set_index(LABEL_COLUMN).T.rename(columns={0: "genuine", 1: "fraud"}).round(3).to_string())

# COMMAND ----------

# MAGIC %md ## Fraud rate by terminal_risk_7d band

# COMMAND ----------

(
    gold.withColumn("risk_band", F.when(F.col("terminal_risk_7d") == 0, "0").when(F.col("terminal_risk_7d") < 0.2, "(0, 0.2)").otherwise(">= 0.2"))
    .groupBy("risk_band")
    .agg(F.count("*").alias("transactions"), F.avg(LABEL_COLUMN).alias("fraud_rate"))
    .orderBy("risk_band")
    .show()
)
