"""Scores of another system, judged beside the champion on the same labelled days.

A team moving off another platform (a DataRobot deployment, say) exports that system's scores of the
same transactions, a CSV with a transaction id and a fraud probability per row (DataRobot's batch
prediction jobs write one, with the association id and a ``<target>_1_PREDICTION`` column), and
compares both systems day by day with the same metrics monitoring uses (average precision and the
Handbook's card precision top-100, :mod:`fraud_mlops.lifecycle.metrics`) before switching.

Every row of the file is accounted for: it is either compared, or rejected with a reason
(:data:`REJECT_REASONS`), so ``rows_in = rows_accepted + rows_rejected``. Only transactions that the
champion scored too, whose label is known (``tx_date <= window_end - label_delay_days``), are
compared: both systems are judged on exactly the same rows. Nothing is written to any table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fraud_mlops.lifecycle.monitoring import compare_scores
from fraud_mlops.medallion.schema import LABEL_COLUMN
from fraud_mlops.platform.config import GOLD_FEATURES, PREDICTIONS
from fraud_mlops.platform.lakehouse import Lakehouse

#: Why a row of an external file is not compared, in the order the checks apply.
REJECT_REASONS: tuple[str, ...] = (
    "transaction id missing or not an integer",
    "score missing or not a number",
    "score outside [0, 1]",
    "transaction id repeated in the file",
    "transaction id not in gold",
)


def read_external_scores(spark: SparkSession, path: str, *, id_column: str = "transaction_id",
                         score_column: str = "score") -> DataFrame:
    """Read a CSV of external scores (header row; any other columns are ignored).

    Args:
        path: the file (or a folder of such files).
        id_column: the column holding the transaction id (matched case-insensitively; DataRobot:
            the deployment's association id).
        score_column: the column holding the fraud probability (DataRobot: ``<target>_1_PREDICTION``).

    Returns:
        ``transaction_id`` and ``score``, both strings as read (checked by :func:`check_external_scores`).

    Raises:
        ValueError: the file lacks one of the two columns (the message lists the columns it has).
    """
    raw = spark.read.option("header", True).option("inferSchema", False).csv(path)
    by_lower = {c.lower(): c for c in raw.columns}
    missing = [c for c in (id_column, score_column) if c.lower() not in by_lower]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; the file has {raw.columns} "
                         "(name them with --id-column / --score-column)")
    return raw.select(F.col(f"`{by_lower[id_column.lower()]}`").cast("string").alias("transaction_id"),
                      F.col(f"`{by_lower[score_column.lower()]}`").cast("string").alias("score"))


def check_external_scores(raw: DataFrame, gold: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split external rows into accepted and rejected ones (first failing check of :data:`REJECT_REASONS`).

    Args:
        raw: ``transaction_id`` and ``score`` as strings (:func:`read_external_scores`).
        gold: the gold table (its ``transaction_id`` bigint).

    Returns:
        ``(accepted, rejected)``: ``accepted`` has ``transaction_id`` bigint and ``score`` double in
        [0, 1], one row per id; ``rejected`` has the raw ``transaction_id`` and ``score`` strings and
        ``reason`` (string). Every input row is in exactly one of them.
    """
    parsed = raw.select(
        "*",
        F.expr("try_cast(trim(transaction_id) AS BIGINT)").alias("_id"),
        F.expr("try_cast(trim(score) AS DOUBLE)").alias("_score"),
    ).withColumn("_copies", F.count(F.lit(1)).over(Window.partitionBy("_id")))
    known = gold.select(F.col("transaction_id").alias("_id")).distinct().withColumn("_in_gold", F.lit(True))
    checked = parsed.join(known, on="_id", how="left")
    reason = (
        F.when(F.col("_id").isNull(), F.lit(REJECT_REASONS[0]))
        .when(F.col("_score").isNull() | F.isnan("_score"), F.lit(REJECT_REASONS[1]))
        .when((F.col("_score") < 0) | (F.col("_score") > 1), F.lit(REJECT_REASONS[2]))
        .when(F.col("_copies") > 1, F.lit(REJECT_REASONS[3]))
        .when(F.col("_in_gold").isNull(), F.lit(REJECT_REASONS[4]))
    )
    checked = checked.withColumn("reason", reason)
    accepted = checked.where(F.col("reason").isNull()).select(
        F.col("_id").alias("transaction_id"), F.col("_score").alias("score"))
    rejected = checked.where(F.col("reason").isNotNull()).select("transaction_id", "score", "reason")
    return accepted, rejected


def compare_with_champion(lakehouse: Lakehouse, model_name: str, champion_version: str, external: DataFrame, *,
                          name: str = "external", window_start: dt.date | None = None,
                          window_end: dt.date | None = None, label_delay_days: int = 7) -> pd.DataFrame:
    """Day-by-day AP and card precision@100 of the champion and of the external scores, on the same rows.

    The compared rows are the labelled gold transactions (``tx_fraud`` not null, ``tx_date`` in
    ``[window_start, window_end - label_delay_days]``; ``window_end`` defaults to the latest gold day)
    that both the champion version (``predictions``) and ``external`` scored.

    Returns:
        :func:`fraud_mlops.lifecycle.monitoring.compare_scores` of them with the names ``champion``
        and ``name``: columns ``tx_date``, ``n_transactions``, ``n_frauds``, ``<model>_average_precision``
        and ``<model>_card_precision_top_100``; the pooled figures in ``attrs["pooled"]``.

    Raises:
        ValueError: a negative ``label_delay_days`` or ``window_start`` after the cut-off.
    """
    if label_delay_days < 0:
        raise ValueError("label_delay_days must be >= 0")
    gold = lakehouse.read(GOLD_FEATURES)
    if window_end is None:
        window_end = gold.agg(F.max("tx_date").alias("d")).first()["d"]
    cutoff = window_end - dt.timedelta(days=label_delay_days)
    if window_start is not None and window_start > cutoff:
        raise ValueError(f"window_start {window_start} is after the last labelled day {cutoff} "
                         f"(window_end {window_end} - label_delay_days {label_delay_days})")
    days = F.col("tx_date") <= F.lit(cutoff)
    if window_start is not None:
        days &= F.col("tx_date") >= F.lit(window_start)
    champion = lakehouse.read(PREDICTIONS).where(
        (F.col("model_name") == F.lit(model_name)) & (F.col("model_version") == F.lit(str(champion_version))))
    rows = (
        gold.where(days & F.col(LABEL_COLUMN).isNotNull())
        .select("transaction_id", "tx_date", "customer_id", LABEL_COLUMN)
        .join(champion.where(days).select("transaction_id", F.col("score").alias("champion_score")), "transaction_id")
        .join(external.select("transaction_id", F.col("score").alias(f"{name}_score")), "transaction_id")
        .select("tx_date", "customer_id", LABEL_COLUMN, "champion_score", f"{name}_score")
        .toPandas()
    )
    return compare_scores(rows, ("champion", name))


def comparison_report(accepted: DataFrame, rejected: DataFrame, daily: pd.DataFrame) -> dict[str, Any]:
    """JSON-able summary: ``rows_in``, ``rows_accepted``, ``rows_rejected``, ``rejected_by_reason``,
    ``pooled`` (the comparison's pooled figures, dates as ISO strings) and ``daily`` (list of dicts)."""
    n_accepted, by_reason = accepted.count(), {r["reason"]: int(r["n"]) for r in
                                                 rejected.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}
    n_rejected = sum(by_reason.values())
    pooled = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in daily.attrs["pooled"].items()}
    records = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
               for r in daily.to_dict("records")]
    return {"rows_in": n_accepted + n_rejected, "rows_accepted": n_accepted, "rows_rejected": n_rejected,
            "rejected_by_reason": by_reason, "pooled": pooled, "daily": records}
