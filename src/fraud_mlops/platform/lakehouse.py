"""Table access: the only module that knows how Delta tables are read and written per backend.

Two backends behind one interface:

* ``spark``: Spark's own Delta and the metastore (Databricks with Unity Catalog, Databricks Connect,
  or any cluster with the Delta JARs), through delta-spark's ``DeltaTable`` API (``forName``, the
  merge builder and its metrics, ``history``) and the DataFrame reader/writer (``versionAsOf``,
  ``replaceWhere``). Tables are addressed as ``catalog.schema.table``. Delta's JARs cannot be had on
  machines without internet, so this backend is tested offline against a recording stand-in of the
  delta-spark API (tests/platform/test_lakehouse_spark.py), and runs for real on Databricks.
* ``delta-rs``: local Delta folders ``<local_root>/<catalog>/<schema>/<table>`` written by the
  ``deltalake`` package (no JVM JARs needed). Reads hand Spark exactly the Parquet files of the
  table version's Delta log, so Spark never sees removed files; writes go through Arrow.

Every write keeps Delta's guarantees (atomic commits, history, time travel), so a re-run that
overwrites a range or merges on a key leaves the same table.

Concurrent writers (Spark backend): Delta commits optimistically, and a commit that conflicts with
another writer's (``ConcurrentAppendException`` and its kin, :data:`CONCURRENT_MODIFICATION_ERRORS`)
is rejected whole, nothing written. Each Spark write (overwrite, append, merge) is therefore retried
on such a conflict, with exponential backoff (by default 4 attempts, waiting 1, 2 and 4 s between
them), and then fails with a :class:`ConcurrentWriteError` naming the table and the attempts.

Crash tests: after each commit, :func:`bundlekit.task_runtime.fault_point` is called with
``after_write:<table>`` (a no-op unless ``$BUNDLEKIT_FAULT_AT`` names it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from bundlekit.task_runtime import fault_point
from fraud_mlops.platform.config import LakehouseConfig, TableRef

log = logging.getLogger("fraud_mlops.lakehouse")
_T = TypeVar("_T")

#: Delta's commit-conflict exceptions (``io.delta.exceptions`` / ``delta.exceptions``), and the
#: error classes under which Databricks and Spark Connect report them (``[DELTA_CONCURRENT_APPEND]
#: ...``). An exception whose class, a base class, or message names one of them is a conflict that a
#: retry can resolve: the conflicting commit was rejected whole.
CONCURRENT_MODIFICATION_ERRORS: tuple[str, ...] = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "MetadataChangedException",
    "ConcurrentTransactionException",
    "ProtocolChangedException",
    "ConcurrentWriteException",
    "DeltaConcurrentModificationException",
    "DELTA_CONCURRENT_APPEND",
    "DELTA_CONCURRENT_DELETE_READ",
    "DELTA_CONCURRENT_DELETE_DELETE",
    "DELTA_METADATA_CHANGED",
    "DELTA_CONCURRENT_TRANSACTION",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_CONCURRENT_WRITE",
)
#: Attempts of a Spark write on a conflict, and the wait before the second one (seconds; doubled
#: before each further attempt).
DEFAULT_WRITE_ATTEMPTS = 4
DEFAULT_RETRY_BACKOFF_S = 1.0


class ConcurrentWriteError(RuntimeError):
    """A Delta write still conflicted with concurrent writers after every retry."""


def is_concurrent_modification(exc: BaseException) -> bool:
    """True when ``exc`` is one of Delta's commit conflicts (:data:`CONCURRENT_MODIFICATION_ERRORS`),
    matched on the names of its class and base classes (classic pyspark with delta-spark raises
    ``delta.exceptions.ConcurrentAppendException`` ...) or on its message (Spark Connect and
    Databricks raise pyspark errors whose message names the Delta exception or error class)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc)
    return any(marker in names or marker in text for marker in CONCURRENT_MODIFICATION_ERRORS)


def sql_literal(value: object) -> str:
    """``value`` as a SQL string literal (single quotes doubled) for a ``replace_where`` predicate,
    which both backends parse the same way."""
    return "'" + str(value).replace("'", "''") + "'"


class TableNotFoundError(LookupError):
    """Raised when a task reads a table that no earlier task has written."""


def _to_arrow(df: DataFrame) -> pa.Table:
    """Collect a Spark DataFrame as an Arrow table with the Spark schema's exact Arrow types (classic
    and Spark Connect sessions alike)."""
    return df.toArrow().cast(to_arrow_schema(df.schema))


def _delta_table(spark: SparkSession, full_name: str) -> Any:
    """delta-spark's ``DeltaTable`` of a metastore table. Under Spark Connect (serverless, Databricks
    Connect) ``DeltaTable.forName`` returns the Delta Connect client of the same API."""
    from delta.tables import DeltaTable

    return DeltaTable.forName(spark, full_name)


class Lakehouse:
    """Read and write the pipeline's Delta tables for one target.

    Args:
        spark: the session that reads and produces DataFrames.
        config: catalog, schema and backend of the target (see :class:`LakehouseConfig`).
        write_attempts: attempts of a Spark-backend write that meets a concurrent-modification
            conflict (>= 1; see the module docstring).
        retry_backoff_s: seconds to wait before the second attempt, doubled before each further one.
        sleep: the wait function (``time.sleep``; tests pass a recorder).

    Raises:
        ValueError: ``write_attempts < 1`` or a negative ``retry_backoff_s``.
    """

    def __init__(self, spark: SparkSession, config: LakehouseConfig, *,
                 write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
                 retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S,
                 sleep: Callable[[float], Any] = time.sleep):
        if write_attempts < 1 or retry_backoff_s < 0:
            raise ValueError(f"write_attempts must be >= 1 and retry_backoff_s >= 0, got {write_attempts}, "
                             f"{retry_backoff_s}")
        self.spark = spark
        self.config = config
        self.write_attempts = write_attempts
        self.retry_backoff_s = retry_backoff_s
        self._sleep = sleep

    # ------------------------------------------------------------------ naming
    def ref(self, name: str) -> TableRef:
        """The :class:`TableRef` of logical table ``name``."""
        return self.config.table(name)

    @property
    def _local(self) -> bool:
        return self.config.backend == "delta-rs"

    # ------------------------------------------------------------------ reads
    def exists(self, name: str) -> bool:
        """True when the table has been created."""
        ref = self.ref(name)
        if self._local:
            from deltalake import DeltaTable

            return DeltaTable.is_deltatable(str(ref.path))
        return bool(self.spark.catalog.tableExists(ref.full_name))

    def version(self, name: str) -> int | None:
        """The table's current Delta version, or None when it does not exist."""
        if not self.exists(name):
            return None
        ref = self.ref(name)
        if self._local:
            from deltalake import DeltaTable

            return int(DeltaTable(str(ref.path)).version())
        return int(_delta_table(self.spark, ref.full_name).history(1).select("version").collect()[0][0])

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Read the table (at ``version`` when given) as a Spark DataFrame.

        Raises:
            TableNotFoundError: the table does not exist.
        """
        ref = self.ref(name)
        if not self.exists(name):
            raise TableNotFoundError(f"table {ref.full_name} does not exist (run the task that writes it)")
        if not self._local:
            reader = self.spark.read
            if version is not None:
                reader = reader.option("versionAsOf", version)
            return reader.table(ref.full_name)
        from deltalake import DeltaTable

        dt = DeltaTable(str(ref.path), version=version)
        schema = from_arrow_schema(pa.schema(dt.schema().to_arrow()))
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).parquet(*files)

    def count(self, name: str) -> int:
        """Row count of the table (0 when it does not exist)."""
        if not self.exists(name):
            return 0
        if self._local:
            from deltalake import DeltaTable

            return int(DeltaTable(str(self.ref(name).path)).count())
        return self.read(name).count()

    # ------------------------------------------------------------------ writes
    def _retry_conflicts(self, ref: TableRef, operation: str, write: Callable[[], _T]) -> _T:
        """Run ``write`` (one Spark-backend commit to ``ref``), again after a concurrent-modification
        conflict, up to :attr:`write_attempts` times with exponential backoff.

        Raises:
            ConcurrentWriteError: every attempt conflicted (chained to the last conflict).
            Exception: whatever ``write`` raises that is not a conflict, at once.
        """
        delay = self.retry_backoff_s
        for attempt in range(1, self.write_attempts + 1):
            try:
                return write()
            except Exception as exc:
                if not is_concurrent_modification(exc):
                    raise
                if attempt == self.write_attempts:
                    raise ConcurrentWriteError(
                        f"{operation} of Delta table {ref.full_name} failed after {attempt} attempt(s): "
                        f"each conflicted with a concurrent write ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); find the other job writing this "
                        f"table, then re-run this one (its writes are idempotent)"
                    ) from exc
                log.warning("%s of %s conflicted with a concurrent write (attempt %d of %d: %s); retrying in %gs",
                            operation, ref.full_name, attempt, self.write_attempts, type(exc).__name__, delay)
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def overwrite(self, name: str, df: DataFrame, replace_where: str | None = None) -> None:
        """Replace the whole table, or only the rows matching ``replace_where``, with ``df``.

        ``replace_where`` is a SQL predicate both backends understand (for example
        ``tx_date >= '2018-08-01' AND tx_date <= '2018-08-07'``); every row of ``df`` must match it.
        The table is created when missing.

        Raises:
            ConcurrentWriteError: Spark backend, every attempt conflicted with a concurrent write.
        """
        ref = self.ref(name)
        if self._local:
            from deltalake import write_deltalake

            data = _to_arrow(df)
            if replace_where is not None and self.exists(name):
                write_deltalake(str(ref.path), data, mode="overwrite", predicate=replace_where)
            else:
                ref.path.parent.mkdir(parents=True, exist_ok=True)
                write_deltalake(str(ref.path), data, mode="overwrite", schema_mode="overwrite")
        else:
            def write() -> None:
                writer = df.write.format("delta").mode("overwrite")
                if replace_where is not None and self.exists(name):
                    writer = writer.option("replaceWhere", replace_where)
                else:
                    writer = writer.option("overwriteSchema", "true")
                writer.saveAsTable(ref.full_name)

            self._retry_conflicts(ref, "overwrite", write)
        fault_point(f"after_write:{name}")

    def append(self, name: str, df: DataFrame) -> None:
        """Append ``df`` to the table, creating it when missing.

        Raises:
            ConcurrentWriteError: Spark backend, every attempt conflicted with a concurrent write.
        """
        ref = self.ref(name)
        if self._local:
            from deltalake import write_deltalake

            ref.path.parent.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(ref.path), _to_arrow(df), mode="append")
        else:
            self._retry_conflicts(
                ref, "append", lambda: df.write.format("delta").mode("append").saveAsTable(ref.full_name))
        fault_point(f"after_write:{name}")

    def merge(
        self, name: str, df: DataFrame, keys: list[str], update_condition: str | None = None
    ) -> dict[str, int]:
        """Upsert ``df`` into the table on ``keys``: matched rows are updated, others inserted.

        The table is created from ``df`` when missing. ``df`` must hold at most one row per key.
        ``update_condition`` (a SQL predicate over the aliases ``t``, the table, and ``s``, the new
        rows) limits updates to matched rows that satisfy it, so that a re-run with unchanged input
        rewrites nothing.

        Returns:
            ``{"inserted": n, "updated": m}``.

        Raises:
            ConcurrentWriteError: Spark backend, every attempt conflicted with a concurrent write.
        """
        ref = self.ref(name)
        if not self.exists(name):
            self.overwrite(name, df)
            return {"inserted": self.count(name), "updated": 0}
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        if self._local:
            from deltalake import DeltaTable

            metrics: dict[str, Any] = (
                DeltaTable(str(ref.path))
                .merge(_to_arrow(df), predicate=condition, source_alias="s", target_alias="t")
                .when_matched_update_all(predicate=update_condition)
                .when_not_matched_insert_all()
                .execute()
            )
            counts = {
                "inserted": int(metrics.get("num_target_rows_inserted", 0)),
                "updated": int(metrics.get("num_target_rows_updated", 0)),
            }
        else:
            def write() -> dict[str, int]:
                # delta-spark >= 4.0 (and the Databricks runtimes) return the merge metrics as a DataFrame.
                metrics_df = (
                    _delta_table(self.spark, ref.full_name)
                    .alias("t")
                    .merge(df.alias("s"), condition)
                    .whenMatchedUpdateAll(condition=update_condition)
                    .whenNotMatchedInsertAll()
                    .execute()
                )
                row = metrics_df.collect()[0].asDict()
                return {"inserted": int(row["num_inserted_rows"]), "updated": int(row["num_updated_rows"])}

            counts = self._retry_conflicts(ref, "merge", write)
        fault_point(f"after_write:{name}")
        return counts

    def merge_changes(self, name: str, rows: DataFrame, existing: DataFrame | None, key: str,
                      update_condition: str) -> dict[str, int]:
        """Merge only the ``rows`` that are new or changed into the table; no commit when none are.

        Args:
            name: logical table name.
            rows: the new rows (at most one per ``key``).
            existing: the table's rows that ``rows`` may match (already narrowed, e.g. to a date
                range; None when the table does not exist yet), with ``key`` and every column
                ``update_condition`` reads.
            key: the merge key column.
            update_condition: SQL predicate over ``t`` (existing) and ``s`` (new) that is true when a
                matched row changed.

        Returns:
            ``{"inserted": n, "updated": m}`` (both 0 when nothing changed and nothing was written).
        """
        changes = rows
        if existing is not None:
            changes = (
                rows.alias("s")
                .join(existing.alias("t"), F.col(f"s.{key}") == F.col(f"t.{key}"), "left")
                .filter(F.col(f"t.{key}").isNull() | F.expr(update_condition))
                .select("s.*")
            )
        changes = changes.cache()
        try:
            if not changes.count():
                return {"inserted": 0, "updated": 0}
            counts = self.merge(name, changes, [key], update_condition=update_condition)
            return {"inserted": int(counts["inserted"]), "updated": int(counts["updated"])}
        finally:
            changes.unpersist()

    def table_properties(self, name: str) -> dict[str, str]:
        """The table's Delta properties (``{"delta.enableChangeDataFeed": "true", ...}``).

        Raises:
            TableNotFoundError: the table does not exist.
        """
        ref = self.ref(name)
        if not self.exists(name):
            raise TableNotFoundError(f"table {ref.full_name} does not exist (run the task that writes it)")
        if self._local:
            from deltalake import DeltaTable

            return {str(k): str(v) for k, v in DeltaTable(str(ref.path)).metadata().configuration.items()}
        rows = self.spark.sql(f"SHOW TBLPROPERTIES {ref.full_name}").collect()
        return {str(row["key"]): str(row["value"]) for row in rows}

    def set_table_properties(self, name: str, properties: dict[str, str]) -> bool:
        """Give the table the Delta ``properties`` it lacks or holds with another value, in one commit
        (``ALTER TABLE ... SET TBLPROPERTIES`` on the Spark backend); a table that already has them all
        is left alone, so a re-run writes nothing.

        Returns:
            True when a commit was made.

        Raises:
            TableNotFoundError: the table does not exist.
            ConcurrentWriteError: Spark backend, every attempt conflicted with a concurrent write.
        """
        current = self.table_properties(name)
        todo = {str(k): str(v) for k, v in properties.items() if current.get(str(k)) != str(v)}
        if not todo:
            return False
        ref = self.ref(name)
        if self._local:
            from deltalake import DeltaTable

            DeltaTable(str(ref.path)).alter.set_table_properties(todo)
        else:
            assignments = ", ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in todo.items())
            statement = f"ALTER TABLE {ref.full_name} SET TBLPROPERTIES ({assignments})"
            self._retry_conflicts(ref, "set properties", lambda: self.spark.sql(statement))
        fault_point(f"after_write:{name}")
        return True

    def versions(self, names: list[str]) -> dict[str, int | None]:
        """Current Delta version of each named table (None for a missing one), for lineage logging."""
        return {self.ref(n).full_name: self.version(n) for n in names}
