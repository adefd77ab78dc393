"""Silver: bronze rows typed, validated by declared rules, de-duplicated; bad rows quarantined.

**silver_transactions** has typed snake_case columns (:data:`fraud_mlops.medallion.schema.SILVER_COLUMNS`),
checked by :data:`fraud_mlops.medallion.quality.SILVER_RULES` and unique on ``transaction_id``. Rows
that break a rule go to **silver_transactions_quarantine** with every rule they broke. Per bronze
file, rows in = silver rows + quarantined rows, recorded in **silver_processed_files** (the silver
checkpoint, written last, so a crashed run is redone whole and leaves the same tables).

Bronze's ``_rescued_data`` (the values of landing columns the pipeline does not know) is not
silver's business: silver reads bronze without it, so neither silver nor the quarantine depend on
which extra columns a file had. A quarantined row keeps the canonical landing columns as landed,
``_corrupt_record`` (the raw line of a malformed row) and the lineage columns, which lead back to
its bronze row and file.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fraud_mlops.medallion.bronze import RESCUED_DATA
from fraud_mlops.medallion.quality import DUPLICATE_RULE, PARSED_TX_DATETIME, SILVER_RULES, with_rule_results
from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse, sql_literal

log = logging.getLogger("fraud_mlops.silver")


def to_silver_columns(bronze: DataFrame) -> DataFrame:
    """Type and rename the bronze columns (rows that passed the rules) to the silver contract.

    Takes the bronze string columns; returns :data:`fraud_mlops.medallion.schema.SILVER_COLUMNS`:
    ``transaction_id`` bigint, ``tx_datetime`` timestamp (local time of the landing file, kept as
    wall time), ``tx_date`` date, ``customer_id`` / ``terminal_id`` bigint, ``tx_amount`` double
    (currency units, rounded to 2 decimals), ``tx_time_seconds`` bigint (seconds since 2018-04-01),
    ``tx_time_days`` int, ``tx_fraud`` int (0/1), ``tx_fraud_scenario`` int, ``_source_file``,
    ``_ingested_at``.
    """
    ts = F.expr(PARSED_TX_DATETIME)
    return bronze.select(
        F.expr("try_cast(TRANSACTION_ID AS BIGINT)").alias("transaction_id"),
        ts.alias("tx_datetime"),
        F.to_date(ts).alias("tx_date"),
        F.expr("try_cast(CUSTOMER_ID AS BIGINT)").alias("customer_id"),
        F.expr("try_cast(TERMINAL_ID AS BIGINT)").alias("terminal_id"),
        F.round(F.expr("try_cast(TX_AMOUNT AS DOUBLE)"), 2).alias("tx_amount"),
        F.expr("try_cast(TX_TIME_SECONDS AS BIGINT)").alias("tx_time_seconds"),
        F.expr("try_cast(TX_TIME_DAYS AS INT)").alias("tx_time_days"),
        F.expr("try_cast(TX_FRAUD AS INT)").alias("tx_fraud"),
        F.expr("try_cast(TX_FRAUD_SCENARIO AS INT)").alias("tx_fraud_scenario"),
        "_source_file",
        "_ingested_at",
    )


def split_valid_and_quarantine(batch: DataFrame, existing_keys: DataFrame | None) -> tuple[DataFrame, DataFrame]:
    """Apply the silver rules and the uniqueness check to a bronze batch.

    Args:
        batch: bronze rows (landed string columns, ``_corrupt_record``, lineage columns).
        existing_keys: ``transaction_id`` (bigint) and ``_source_file`` of silver rows written by
            earlier batches, or None. A key already in silver from another file is a duplicate;
            from the same file it is this batch's own earlier, crashed attempt and not a duplicate.

    Returns:
        ``(valid, quarantine)``: valid rows in the bronze columns (one per ``transaction_id``: of
        duplicates inside the batch, the first in (file, ``TX_DATETIME``) order stays); quarantined
        rows in the bronze columns plus ``failed_rules`` (array<string>), ``quarantine_reason``
        (string, the descriptions of the broken rules) and ``_quarantined_at`` (timestamp). Every
        batch row lands in exactly one of the two.
    """
    checked = with_rule_results(batch, SILVER_RULES).withColumn(
        "_key", F.expr("try_cast(TRANSACTION_ID AS BIGINT)")
    )
    passed = checked.where(F.size("failed_rules") == 0)
    first = Window.partitionBy("_key").orderBy("_source_file", "TX_DATETIME", "_ingested_at")
    passed = passed.withColumn("_dup_rank", F.row_number().over(first))
    if existing_keys is not None:
        other = existing_keys.select(F.col("transaction_id").alias("_key"), F.col("_source_file").alias("_prev_file"))
        passed = passed.join(other, "_key", "left").withColumn(
            "_seen", F.col("_prev_file").isNotNull() & (F.col("_prev_file") != F.col("_source_file"))
        )
    else:
        passed = passed.withColumn("_seen", F.lit(False))
    is_dup = (F.col("_dup_rank") > 1) | F.col("_seen")
    dup_rows = passed.where(is_dup).withColumn("failed_rules", F.array(F.lit(DUPLICATE_RULE.name)))
    valid = passed.where(~is_dup).drop("_dup_rank", "_seen", "_prev_file", "_key", "failed_rules")
    descriptions = F.create_map(
        *[x for r in (*SILVER_RULES, DUPLICATE_RULE) for x in (F.lit(r.name), F.lit(f"{r.name}: {r.description}"))]
    )
    bad = checked.where(F.size("failed_rules") > 0).drop("_key").unionByName(
        dup_rows.drop("_dup_rank", "_seen", "_prev_file", "_key")
    )
    quarantine = bad.withColumn(
        "quarantine_reason",
        F.array_join(F.transform("failed_rules", lambda r: descriptions[r]), "; "),
    ).withColumn("_quarantined_at", F.col("_ingested_at"))
    return valid, quarantine


def build_silver(lakehouse: Lakehouse) -> dict[str, Any]:
    """Move the bronze files not yet processed into silver and quarantine.

    Per file, rows in = silver rows + quarantined rows; the figures are appended to
    ``silver_processed_files`` (the silver checkpoint), written last, so a crashed run is redone
    whole on the next run: quarantine is replaced per file and silver is merged on
    ``transaction_id``.

    Returns:
        ``files_processed``, ``rows_in``, ``rows_silver``, ``rows_quarantined``, table totals
        ``silver_rows`` and ``quarantine_rows``, and ``quarantined_by_rule``.

    Does nothing (zero counts) while bronze does not exist yet. Bronze's ``_rescued_data`` is left out
    (bronze tables written before it existed do not have it).

    Raises:
        AssertionError: the count reconciliation fails (never expected; guards the invariant).
    """
    spark = lakehouse.spark
    if not lakehouse.exists(C.BRONZE_TRANSACTIONS):
        log.info("silver: bronze is empty (no file has landed yet); nothing to do")
        return {"files_processed": 0, "rows_in": 0, "rows_silver": 0, "rows_quarantined": 0,
                "silver_rows": lakehouse.count(C.SILVER_TRANSACTIONS),
                "quarantine_rows": lakehouse.count(C.SILVER_QUARANTINE)}
    bronze = lakehouse.read(C.BRONZE_TRANSACTIONS).drop(RESCUED_DATA)
    done: set[str] = set()
    if lakehouse.exists(C.SILVER_PROCESSED_FILES):
        done = {r["source_file"] for r in lakehouse.read(C.SILVER_PROCESSED_FILES).select("source_file").collect()}
    bronze_files = {r["_source_file"] for r in bronze.select("_source_file").distinct().collect()}
    pending = sorted(bronze_files - done)
    result: dict[str, Any] = {"files_processed": len(pending), "rows_in": 0, "rows_silver": 0, "rows_quarantined": 0}
    log.info("silver: %d bronze files to process", len(pending))
    if pending:
        batch = bronze.where(F.col("_source_file").isin(pending)).cache()
        existing = None
        if lakehouse.exists(C.SILVER_TRANSACTIONS):
            existing = lakehouse.read(C.SILVER_TRANSACTIONS).select("transaction_id", "_source_file")
        valid, quarantine = split_valid_and_quarantine(batch, existing)
        quarantine = quarantine.cache()
        silver_rows = to_silver_columns(valid).cache()
        in_counts = {r["_source_file"]: r["count"] for r in batch.groupBy("_source_file").count().collect()}
        ok_counts = {r["_source_file"]: r["count"] for r in silver_rows.groupBy("_source_file").count().collect()}
        bad_counts = {r["_source_file"]: r["count"] for r in quarantine.groupBy("_source_file").count().collect()}
        for f in pending:
            n_in, n_ok, n_bad = in_counts.get(f, 0), ok_counts.get(f, 0), bad_counts.get(f, 0)
            assert n_in == n_ok + n_bad, f"{f}: {n_in} rows in but {n_ok} silver + {n_bad} quarantined"
        names = ", ".join(sql_literal(f) for f in pending)
        lakehouse.overwrite(C.SILVER_QUARANTINE, quarantine, replace_where=f"_source_file IN ({names})")
        lakehouse.merge(C.SILVER_TRANSACTIONS, silver_rows, ["transaction_id"])
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        checkpoint = spark.createDataFrame(
            [(f, now, in_counts.get(f, 0), ok_counts.get(f, 0), bad_counts.get(f, 0)) for f in pending],
            "source_file string, processed_at timestamp, rows_in bigint, rows_silver bigint, rows_quarantined bigint",
        )
        lakehouse.append(C.SILVER_PROCESSED_FILES, checkpoint)
        by_rule = (
            quarantine.select(F.explode("failed_rules").alias("rule")).groupBy("rule").count().collect()
        )
        result.update(
            rows_in=sum(in_counts.values()),
            rows_silver=sum(ok_counts.values()),
            rows_quarantined=sum(bad_counts.values()),
            quarantined_by_rule={r["rule"]: int(r["count"]) for r in by_rule},
        )
        for df in (batch, quarantine, silver_rows):
            df.unpersist()
    result["silver_rows"] = lakehouse.count(C.SILVER_TRANSACTIONS)
    result["quarantine_rows"] = lakehouse.count(C.SILVER_QUARANTINE)
    return result
