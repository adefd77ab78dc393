# Databricks notebook source
# MAGIC %md
# MAGIC # The champion: curves, card precision@k, alerts, what drives its scores
# MAGIC
# MAGIC The `champion` version scored on its own test window, as the gate judged it: precision-recall and
# MAGIC ROC curves, card precision@k against k (the cards investigators review per day), card alerts per
# MAGIC day against the alert budget in `predictions`, the feature importances and contributions logged with
# MAGIC its training run, and which features the reason codes of its alerts name most.
# MAGIC
# MAGIC * **On Databricks**: attach the bundle's wheel and set the widgets.
# MAGIC * **Locally**: run `make demo` first, then `.venv/bin/python notebooks/model_report.py`; the figures
# MAGIC   are written to `.lakehouse/figures/` (`FRAUD_FIGURES_DIR`).

# COMMAND ----------

from fraud_mlops.reporting import charts
from fraud_mlops.reporting import data as D
from fraud_mlops.reporting.notebook import notebook_context

ctx = notebook_context("model-report", globals().get("dbutils"), globals().get("display"))
lakehouse, model_name, show = ctx.lakehouse, ctx.model_name, ctx.show

# COMMAND ----------

# MAGIC %md ## Precision-recall and ROC on the test window

# COMMAND ----------

scored, info = D.champion_test_scores(lakehouse, model_name)
print(info)
show(charts.pr_and_roc(scored["tx_fraud"].to_numpy(), scored["score"].to_numpy(),
                       f"{model_name} v{info['version']}, test {info['test_start']}..{info['test_end']}"), "model_pr_roc")

# COMMAND ----------

# MAGIC %md ## Card precision@k against k

# COMMAND ----------

from fraud_mlops.lifecycle.metrics import card_precision_top_k

ks = [10, 25, 50, 100, 200, 300, 500]
show(charts.card_precision_at_k(ks, [card_precision_top_k(scored, k=k)[0] for k in ks],
                                f"Card precision@k, test {info['test_start']}..{info['test_end']}"), "model_card_precision_at_k")

# COMMAND ----------

# MAGIC %md ## Card alerts per day against the budget

# COMMAND ----------

alerts, budget = D.alerts_by_day(lakehouse, model_name)
show(charts.alerts_per_day(alerts, budget, "Cards flagged per day (predictions)"), "model_alerts_per_day")

# COMMAND ----------

# MAGIC %md ## Feature importance and contributions

# COMMAND ----------

importance = D.run_table(info["run_id"], "feature_importance/feature_importance.csv")
show(charts.count_bars(importance, "feature", "importance", "Feature importance (gain)", "importance"), "model_feature_importance")
contributions = D.run_table(info["run_id"], "reason_codes/mean_abs_contribution.csv")
show(charts.count_bars(contributions, "feature", "mean_abs_contribution", "Mean |contribution| to the log-odds (test)",
                       "log-odds"), "model_mean_abs_contribution")

# COMMAND ----------

# MAGIC %md ## Reason codes of the alerts

# COMMAND ----------

show(charts.count_bars(D.reason_counts(lakehouse, model_name), "feature", "n_alerts",
                       "First reason code of flagged transactions", "alerts"), "model_reason_codes")
