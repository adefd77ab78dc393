"""Bronze: the landing files as landed, each ingested exactly once, with lineage.

**bronze_transactions** holds every landed file's rows as landed (all columns strings) plus the
lineage columns ``_source_file``, ``_ingested_at`` and ``_ingestion_run_id``. The checkpoint is the
Delta table **bronze_ingestion_log** (one row per file and attempt); a file that cannot be read is
recorded there with its error and tried again on the next run, never skipped in silence.

Re-running with no new file changes no table; re-running after a crash replaces what the crashed
run half wrote (bronze rows are replaced per file).
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

from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse, sql_literal

log = logging.getLogger("fraud_mlops.bronze")

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
