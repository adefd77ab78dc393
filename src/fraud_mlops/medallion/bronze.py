"""Bronze: the landing files as landed, each ingested exactly once, with lineage.

**bronze_transactions** holds every landed file's rows as landed (all columns strings) under the
canonical names :data:`LANDING_COLUMNS`, plus ``_corrupt_record`` (the raw line of a malformed row),
``_rescued_data`` (the values of the columns the pipeline does not know, as a JSON object) and the
lineage columns ``_source_file``, ``_ingested_at`` and ``_ingestion_run_id``.

Columns are matched **by header name**, in any order, ignoring case and surrounding whitespace (as
Auto Loader's rescued-data mode does): a file with reordered columns is read correctly, a column the
pipeline does not know is kept in ``_rescued_data``, and a file that lacks a required column is
rejected with an error that names the missing columns.

The checkpoint is the Delta table **bronze_ingestion_log** (one row per file and attempt, see
:data:`INGESTION_LOG_SCHEMA`). A file that cannot be read is logged ``rejected`` with its error and
tried again on every run, never skipped in silence, until it is ingested (fixed in place) or an
operator acknowledges it (:func:`acknowledge_rejected_file`, ``fraud-mlops landing reject``); while
such a file is neither, the ingestion job ends FAILED (:func:`unacknowledged_rejections`,
:class:`LandingFilesRejected`, raised by the job's last task). An empty file (0 bytes, or a header
and no rows) is logged ``ingested`` with 0 rows and a note: it is not an error.

Re-running with no new file changes no table; re-running after a crash replaces what the crashed
run half wrote (bronze rows are replaced per file).
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import gzip
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse, sql_literal

log = logging.getLogger("fraud_mlops.bronze")

#: The columns a landing file must have (see data/README or the Fraud Detection Handbook data set),
#: matched by header name in any order and case; bronze keeps them under these names, in this order.
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
#: The raw CSV line of a row that does not have the file's header's number of fields (else null).
CORRUPT_RECORD = "_corrupt_record"
#: JSON object ``{header name: value}`` of the row's non-null values in columns not in
#: :data:`LANDING_COLUMNS` (null when there are none), as Auto Loader's ``_rescued_data``.
RESCUED_DATA = "_rescued_data"

#: ``bronze_ingestion_log`` statuses. ``failed`` is what logs written before ``rejected`` existed
#: hold for a rejected attempt, and is read as ``rejected``.
INGESTED, REJECTED, ACKNOWLEDGED, LEGACY_FAILED = "ingested", "rejected", "acknowledged", "failed"
#: The per-file status :func:`landing_file_status` derives for an ingested file with no rows.
EMPTY = "empty"

INGESTION_LOG_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType()),  # landing path as configured + "/" + file name
        T.StructField("file_size_bytes", T.LongType()),  # size as landed (compressed), bytes
        T.StructField("file_modified_at", T.TimestampType()),
        T.StructField("ingestion_run_id", T.StringType()),  # the bronze run, or the acknowledgement's id
        T.StructField("ingested_at", T.TimestampType()),  # when the attempt (or acknowledgement) happened
        T.StructField("status", T.StringType()),  # ingested | rejected | acknowledged
        T.StructField("rows", T.LongType()),  # rows written to bronze (0 unless ingested)
        T.StructField("error", T.StringType()),  # why the file was rejected (also on its acknowledgement)
        T.StructField("note", T.StringType()),  # not an error: empty file, rescued columns, the ack's reason
        T.StructField("acknowledged_by", T.StringType()),  # operator's user name (acknowledgements only)
    ]
)


class LandingFilesRejected(RuntimeError):
    """Landing files were rejected and no operator has acknowledged them (the ingestion job fails).

    Attributes:
        rejected: one dict per file, as :func:`unacknowledged_rejections` returns them.
    """

    def __init__(self, rejected: Sequence[Mapping[str, Any]]):
        self.rejected = [dict(r) for r in rejected]
        head = (
            f"{len(self.rejected)} landing file(s) rejected and not acknowledged; silver and gold were built "
            "from the readable files. Land a corrected file under a new name, or acknowledge the rejection "
            "with `fraud-mlops landing reject <file> --reason ...` (docs/runbook-landing.md):"
        )
        lines = [head] + [f"  {r['source_file']}: {r['error']} ({r['attempts']} attempt(s))" for r in self.rejected]
        super().__init__("\n".join(lines))


class FileNotRejectedError(ValueError):
    """An acknowledgement names a file that is not currently rejected (unknown, ingested or already
    acknowledged)."""


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


# -------------------------------------------------------------------------------------------------
# Header matching


def normalise_column_name(name: str) -> str:
    """A header name as it is matched: surrounding whitespace and a UTF-8 byte-order mark removed,
    upper case (``" tx_amount "`` -> ``"TX_AMOUNT"``)."""
    return name.strip().lstrip("\ufeff").strip().upper()


@dataclass(frozen=True)
class HeaderMatch:
    """How a landing file's header maps to the bronze columns.

    Attributes:
        names: the header's column names as written, surrounding whitespace and BOM removed.
        positions: canonical name (of :data:`LANDING_COLUMNS`) -> its 0-based position in the file.
        rescued: ``(position, key)`` of each column the pipeline does not know, in file order; the key
            is the header name (``_c<position>`` when the name is empty) used in ``_rescued_data``.
        missing: required columns the header lacks, in :data:`LANDING_COLUMNS` order.
        duplicated: names that occur more than once, ignoring case and surrounding whitespace
            (unnamed columns excepted).
    """

    names: tuple[str, ...]
    positions: Mapping[str, int]
    rescued: tuple[tuple[int, str], ...]
    missing: tuple[str, ...]
    duplicated: tuple[str, ...]

    @property
    def error(self) -> str | None:
        """Why the file cannot be read with this header (missing or duplicated columns), else None."""
        problems = []
        if self.missing:
            problems.append(f"missing required column(s) {', '.join(self.missing)}")
        if self.duplicated:
            problems.append(
                f"column(s) {', '.join(self.duplicated)} named more than once (ignoring case and spaces)"
            )
        if not problems:
            return None
        return "; ".join(problems) + f" in header {','.join(self.names)[:300]!r}"

    @property
    def rescued_names(self) -> list[str]:
        """The ``_rescued_data`` keys, in file order."""
        return [key for _, key in self.rescued]

    @property
    def plan(self) -> tuple[str, ...]:
        """What each position of the file becomes: a canonical column name or ``rescued:<key>``; files
        with the same plan are read together."""
        canonical = {pos: name for name, pos in self.positions.items()}
        keys = dict(self.rescued)
        return tuple(canonical.get(i, f"rescued:{keys.get(i)}") for i in range(len(self.names)))


def match_header(names: Sequence[str]) -> HeaderMatch:
    """Match header column names to :data:`LANDING_COLUMNS` by name, in any order and case.

    Args:
        names: the header's fields as parsed from the first line of the file.

    Returns:
        The :class:`HeaderMatch`; its ``error`` is set when a required column is missing or a name
        occurs twice.
    """
    cleaned = tuple(n.strip().lstrip("\ufeff").strip() for n in names)
    normalised = [normalise_column_name(n) for n in cleaned]
    seen: set[str] = set()
    duplicated = []
    for n in normalised:
        if n and n in seen and n not in duplicated:  # unnamed columns are keyed by position
            duplicated.append(n)
        seen.add(n)
    known = set(LANDING_COLUMNS)
    positions: dict[str, int] = {}
    for i, n in enumerate(normalised):
        if n in known:
            positions.setdefault(n, i)
    rescued = tuple((i, cleaned[i] or f"_c{i}") for i, n in enumerate(normalised) if n not in known)
    missing = tuple(c for c in LANDING_COLUMNS if c not in positions)
    return HeaderMatch(cleaned, positions, rescued, missing, tuple(duplicated))


# -------------------------------------------------------------------------------------------------
# Checking a file


@dataclass(frozen=True)
class LandingFileCheck:
    """What reading a landing file whole found.

    Attributes:
        error: why the file cannot be ingested (decompression, decoding, header), else None.
        note: what the log should say about a readable file that is not an error (empty, header
            only, rescued columns), else None.
        header: the header's match (None for an empty or unreadable file).
        has_rows: True when a non-blank line follows the header (Spark reads the file then).
    """

    error: str | None
    note: str | None = None
    header: HeaderMatch | None = None
    has_rows: bool = False


def inspect_landing_file(path: str) -> LandingFileCheck:
    """Read a landing file whole and check it (decompress ``.gz``, decode UTF-8, match the header).

    Row-level problems (too few or too many fields, bad values) are not checked here: they are
    silver's job. A file of 0 bytes, or with no header (only whitespace), or a header and no rows,
    is readable and has a note; it is not an error. A header-only file still needs the required
    columns.
    """
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            data = fh.read()
        text = data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        return LandingFileCheck(error=f"{type(exc).__name__}: {exc}")
    if not data:
        return LandingFileCheck(error=None, note="empty file (no content): nothing to ingest")
    text = text.lstrip("\ufeff")
    if not text.strip():
        return LandingFileCheck(error=None, note="empty file (no header, no rows): nothing to ingest")
    first, _, rest = text.lstrip("\r\n").partition("\n")
    header = match_header(next(csv.reader([first.rstrip("\r")])))
    if header.error:
        return LandingFileCheck(error=header.error, header=header)
    has_rows = bool(rest.strip())
    notes = [] if has_rows else ["header only: no rows"]
    if header.rescued:
        notes.append(f"columns not in the landing contract kept in {RESCUED_DATA}: {', '.join(header.rescued_names)}")
    return LandingFileCheck(error=None, note="; ".join(notes) or None, header=header, has_rows=has_rows)


# -------------------------------------------------------------------------------------------------
# Reading files


def rescued_data_column(rescued: Sequence[tuple[str, str]]) -> Column:
    """``_rescued_data``: JSON object of the non-null values of the given columns, null when none.

    Args:
        rescued: ``(column, key)`` pairs: the DataFrame column holding the value (string) and the key
            it gets in the JSON object (the original header name).
    """
    if not rescued:
        return F.lit(None).cast("string")
    values = F.map_filter(
        F.create_map(*[x for col, key in rescued for x in (F.lit(key), F.col(col))]),
        lambda _key, value: value.isNotNull(),
    )
    return F.when(F.size(values) > 0, F.to_json(values))


def read_landing_files(spark, headers: Mapping[str, HeaderMatch], landing_path: str) -> DataFrame:
    """Read landing CSV files as bronze rows, each by its own header: the known columns as strings
    under their canonical names, the others in ``_rescued_data``, plus lineage.

    Spark's CSV reader maps columns by position, so files are read in groups of identical header
    plan (:attr:`HeaderMatch.plan`) with a schema in the file's own column order, then renamed.

    Args:
        spark: the session.
        headers: local path of each file -> its header match (from :func:`inspect_landing_file`).
        landing_path: the landing folder as configured (prefix of ``_source_file``).

    Returns:
        :data:`LANDING_COLUMNS` (string), ``_corrupt_record`` (string: the raw line when it does not
        have the header's number of fields, else null), ``_rescued_data`` (string, JSON, or null)
        and ``_source_file`` (string: the landing path joined with the file name).
    """
    groups: dict[tuple[str, ...], tuple[HeaderMatch, list[str]]] = {}
    for path, header in headers.items():
        groups.setdefault(header.plan, (header, []))[1].append(path)
    base = landing_path.rstrip("/") + "/"
    # _metadata.file_path is a URI: decode it (a literal '+' stays '+', not a space).
    file_name = F.expr("url_decode(replace(element_at(split(_metadata.file_path, '/'), -1), '+', '%2B'))")
    parts = []
    for plan, (match, paths) in groups.items():
        schema = T.StructType(
            [T.StructField(f"_c{i}", T.StringType()) for i in range(len(plan))]
            + [T.StructField(CORRUPT_RECORD, T.StringType())]
        )
        df = (
            spark.read.option("header", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
            .option("enforceSchema", "true")
            .schema(schema)
            .csv(sorted(paths))
        )
        parts.append(
            df.select(
                *[F.col(f"_c{match.positions[c]}").alias(c) for c in LANDING_COLUMNS],
                CORRUPT_RECORD,
                rescued_data_column([(f"_c{i}", key) for i, key in match.rescued]).alias(RESCUED_DATA),
                F.concat(F.lit(base), file_name).alias("_source_file"),
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


# -------------------------------------------------------------------------------------------------
# The ingestion log


def landing_file_status(ingestion_log: DataFrame) -> DataFrame:
    """The current status of each file of ``bronze_ingestion_log``.

    A file is ``ingested`` once an attempt succeeded (``empty`` when it had no rows), else
    ``acknowledged`` once an operator acknowledged its rejection, else ``rejected``.

    Returns:
        ``source_file``; ``status`` (ingested | empty | acknowledged | rejected); ``rows`` (bigint,
        rows in bronze); ``error`` (the last rejection's error, for rejected and acknowledged files);
        ``note`` (the ingestion note, or the acknowledgement's reason); ``acknowledged_by``;
        ``attempts`` (bigint, rejected attempts); ``last_at`` (timestamp of the deciding row: the
        ingestion, the acknowledgement or the last rejected attempt).
    """
    lg = ingestion_log
    for field in INGESTION_LOG_SCHEMA.fields:
        if field.name not in lg.columns:  # a log written before the column existed
            lg = lg.withColumn(field.name, F.lit(None).cast(field.dataType))
    rejected = F.col("status").isin(REJECTED, LEGACY_FAILED)
    precedence = F.when(F.col("status") == INGESTED, 0).when(F.col("status") == ACKNOWLEDGED, 1).otherwise(2)
    first = Window.partitionBy("source_file").orderBy(precedence, F.col("ingested_at").desc())
    attempts = lg.groupBy("source_file").agg(F.sum(F.when(rejected, 1).otherwise(0)).cast("bigint").alias("attempts"))
    status = (
        F.when((F.col("status") == INGESTED) & (F.coalesce(F.col("rows"), F.lit(0)) == 0), F.lit(EMPTY))
        .when(rejected, F.lit(REJECTED))
        .otherwise(F.col("status"))
    )
    return (
        lg.withColumn("_rank", F.row_number().over(first))
        .where(F.col("_rank") == 1)
        .join(attempts, "source_file")
        .select(
            "source_file",
            status.alias("status"),
            F.coalesce(F.col("rows"), F.lit(0)).cast("bigint").alias("rows"),
            "error",
            "note",
            "acknowledged_by",
            "attempts",
            F.col("ingested_at").alias("last_at"),
        )
    )


def landing_status(lakehouse: Lakehouse) -> list[dict[str, Any]]:
    """:func:`landing_file_status` of the target's ``bronze_ingestion_log`` as dicts, by file name
    (empty list when nothing was ever ingested)."""
    if not lakehouse.exists(C.BRONZE_INGESTION_LOG):
        return []
    rows = landing_file_status(lakehouse.read(C.BRONZE_INGESTION_LOG)).orderBy("source_file").collect()
    return [r.asDict() for r in rows]


def unacknowledged_rejections(lakehouse: Lakehouse) -> list[dict[str, Any]]:
    """The files whose latest state is ``rejected``: neither ingested since nor acknowledged.

    Returns one dict per file: ``source_file``, ``error``, ``attempts``, ``last_at`` (see
    :func:`landing_file_status`).
    """
    return [
        {k: r[k] for k in ("source_file", "error", "attempts", "last_at")}
        for r in landing_status(lakehouse)
        if r["status"] == REJECTED
    ]


def _resolve_logged_file(known: Sequence[str], file: str, landing_path: str | None) -> str | None:
    """The ``source_file`` of the log that ``file`` names: itself, ``landing_path/<its name>``, or the
    only logged file with that name. None when none matches.

    Raises:
        FileNotRejectedError: several logged files have that name (give the full source_file).
    """
    if file in known:
        return file
    name = os.path.basename(file.rstrip("/"))
    if landing_path:
        candidate = landing_path.rstrip("/") + "/" + name
        if candidate in known:
            return candidate
    same_name = [k for k in known if os.path.basename(k) == name]
    if len(same_name) > 1:
        raise FileNotRejectedError(f"{file!r} matches several logged files: {', '.join(same_name)}; give one in full")
    return same_name[0] if same_name else None


def acknowledge_rejected_file(
    lakehouse: Lakehouse, file: str, reason: str, by: str, landing_path: str | None = None
) -> dict[str, Any]:
    """Record an operator's acknowledgement of a rejected landing file in ``bronze_ingestion_log``.

    The appended row has status ``acknowledged``, the rejection's error, the ``reason`` in ``note``,
    ``by`` in ``acknowledged_by`` and the time in ``ingested_at``. From then on the ingestion job no
    longer fails on the file and no longer reads it (like an ingested file); a corrected file under
    a new name is ingested normally.

    Args:
        lakehouse: the target's tables.
        file: the file's ``source_file`` as logged, or its name, or any path ending in its name.
        reason: why the file is given up (required, non-blank).
        by: the operator's user name.
        landing_path: the landing folder as configured, to resolve a bare file name.

    Returns:
        The appended log row as a dict.

    Raises:
        ValueError: ``reason`` is blank.
        FileNotRejectedError: the file is not currently rejected (never logged, ingested, already
            acknowledged), or its name is ambiguous.
    """
    if not reason or not reason.strip():
        raise ValueError("an acknowledgement needs a reason (--reason)")
    status = {r["source_file"]: r for r in landing_status(lakehouse)}
    source = _resolve_logged_file(list(status), file, landing_path)
    rejected_now = sorted(k for k, r in status.items() if r["status"] == REJECTED)
    if source is None or status[source]["status"] != REJECTED:
        what = "is not in bronze_ingestion_log" if source is None else f"is {status[source]['status']}"
        raise FileNotRejectedError(
            f"{file} {what}, not rejected: only a rejected file can be acknowledged. Rejected now: "
            + (", ".join(rejected_now) or "none")
        )
    last = (
        lakehouse.read(C.BRONZE_INGESTION_LOG)
        .where((F.col("source_file") == source) & F.col("status").isin(REJECTED, LEGACY_FAILED))
        .orderBy(F.col("ingested_at").desc())
        .select("file_size_bytes", "file_modified_at")
        .first()
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    row = (source, last["file_size_bytes"], last["file_modified_at"], uuid.uuid4().hex, now, ACKNOWLEDGED, 0,
           status[source]["error"], reason.strip(), by)
    _append_log(lakehouse, [row])
    log.warning("bronze: %s acknowledged by %s: %s", source, by, reason.strip())
    return dict(zip(INGESTION_LOG_SCHEMA.fieldNames(), row, strict=True))


def _conform_to_table(lakehouse: Lakehouse, name: str, df: DataFrame) -> DataFrame:
    """``df`` in the existing table's column order. A column the table lacks (a table written before
    the column existed, e.g. ``_rescued_data`` or the log's ``note``) is first added to the table,
    null in its rows, by rewriting the table once; a table column ``df`` lacks is written null."""
    if not lakehouse.exists(name):
        return df
    table = lakehouse.read(name)
    added = [f for f in df.schema.fields if f.name not in table.columns]
    if added:
        log.warning("bronze: adding column(s) %s to %s (one-time rewrite of the table)",
                    ", ".join(f.name for f in added), lakehouse.ref(name).full_name)
        lakehouse.overwrite(name, table.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in added]))
        table = lakehouse.read(name)
    return df.select(
        *[F.col(f.name) if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
          for f in table.schema.fields]
    )


def _append_log(lakehouse: Lakehouse, rows: list[tuple]) -> None:
    df = lakehouse.spark.createDataFrame(rows, INGESTION_LOG_SCHEMA)
    lakehouse.append(C.BRONZE_INGESTION_LOG, _conform_to_table(lakehouse, C.BRONZE_INGESTION_LOG, df))


# -------------------------------------------------------------------------------------------------
# Ingestion


def ingest_bronze(lakehouse: Lakehouse, landing_path: str, file_pattern: str = "*.csv*") -> dict[str, Any]:
    """Ingest the landing files not yet in bronze; record every attempt in ``bronze_ingestion_log``.

    A file is taken when it is neither ingested nor acknowledged in the log (so a rejected file is
    tried again on every run). Each is checked (:func:`inspect_landing_file`): a file that does not
    decompress, decode as UTF-8 or have the required columns is logged ``rejected`` with its error;
    an empty or header-only file is logged ``ingested`` with 0 rows and a note; the others are read
    by header name (:func:`read_landing_files`) and replace their own rows in bronze. This function
    does not fail on a rejected file: the ingestion job's last task does
    (``fraud_mlops.jobs.ingestion.gold``), after silver and gold took the readable files.

    Args:
        lakehouse: the target's tables.
        landing_path: the landing folder, as configured (a Unity Catalog volume path is mapped to
            the local mirror by the config); ``_source_file`` holds this path plus the file name.
        file_pattern: glob of the file names to take.

    Returns:
        ``ingestion_run_id``; ``files_landed``; ``files_new``; ``files_ingested`` (readable files,
        empty ones included); ``files_empty`` (list of ``{file, note}``); ``files_rejected`` (list of
        ``{file, error}``); ``rescued_columns`` (``{file: [header names kept in _rescued_data]}``);
        ``files_changed_after_ingestion`` (ingested or acknowledged files whose size or modification
        time changed since: reported, not re-read); ``rows_ingested``; ``bronze_rows`` (table
        total). Files are named as ``_source_file`` names them.

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
            .where(F.col("status").isin(INGESTED, ACKNOWLEDGED))
            .select("source_file", "file_size_bytes", F.col("file_modified_at").cast("double").alias("modified_epoch"))
            .collect()
        }
    base = landing_path.rstrip("/") + "/"
    source = {f.path: base + os.path.basename(f.path) for f in landed}  # as _source_file records it
    new = [f for f in landed if source[f.path] not in done]
    # A file is ingested once, by name. A file re-delivered under the same name with other content
    # is not read again (bronze keeps what landed first) but reported, so that it is not missed.
    changed = [
        source[f.path]
        for f in landed
        if (key := source[f.path]) in done
        and (done[key][0] != f.size_bytes or abs(done[key][1] - f.modified_at.timestamp()) > 1e-3)
    ]
    for name in changed:
        log.warning("bronze: %s changed after it was ingested or acknowledged; it is not read again", name)
    run_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # aware: PySpark stores the true instant
    log.info("bronze: %d landed files, %d new (%d already ingested or acknowledged)",
             len(landed), len(new), len(landed) - len(new))
    checks = {f.path: (LandingFileCheck(error=None, note="empty file (0 bytes): nothing to ingest")
                       if f.size_bytes == 0 else inspect_landing_file(f.path)) for f in new}
    for f in new:
        if checks[f.path].error:
            log.warning("bronze: rejected %s: %s", source[f.path], checks[f.path].error)
    with_rows = [f for f in new if checks[f.path].error is None and checks[f.path].has_rows]
    counts: dict[str, int] = {}
    if with_rows:
        headers = {f.path: checks[f.path].header for f in with_rows}
        rows = (
            read_landing_files(spark, headers, landing_path)  # type: ignore[arg-type]
            .withColumn("_ingested_at", F.lit(now.isoformat()).cast("timestamp"))
            .withColumn("_ingestion_run_id", F.lit(run_id))
        )
        rows = _conform_to_table(lakehouse, C.BRONZE_TRANSACTIONS, rows).cache()
        counts = {r["_source_file"]: int(r["count"]) for r in rows.groupBy("_source_file").count().collect()}
        names = ", ".join(sql_literal(source[f.path]) for f in with_rows)
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
            INGESTED if checks[f.path].error is None else REJECTED,
            counts.get(source[f.path], 0),
            checks[f.path].error,
            checks[f.path].note,
            None,
        )
        for f in new
    ]
    if log_rows:
        _append_log(lakehouse, log_rows)
    readable = [f for f in new if checks[f.path].error is None]
    return {
        "ingestion_run_id": run_id,
        "files_landed": len(landed),
        "files_new": len(new),
        "files_ingested": len(readable),
        "files_empty": [{"file": source[f.path], "note": checks[f.path].note}
                        for f in readable if counts.get(source[f.path], 0) == 0],
        "files_rejected": [{"file": source[f.path], "error": checks[f.path].error}
                           for f in new if checks[f.path].error],
        "rescued_columns": {source[f.path]: checks[f.path].header.rescued_names  # type: ignore[union-attr]
                            for f in readable if checks[f.path].header is not None and checks[f.path].header.rescued},
        "files_changed_after_ingestion": changed,
        "rows_ingested": sum(counts.values()),
        "bronze_rows": lakehouse.count(C.BRONZE_TRANSACTIONS),
    }
