# Databricks notebook source
# MAGIC %md
# MAGIC # How much history to train on: a prequential study
# MAGIC
# MAGIC The training job's `train_days` default (56) comes from this study. For each candidate length of
# MAGIC the training window, the selected XGBoost configuration is evaluated by **prequential validation**
# MAGIC (Fraud Detection Handbook, ch. 5): four validation weeks before the test window, each preceded by
# MAGIC a 7-day delay and its own training window of that length. The test window plays no part. It uses
# MAGIC the same library functions as the training job (`fraud_mlops.lifecycle.selection`).
# MAGIC
# MAGIC * **On Databricks**: attach the bundle's wheel and set the widgets.
# MAGIC * **Locally**: run `make demo` first, then `.venv/bin/python notebooks/training_history_study.py`.

# COMMAND ----------

import datetime as dt
import os

import pandas as pd
from pyspark.sql import functions as F

from fraud_mlops.lifecycle.selection import (
    Candidate,
    evaluate_candidate,
    fold_data,
    folds_date_range,
    prequential_folds,
)
from fraud_mlops.platform import config as C
from fraud_mlops.reporting.notebook import notebook_context

train_end = dt.date.fromisoformat(os.environ.get("TRAIN_END", "2018-07-31"))
lengths = [int(x) for x in os.environ.get("TRAIN_DAYS", "7,14,28,56").split(",")]
n_folds = int(os.environ.get("N_FOLDS", "4"))
lakehouse = notebook_context("training-history-study", globals().get("dbutils")).lakehouse
candidate = Candidate("xgboost", {"max_depth": 6, "n_estimators": 200, "learning_rate": 0.05, "scale_pos_weight": 1})
folds_by_length = {n: prequential_folds(train_end, n, delay_days=7, validation_days=7, n_folds=n_folds)
                   for n in lengths}
first = min(folds_date_range(f)[0] for f in folds_by_length.values())
gold = lakehouse.read(C.GOLD_FEATURES).where(F.col("tx_date").between(first, train_end)).toPandas()
print(f"gold {first}..{train_end}: {len(gold):,} rows")

# COMMAND ----------

# MAGIC %md ## Mean validation metrics per training length

# COMMAND ----------

rows = []
for n, folds in folds_by_length.items():
    result = evaluate_candidate(fold_data(gold, folds, delay_days=7, known_compromised_days=7), candidate,
                                keep_scores=False)
    rows.append((n, result.mean("card_precision_top_100"), result.mean("average_precision"), result.mean("roc_auc")))
study = pd.DataFrame(rows, columns=["train_days", "card_precision_top_100", "average_precision", "roc_auc"])
print(f"{'train_days':>10} {'CP@100':>8} {'AP':>8} {'ROC AUC':>8}")
for n, cp, ap, auc in rows:
    print(f"{n:>10} {cp:8.4f} {ap:8.4f} {auc:8.4f}")
