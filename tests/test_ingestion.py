"""Bronze and silver: exactly-once file ingestion, recorded failures, quality rules, quarantine."""

from __future__ import annotations

import gzip

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fraud_mlops import config as C
from fraud_mlops import ingestion

HEADER = ",".join(ingestion.LANDING_COLUMNS)


def write_landing(folder, name, lines, header=HEADER, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *lines]) + "\n"
    path = folder / name
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


GOOD_DAY_1 = [
    "0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0",
    "1,2018-04-01 00:02:10,4961,3412,81.51,130,0,0,0",
    "2,2018-04-01 00:07:56,2,1365,246.00,476,0,1,1",
]
BAD_DAY_2 = [
    "3,2018-04-02 00:00:01,10,20,10.00,86401,1,0,0",  # good
    ",2018-04-02 00:00:02,10,20,10.00,86402,1,0,0",  # no transaction id
    "5,2018-04-02 25:61:00,10,20,10.00,86403,1,0,0",  # unparseable timestamp
    "9,2018-4-02 00:00:09,10,20,10.00,86409,1,0,0",  # near-miss timestamp (Spark's parser would raise)
    "6,2018-04-02 00:00:04,10,20,-3.50,86404,1,0,0",  # negative amount
    "7,2018-04-02 00:00:05,10,20,abc,86405,1,2,0",  # amount not a number, fraud not 0/1
    "8,2018-04-02 00:00:06,10,20",  # malformed: too few fields
    "3,2018-04-02 00:00:01,10,20,10.00,86401,1,0,0",  # duplicate inside the file
    "0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0",  # duplicate of a key landed in day 1
]


@pytest.fixture()
def landing(tmp_path):
    return tmp_path / "landing"


def test_bronze_ingests_each_file_once_and_records_unreadable_files(lakehouse, landing):
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    (landing / "2018-04-02.csv.gz").write_bytes(b"this is not gzip")
    write_landing(landing, "2018-04-03.csv", ["9,2018-04-03 00:00:00,1,1,1.00,1,2,0,0"], header="A,B,C", compress=False)
    (landing / "notes.txt").write_text("ignored: does not match the pattern")

    first = ingestion.ingest_bronze(lakehouse, str(landing))
    assert first["files_new"] == 3 and first["files_ingested"] == 1 and first["rows_ingested"] == 3
    failed = {f["file"].rsplit("/", 1)[-1]: f["error"] for f in first["files_failed"]}
    assert set(failed) == {"2018-04-02.csv.gz", "2018-04-03.csv"}
    assert "gzip" in failed["2018-04-02.csv.gz"].lower() or "Gzip" in failed["2018-04-02.csv.gz"]
    assert "unexpected header" in failed["2018-04-03.csv"]

    log = lakehouse.read(C.BRONZE_INGESTION_LOG)
    assert log.where("status = 'failed' AND error IS NOT NULL").count() == 2
    bronze = lakehouse.read(C.BRONZE_TRANSACTIONS)
    assert bronze.columns[:9] == list(ingestion.LANDING_COLUMNS)
    assert {"_source_file", "_ingested_at", "_ingestion_run_id"} <= set(bronze.columns)
    assert dict(bronze.schema["TX_AMOUNT"].jsonValue()) ["type"] == "string"  # rows as landed
    assert {r[0] for r in bronze.select("_source_file").distinct().collect()} == {f"{landing}/2018-04-01.csv.gz"}

    # The unreadable file is fixed and a new file lands: only those two are read; day 1 is not re-read.
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    second = ingestion.ingest_bronze(lakehouse, str(landing))
    assert second["files_ingested"] == 1 and second["rows_ingested"] == len(BAD_DAY_2)
    assert lakehouse.count(C.BRONZE_TRANSACTIONS) == 3 + len(BAD_DAY_2)

    version = lakehouse.version(C.BRONZE_TRANSACTIONS)
    third = ingestion.ingest_bronze(lakehouse, str(landing))
    assert third["files_ingested"] == 0 and lakehouse.version(C.BRONZE_TRANSACTIONS) == version
    assert third["files_changed_after_ingestion"] == []

    # A file re-delivered under an ingested name is reported, not read again.
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1[:1])
    fourth = ingestion.ingest_bronze(lakehouse, str(landing))
    assert fourth["files_ingested"] == 0 and lakehouse.version(C.BRONZE_TRANSACTIONS) == version
    assert fourth["files_changed_after_ingestion"] == [str(landing / "2018-04-01.csv.gz")]


def test_bronze_source_file_keeps_the_landed_name(lakehouse, landing):
    name = "2018-04-01 resent+1.csv.gz"
    write_landing(landing, name, GOOD_DAY_1)
    result = ingestion.ingest_bronze(lakehouse, str(landing))
    assert result["rows_ingested"] == len(GOOD_DAY_1)
    sources = {r[0] for r in lakehouse.read(C.BRONZE_TRANSACTIONS).select("_source_file").distinct().collect()}
    assert sources == {f"{landing}/{name}"}
    log = lakehouse.read(C.BRONZE_INGESTION_LOG).collect()
    assert [(r["source_file"], r["rows"]) for r in log] == [(f"{landing}/{name}", len(GOOD_DAY_1))]


def test_silver_and_gold_do_nothing_before_any_file_landed(lakehouse):
    assert ingestion.build_silver(lakehouse)["files_processed"] == 0
    assert ingestion.build_gold(lakehouse)["rows_written"] == 0
    assert not lakehouse.exists(C.SILVER_TRANSACTIONS) and not lakehouse.exists(C.GOLD_FEATURES)


def test_silver_rules_quarantine_and_reconciliation(lakehouse, landing):
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    ingestion.ingest_bronze(lakehouse, str(landing))
    ingestion.build_silver(lakehouse)
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    ingestion.ingest_bronze(lakehouse, str(landing))
    result = ingestion.build_silver(lakehouse)

    assert result["rows_in"] == len(BAD_DAY_2)
    assert result["rows_in"] == result["rows_silver"] + result["rows_quarantined"]
    assert result["rows_silver"] == 1
    assert lakehouse.count(C.BRONZE_TRANSACTIONS) == result["silver_rows"] + result["quarantine_rows"]

    quarantine = lakehouse.read(C.SILVER_QUARANTINE)
    got = {
        (r["TRANSACTION_ID"], r["TX_DATETIME"]): sorted(r["failed_rules"])
        for r in quarantine.select("TRANSACTION_ID", "TX_DATETIME", "failed_rules").collect()
    }
    assert got == {
        (None, "2018-04-02 00:00:02"): ["transaction_id_present"],
        ("5", "2018-04-02 25:61:00"): ["tx_datetime_parseable"],
        ("9", "2018-4-02 00:00:09"): ["tx_datetime_parseable"],
        ("6", "2018-04-02 00:00:04"): ["tx_amount_non_negative"],
        ("7", "2018-04-02 00:00:05"): ["tx_amount_non_negative", "tx_fraud_binary", "tx_fraud_scenario_valid"],
        ("8", "2018-04-02 00:00:06"): sorted(
            ["well_formed_row", "tx_amount_non_negative", "tx_fraud_binary", "tx_fraud_scenario_valid"]
        ),
        ("3", "2018-04-02 00:00:01"): ["unique_transaction_id"],
        ("0", "2018-04-01 00:00:31"): ["unique_transaction_id"],
    }
    assert quarantine.where("quarantine_reason IS NULL OR quarantine_reason = ''").count() == 0

    silver = lakehouse.read(C.SILVER_TRANSACTIONS)
    expected = lakehouse.spark.createDataFrame(
        [(0, "2018-04-01 00:00:31", 596, 57.16, 0), (1, "2018-04-01 00:02:10", 4961, 81.51, 0),
         (2, "2018-04-01 00:07:56", 2, 246.0, 1), (3, "2018-04-02 00:00:01", 10, 10.0, 0)],
        "transaction_id bigint, tx_datetime string, customer_id bigint, tx_amount double, tx_fraud int",
    ).withColumn("tx_datetime", F.to_timestamp("tx_datetime"))
    assert_df_equality(
        silver.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert silver.schema["tx_date"].dataType.simpleString() == "date"


def test_silver_rerun_changes_nothing_and_redoes_a_crashed_batch(lakehouse, landing):
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    ingestion.ingest_bronze(lakehouse, str(landing))
    ingestion.build_silver(lakehouse)
    before = {t: lakehouse.version(t) for t in (C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE)}
    again = ingestion.build_silver(lakehouse)
    assert again["files_processed"] == 0
    assert {t: lakehouse.version(t) for t in before} == before

    # Simulate a crash after silver and quarantine were written but before the checkpoint: the
    # file is processed again and the tables end as after one clean run.
    silver_rows = sorted(lakehouse.read(C.SILVER_TRANSACTIONS).collect())
    quarantine_n = lakehouse.count(C.SILVER_QUARANTINE)
    lakehouse.overwrite(
        ingestion.SILVER_PROCESSED_FILES,
        lakehouse.read(ingestion.SILVER_PROCESSED_FILES).where("false"),
    )
    redo = ingestion.build_silver(lakehouse)
    assert redo["files_processed"] == 1 and redo["rows_quarantined"] == quarantine_n
    assert sorted(lakehouse.read(C.SILVER_TRANSACTIONS).collect()) == silver_rows
    assert lakehouse.count(C.SILVER_QUARANTINE) == quarantine_n


def test_task_entry_points_exit_zero_and_report_their_result(lakehouse):
    """A console script ends with sys.exit(<return value>): the entry points return None (status 0)
    and their result reaches the local runner through runtime.report."""
    from fraud_mlops import runtime, tasks

    argv = [f"--catalog={lakehouse.config.catalog}", f"--schema={lakehouse.config.schema}"]
    runtime.CURRENT_TASK_KEY[0] = "silver"
    assert tasks.silver(argv) is None
    assert runtime.LOCAL_TASK_RESULTS.pop("silver")["files_processed"] == 0
    assert tasks.silver.run(argv)["files_processed"] == 0
