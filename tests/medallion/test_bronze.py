"""Bronze: exactly-once file ingestion with lineage, unreadable files recorded with their error."""

from __future__ import annotations

import pytest

from fraud_mlops.medallion import bronze
from fraud_mlops.platform import config as C

from .landing_files import BAD_DAY_2, GOOD_DAY_1, write_landing


@pytest.fixture()
def landing(tmp_path):
    return tmp_path / "landing"


def test_bronze_ingests_each_file_once_and_records_unreadable_files(lakehouse, landing):
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    (landing / "2018-04-02.csv.gz").write_bytes(b"this is not gzip")
    write_landing(landing, "2018-04-03.csv", ["9,2018-04-03 00:00:00,1,1,1.00,1,2,0,0"], header="A,B,C", compress=False)
    (landing / "notes.txt").write_text("ignored: does not match the pattern")

    first = bronze.ingest_bronze(lakehouse, str(landing))
    assert first["files_new"] == 3 and first["files_ingested"] == 1 and first["rows_ingested"] == 3
    failed = {f["file"].rsplit("/", 1)[-1]: f["error"] for f in first["files_rejected"]}
    assert set(failed) == {"2018-04-02.csv.gz", "2018-04-03.csv"}
    assert "gzip" in failed["2018-04-02.csv.gz"].lower() or "Gzip" in failed["2018-04-02.csv.gz"]
    assert failed["2018-04-03.csv"].startswith("missing required column(s) TRANSACTION_ID, TX_DATETIME,")

    log = lakehouse.read(C.BRONZE_INGESTION_LOG)
    assert log.where("status = 'rejected' AND error IS NOT NULL").count() == 2
    bronze_df = lakehouse.read(C.BRONZE_TRANSACTIONS)
    assert bronze_df.columns[:9] == list(bronze.LANDING_COLUMNS)
    assert {"_source_file", "_ingested_at", "_ingestion_run_id"} <= set(bronze_df.columns)
    assert dict(bronze_df.schema["TX_AMOUNT"].jsonValue()) ["type"] == "string"  # rows as landed
    assert {r[0] for r in bronze_df.select("_source_file").distinct().collect()} == {f"{landing}/2018-04-01.csv.gz"}

    # The unreadable file is fixed and a new file lands: only those two are read; day 1 is not re-read.
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    second = bronze.ingest_bronze(lakehouse, str(landing))
    assert second["files_ingested"] == 1 and second["rows_ingested"] == len(BAD_DAY_2)
    assert lakehouse.count(C.BRONZE_TRANSACTIONS) == 3 + len(BAD_DAY_2)

    version = lakehouse.version(C.BRONZE_TRANSACTIONS)
    third = bronze.ingest_bronze(lakehouse, str(landing))
    assert third["files_ingested"] == 0 and lakehouse.version(C.BRONZE_TRANSACTIONS) == version
    assert third["files_changed_after_ingestion"] == []

    # A file re-delivered under an ingested name is reported, not read again.
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1[:1])
    fourth = bronze.ingest_bronze(lakehouse, str(landing))
    assert fourth["files_ingested"] == 0 and lakehouse.version(C.BRONZE_TRANSACTIONS) == version
    assert fourth["files_changed_after_ingestion"] == [str(landing / "2018-04-01.csv.gz")]


def test_bronze_source_file_keeps_the_landed_name(lakehouse, landing):
    name = "2018-04-01 resent+1.csv.gz"
    write_landing(landing, name, GOOD_DAY_1)
    result = bronze.ingest_bronze(lakehouse, str(landing))
    assert result["rows_ingested"] == len(GOOD_DAY_1)
    sources = {r[0] for r in lakehouse.read(C.BRONZE_TRANSACTIONS).select("_source_file").distinct().collect()}
    assert sources == {f"{landing}/{name}"}
    log = lakehouse.read(C.BRONZE_INGESTION_LOG).collect()
    assert [(r["source_file"], r["rows"]) for r in log] == [(f"{landing}/{name}", len(GOOD_DAY_1))]
