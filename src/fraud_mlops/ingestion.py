"""The medallion layers: landing files -> bronze -> silver (+ quarantine) -> gold.

* **bronze_transactions**: every landed file ingested exactly once across runs, rows as landed (all
  columns strings) plus lineage columns ``_source_file``, ``_ingested_at``, ``_ingestion_run_id``.
  The checkpoint is the Delta table ``bronze_ingestion_log`` (one row per file and attempt); a file
  that cannot be read is recorded there with its error and tried again on the next run.
* **silver_transactions**: typed snake_case columns, checked by :data:`fraud_mlops.quality.SILVER_RULES`,
  de-duplicated on ``transaction_id``; failing rows go to **silver_transactions_quarantine** with the
  rules they broke. Per bronze file, rows in = silver rows + quarantined rows, recorded in
  ``silver_processed_files``.
* **gold_transaction_features**: the shared feature library (:mod:`fraud_mlops.features`) over the
  affected days plus the look-back their windows need; **gold_daily_fraud_summary** per day.

Every step is idempotent: re-running it with no new input changes no table, and re-running after a
crash replaces what the crashed run half wrote.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import gzip
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_mlops import config as C
from fraud_mlops.lakehouse import Lakehouse, sql_literal
from fraud_mlops.quality import DUPLICATE_RULE, PARSED_TX_DATETIME, SILVER_RULES, with_rule_results

log = logging.getLogger("fraud_mlops.ingestion")

#: Header of the landing files, in order (see data/README or the Fraud Detection Handbook data set).
LANDING_COLUMNS: tuple[str, ...] = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)
CORRUPT_RECORD = "_corrupt_record"
SILVER_PROCESSED_FILES = "silver_processed_files"

INGESTION_LOG_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType()),
        T.StructField("file_size_bytes", T.LongType()),
        T.StructField("file_modified_at", T.TimestampType()),
        T.StructField("ingestion_run_id", T.StringType()),
        T.StructField("ingested_at", T.TimestampType()),
        T.StructField("status", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("error", T.StringType()),
    ]
)


@dataclass(frozen=True)
class LandedFile:
    """A file found in the landing folder: path (as given, joined with the name), size in bytes and
    modification time (timezone-aware, UTC)."""

    path: str
    size_bytes: int
    modified_at: dt.datetime


def list_landing_files(landing_path: str, pattern: str = "*.csv*") -> list[LandedFile]:
    """List the files directly in ``landing_path`` whose name matches the glob ``pattern``, by name.

    Raises:
        FileNotFoundError: ``landing_path`` is not a folder.
    """
    if not os.path.isdir(landing_path):
        raise FileNotFoundError(f"landing folder {landing_path} does not exist")
    found = []
    for name in sorted(os.listdir(landing_path)):
        full = os.path.join(landing_path, name)
        if fnmatch.fnmatch(name, pattern) and os.path.isfile(full):
            st = os.stat(full)
            found.append(LandedFile(full, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)))
    return found


def check_landing_file(path: str) -> str | None:
    """Read a landing file whole and check it: None when readable, else the error message.

    Checks that the file decompresses (``.gz``), decodes as UTF-8 and starts with the header
    :data:`LANDING_COLUMNS`. Row-level problems are not checked here: they are silver's job.
    """
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            data = fh.read()
        text = data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        return f"{type(exc).__name__}: {exc}"
    header = text.split("\n", 1)[0].strip().lstrip("\ufeff")
    if tuple(h.strip() for h in header.split(",")) != LANDING_COLUMNS:
        return f"unexpected header {header[:200]!r}; expected {','.join(LANDING_COLUMNS)}"
    return None


def read_landing_files(spark, paths: list[str], landing_path: str) -> DataFrame:
    """Read landing CSV files as bronze rows: the landed columns as strings, plus lineage.

    Returns the columns :data:`LANDING_COLUMNS` (string), ``_corrupt_record`` (string, the raw line
    when it does not have the expected fields, else null) and ``_source_file`` (string: the
    landing path joined with the file name).
    """
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in LANDING_COLUMNS]
        + [T.StructField(CORRUPT_RECORD, T.StringType())]
    )
    df = (
        spark.read.option("header", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .option("enforceSchema", "true")
        .schema(schema)
        .csv(paths)
    )
    base = landing_path.rstrip("/") + "/"
    # _metadata.file_path is a URI: decode it (a literal '+' stays '+', not a space).
    file_name = F.expr("url_decode(replace(element_at(split(_metadata.file_path, '/'), -1), '+', '%2B'))")
    return df.withColumn("_source_file", F.concat(F.lit(base), file_name))


def ingest_bronze(lakehouse: Lakehouse, landing_path: str, file_pattern: str = "*.csv*") -> dict[str, Any]:
    """Ingest the landing files not yet in bronze; record every attempt in ``bronze_ingestion_log``.

    Args:
        lakehouse: the target's tables.
        landing_path: the landing folder, as configured (a Unity Catalog volume path is mapped to
            the local mirror by the config); ``_source_file`` holds this path plus the file name.
        file_pattern: glob of the file names to take.

    Returns:
        ``files_new``, ``files_ingested``, ``files_failed`` (list of ``{file, error}``),
        ``files_changed_after_ingestion`` (already ingested files whose size or modification time
        changed since: reported, not re-read), ``rows_ingested``, ``bronze_rows`` (table total),
        ``ingestion_run_id``.

    Raises:
        FileNotFoundError: the landing folder does not exist.
    """
    spark = lakehouse.spark
    local_landing = lakehouse.config.resolve_path(landing_path)
    landed = list_landing_files(local_landing, file_pattern)
    done: dict[str, tuple[int, float]] = {}  # file -> (size in bytes, mtime in epoch seconds)
    if lakehouse.exists(C.BRONZE_INGESTION_LOG):
        done = {
            r["source_file"]: (r["file_size_bytes"], r["modified_epoch"])
            for r in lakehouse.read(C.BRONZE_INGESTION_LOG)
            .where(F.col("status") == "ingested")
            .select("source_file", "file_size_bytes", F.col("file_modified_at").cast("double").alias("modified_epoch"))
            .collect()
        }
    base = landing_path.rstrip("/") + "/"
    source = {f.path: base + os.path.basename(f.path) for f in landed}  # as _source_file records it
    new = [f for f in landed if source[f.path] not in done]
    # A file is ingested once, by name. A file re-delivered under the same name with other content
    # is not read again (bronze keeps what landed first) but reported, so that it is not missed.
    changed = [
        f.path
        for f in landed
        if (key := source[f.path]) in done
        and (done[key][0] != f.size_bytes or abs(done[key][1] - f.modified_at.timestamp()) > 1e-3)
    ]
    for path in changed:
        log.warning("bronze: %s changed after it was ingested; it is not ingested again", path)
    run_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # aware: PySpark stores the true instant
    log.info("bronze: %d landed files, %d new (%d already ingested)", len(landed), len(new), len(landed) - len(new))
    errors = {f.path: check_landing_file(f.path) for f in new}
    for path, error in errors.items():
        if error:
            log.warning("bronze: cannot read %s: %s", path, error)
    readable = [f for f in new if errors[f.path] is None]
    counts: dict[str, int] = {}
    if readable:
        rows = (
            read_landing_files(spark, [f.path for f in readable], landing_path)
            .withColumn("_ingested_at", F.lit(now.isoformat()).cast("timestamp"))
            .withColumn("_ingestion_run_id", F.lit(run_id))
        ).cache()
        counts = {r["_source_file"]: int(r["count"]) for r in rows.groupBy("_source_file").count().collect()}
        names = ", ".join(sql_literal(source[f.path]) for f in readable)
        # Replace whatever a crashed earlier attempt wrote for these files: exactly once per file.
        lakehouse.overwrite(C.BRONZE_TRANSACTIONS, rows, replace_where=f"_source_file IN ({names})")
        rows.unpersist()
    log_rows = [
        (
            source[f.path],
            f.size_bytes,
            f.modified_at,
            run_id,
            now,
            "ingested" if errors[f.path] is None else "failed",
            counts.get(source[f.path], 0),
            errors[f.path],
        )
        for f in new
    ]
    if log_rows:
        lakehouse.append(C.BRONZE_INGESTION_LOG, spark.createDataFrame(log_rows, INGESTION_LOG_SCHEMA))
    return {
        "ingestion_run_id": run_id,
        "files_landed": len(landed),
        "files_new": len(new),
        "files_ingested": len(readable),
        "files_failed": [{"file": f.path, "error": errors[f.path]} for f in new if errors[f.path]],
        "files_changed_after_ingestion": changed,
        "rows_ingested": sum(counts.values()),
        "bronze_rows": lakehouse.count(C.BRONZE_TRANSACTIONS),
    }


# ----------------------------------------------------------------------------------------- silver
def to_silver_columns(bronze: DataFrame) -> DataFrame:
    """Type and rename the bronze columns (rows that passed the rules) to the silver contract.

    Takes the bronze string columns; returns :data:`fraud_mlops.schema.SILVER_COLUMNS`:
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
    from pyspark.sql import Window

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

    Does nothing (zero counts) while bronze does not exist yet.

    Raises:
        AssertionError: the count reconciliation fails (never expected; guards the invariant).
    """
    spark = lakehouse.spark
    if not lakehouse.exists(C.BRONZE_TRANSACTIONS):
        log.info("silver: bronze is empty (no file has landed yet); nothing to do")
        return {"files_processed": 0, "rows_in": 0, "rows_silver": 0, "rows_quarantined": 0,
                "silver_rows": lakehouse.count(C.SILVER_TRANSACTIONS),
                "quarantine_rows": lakehouse.count(C.SILVER_QUARANTINE)}
    bronze = lakehouse.read(C.BRONZE_TRANSACTIONS)
    done: set[str] = set()
    if lakehouse.exists(SILVER_PROCESSED_FILES):
        done = {r["source_file"] for r in lakehouse.read(SILVER_PROCESSED_FILES).select("source_file").collect()}
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
        lakehouse.append(SILVER_PROCESSED_FILES, checkpoint)
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


# ------------------------------------------------------------------------------------------- gold
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
    features with :func:`fraud_mlops.features.build_features`, and replaces the gold rows of
    ``[start, end]`` (Delta replaceWhere), so a re-run leaves the same table. The daily summary is
    replaced over the same days. Does nothing while silver does not exist yet.

    Returns:
        ``recomputed_from``, ``recomputed_to`` (ISO dates or None), ``rows_written``, totals
        ``gold_rows`` and ``summary_days``.
    """
    from fraud_mlops import features

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
        lakehouse.overwrite(C.GOLD_FEATURES, rows, replace_where=predicate)
        summary = daily_fraud_summary(silver.where(F.col("tx_date").between(start, end)))
        lakehouse.overwrite(C.GOLD_DAILY_SUMMARY, summary, replace_where=predicate)
        result.update(recomputed_from=start.isoformat(), recomputed_to=end.isoformat(), rows_written=rows.count())
        rows.unpersist()
    result["gold_rows"] = lakehouse.count(C.GOLD_FEATURES)
    result["summary_days"] = lakehouse.count(C.GOLD_DAILY_SUMMARY)
    return result
