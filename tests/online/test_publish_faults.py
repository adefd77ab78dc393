"""Crash safety of the publish step: killed inside a day's transaction or between two days, then run
again, it leaves the online store exactly as an uninterrupted run does.

The publish runs in a child process that ``BUNDLEKIT_FAULT_AT`` ends with ``os._exit(137)``, as
``kill -9`` would (:func:`bundlekit.task_runtime.fault_point`): ``publish:inside_day`` after the first
day's rows are copied but before its checkpoint row and commit, ``publish:after_day`` after the first
day is committed. The server rolls back what the dead connection left open.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest
from pyspark.sql import functions as F

from bundlekit.task_runtime import FAULT_ENV, FAULT_EXIT_STATUS
from fraud_mlops.online.publish import publish_online_store
from fraud_mlops.online.store import OnlineStore, OnlineStoreLocation, connection
from fraud_mlops.platform import config as C

from ..conftest import SHIPPED_LANDING

pytestmark = pytest.mark.fault_injection

DAYS = ["2018-07-01", "2018-07-02", "2018-07-03"]
DRIVER = (
    "import sys\n"
    "from fraud_mlops.online.publish import publish_online_store\n"
    "from fraud_mlops.online.store import OnlineStoreLocation\n"
    "from fraud_mlops.platform.config import LakehouseConfig\n"
    "from fraud_mlops.platform.lakehouse import Lakehouse\n"
    "from fraud_mlops.platform.session import get_spark\n"
    "catalog, schema, store_schema = sys.argv[1:4]\n"
    "lakehouse = Lakehouse(get_spark(), LakehouseConfig.from_env(catalog, schema))\n"
    "publish_online_store(lakehouse, OnlineStoreLocation.for_target(catalog, store_schema))\n"
)


@pytest.fixture()
def silver(lakehouse, spark):
    frames = [pd.read_csv(SHIPPED_LANDING / f"{day}.csv.gz").iloc[::10] for day in DAYS]
    pdf = pd.concat(frames, ignore_index=True)
    df = (spark.createDataFrame(pdf[["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT",
                                     "TX_FRAUD"]])
          .select(F.col("TRANSACTION_ID").cast("bigint").alias("transaction_id"),
                  F.to_timestamp("TX_DATETIME").alias("tx_datetime"),
                  F.col("CUSTOMER_ID").cast("bigint").alias("customer_id"),
                  F.col("TERMINAL_ID").cast("bigint").alias("terminal_id"),
                  F.col("TX_AMOUNT").cast("double").alias("tx_amount"),
                  F.col("TX_FRAUD").cast("int").alias("tx_fraud"))
          .withColumn("tx_date", F.to_date("tx_datetime")))
    lakehouse.overwrite(C.SILVER_TRANSACTIONS, df)
    return lakehouse


def _location(url: str, lakehouse, store_schema: str) -> OnlineStoreLocation:
    location = OnlineStoreLocation(url, lakehouse.config.catalog, store_schema)
    location.ensure_database()
    with connection(location) as conn:
        OnlineStore(store_schema).drop(conn)
    return location


def _snapshot(location: OnlineStoreLocation) -> dict[str, list[tuple]]:
    with connection(location) as conn:
        s = location.schema
        return {
            "customers": conn.execute(f"SELECT customer_id, tx_seconds, transaction_id, terminal_id, tx_amount, source"
                                      f" FROM {s}.customer_transactions ORDER BY 1, 2, 3").fetchall(),
            "terminals": conn.execute(f"SELECT * FROM {s}.terminal_transactions ORDER BY 1, 2, 3").fetchall(),
            "days": conn.execute(f"SELECT tx_date, n_transactions FROM {s}.published_days ORDER BY 1").fetchall(),
        }


def _killed(lakehouse, url: str, store_schema: str, fault: str) -> None:
    env = {**os.environ, FAULT_ENV: fault, "FRAUD_MLOPS_ONLINE_STORE": url,
           "FRAUD_MLOPS_LOCAL_ROOT": str(lakehouse.config.local_root)}
    done = subprocess.run([sys.executable, "-c", DRIVER, lakehouse.config.catalog, lakehouse.config.schema,
                           store_schema], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == FAULT_EXIT_STATUS, done.stderr[-3000:]
    assert f"fault injected at {fault}" in done.stderr


@pytest.mark.parametrize(("fault", "days_left"), [("publish:inside_day", 0), ("publish:after_day", 1)])
def test_a_killed_publish_run_again_equals_an_uninterrupted_one(silver, online_store_url, fault, days_left):
    clean = _location(online_store_url, silver, "publish_clean")
    publish_online_store(silver, clean)
    expected = _snapshot(clean)
    assert [d.isoformat() for d, _ in expected["days"]] == DAYS

    crashed = _location(online_store_url, silver, "publish_crashed")
    _killed(silver, online_store_url, "publish_crashed", fault)
    left = _snapshot(crashed)
    assert len(left["days"]) == days_left  # nothing half-published: a day and its checkpoint, or neither
    assert len(left["customers"]) == sum(n for _, n in left["days"])

    again = publish_online_store(silver, crashed)
    assert again["days_published"] == DAYS[days_left:]
    assert _snapshot(crashed) == expected
    assert publish_online_store(silver, crashed)["rows"] == 0
    assert dt.date.fromisoformat(DAYS[0]) in {d for d, _ in expected["days"]}
