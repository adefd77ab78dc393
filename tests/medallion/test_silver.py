"""Silver: declared quality rules, quarantine with reasons, de-duplication, count reconciliation, re-runs."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fraud_mlops.medallion import bronze, silver
from fraud_mlops.platform import config as C

from .landing_files import BAD_DAY_2, GOOD_DAY_1, write_landing


@pytest.fixture()
def landing(tmp_path):
    return tmp_path / "landing"


def test_silver_rules_quarantine_and_reconciliation(lakehouse, landing):
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    bronze.ingest_bronze(lakehouse, str(landing))
    silver.build_silver(lakehouse)
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    bronze.ingest_bronze(lakehouse, str(landing))
    result = silver.build_silver(lakehouse)

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

    silver_df = lakehouse.read(C.SILVER_TRANSACTIONS)
    expected = lakehouse.spark.createDataFrame(
        [(0, "2018-04-01 00:00:31", 596, 57.16, 0), (1, "2018-04-01 00:02:10", 4961, 81.51, 0),
         (2, "2018-04-01 00:07:56", 2, 246.0, 1), (3, "2018-04-02 00:00:01", 10, 10.0, 0)],
        "transaction_id bigint, tx_datetime string, customer_id bigint, tx_amount double, tx_fraud int",
    ).withColumn("tx_datetime", F.to_timestamp("tx_datetime"))
    assert_df_equality(
        silver_df.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert silver_df.schema["tx_date"].dataType.simpleString() == "date"


def test_silver_rerun_changes_nothing_and_redoes_a_crashed_batch(lakehouse, landing):
    write_landing(landing, "2018-04-02.csv.gz", BAD_DAY_2)
    bronze.ingest_bronze(lakehouse, str(landing))
    silver.build_silver(lakehouse)
    before = {t: lakehouse.version(t) for t in (C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE)}
    again = silver.build_silver(lakehouse)
    assert again["files_processed"] == 0
    assert {t: lakehouse.version(t) for t in before} == before

    # Simulate a crash after silver and quarantine were written but before the checkpoint: the
    # file is processed again and the tables end as after one clean run.
    silver_rows = sorted(lakehouse.read(C.SILVER_TRANSACTIONS).collect())
    quarantine_n = lakehouse.count(C.SILVER_QUARANTINE)
    lakehouse.overwrite(
        C.SILVER_PROCESSED_FILES,
        lakehouse.read(C.SILVER_PROCESSED_FILES).where("false"),
    )
    redo = silver.build_silver(lakehouse)
    assert redo["files_processed"] == 1 and redo["rows_quarantined"] == quarantine_n
    assert sorted(lakehouse.read(C.SILVER_TRANSACTIONS).collect()) == silver_rows
    assert lakehouse.count(C.SILVER_QUARANTINE) == quarantine_n


def test_silver_does_nothing_before_any_file_landed(lakehouse):
    assert silver.build_silver(lakehouse)["files_processed"] == 0
    assert not lakehouse.exists(C.SILVER_TRANSACTIONS)
