"""The Spark session: the cluster's on Databricks, a small local one elsewhere."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from fraud_mlops.platform.config import on_databricks


def get_spark(app_name: str = "fraud-mlops") -> SparkSession:
    """Return the active Spark session, or start a local one.

    On Databricks (or any process with an active session) the existing session is returned untouched
    except for the session time zone, which every task sets to UTC so that the naive local
    timestamps of the landing files are never shifted. Locally a ``local[*]`` session is started with
    few shuffle partitions, Arrow transfers and no UI; ``SPARK_MASTER`` overrides the master.
    """
    active = SparkSession.getActiveSession()
    if active is not None or on_databricks():
        spark = active or SparkSession.builder.getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        return spark
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8"))
        .config("spark.default.parallelism", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "6g"))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Dlog4j.rootLogger=ERROR")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
