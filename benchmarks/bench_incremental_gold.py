"""Benchmark: a daily ingestion run recomputes one day plus its look-back, not all history.

Lands the first N-1 daily files of a landing folder, runs bronze -> silver -> gold, then lands the
last day and runs them again (the daily increment). For reference, in the same process, it rebuilds
gold from scratch over all N days. Prints rows and seconds of each and their ratios; the increment
should read about (37 + 1) days of silver and write 1 day of gold, whatever N is.

    .venv/bin/python benchmarks/bench_incremental_gold.py [--landing data/transactions] [--days 75]

Timings on a shared 2-core machine are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from fraud_mlops.medallion import bronze, features, gold, silver
from fraud_mlops.platform import config as C
from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse
from fraud_mlops.platform.session import get_spark


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", default="data/transactions")
    parser.add_argument("--days", type=int, default=75, help="how many of the landing folder's days to use")
    args = parser.parse_args()
    files = sorted(p for p in Path(args.landing).iterdir() if ".csv" in p.name)[: args.days]
    if len(files) < 2:
        raise SystemExit("need at least two daily files")
    work = Path(tempfile.mkdtemp(prefix="bench-gold-"))
    os.environ[C.LOCAL_ROOT_ENV] = str(work / "lakehouse")
    landing = work / "landing"
    landing.mkdir()
    spark = get_spark("bench-incremental-gold")
    lakehouse = Lakehouse(spark, LakehouseConfig.from_env("bench", "fraud"))
    try:
        for f in files[:-1]:
            shutil.copy(f, landing / f.name)
        bronze.ingest_bronze(lakehouse, str(landing))
        silver.build_silver(lakehouse)
        first, first_s = _timed(lambda: gold.build_gold(lakehouse))

        shutil.copy(files[-1], landing / files[-1].name)
        bronze.ingest_bronze(lakehouse, str(landing))
        silver.build_silver(lakehouse)
        daily, daily_s = _timed(lambda: gold.build_gold(lakehouse))

        silver_df = lakehouse.read(C.SILVER_TRANSACTIONS)
        n_silver = silver_df.count()
        start = features.history_start(dt.date.fromisoformat(daily["recomputed_from"]))
        n_read = silver_df.where(F.col("tx_date") >= start).count()

        # Reference: the same gold rebuilt from scratch over all days (what a non-incremental job does).
        for table in (C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY):
            shutil.rmtree(lakehouse.ref(table).path)
        full, full_s = _timed(lambda: gold.build_gold(lakehouse))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"days: {len(files)} ({files[0].name} .. {files[-1].name}); silver rows: {n_silver:,}")
    print(f"gold, first run over {len(files) - 1} days:   {first['rows_written']:>10,} rows written in {first_s:6.1f} s")
    print(f"gold, daily increment ({daily['recomputed_from']}): {daily['rows_written']:>10,} rows written, "
          f"{n_read:,} silver rows read, in {daily_s:6.1f} s")
    print(f"gold, rebuilt from scratch over all {len(files)} days: {full['rows_written']:>10,} rows written in {full_s:6.1f} s")
    print(f"ratio increment / from scratch: rows read {n_read / n_silver:.2f}, "
          f"rows written {daily['rows_written'] / n_silver:.3f}, time {daily_s / full_s:.2f}")


if __name__ == "__main__":
    main()
