"""Tests of the shared feature library (``fraud_mlops.medallion.features``).

Hand-made silver frames with hand-computed expected values cover every feature, the window edges,
same-second ties, the label delay and the calendar boundaries; a small random frame is checked
against a brute-force Python transcription of the definitions, for the look-back (with the delay of
7 days and with none) and for the label delay. All frames are tiny and share the session's
SparkSession.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud_mlops.medallion import features as fx
from fraud_mlops.medallion.schema import (
    EVIDENCE_FEATURES,
    EXTRA_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_GROUPS,
    GOLD_KEY_COLUMNS,
    HANDBOOK_FEATURES,
)

DAY = 86_400
# 2018-04-01 is a Sunday; 2018-04-07 a Saturday; 2018-04-09 a Monday.
SILVER_DDL = (
    "transaction_id bigint, tx_datetime string, customer_id bigint, terminal_id bigint, "
    "tx_amount double, tx_fraud int, tx_fraud_scenario int"
)


def silver(spark, rows) -> DataFrame:
    """A silver frame from ``(id, 'YYYY-mm-dd HH:MM:SS', customer, terminal, amount, fraud)`` rows."""
    data = [(*r, 2 if r[5] == 1 else 0) for r in rows]
    df = spark.createDataFrame(data, SILVER_DDL)
    # Parse in Spark (session time zone UTC), never through the Python process's local time zone.
    return df.withColumn("tx_datetime", F.to_timestamp("tx_datetime")).withColumn(
        "tx_date", F.to_date("tx_datetime")
    )


def expected(spark, ddl: str, rows) -> DataFrame:
    return spark.createDataFrame(rows, f"transaction_id bigint, {ddl}")


def pick(df: DataFrame, *columns: str) -> DataFrame:
    return df.select("transaction_id", *columns).orderBy("transaction_id")


def assert_equal(actual: DataFrame, wanted: DataFrame) -> None:
    assert_df_equality(actual, wanted.orderBy("transaction_id"), ignore_nullable=True)


def _ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


# --------------------------------------------------------------------------------------------------
# Calendar features
# --------------------------------------------------------------------------------------------------
def test_is_weekend_and_is_night_boundaries(spark):
    rows = [
        (1, "2018-04-06 23:59:59", 1, 1, 1.0, 0),  # Friday late evening
        (2, "2018-04-07 00:00:00", 1, 1, 1.0, 0),  # Saturday midnight: weekend, night
        (3, "2018-04-08 23:59:59", 1, 1, 1.0, 0),  # Sunday last second: weekend
        (4, "2018-04-09 00:00:00", 1, 1, 1.0, 0),  # Monday midnight: not weekend, night
        (5, "2018-04-09 06:59:59", 1, 1, 1.0, 0),  # last night second
        (6, "2018-04-09 07:00:00", 1, 1, 1.0, 0),  # first day second
        (7, "2018-04-08 12:00:00", 1, 1, 1.0, 0),  # Sunday noon
    ]
    out = silver(spark, rows).transform(fx.add_time_features)
    want = expected(
        spark,
        "is_weekend int, is_night int",
        [(1, 0, 0), (2, 1, 1), (3, 1, 0), (4, 0, 1), (5, 0, 1), (6, 0, 0), (7, 1, 0)],
    )
    assert_equal(pick(out, "is_weekend", "is_night"), want)


# --------------------------------------------------------------------------------------------------
# Customer spending
# --------------------------------------------------------------------------------------------------
def test_customer_spending_windows_and_edges(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 10, 10.0, 0),
        (2, "2018-04-01 12:00:01", 1, 10, 20.0, 0),
        (3, "2018-04-02 12:00:00", 1, 10, 30.0, 0),  # exactly 1 day after tx 1: tx 1 out of 1d
        (4, "2018-04-08 12:00:01", 1, 10, 70.0, 0),  # exactly 7 days after tx 2: tx 2 out of 7d
        (5, "2018-05-01 12:00:00", 1, 10, 10.0, 0),  # exactly 30 days after tx 1: tx 1 out of 30d
        (6, "2018-05-01 12:00:00", 2, 10, 5.0, 0),  # another customer, same second
        (7, "2018-05-01 12:00:01", 1, 10, 30.0, 0),  # 30 days + 1 s after tx 1, 30 days after tx 2
    ]
    out = silver(spark, rows).transform(fx.add_customer_spending_features)
    cols = [f"customer_{k}_{w}d" for w in (1, 7, 30) for k in ("tx_count", "avg_amount")]
    assert out.columns[-6:] == cols
    want = expected(
        spark,
        ", ".join(f"{c} {'bigint' if 'count' in c else 'double'}" for c in cols),
        [
            # id, n1, avg1, n7, avg7, n30, avg30
            (1, 1, 10.0, 1, 10.0, 1, 10.0),
            (2, 2, 15.0, 2, 15.0, 2, 15.0),
            (3, 2, 25.0, 3, 20.0, 3, 20.0),
            (4, 1, 70.0, 2, 50.0, 4, 32.5),  # 7d: (04-01 12:00:01, 04-08 12:00:01] = {3, 4}
            (5, 1, 10.0, 1, 10.0, 4, 32.5),  # 30d: {2, 3, 4, 5}
            (6, 1, 5.0, 1, 5.0, 1, 5.0),
            (7, 2, 20.0, 2, 20.0, 4, 35.0),  # 30d: {3, 4, 5, 7}
        ],
    )
    assert_equal(pick(out, *cols), want)


def test_customer_windows_same_second_ties(spark):
    """Of two transactions at the same second the larger id sees the smaller one, not the reverse."""
    rows = [
        (9, "2018-04-03 10:00:00", 1, 100, 20.0, 0),
        (5, "2018-04-03 10:00:01", 1, 100, 30.0, 0),
        (3, "2018-04-03 10:00:01", 1, 200, 10.0, 0),
        (4, "2018-04-03 10:00:01", 2, 300, 99.0, 0),  # another customer at the same second
    ]
    out = (
        silver(spark, rows)
        .transform(fx.add_customer_spending_features, windows_days=(1,))
        .transform(fx.add_customer_seconds_since_prev_tx)
        .transform(fx.add_customer_recent_tx_count)
        .transform(fx.add_customer_distinct_terminals)
    )
    cols = [
        "customer_tx_count_1d",
        "customer_avg_amount_1d",
        "customer_seconds_since_prev_tx",
        "customer_tx_count_1h",
        "customer_distinct_terminals_1d",
    ]
    want = expected(
        spark,
        "customer_tx_count_1d bigint, customer_avg_amount_1d double, "
        "customer_seconds_since_prev_tx double, customer_tx_count_1h bigint, "
        "customer_distinct_terminals_1d bigint",
        [
            (3, 2, 15.0, 1.0, 2, 2),  # sees 9, not 5
            (4, 1, 99.0, None, 1, 1),
            (5, 3, 20.0, 0.0, 3, 2),  # sees 9 and 3
            (9, 1, 20.0, None, 1, 1),
        ],
    )
    assert_equal(pick(out, *cols), want)


def test_customer_tx_count_1h_edges(spark):
    rows = [
        (1, "2018-04-03 10:00:00", 1, 1, 1.0, 0),
        (2, "2018-04-03 10:00:01", 1, 1, 1.0, 0),
        (3, "2018-04-03 10:59:59", 1, 1, 1.0, 0),
        (4, "2018-04-03 11:00:00", 1, 1, 1.0, 0),  # tx 1 exactly 1 h before: excluded
        (5, "2018-04-03 11:00:01", 1, 1, 1.0, 0),  # tx 2 exactly 1 h before: excluded
    ]
    out = (
        silver(spark, rows)
        .transform(fx.add_customer_recent_tx_count)
        # The window and the column name are parameters; a 1-second window is the current second.
        .transform(fx.add_customer_recent_tx_count, window_seconds=2, output_column="n_2s")
        .transform(fx.add_customer_recent_tx_count, window_seconds=1, output_column="n_1s")
    )
    want = expected(
        spark,
        "customer_tx_count_1h bigint, n_2s bigint, n_1s bigint",
        [(1, 1, 1, 1), (2, 2, 2, 1), (3, 3, 1, 1), (4, 3, 2, 1), (5, 3, 2, 1)],
    )
    assert_equal(pick(out, "customer_tx_count_1h", "n_2s", "n_1s"), want)


def test_customer_distinct_terminals_1d_edges(spark):
    rows = [
        (1, "2018-04-03 10:00:00", 1, 11, 1.0, 0),
        (2, "2018-04-03 10:00:01", 1, 12, 1.0, 0),
        (3, "2018-04-03 12:00:00", 1, 11, 1.0, 0),  # terminal 11 again: still 2 distinct
        (4, "2018-04-04 10:00:00", 1, 13, 1.0, 0),  # tx 1 exactly 1 day before: out
        (5, "2018-04-04 10:00:01", 1, 13, 1.0, 0),  # tx 2 exactly 1 day before: out
        (6, "2018-04-04 10:00:01", 2, 11, 1.0, 0),  # another customer
    ]
    out = silver(spark, rows).transform(fx.add_customer_distinct_terminals)
    want = expected(
        spark,
        "customer_distinct_terminals_1d bigint",
        [(1, 1), (2, 2), (3, 2), (4, 3), (5, 2), (6, 1)],
    )
    assert_equal(pick(out, "customer_distinct_terminals_1d"), want)


def test_customer_seconds_since_prev_tx(spark):
    rows = [
        (1, "2018-04-03 10:00:00", 1, 1, 1.0, 0),  # first of customer 1: null
        (2, "2018-04-03 10:01:40", 1, 1, 1.0, 0),  # 100 s later
        (3, "2018-04-05 10:01:40", 1, 1, 1.0, 0),  # 2 days later
        (4, "2018-04-05 10:01:40", 2, 1, 1.0, 0),  # first of customer 2: null
        (5, "2018-05-05 10:01:40", 2, 1, 1.0, 0),  # exactly 30 days later: reported
        (6, "2018-06-04 10:01:41", 2, 1, 1.0, 0),  # 30 days + 1 s later: beyond the bound, null
        (7, "2018-06-04 10:01:41", 2, 1, 1.0, 0),  # same second, later id: 0
    ]
    out = silver(spark, rows).transform(fx.add_customer_seconds_since_prev_tx)
    want = expected(
        spark,
        "customer_seconds_since_prev_tx double",
        [(1, None), (2, 100.0), (3, 2.0 * DAY), (4, None), (5, 30.0 * DAY), (6, None), (7, 0.0)],
    )
    assert_equal(pick(out, "customer_seconds_since_prev_tx"), want)


def test_customer_amount_ratio(spark):
    rows = [
        (1, "2018-04-03 10:00:00", 1, 1, 10.0, 0),
        (2, "2018-04-03 11:00:00", 1, 1, 30.0, 0),  # mean 20 -> 1.5
        (3, "2018-04-03 10:00:00", 2, 1, 0.0, 0),  # mean 0 -> null
        (4, "2018-04-03 11:00:00", 2, 1, 0.0, 0),
        (5, "2018-05-03 12:00:00", 1, 1, 5.0, 0),  # 30d window holds tx 5 only -> 1.0
    ]
    out = (
        silver(spark, rows)
        .transform(fx.add_customer_spending_features, windows_days=(30,))
        .transform(fx.add_customer_amount_ratio)
    )
    want = expected(
        spark,
        "customer_amount_ratio_30d double",
        [(1, 1.0), (2, 1.5), (3, None), (4, None), (5, 1.0)],
    )
    assert_equal(pick(out, "customer_amount_ratio_30d"), want)


def with_ratio(spark, rows) -> DataFrame:
    """A silver frame with a given ``customer_amount_ratio_30d``, from ``(id, time, customer, ratio)``."""
    frame = silver(spark, [(i, t, c, 1, 1.0, 0) for i, t, c, _ in rows])
    ratios = spark.createDataFrame([(i, r) for i, _, _, r in rows], "transaction_id bigint, ratio double")
    return frame.join(ratios, "transaction_id").withColumnRenamed("ratio", "customer_amount_ratio_30d")


HIGH_AMOUNT_ROWS = [
    (1, "2018-04-01 12:00:00", 1, 4.0),  # high; counts itself
    (4, "2018-04-02 10:00:00", 1, 1.0),  # same second as 5: the smaller id does not see 5
    (5, "2018-04-02 10:00:00", 1, 6.0),  # high; sees 4 and 1
    (11, "2018-04-02 10:00:00", 2, 10.0),  # another customer at the same second
    (6, "2018-04-03 10:00:00", 1, 3.0),  # exactly the threshold: not high
    (7, "2018-04-04 10:00:00", 1, None),  # null ratio: not high
    (8, "2018-04-08 12:00:00", 1, 0.5),  # tx 1 exactly 7 days before: out
    (10, "2018-04-09 09:59:59", 1, None),  # tx 5 one second less than 7 days before: in
    (9, "2018-04-09 10:00:00", 1, 3.5),  # tx 5 exactly 7 days before: out; itself high
]


def test_customer_high_amount_count_7d_edges(spark):
    out = with_ratio(spark, HIGH_AMOUNT_ROWS).transform(fx.add_customer_high_amount_count)
    assert out.columns[-1] == "customer_high_amount_count_7d"
    want = expected(
        spark,
        "customer_high_amount_count_7d bigint",
        [(1, 1), (4, 1), (5, 2), (6, 2), (7, 2), (8, 1), (9, 1), (10, 1), (11, 1)],
    )
    assert_equal(pick(out, "customer_high_amount_count_7d"), want)


def test_customer_high_amount_count_parameters(spark):
    # A 1-day window and a threshold of 2.0: the ratio 3.0 of tx 6 is now high.
    out = with_ratio(spark, HIGH_AMOUNT_ROWS).transform(
        fx.add_customer_high_amount_count, window_days=1, ratio_threshold=2.0
    )
    want = expected(
        spark,
        "customer_high_amount_count_1d bigint",
        # tx 6: tx 5 exactly 1 day before is out; tx 7, 8, 10: no high amount in the last day (0).
        [(1, 1), (4, 1), (5, 2), (6, 1), (7, 0), (8, 0), (9, 1), (10, 0), (11, 1)],
    )
    assert_equal(pick(out, "customer_high_amount_count_1d"), want)
    # The ratio window names the column that is read.
    with pytest.raises(ValueError, match="customer_amount_ratio_7d"):
        with_ratio(spark, HIGH_AMOUNT_ROWS).transform(fx.add_customer_high_amount_count, ratio_window_days=7)


def test_customer_high_amount_count_from_the_amount_ratio(spark):
    """Through the library's own ratio: each counted transaction's ratio reads its own 30 days."""
    rows = [
        (1, "2018-04-01 12:00:00", 1, 1, 10.0, 0),  # ratio 1.0
        (2, "2018-04-02 12:00:00", 1, 1, 10.0, 0),  # ratio 1.0
        (3, "2018-04-03 12:00:00", 1, 1, 100.0, 0),  # mean 40 -> 2.5: not high
        (4, "2018-04-04 12:00:00", 1, 1, 2.0, 0),  # mean 30.5 -> small
        (5, "2018-04-05 12:00:00", 1, 1, 200.0, 0),  # mean 64.4 -> 3.105...: high
        (6, "2018-04-05 12:00:01", 1, 1, 1.0, 0),  # sees tx 5
        (7, "2018-04-12 12:00:00", 1, 1, 1.0, 0),  # tx 5 exactly 7 days before: out
    ]
    out = (
        silver(spark, rows)
        .transform(fx.add_customer_spending_features, windows_days=(30,))
        .transform(fx.add_customer_amount_ratio)
        .transform(fx.add_customer_high_amount_count)
    )
    want = expected(
        spark,
        "customer_high_amount_count_7d bigint",
        [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1), (7, 0)],
    )
    assert_equal(pick(out, "customer_high_amount_count_7d"), want)


# --------------------------------------------------------------------------------------------------
# Terminal risk and the label delay
# --------------------------------------------------------------------------------------------------
def test_terminal_risk_label_delay_boundaries(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 100, 1.0, 1),  # fraud
        (2, "2018-04-01 12:00:01", 2, 100, 1.0, 0),  # genuine, one second later
        (3, "2018-04-05 12:00:00", 3, 100, 1.0, 1),  # fraud, always younger than the delay below
        (4, "2018-04-08 12:00:00", 4, 100, 1.0, 0),  # tx 1 exactly 7 days before: in; tx 2 not
        (5, "2018-04-09 12:00:01", 5, 100, 1.0, 0),  # 1d window (04-01 12:00:01, 04-02 12:00:01]
        (6, "2018-04-08 12:00:00", 6, 200, 1.0, 0),  # another terminal: no history
    ]
    out = silver(spark, rows).transform(fx.add_terminal_risk_features)
    cols = [f"terminal_{k}_{w}d" for w in (1, 7, 30) for k in ("tx_count", "risk")]
    assert out.columns[-6:] == cols
    want = expected(
        spark,
        ", ".join(f"{c} {'bigint' if 'count' in c else 'double'}" for c in cols),
        [
            # id, n1, risk1, n7, risk7, n30, risk30
            (1, 0, 0.0, 0, 0.0, 0, 0.0),  # nothing 7 days earlier: counts 0, risk 0.0
            (2, 0, 0.0, 0, 0.0, 0, 0.0),
            (3, 0, 0.0, 0, 0.0, 0, 0.0),
            (4, 1, 1.0, 1, 1.0, 1, 1.0),  # only tx 1; tx 2 (t - 7d + 1 s) and tx 3 are too young
            (5, 0, 0.0, 2, 0.5, 2, 0.5),  # 1d: tx 2 exactly at t - 8d is out; 7d/30d: tx 1, 2
            (6, 0, 0.0, 0, 0.0, 0, 0.0),
        ],
    )
    assert_equal(pick(out, *cols), want)


def test_terminal_risk_parameters(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 100, 1.0, 1),
        (2, "2018-04-03 12:00:00", 2, 100, 1.0, 0),
        (3, "2018-04-04 12:00:00", 3, 100, 1.0, 0),
    ]
    out = silver(spark, rows).transform(fx.add_terminal_risk_features, windows_days=(2,), label_delay_days=1)
    # tx 3: (t - 3d, t - 1d] = (04-01 12:00, 04-03 12:00] holds tx 2 only (tx 1 exactly at t - 3d).
    want = expected(
        spark,
        "terminal_tx_count_2d bigint, terminal_risk_2d double",
        [(1, 0, 0.0), (2, 1, 1.0), (3, 1, 0.0)],
    )
    assert_equal(pick(out, "terminal_tx_count_2d", "terminal_risk_2d"), want)


def test_terminal_days_since_first_fraud_30d_boundaries(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 100, 1.0, 1),  # fraud
        (2, "2018-04-02 12:00:00", 2, 100, 1.0, 1),  # a later fraud
        (3, "2018-04-08 11:59:59", 3, 100, 1.0, 0),  # tx 1 one second less than 7 days before: too young
        (4, "2018-04-08 12:00:00", 4, 100, 1.0, 1),  # tx 1 exactly 7 days before: in; own label unused
        (5, "2018-04-09 12:00:00", 5, 100, 1.0, 0),  # tx 1 and 2 in the frame: the earliest, tx 1
        (6, "2018-05-08 11:59:59", 6, 100, 1.0, 0),  # tx 1 one second less than 37 days before: in
        (7, "2018-05-08 12:00:00", 7, 100, 1.0, 0),  # tx 1 exactly 37 days before: out; tx 2 in
        (8, "2018-04-10 12:00:00", 8, 200, 1.0, 1),  # a fraud with no earlier fraud: null
        (9, "2018-04-01 12:00:00", 9, 300, 1.0, 0),
        (10, "2018-04-10 12:00:00", 10, 300, 1.0, 0),  # only a genuine transaction in the frame: null
    ]
    out = silver(spark, rows).transform(fx.add_terminal_fraud_age)
    assert out.columns[-1] == "terminal_days_since_first_fraud_30d"
    want = expected(
        spark,
        "terminal_days_since_first_fraud_30d double",
        [
            (1, None),
            (2, None),
            (3, None),
            (4, 7.0),
            (5, 8.0),
            (6, (37 * DAY - 1) / DAY),
            (7, 36.0),
            (8, None),
            (9, None),
            (10, None),
        ],
    )
    assert_equal(pick(out, "terminal_days_since_first_fraud_30d"), want)


def test_terminal_fraud_age_parameters(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 100, 1.0, 1),
        (2, "2018-04-03 12:00:00", 2, 100, 1.0, 1),
        (3, "2018-04-04 12:00:00", 3, 100, 1.0, 0),
        (4, "2018-04-04 18:00:00", 4, 200, 1.0, 1),  # with no delay its own label is read: age 0.0
    ]
    src = silver(spark, rows)
    # tx 3: (t - 3d, t - 1d] = (04-01 12:00, 04-03 12:00] holds tx 2 only (tx 1 exactly at t - 3d).
    out = src.transform(fx.add_terminal_fraud_age, window_days=2, label_delay_days=1)
    want = expected(
        spark, "terminal_days_since_first_fraud_2d double", [(1, None), (2, 2.0), (3, 1.0), (4, None)]
    )
    assert_equal(pick(out, "terminal_days_since_first_fraud_2d"), want)
    no_delay = src.transform(fx.add_terminal_fraud_age, label_delay_days=0)
    want = expected(
        spark, "terminal_days_since_first_fraud_30d double", [(1, 0.0), (2, 2.0), (3, 3.0), (4, 0.0)]
    )
    assert_equal(pick(no_delay, "terminal_days_since_first_fraud_30d"), want)


# --------------------------------------------------------------------------------------------------
# build_features, errors, look-back
# --------------------------------------------------------------------------------------------------
def test_feature_columns_and_groups():
    assert len(FEATURE_COLUMNS) == 21
    assert (
        FEATURE_COLUMNS[-2:]
        == EVIDENCE_FEATURES
        == (
            "terminal_days_since_first_fraud_30d",
            "customer_high_amount_count_7d",
        )
    )
    assert list(FEATURE_GROUPS) == [
        "handbook",
        "customer_behaviour",
        "terminal_fraud_age",
        "customer_high_amount",
    ]
    assert FEATURE_GROUPS["handbook"] == ("tx_amount",) + HANDBOOK_FEATURES
    assert FEATURE_GROUPS["customer_behaviour"] == EXTRA_FEATURES
    assert tuple(c for group in FEATURE_GROUPS.values() for c in group) == FEATURE_COLUMNS


GOLD_TYPES = {
    "transaction_id": "bigint",
    "tx_datetime": "timestamp",
    "tx_date": "date",
    "customer_id": "bigint",
    "terminal_id": "bigint",
    "tx_amount": "double",
    "tx_fraud": "int",
    "is_weekend": "int",
    "is_night": "int",
    "customer_seconds_since_prev_tx": "double",
    "customer_amount_ratio_30d": "double",
}


def test_build_features_columns_types_and_rows(spark):
    rows = [
        (1, "2018-04-01 12:00:00", 1, 100, 10.0, 1),
        (2, "2018-04-08 12:00:00", 1, 100, 30.0, 0),
        (3, "2018-04-08 12:00:00", 2, 101, 5.0, 0),
    ]
    src = silver(spark, rows).withColumn("_source_file", F.lit("x.csv"))
    out = fx.build_features(src)
    wanted_columns = list(GOLD_KEY_COLUMNS) + [c for c in FEATURE_COLUMNS if c not in GOLD_KEY_COLUMNS]
    assert out.columns == wanted_columns == list(fx.GOLD_COLUMNS)
    assert "tx_fraud_scenario" not in out.columns and "_source_file" not in out.columns
    for name, dtype in out.dtypes:
        want = GOLD_TYPES.get(name, "bigint" if "count" in name or "distinct" in name else "double")
        assert dtype == want, (name, dtype)
    got = {r.transaction_id: r for r in out.collect()}
    assert sorted(got) == [1, 2, 3]
    r = got[2]
    assert (r.is_weekend, r.is_night) == (1, 0)  # 2018-04-08 is a Sunday
    assert (r.customer_tx_count_30d, r.customer_avg_amount_30d, r.customer_amount_ratio_30d) == (2, 20.0, 1.5)
    assert (r.customer_tx_count_1d, r.customer_tx_count_7d) == (1, 1)  # tx 1 exactly 7 days before
    assert (r.terminal_tx_count_1d, r.terminal_risk_1d) == (1, 1.0)
    assert r.customer_seconds_since_prev_tx == 7.0 * DAY
    assert (r.customer_tx_count_1h, r.customer_distinct_terminals_1d) == (1, 1)
    assert (r.terminal_days_since_first_fraud_30d, r.customer_high_amount_count_7d) == (7.0, 0)
    assert got[1].terminal_days_since_first_fraud_30d is None
    # A different delay moves the terminal windows.
    r3 = fx.build_features(src, label_delay_days=6).where("transaction_id = 2").first()
    assert (r3.terminal_tx_count_1d, r3.terminal_risk_1d) == (0, 0.0)
    assert r3.terminal_days_since_first_fraud_30d == 7.0  # tx 1 is still in (t - 36d, t - 6d]


@pytest.mark.parametrize(
    ("func", "missing"),
    [
        (fx.build_features, ["tx_date", "tx_fraud"]),
        (fx.add_time_features, ["tx_datetime"]),
        (fx.add_customer_spending_features, ["tx_amount"]),
        (fx.add_terminal_risk_features, ["tx_fraud"]),
        (fx.add_customer_seconds_since_prev_tx, ["customer_id"]),
        (fx.add_customer_amount_ratio, ["customer_avg_amount_30d"]),
        (fx.add_customer_recent_tx_count, ["transaction_id"]),
        (fx.add_customer_distinct_terminals, ["terminal_id"]),
        (fx.add_terminal_fraud_age, ["tx_fraud"]),
        (fx.add_customer_high_amount_count, ["customer_amount_ratio_30d"]),
    ],
)
def test_missing_columns_raise_value_error_naming_them(spark, func, missing):
    df = silver(spark, [(1, "2018-04-01 12:00:00", 1, 1, 1.0, 0)]).drop(*missing)
    with pytest.raises(ValueError) as err:
        func(df)
    for name in missing:
        assert repr(name) in str(err.value)


def test_invalid_parameters_raise_value_error(spark):
    df = silver(spark, [(1, "2018-04-01 12:00:00", 1, 1, 1.0, 0)])
    with pytest.raises(ValueError):
        fx.build_features(df, label_delay_days=-1)
    with pytest.raises(ValueError):
        fx.add_customer_spending_features(df, windows_days=(0,))
    with pytest.raises(ValueError):
        fx.add_terminal_risk_features(df, windows_days=())
    with pytest.raises(ValueError):
        fx.add_customer_recent_tx_count(df, window_seconds=0)
    with pytest.raises(ValueError):
        fx.lookback_days(-1)
    with pytest.raises(ValueError):
        fx.add_terminal_fraud_age(df, window_days=0)
    with pytest.raises(ValueError):
        fx.add_terminal_fraud_age(df, label_delay_days=-1)
    ratio = df.withColumn("customer_amount_ratio_30d", F.lit(1.0))
    with pytest.raises(ValueError):
        fx.add_customer_high_amount_count(ratio, window_days=0)
    for bad in ("3", float("nan"), float("inf"), True, None):
        with pytest.raises(ValueError):
            fx.add_customer_high_amount_count(ratio, ratio_threshold=bad)


def test_lookback_days():
    # max(D + 30, 7 + 30): the terminal windows, or the high-amount count over the 30-day ratios.
    assert fx.lookback_days() == 37
    assert fx.lookback_days(label_delay_days=0) == 37
    assert fx.lookback_days(label_delay_days=3) == 37
    assert fx.lookback_days(label_delay_days=10) == 40
    assert fx.history_start(dt.date(2018, 6, 1)) == dt.date(2018, 4, 25)
    assert fx.history_start(dt.date(2018, 6, 1), label_delay_days=0) == dt.date(2018, 4, 25)


def test_no_delay_still_needs_37_days_for_the_high_amount_count(spark):
    """With D = 0 the terminal windows need 30 days, the high-amount count 7 + 30 = 37."""
    start = dt.date(2018, 5, 10)
    rows = [
        (1, "2018-04-03 12:00:00", 1, 1, 1.0, 0),  # day start - 37
        (2, "2018-04-04 12:00:00", 1, 1, 1.0, 0),
        (3, "2018-04-05 12:00:00", 1, 1, 1.0, 0),
        # Mean of tx 1, 2, 3, 4 = 10.75: ratio 3.72, high. Without tx 1: mean 14, ratio 2.86.
        (4, "2018-05-03 11:00:00", 1, 1, 40.0, 0),
        (5, "2018-05-10 10:00:00", 1, 1, 1.0, 0),  # on day start: reads tx 4 (23 h within 7 days)
    ]

    # Each history in one Spark job, shifted apart (ids, customers, terminals + k * SHIFT).
    firsts = {
        "full": dt.date(2018, 1, 1),
        "lookback": fx.history_start(start, label_delay_days=0),
        "one_day_less": start - dt.timedelta(days=36),
        "terminal_reach": start - dt.timedelta(days=30),  # D + 30 with D = 0
    }
    combined = [
        (r[0] + k * SHIFT, r[1], r[2] + k * SHIFT, r[3] + k * SHIFT, *r[4:])
        for k, first_day in enumerate(firsts.values())
        for r in rows
        if _day(r) >= first_day
    ]
    gold = fx.build_features(silver(spark, combined), label_delay_days=0).where(F.col("tx_date") == start)
    shifted = ("transaction_id", "customer_id", "terminal_id")
    got = {
        name: {c: v for c, v in row.asDict().items() if c not in shifted}
        for name, row in zip(firsts, gold.orderBy("transaction_id").collect(), strict=True)
    }
    assert got["full"]["customer_high_amount_count_7d"] == 1
    assert got["lookback"] == got["full"]
    # One day less, or only the 30 days of the terminal windows: tx 4 is no longer high.
    for name in ("one_day_less", "terminal_reach"):
        assert got[name] == {**got["full"], "customer_high_amount_count_7d": 0}, name


def random_silver_rows(seed: int = 7, days: int = 75):
    """A small random silver frame with many ties and exact window-edge offsets.

    Every customer transacts at least every 5 days, so ``customer_seconds_since_prev_tx`` never looks
    back further than the look-back.
    """
    rnd = random.Random(seed)
    t0 = _ts("2018-04-01 00:00:00")
    times: list[tuple[int, int]] = []  # (seconds, customer)
    for customer in range(1, 6):
        for day in range(0, days, 5):
            times.append((t0 + day * DAY + rnd.randrange(DAY), customer))
    for _ in range(220):
        times.append((t0 + rnd.randrange(days * DAY), rnd.randrange(1, 6)))
    for t, c in list(rnd.sample(times, 60)):
        offset = rnd.choice([0, 0, 1, 3599, 3600, DAY, DAY + 1, 7 * DAY, 7 * DAY + 1, 8 * DAY, 30 * DAY])
        times.append((t + offset, c))
    times = [(t, c) for t, c in times if t < t0 + days * DAY]
    ids = rnd.sample(range(1, 10 * len(times)), len(times))  # ids unrelated to time order
    rows = []
    for tx_id, (t, c) in zip(ids, times, strict=True):
        stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        terminal = rnd.randrange(1, 5)
        quarters = rnd.randrange(1, 400)
        # Exact in binary. Some amounts are 16 or 4 times larger (without another random draw), so that
        # amount ratios above 3.0 are common and, with this seed, some of them cross 3.0 when the history
        # is cut 30 days before LOOKBACK_START (see test_lookback_with_no_delay_covers_the_high_amount_count).
        amount = quarters / 4 * (16 if quarters % 13 == 0 else 4 if quarters % 7 == 0 else 1)
        rows.append((tx_id, stamp, c, terminal, amount, int(rnd.random() < 0.3)))
    return rows


def reference_features(rows, label_delay_days: int = 7) -> dict[int, dict[str, object]]:
    """Brute-force transcription of the definitions in the feature library's docstrings."""
    tx = [(r[0], _ts(r[1]), r[2], r[3], r[4], r[5]) for r in rows]  # id, t, customer, terminal, amount, fraud
    out = {}
    delay = label_delay_days * DAY

    def at_or_before(i, t, c):
        return [x for x in tx if x[2] == c and (x[1], x[0]) <= (t, i)]

    ratios = {}
    for i, t, c, _, amount, _ in tx:
        win = [x for x in at_or_before(i, t, c) if x[1] > t - 30 * DAY]
        mean = sum(x[4] for x in win) / len(win)
        ratios[i] = amount / mean if mean != 0 else None
    for i, t, c, term, amount, _ in tx:
        mine = [x for x in tx if x[2] == c and (x[1], x[0]) <= (t, i)]
        f: dict[str, object] = {}
        for w in (1, 7, 30):
            win = [x for x in mine if x[1] > t - w * DAY]
            f[f"customer_tx_count_{w}d"] = len(win)
            f[f"customer_avg_amount_{w}d"] = sum(x[4] for x in win) / len(win)
            term_win = [x for x in tx if x[3] == term and t - delay - w * DAY < x[1] <= t - delay]
            f[f"terminal_tx_count_{w}d"] = len(term_win)
            f[f"terminal_risk_{w}d"] = sum(x[5] for x in term_win) / len(term_win) if term_win else 0.0
        earlier = [x for x in mine if (x[1], x[0]) < (t, i)]
        f["customer_seconds_since_prev_tx"] = float(t - max(x[1] for x in earlier)) if earlier else None
        mean = f["customer_avg_amount_30d"]
        f["customer_amount_ratio_30d"] = amount / mean if mean != 0 else None
        f["customer_tx_count_1h"] = len([x for x in mine if x[1] > t - 3600])
        f["customer_distinct_terminals_1d"] = len({x[3] for x in mine if x[1] > t - DAY})
        frauds = [x[1] for x in tx if x[3] == term and x[5] == 1 and t - delay - 30 * DAY < x[1] <= t - delay]
        f["terminal_days_since_first_fraud_30d"] = (t - min(frauds)) / DAY if frauds else None
        high = [x for x in mine if x[1] > t - 7 * DAY and ratios[x[0]] is not None and ratios[x[0]] > 3.0]
        f["customer_high_amount_count_7d"] = len(high)
        stamp = dt.datetime.fromtimestamp(t, dt.UTC)
        f["is_weekend"] = int(stamp.weekday() >= 5)
        f["is_night"] = int(stamp.hour <= 6)
        out[i] = f
    return out


SHIFT = 1_000_000  # moves a variant's ids, customers and terminals apart from the others'


def _day(row) -> dt.date:
    return dt.date.fromisoformat(row[1][:10])


@pytest.fixture(scope="module")
def random_rows():
    return random_silver_rows()


LOOKBACK_START, LOOKBACK_END = dt.date(2018, 5, 10), dt.date(2018, 5, 20)
FLIP_AFTER = "2018-05-01 00:00:00"


@pytest.fixture(scope="module")
def random_features(spark, random_rows):
    """``build_features`` of the random frame and of variants of it, computed in one Spark job.

    The variants are shifted apart (ids, customers and terminals + k * SHIFT) so that they never
    share a window; ``variant(name)`` returns one of them, shifted back, as a DataFrame. Those named
    ``*_d0`` are built with no label delay (``label_delay_days=0``), the others with the default 7.
    """

    def since(label_delay_days: int, extra_days: int = 0) -> list:
        """The rows of [history_start(LOOKBACK_START) + extra_days, LOOKBACK_END]."""
        begin = fx.history_start(LOOKBACK_START, label_delay_days) + dt.timedelta(days=extra_days)
        return [r for r in random_rows if begin <= _day(r) <= LOOKBACK_END]

    variants = {
        "full": random_rows,
        # The look-back: only [start - lookback_days, end]; and one day less.
        "restricted": since(7),
        "shorter": since(7, extra_days=1),
        # Labels of every transaction after FLIP_AFTER flipped.
        "flipped": [r[:5] + ((1 - r[5]) if r[1] > FLIP_AFTER else r[5],) for r in random_rows],
        # With no delay: the full history, the look-back, and the 30 days of the terminal windows only.
        "full_d0": random_rows,
        "restricted_d0": since(0),
        "terminal_reach_d0": since(0, extra_days=fx.lookback_days(0) - 30),
    }
    names = list(variants)

    def shifted(names_: list[str]) -> list:
        return [
            (r[0] + k * SHIFT, r[1], r[2] + k * SHIFT, r[3] + k * SHIFT, *r[4:])
            for k, name in enumerate(names)
            if name in names_
            for r in variants[name]
        ]

    no_delay = [n for n in names if n.endswith("_d0")]
    with_delay = [n for n in names if n not in no_delay]
    features = (
        fx.build_features(silver(spark, shifted(with_delay)))
        .unionByName(fx.build_features(silver(spark, shifted(no_delay)), label_delay_days=0))
        .cache()
    )
    features.count()

    def variant(name: str) -> DataFrame:
        k = names.index(name)
        shift = F.lit(k * SHIFT).cast("long")
        return (
            features.where(F.col("transaction_id").between(k * SHIFT, (k + 1) * SHIFT - 1))
            .withColumns({c: F.col(c) - shift for c in ("transaction_id", "customer_id", "terminal_id")})
            .orderBy("transaction_id")
        )

    yield variant
    features.unpersist()


FEATURES_ONLY = [c for c in FEATURE_COLUMNS if c != "tx_amount"]


@pytest.mark.parametrize(("name", "label_delay_days"), [("full", 7), ("full_d0", 0)])
def test_build_features_matches_reference(spark, random_rows, random_features, name, label_delay_days):
    ref = reference_features(random_rows, label_delay_days=label_delay_days)
    out = random_features(name).select("transaction_id", *FEATURES_ONLY)
    want = spark.createDataFrame([(i, *(ref[i][c] for c in FEATURES_ONLY)) for i in sorted(ref)], out.schema)
    assert_approx_df_equality(out, want, precision=1e-9, ignore_nullable=True)
    # The random frame exercises the new features, not only their null or zero values.
    assert any(f["customer_high_amount_count_7d"] > 0 for f in ref.values())
    assert any(f["terminal_days_since_first_fraud_30d"] is not None for f in ref.values())


def _days(random_features, name: str) -> DataFrame:
    return random_features(name).where(F.col("tx_date").between(LOOKBACK_START, LOOKBACK_END))


def test_lookback_gives_the_same_features_as_the_full_history(random_features):
    assert fx.history_start(LOOKBACK_START) == LOOKBACK_START - dt.timedelta(days=37)
    full = _days(random_features, "full").cache()
    assert full.count() > 20
    # Every feature is compared, the new ones included; they are not trivial on these days.
    assert set(FEATURE_COLUMNS) <= set(full.columns)
    assert full.where("customer_high_amount_count_7d > 0").count() > 0
    assert full.where("terminal_days_since_first_fraud_30d IS NOT NULL").count() > 0
    assert_df_equality(_days(random_features, "restricted"), full, ignore_nullable=True)
    # One day less of history is not enough: some window is then incomplete.
    assert _days(random_features, "shorter").exceptAll(full).count() > 0
    full.unpersist()


def test_lookback_with_no_delay_covers_the_high_amount_count(random_features):
    assert fx.history_start(LOOKBACK_START, label_delay_days=0) == LOOKBACK_START - dt.timedelta(days=37)
    full = _days(random_features, "full_d0").cache()
    assert_df_equality(_days(random_features, "restricted_d0"), full, ignore_nullable=True)
    # The 30 days that the terminal windows need with D = 0 are not enough for the high-amount count
    # (7 days of transactions, each with a 30-day ratio); they are for the other features.
    short = _days(random_features, "terminal_reach_d0")
    assert short.exceptAll(full).count() > 0
    others = [c for c in full.columns if c != "customer_high_amount_count_7d"]
    assert_df_equality(short.select(others), full.select(others), ignore_nullable=True)
    full.unpersist()


def test_terminal_features_never_read_labels_younger_than_the_delay(random_features):
    terminal_cols = [c for c in FEATURE_COLUMNS if c.startswith("terminal_")]

    def terminal(name: str, condition) -> DataFrame:
        return random_features(name).where(condition).select("transaction_id", *terminal_cols)

    # A transaction at t <= FLIP_AFTER + 7 days reads labels at or before t - 7 days only.
    horizon = F.col("tx_datetime") <= F.to_timestamp(F.lit("2018-05-08 00:00:00"))
    assert_df_equality(terminal("flipped", horizon), terminal("full", horizon), ignore_nullable=True)
    # ...while the flipped labels do change the features of later transactions.
    late = F.col("tx_datetime") > F.to_timestamp(F.lit("2018-05-09 00:00:00"))
    assert terminal("flipped", late).exceptAll(terminal("full", late)).count() > 0
