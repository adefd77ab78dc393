"""The Spark backend of the table layer (what runs on Databricks and through Databricks Connect).

Delta's JARs cannot be had offline, so ``format("delta")`` cannot run here. These tests replace the
two things the backend talks to, delta-spark's ``DeltaTable`` and the session's catalog, reader and
writer, by stand-ins that record every call, and check each recorded call against the signature of
the real delta-spark API (``inspect.signature(...).bind``): a call the real API would reject fails
here too. Metrics and history come back as real (local) DataFrames, as delta-spark returns them.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pytest
from delta import tables as delta_tables

from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse

FULL_NAME = "fraud_prod.fraud.predictions"
#: The real delta-spark classes, whose signatures every recorded call must fit (captured before any
#: test replaces ``delta.tables.DeltaTable``).
REAL_DELTA_TABLE = delta_tables.DeltaTable
REAL_MERGE_BUILDER = delta_tables.DeltaMergeBuilder


def _checked(cls: type, method: str, *args: Any, **kwargs: Any) -> None:
    """Raise TypeError when ``cls.method(*args, **kwargs)`` does not fit the real signature."""
    inspect.signature(getattr(cls, method)).bind(*args, **kwargs)


class RecordingDeltaTable:
    """Stands in for ``delta.tables.DeltaTable`` (and its merge builder): records the calls, checked
    against the real delta-spark signatures, and returns the given history and merge metrics."""

    calls: ClassVar[list[tuple[str, tuple, dict]]] = []
    history_df: Any = None
    metrics_df: Any = None

    def __init__(self, name: str) -> None:
        self.name = name

    def _record(self, cls: type, method: str, *args: Any, **kwargs: Any) -> None:
        _checked(cls, method, self, *args, **kwargs)
        RecordingDeltaTable.calls.append((method, args, kwargs))

    @classmethod
    def forName(cls, sparkSession: Any, tableOrViewName: str) -> RecordingDeltaTable:
        _checked(REAL_DELTA_TABLE, "forName", sparkSession, tableOrViewName)
        cls.calls.append(("forName", (tableOrViewName,), {}))
        return cls(tableOrViewName)

    def history(self, *args: Any, **kwargs: Any) -> Any:
        self._record(REAL_DELTA_TABLE, "history", *args, **kwargs)
        return RecordingDeltaTable.history_df

    def alias(self, *args: Any, **kwargs: Any) -> RecordingDeltaTable:
        self._record(REAL_DELTA_TABLE, "alias", *args, **kwargs)
        return self

    def merge(self, *args: Any, **kwargs: Any) -> RecordingDeltaTable:
        self._record(REAL_DELTA_TABLE, "merge", *args, **kwargs)
        return self

    def whenMatchedUpdateAll(self, *args: Any, **kwargs: Any) -> RecordingDeltaTable:
        self._record(REAL_MERGE_BUILDER, "whenMatchedUpdateAll", *args, **kwargs)
        return self

    def whenNotMatchedInsertAll(self, *args: Any, **kwargs: Any) -> RecordingDeltaTable:
        self._record(REAL_MERGE_BUILDER, "whenNotMatchedInsertAll", *args, **kwargs)
        return self

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._record(REAL_MERGE_BUILDER, "execute", *args, **kwargs)
        return RecordingDeltaTable.metrics_df


class Chain:
    """Records a fluent call chain (``df.write.format(...).mode(...).saveAsTable(...)``)."""

    def __init__(self, log: list[tuple[str, tuple]], result: Any = None) -> None:
        self.log, self.result = log, result

    def __getattr__(self, name: str):
        def call(*args: Any) -> Any:
            self.log.append((name, args))
            return self.result if name in ("table", "saveAsTable", "tableExists") else self

        return call


class FakeSpark:
    """A session whose catalog knows the given tables and whose reader records what it reads."""

    def __init__(self, existing: set[str], read_result: Any = None) -> None:
        self.existing = existing
        self.read_log: list[tuple[str, tuple]] = []
        self.read = Chain(self.read_log, read_result)
        self.catalog = self

    def tableExists(self, name: str) -> bool:
        return name in self.existing


class FakeFrame:
    """A DataFrame whose writer records the calls (the real one would need Delta's JARs)."""

    def __init__(self) -> None:
        self.write_log: list[tuple[str, tuple]] = []
        self.write = Chain(self.write_log)


@pytest.fixture()
def recording(monkeypatch):
    RecordingDeltaTable.calls = []
    monkeypatch.setattr(delta_tables, "DeltaTable", RecordingDeltaTable)
    return RecordingDeltaTable


def _lakehouse(spark: Any) -> Lakehouse:
    return Lakehouse(spark, LakehouseConfig(catalog="fraud_prod", schema="fraud", backend="spark"))


def test_exists_asks_the_catalog_for_the_unity_catalog_name():
    lakehouse = _lakehouse(FakeSpark({FULL_NAME}))
    assert lakehouse.exists("predictions") and not lakehouse.exists("monitoring_metrics")


def test_version_is_the_latest_commit_of_delta_history(spark, recording):
    recording.history_df = spark.createDataFrame([(12, "MERGE")], "version long, operation string")
    assert _lakehouse(FakeSpark({FULL_NAME})).version("predictions") == 12
    assert recording.calls == [("forName", (FULL_NAME,), {}), ("history", (1,), {})]


def test_read_at_a_version_uses_version_as_of():
    fake = FakeSpark({FULL_NAME}, read_result="the table")
    assert _lakehouse(fake).read("predictions", version=3) == "the table"
    assert fake.read_log == [("option", ("versionAsOf", 3)), ("table", (FULL_NAME,))]
    fake.read_log.clear()
    _lakehouse(fake).read("predictions")
    assert fake.read_log == [("table", (FULL_NAME,))]


def test_overwrite_replaces_a_range_with_replace_where_or_creates_the_table():
    existing, new = FakeFrame(), FakeFrame()
    _lakehouse(FakeSpark({FULL_NAME})).overwrite("predictions", existing, replace_where="tx_date >= '2018-08-01'")
    assert existing.write_log == [("format", ("delta",)), ("mode", ("overwrite",)),
                                  ("option", ("replaceWhere", "tx_date >= '2018-08-01'")),
                                  ("saveAsTable", (FULL_NAME,))]
    _lakehouse(FakeSpark(set())).overwrite("predictions", new, replace_where="tx_date >= '2018-08-01'")
    assert new.write_log[2] == ("option", ("overwriteSchema", "true"))


def test_merge_uses_the_merge_builder_and_reads_its_metrics(spark, recording):
    recording.metrics_df = spark.createDataFrame(
        [(7, 2, 0, 5)], "num_affected_rows long, num_updated_rows long, num_deleted_rows long, num_inserted_rows long")
    source = spark.createDataFrame([(1, 0.5)], "transaction_id long, score double")
    result = _lakehouse(FakeSpark({FULL_NAME})).merge(
        "predictions", source, ["transaction_id"], update_condition="s.score <> t.score")
    assert result == {"inserted": 5, "updated": 2}
    names = [c[0] for c in recording.calls]
    assert names == ["forName", "alias", "merge", "whenMatchedUpdateAll", "whenNotMatchedInsertAll", "execute"]
    merge_args = recording.calls[2][1]
    assert merge_args[1] == "t.`transaction_id` = s.`transaction_id`"
    assert recording.calls[1][1] == ("t",)
    assert recording.calls[3][2] == {"condition": "s.score <> t.score"}


def test_a_call_the_real_api_would_reject_fails_here_too(recording):
    with pytest.raises(TypeError):
        RecordingDeltaTable("x").merge("only the source")  # the real merge needs a condition


# ------------------------------------------------------------------ concurrent writers
# Delta rejects a commit that conflicts with a concurrent writer's (nothing is written); the Spark
# backend retries such a write with exponential backoff, then fails naming the table.


def _conflict(kind: str = "class") -> Exception:
    """A Delta commit conflict as classic pyspark (delta-spark's exception class) or Spark Connect
    (an AnalysisException whose message names the Delta error class) raises it."""
    if kind == "class":
        from delta.exceptions import ConcurrentAppendException

        return ConcurrentAppendException(message="Files were added to the root of the table by a concurrent update.")
    from pyspark.errors.exceptions.connect import AnalysisException

    return AnalysisException(message="[DELTA_CONCURRENT_DELETE_READ] ConcurrentDeleteReadException: This transaction "
                                     "attempted to read one or more files that were deleted by a concurrent update.")


class ConflictingWriter(Chain):
    """A writer whose ``saveAsTable`` raises the given errors, one per call, before it succeeds."""

    def __init__(self, log: list[tuple[str, tuple]], errors: list[Exception]) -> None:
        super().__init__(log)
        self.errors = errors

    def __getattr__(self, name: str):
        call = super().__getattr__(name)
        if name != "saveAsTable":
            return call

        def save(*args: Any) -> Any:
            call(*args)
            if self.errors:
                raise self.errors.pop(0)

        return save


class ConflictingFrame:
    def __init__(self, errors: list[Exception]) -> None:
        self.write_log: list[tuple[str, tuple]] = []
        self.write = ConflictingWriter(self.write_log, errors)


def _retrying(spark: Any, sleeps: list[float], attempts: int = 4) -> Lakehouse:
    return Lakehouse(spark, LakehouseConfig(catalog="fraud_prod", schema="fraud", backend="spark"),
                     write_attempts=attempts, retry_backoff_s=1.0, sleep=sleeps.append)


def test_a_conflicting_write_is_retried_with_backoff_until_it_commits():
    sleeps: list[float] = []
    frame = ConflictingFrame([_conflict("class"), _conflict("connect")])
    _retrying(FakeSpark({FULL_NAME}), sleeps).overwrite("predictions", frame, replace_where="tx_date = '2018-08-01'")
    assert sleeps == [1.0, 2.0]
    one_attempt = [("format", ("delta",)), ("mode", ("overwrite",)),
                   ("option", ("replaceWhere", "tx_date = '2018-08-01'")), ("saveAsTable", (FULL_NAME,))]
    assert frame.write_log == one_attempt * 3  # the whole write is built again for each attempt


def test_a_write_that_always_conflicts_fails_clearly_after_the_last_attempt():
    from fraud_mlops.platform.lakehouse import ConcurrentWriteError

    sleeps: list[float] = []
    conflicts = [_conflict("connect") for _ in range(4)]
    frame = ConflictingFrame(list(conflicts))
    with pytest.raises(ConcurrentWriteError) as info:
        _retrying(FakeSpark({FULL_NAME}), sleeps).append("predictions", frame)
    message = str(info.value)
    assert message.startswith(f"append of Delta table {FULL_NAME} failed after 4 attempt(s)")
    assert "DELTA_CONCURRENT_DELETE_READ" in message and "concurrent write" in message
    assert info.value.__cause__ is conflicts[-1]
    assert sleeps == [1.0, 2.0, 4.0]
    assert [c for c in frame.write_log if c[0] == "saveAsTable"] == [("saveAsTable", (FULL_NAME,))] * 4


def test_other_write_errors_are_not_retried():
    sleeps: list[float] = []
    frame = ConflictingFrame([PermissionError("User does not have MODIFY on table")])
    with pytest.raises(PermissionError):
        _retrying(FakeSpark({FULL_NAME}), sleeps).append("predictions", frame)
    assert sleeps == []


class Metrics:
    """The merge metrics DataFrame of delta-spark, reduced to what the backend reads."""

    def collect(self) -> list[Any]:
        from pyspark.sql import Row

        return [Row(num_affected_rows=3, num_updated_rows=1, num_deleted_rows=0, num_inserted_rows=2)]


def test_a_conflicting_merge_is_rebuilt_and_retried(recording):
    failures = [_conflict("class")]

    class ConflictingDeltaTable(RecordingDeltaTable):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            result = super().execute(*args, **kwargs)
            if failures:
                raise failures.pop(0)
            return result

    delta_tables.DeltaTable = ConflictingDeltaTable  # restored by the recording fixture's monkeypatch
    recording.metrics_df = Metrics()
    sleeps: list[float] = []
    result = _retrying(FakeSpark({FULL_NAME}), sleeps).merge("predictions", FakeMergeSource(), ["transaction_id"])
    assert result == {"inserted": 2, "updated": 1}
    assert sleeps == [1.0]
    names = [c[0] for c in recording.calls]
    assert names == ["forName", "alias", "merge", "whenMatchedUpdateAll", "whenNotMatchedInsertAll", "execute"] * 2


class FakeMergeSource:
    def alias(self, name: str) -> FakeMergeSource:
        return self


def test_conflicts_are_recognised_by_class_or_message():
    from fraud_mlops.platform.lakehouse import is_concurrent_modification

    assert is_concurrent_modification(_conflict("class")) and is_concurrent_modification(_conflict("connect"))

    class MetadataChangedException(Exception):
        pass

    assert is_concurrent_modification(MetadataChangedException("schema changed"))
    assert is_concurrent_modification(RuntimeError("io.delta.exceptions.ProtocolChangedException: upgraded"))
    assert not is_concurrent_modification(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] fraud_prod.fraud.x"))
    with pytest.raises(ValueError):
        Lakehouse(None, LakehouseConfig(catalog="c", schema="s", backend="spark"), write_attempts=0)


class SqlSpark(FakeSpark):
    """A session that also answers ``SHOW TBLPROPERTIES`` with the given properties and records every
    other SQL statement."""

    def __init__(self, existing: set[str], properties: dict[str, str]) -> None:
        super().__init__(existing)
        self.properties = properties
        self.statements: list[str] = []

    def sql(self, statement: str) -> Any:
        self.statements.append(statement)
        rows = [{"key": k, "value": v} for k, v in self.properties.items()]
        return type("Result", (), {"collect": lambda _self: rows})()


def test_table_properties_are_set_with_alter_table_only_when_they_differ():
    name = "fraud_prod.fraud.inference_log"
    fake = SqlSpark({name}, {"delta.minReaderVersion": "1", "delta.enableChangeDataFeed": "false"})
    lakehouse = _lakehouse(fake)
    assert lakehouse.table_properties("inference_log")["delta.enableChangeDataFeed"] == "false"
    assert lakehouse.set_table_properties("inference_log", {"delta.enableChangeDataFeed": "true"}) is True
    assert fake.statements[-1] == f"ALTER TABLE {name} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')"
    fake.properties["delta.enableChangeDataFeed"] = "true"
    fake.statements.clear()
    assert lakehouse.set_table_properties("inference_log", {"delta.enableChangeDataFeed": "true"}) is False
    assert fake.statements == [f"SHOW TBLPROPERTIES {name}"]
