"""Gold: point-in-time features of every silver transaction, and daily aggregates.

**gold_transaction_features** is the shared feature library (:mod:`fraud_mlops.medallion.features`)
over the days silver added plus the look-back their windows need; **gold_daily_fraud_summary** has
one row per day. Days are replaced whole (Delta ``replaceWhere``), so a re-run leaves the same tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud_mlops.medallion import features
from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse

log = logging.getLogger("fraud_mlops.gold")


def dates_to_recompute(silver: DataFrame, gold: DataFrame | None) -> tuple[dt.date, dt.date] | None:
    """The tx_date range of gold to (re)build: from the earliest day with a silver transaction not
    yet in gold to the last silver day (a late row changes the windows of every later day). None when
    gold is up to date."""
    keys = silver.select("transaction_id", "tx_date")
    if gold is not None:
        keys = keys.join(gold.select("transaction_id"), "transaction_id", "left_anti")
    first = keys.agg(F.min("tx_date")).collect()[0][0]
    if first is None:
        return None
    last = silver.agg(F.max("tx_date")).collect()[0][0]
    return first, last


def daily_fraud_summary(silver: DataFrame) -> DataFrame:
    """Per-day totals for analysts.

    Takes silver (``tx_date``, ``tx_amount``, ``tx_fraud``, ``customer_id``, ``terminal_id``);
    returns ``tx_date`` date, ``n_transactions`` bigint, ``total_amount`` double (currency units),
    ``n_frauds`` bigint, ``fraud_rate`` double (frauds / transactions), ``fraud_amount`` double,
    ``n_customers`` bigint, ``n_terminals`` bigint.
    """
    return (
        silver.groupBy("tx_date")
        .agg(
            F.count("*").alias("n_transactions"),
            F.round(F.sum("tx_amount"), 2).alias("total_amount"),
            F.sum("tx_fraud").cast("bigint").alias("n_frauds"),
            F.round(F.sum(F.when(F.col("tx_fraud") == 1, F.col("tx_amount")).otherwise(0.0)), 2).alias("fraud_amount"),
            F.countDistinct("customer_id").alias("n_customers"),
            F.countDistinct("terminal_id").alias("n_terminals"),
        )
        .withColumn("fraud_rate", F.col("n_frauds") / F.col("n_transactions"))
        .select("tx_date", "n_transactions", "total_amount", "n_frauds", "fraud_rate", "fraud_amount", "n_customers", "n_terminals")
    )


def build_gold(lakehouse: Lakehouse, label_delay_days: int = 7) -> dict[str, Any]:
    """Build the gold tables for the days silver added since the last run.

    Reads silver from ``start - lookback_days(label_delay_days)`` to the last day, computes the
    features with :func:`fraud_mlops.medallion.features.build_features`, and replaces the gold rows of
    ``[start, end]`` (Delta replaceWhere), so a re-run leaves the same table. The daily summary is
    replaced over the same days. Does nothing while silver does not exist yet.

    Returns:
        ``recomputed_from``, ``recomputed_to`` (ISO dates or None), ``rows_written``, totals
        ``gold_rows`` and ``summary_days``.
    """
    result: dict[str, Any] = {"recomputed_from": None, "recomputed_to": None, "rows_written": 0}
    if not lakehouse.exists(C.SILVER_TRANSACTIONS):
        log.info("gold: silver is empty; nothing to do")
        span = None
    else:
        silver = lakehouse.read(C.SILVER_TRANSACTIONS)
        gold = lakehouse.read(C.GOLD_FEATURES) if lakehouse.exists(C.GOLD_FEATURES) else None
        span = dates_to_recompute(silver, gold)
    if span is not None:
        start, end = span
        history_start = start - dt.timedelta(days=features.lookback_days(label_delay_days))
        log.info("gold: computing features for %s..%s from silver history since %s", start, end, history_start)
        window = silver.where(F.col("tx_date").between(history_start, end))
        rows = (
            window.transform(lambda df: features.build_features(df, label_delay_days=label_delay_days))
            .where(F.col("tx_date").between(start, end))
            .cache()
        )
        predicate = f"tx_date >= '{start.isoformat()}' AND tx_date <= '{end.isoformat()}'"
        # The summary first: the features are what the next run checks (dates_to_recompute), so a run
        # killed between the two writes recomputes these days and leaves no day without its summary.
        summary = daily_fraud_summary(silver.where(F.col("tx_date").between(start, end)))
        lakehouse.overwrite(C.GOLD_DAILY_SUMMARY, summary, replace_where=predicate)
        lakehouse.overwrite(C.GOLD_FEATURES, rows, replace_where=predicate)
        result.update(recomputed_from=start.isoformat(), recomputed_to=end.isoformat(), rows_written=rows.count())
        rows.unpersist()
    result["gold_rows"] = lakehouse.count(C.GOLD_FEATURES)
    result["summary_days"] = lakehouse.count(C.GOLD_DAILY_SUMMARY)
    return result
