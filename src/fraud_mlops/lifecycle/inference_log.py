"""The inference log: the champion's decision on each scored transaction, with the fraud label once it is
known. It is the table that the Lakehouse Monitoring inference-log monitor of ``resources/quality_monitor.yml``
watches (a ``quality_monitors`` resource: timestamp ``tx_datetime``, model id ``model_version``,
prediction ``decision``, label ``label``, one-day granularity).

Table (:data:`fraud_mlops.platform.config.INFERENCE_LOG`), one row per transaction of ``predictions``:

==============  =========  ===========================================================================
column          type       meaning
==============  =========  ===========================================================================
transaction_id  bigint     key (the predictions and gold key)
tx_datetime     timestamp  transaction time, from gold (the monitor's ``timestamp_col``)
tx_date         date       transaction day
customer_id     bigint     card / customer id
model_name      string     registered model name
model_version   string     model version that scored the transaction (the monitor's ``model_id_col``)
score           double     fraud probability, in [0, 1] (unitless)
decision        int        1 when the transaction was flagged (score >= the version's decision
                           threshold), else 0 (the monitor's ``prediction_col``)
label           int        ``tx_fraud`` (1 fraud, 0 genuine) once known, null until then (the monitor's
                           ``label_col``, of the same type as ``decision``, as the monitor requires)
scored_at       timestamp  UTC time of the scoring run, from predictions
==============  =========  ===========================================================================

**Label delay.** Fraud labels are known ``label_delay_days`` days after the transaction (7 in this
project: :data:`fraud_mlops.medallion.features.DEFAULT_LABEL_DELAY_DAYS`). A monitoring run "as of" day
``A`` (the last day of its window) fills ``label`` for the rows with ``tx_date <= A -
label_delay_days``, exactly the rows whose labels :func:`fraud_mlops.lifecycle.monitoring.run_monitoring`
counts as known, and leaves it null on the newer ones; a later run fills those. The monitor's model
quality metrics of a day are therefore complete only ``label_delay_days`` days after it, while its
drift metrics (score, decision) are complete at once.

**Writes.** :func:`update_inference_log` merges on ``transaction_id`` and only the rows that change
(new rows, a label that became known, another version or score after re-scoring): a re-run with the
same inputs makes no commit. The table carries ``delta.enableChangeDataFeed = true``, which the monitor
needs to refresh incrementally (without it every refresh scans the whole table).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud_mlops.medallion.schema import LABEL_COLUMN
from fraud_mlops.platform.config import GOLD_FEATURES, INFERENCE_LOG, PREDICTIONS
from fraud_mlops.platform.lakehouse import Lakehouse

log = logging.getLogger("fraud_mlops.lifecycle.inference_log")

#: Columns of the inference log, in order, with their Spark SQL types.
INFERENCE_LOG_COLUMNS: dict[str, str] = {
    "transaction_id": "bigint",
    "tx_datetime": "timestamp",
    "tx_date": "date",
    "customer_id": "bigint",
    "model_name": "string",
    "model_version": "string",
    "score": "double",
    "decision": "int",
    "label": "int",
    "scored_at": "timestamp",
}

#: Delta table properties of the inference log: the change data feed lets the monitor refresh
#: incrementally.
TABLE_PROPERTIES = {"delta.enableChangeDataFeed": "true"}

#: MERGE update predicate over ``t`` (the log) and ``s`` (the new rows): a matched row is rewritten only
#: when its label became known (or changed), another model or version scored it, its decision changed or
#: its score moved by more than 1e-9. ``IS DISTINCT FROM`` compares nulls as values (Spark SQL and the
#: delta-rs engine both understand it; each clause is parenthesised because the two engines bind it
#: differently to a following ``OR``).
UPDATE_CONDITION = (
    "(t.label IS DISTINCT FROM s.label)"
    " OR (t.model_name <> s.model_name)"
    " OR (t.model_version <> s.model_version)"
    " OR (t.decision <> s.decision)"
    " OR (abs(t.score - s.score) > 1e-9)"
)


class InferenceLogError(ValueError):
    """The inference log cannot be written: a predictions row has no gold row to take its time and label from."""


def _first_day_to_sync(lakehouse: Lakehouse, window_start: dt.date | None) -> dt.date | None:
    """The first ``tx_date`` to (re)write: the earliest of ``window_start``, the day after the log's last
    day (days a skipped run left out) and the log's earliest day without a label; None (every day) when
    the log does not exist yet."""
    if not lakehouse.exists(INFERENCE_LOG):
        return None
    row = lakehouse.read(INFERENCE_LOG).agg(
        F.max("tx_date").alias("last"),
        F.min(F.when(F.col("label").isNull(), F.col("tx_date"))).alias("first_unlabelled"),
    ).first()
    candidates = [d for d in (window_start,) if d is not None]
    if row is not None and row["last"] is not None:
        candidates.append(row["last"] + dt.timedelta(days=1))
    if row is not None and row["first_unlabelled"] is not None:
        candidates.append(row["first_unlabelled"])
    return min(candidates) if candidates else None


def inference_rows(
    predictions: DataFrame, gold: DataFrame, as_of: dt.date, label_delay_days: int
) -> DataFrame:
    """The inference-log rows of ``predictions``: each joined to its gold row for ``tx_datetime`` and the
    label, ``label`` = ``tx_fraud`` when ``tx_date <= as_of - label_delay_days`` (else null).

    Args:
        predictions: rows of the predictions table (``transaction_id``, ``tx_date``, ``customer_id``,
            ``model_name``, ``model_version``, ``score``, ``decision``, ``scored_at``).
        gold: gold rows (``transaction_id``, ``tx_datetime``, ``tx_fraud`` int 0/1 or null).
        as_of: the day the labels are known as of (the monitoring window's last day).
        label_delay_days: days after which a transaction's label is known (>= 0).

    Returns:
        A DataFrame with exactly :data:`INFERENCE_LOG_COLUMNS` (names, order, types); one row per
        prediction that has a gold row.

    Raises:
        ValueError: ``label_delay_days < 0``.
    """
    if label_delay_days < 0:
        raise ValueError(f"label_delay_days must be >= 0, got {label_delay_days}")
    cutoff = as_of - dt.timedelta(days=label_delay_days)
    labels = gold.select("transaction_id", "tx_datetime", F.col(LABEL_COLUMN).alias("_tx_fraud"))
    joined = predictions.join(labels, on="transaction_id", how="inner")
    label = F.when(F.col("tx_date") <= F.lit(cutoff), F.col("_tx_fraud"))
    return joined.select(
        *[
            (label if name == "label" else F.col(name)).cast(sql_type).alias(name)
            for name, sql_type in INFERENCE_LOG_COLUMNS.items()
        ]
    )


def update_inference_log(
    lakehouse: Lakehouse,
    model_name: str,
    as_of: dt.date,
    label_delay_days: int,
    window_start: dt.date | None = None,
) -> dict[str, Any]:
    """Bring the inference log up to date with ``predictions`` and the labels known on ``as_of``.

    Reads the ``predictions`` rows of ``model_name`` with ``tx_date`` from the first day to sync (the
    earliest of ``window_start``, the day after the log's last day and the log's earliest unlabelled
    day; every day when the log does not exist) to ``as_of``, joins them to gold
    (:func:`inference_rows`) and merges the rows that differ from the log into it on ``transaction_id``
    (:data:`UPDATE_CONDITION`). Nothing else is read or written; a re-run with the same inputs makes
    no commit. The table is created on the first run, with :data:`TABLE_PROPERTIES`.

    Args:
        lakehouse: the target's tables; reads predictions and gold, writes the inference log.
        model_name: registered model name whose predictions are logged.
        as_of: last ``tx_date`` to log, and the day the labels are known as of (the monitoring
            window's end).
        label_delay_days: days after which a label is known (>= 0; 7 in this project).
        window_start: the monitoring window's first day (the sync starts no later than it).

    Returns:
        ``{"table", "first_day", "last_day" (ISO dates or None), "rows_in" (predictions rows read),
        "rows_out" (inference rows built: equal to rows_in), "labelled", "unlabelled" (of rows_out),
        "inserted", "updated", "table_version"}``.

    Raises:
        fraud_mlops.platform.lakehouse.TableNotFoundError: predictions or gold does not exist.
        InferenceLogError: a predictions row has no gold row (rows in != rows out); nothing is written.
        ValueError: ``label_delay_days < 0``, or ``window_start`` after ``as_of``.
    """
    if window_start is not None and window_start > as_of:
        raise ValueError(f"window_start {window_start} is after as_of {as_of}")
    first = _first_day_to_sync(lakehouse, window_start)
    in_range = F.col("tx_date") <= F.lit(as_of)
    if first is not None:
        in_range = in_range & (F.col("tx_date") >= F.lit(first))
    predictions = lakehouse.read(PREDICTIONS).filter((F.col("model_name") == F.lit(model_name)) & in_range)
    gold = lakehouse.read(GOLD_FEATURES).filter(in_range)
    rows = inference_rows(predictions, gold, as_of, label_delay_days).cache()
    try:
        rows_in = predictions.count()
        stats = rows.agg(F.count(F.lit(1)).alias("n"), F.count("label").alias("labelled")).first()
        rows_out, labelled = int(stats["n"]), int(stats["labelled"])
        if rows_out != rows_in:
            raise InferenceLogError(
                f"{rows_in - rows_out} of {rows_in} predictions rows of {model_name} in "
                f"[{first or 'the first day'}, {as_of}] have no gold row: the inference log takes each "
                f"transaction's time and label from gold (rebuild gold for those days, then re-run)"
            )
        counts = _merge_changes(lakehouse, rows, first, as_of)
    finally:
        rows.unpersist()
    if lakehouse.exists(INFERENCE_LOG):
        lakehouse.set_table_properties(INFERENCE_LOG, TABLE_PROPERTIES)
    out = {
        "table": lakehouse.ref(INFERENCE_LOG).full_name,
        "first_day": first.isoformat() if first is not None else None,
        "last_day": as_of.isoformat(),
        "rows_in": rows_in,
        "rows_out": rows_out,
        "labelled": labelled,
        "unlabelled": rows_out - labelled,
        **counts,
        "table_version": lakehouse.version(INFERENCE_LOG),
    }
    log.info("inference log %s: %s", out["table"], out)
    return out


def _merge_changes(lakehouse: Lakehouse, rows: DataFrame, first: dt.date | None, last: dt.date) -> dict[str, int]:
    """Merge the ``rows`` that are new or differ from the log (:data:`UPDATE_CONDITION`); no commit when
    none do."""
    existing = None
    if lakehouse.exists(INFERENCE_LOG):
        existing = lakehouse.read(INFERENCE_LOG).filter(F.col("tx_date") <= F.lit(last))
        if first is not None:
            existing = existing.filter(F.col("tx_date") >= F.lit(first))
        existing = existing.select("transaction_id", "label", "model_name", "model_version", "decision", "score")
    return lakehouse.merge_changes(INFERENCE_LOG, rows, existing, "transaction_id", UPDATE_CONDITION)
