"""Small pandas frames of the pipeline's tables and models, for charts (:mod:`fraud_mlops.reporting.charts`).

Every function reads through :class:`fraud_mlops.platform.lakehouse.Lakehouse` (and MLflow, set up
by :func:`fraud_mlops.lifecycle.tracking.configure_mlflow`) and aggregates in Spark, so only the
aggregates reach the driver; a missing table gives an empty frame with the documented columns.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pyspark.sql import functions as F

from fraud_mlops.medallion.schema import LABEL_COLUMN
from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse


def _frame(lakehouse: Lakehouse, table: str, build, columns: list[str]) -> pd.DataFrame:
    if not lakehouse.exists(table):
        return pd.DataFrame(columns=columns)
    return build(lakehouse.read(table)).toPandas()


def daily_summary(lakehouse: Lakehouse) -> pd.DataFrame:
    """``gold_daily_fraud_summary`` in day order: ``tx_date``, ``n_transactions``, ``n_frauds``, ``fraud_rate``."""
    cols = ["tx_date", "n_transactions", "n_frauds", "fraud_rate"]
    return _frame(lakehouse, C.GOLD_DAILY_SUMMARY, lambda df: df.select(*cols).orderBy("tx_date"), cols)


def amount_sample(lakehouse: Lakehouse, fraction: float = 0.1, seed: int = 7) -> pd.DataFrame:
    """A sample of gold (``fraction`` of genuine transactions, every fraud): ``tx_amount``, ``tx_fraud``."""
    cols = ["tx_amount", LABEL_COLUMN]
    return _frame(lakehouse, C.GOLD_FEATURES,
                  lambda df: df.select(*cols).sampleBy(LABEL_COLUMN, {0: fraction, 1: 1.0}, seed), cols)


def scenario_counts(lakehouse: Lakehouse) -> pd.DataFrame:
    """Frauds per simulated scenario (silver's ``tx_fraud_scenario``, for analysis only: it leaks the
    label and is never a feature): ``scenario`` (string), ``n_frauds``."""
    def build(df):
        return (df.where(F.col(LABEL_COLUMN) == 1).groupBy(F.col("tx_fraud_scenario").cast("string").alias("scenario"))
                .agg(F.count(F.lit(1)).alias("n_frauds")))
    return _frame(lakehouse, C.SILVER_TRANSACTIONS, build, ["scenario", "n_frauds"])


def quarantine_reasons(lakehouse: Lakehouse) -> pd.DataFrame:
    """Quarantined rows per ``quarantine_reason``: ``reason``, ``n_rows``."""
    def build(df):
        return df.groupBy(F.col("quarantine_reason").alias("reason")).agg(F.count(F.lit(1)).alias("n_rows"))
    return _frame(lakehouse, C.SILVER_QUARANTINE, build, ["reason", "n_rows"])


def champion_test_scores(lakehouse: Lakehouse, model_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The champion's scores of its own test window (as the gate judged it).

    Returns:
        ``(scored, info)``: ``scored`` has ``tx_date``, ``customer_id``, ``tx_fraud``, ``score``;
        ``info`` the ``version``, the window (``train_start`` ... ``test_end``, ISO) and the run id.

    Raises:
        fraud_mlops.lifecycle.scoring.ChampionNotFoundError: no champion.
    """
    from mlflow import MlflowClient

    from fraud_mlops.lifecycle.gate import score_model, window_from_run
    from fraud_mlops.lifecycle.scoring import champion_version
    from fraud_mlops.lifecycle.training import evaluation_window, required_date_range, time_split

    version = champion_version(model_name)
    client = MlflowClient()
    mv = client.get_model_version(model_name, version)
    window = window_from_run(client, mv.run_id)
    first, last = required_date_range(**window)
    gold = lakehouse.read(C.GOLD_FEATURES).where(F.col("tx_date").between(first, last)).toPandas()
    _, test = time_split(gold, **window)
    scored = test[["tx_date", "customer_id", LABEL_COLUMN]].assign(score=score_model(f"models:/{model_name}/{version}", test))
    test_start, test_end = evaluation_window(window["train_end"], window["delay_days"], window["test_days"])
    info = {"version": version, "run_id": mv.run_id, **{k: str(v) for k, v in window.items()},
            "test_start": test_start.isoformat(), "test_end": test_end.isoformat()}
    return scored, info


def run_table(run_id: str, artifact: str) -> pd.DataFrame:
    """A CSV artifact of an MLflow run (e.g. ``feature_importance/feature_importance.csv``) as a frame."""
    import mlflow

    return pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact))


def alerts_by_day(lakehouse: Lakehouse, model_name: str, version: str | None = None) -> tuple[pd.DataFrame, int | None]:
    """Distinct cards flagged (``decision = 1``) per day in ``predictions`` for a version (all when
    None): (``tx_date``, ``alerts``) in day order, and the rows' alert budget (None when absent)."""
    if not lakehouse.exists(C.PREDICTIONS):
        return pd.DataFrame(columns=["tx_date", "alerts"]), None
    preds = lakehouse.read(C.PREDICTIONS).where(F.col("model_name") == model_name)
    if version is not None:
        preds = preds.where(F.col("model_version") == str(version))
    alerts = (preds.groupBy("tx_date")
              .agg(F.countDistinct(F.when(F.col("decision") == 1, F.col("customer_id"))).alias("alerts"))
              .orderBy("tx_date").toPandas())
    budget = None
    if "alert_budget" in preds.columns:
        row = preds.agg(F.max("alert_budget").alias("b")).first()
        budget = None if row is None or row["b"] is None else int(row["b"])
    return alerts, budget


def reason_counts(lakehouse: Lakehouse, model_name: str) -> pd.DataFrame:
    """How often each feature is the first reason code of a flagged prediction: ``feature``, ``n_alerts``."""
    def build(df):
        return (df.where((F.col("model_name") == model_name) & (F.col("decision") == 1) & F.col("reason_1").isNotNull())
                .groupBy(F.col("reason_1").alias("feature")).agg(F.count(F.lit(1)).alias("n_alerts")))
    return _frame(lakehouse, C.PREDICTIONS, build, ["feature", "n_alerts"])


def monitoring_rows(lakehouse: Lakehouse, metrics: list[str] | None = None) -> pd.DataFrame:
    """``monitoring_metrics`` rows (``window_end``, ``model_version``, ``metric``, ``feature``, ``value``,
    ``breached``), of ``metrics`` when given, latest run per window and metric/feature."""
    cols = ["window_end", "model_version", "metric", "feature", "value", "breached"]

    def build(df):
        if metrics:
            df = df.where(F.col("metric").isin(metrics))
        return df.select(*cols, "computed_at")

    rows = _frame(lakehouse, C.MONITORING_METRICS, build, [*cols, "computed_at"])
    if rows.empty:
        return rows[cols]
    rows = rows.sort_values("computed_at").drop_duplicates(["window_end", "metric", "feature"], keep="last")
    return rows[cols].reset_index(drop=True)
