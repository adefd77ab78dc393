"""The single-customer engine (real-time scoring) against the Spark engine (training, batch scoring).

Both evaluate ``FEATURE_DEFINITIONS``. Random silver frames made to hit the hard cases (many
transactions at the same second, transactions exactly one window length apart, null amounts,
frauds at the edges of the delayed terminal windows, gaps of exactly 30 days) go through
``build_features`` once; every row's features are then recomputed by ``online_features`` from the
customer's and terminal's transactions alone and must match: integers exactly, doubles to 1e-9
relative, nulls as nulls.
"""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from pyspark.sql import functions as F

from fraud_mlops.medallion import feature_definitions as fd
from fraud_mlops.medallion.features import build_features
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.online.features import (
    CustomerTransaction,
    TerminalTransaction,
    epoch_seconds,
    online_features,
)

DAY = 86_400
START = dt.datetime(2018, 4, 1)


def _random_silver(seed: int, n_customers: int = 25, n_terminals: int = 6) -> list[tuple]:
    """Rows ``(transaction_id, tx_datetime, customer_id, terminal_id, tx_amount, tx_fraud)``."""
    rng = random.Random(seed)
    rows: list[tuple] = []
    next_id = rng.randint(1, 50)
    for customer in range(n_customers):
        t = rng.randint(0, 5 * DAY)
        for _ in range(rng.randint(1, 40)):
            step = rng.choice([0, 0, 1, 59, 3_599, 3_600, 3_601, DAY - 1, DAY, DAY + 1, 7 * DAY, 30 * DAY,
                               30 * DAY + 1, rng.randint(0, 3 * DAY)])
            t += step
            amount = rng.choice([None, 0.0, round(rng.uniform(1, 120), 2), round(rng.uniform(300, 900), 2)])
            # ids not in time order, so same-second ties are broken by id, not by arrival
            next_id += rng.randint(1, 3)
            tx_id = next_id if rng.random() < 0.7 else next_id + 10_000
            rows.append((tx_id, START + dt.timedelta(seconds=t), customer, rng.randrange(n_terminals), amount,
                         int(rng.random() < 0.3)))
    # terminal rows exactly at the delayed window edges of other rows
    for tx_id, when, _, terminal, _, _ in rng.sample(rows, k=min(15, len(rows))):
        for offset in (7 * DAY, 8 * DAY, 14 * DAY, 37 * DAY):
            next_id += 1
            rows.append((next_id + 100_000, when - dt.timedelta(seconds=offset), 10_000 + tx_id % 7, terminal,
                         12.5, int(rng.random() < 0.5)))
    return rows


def _spark_features(spark, rows, delay):
    df = spark.createDataFrame(
        rows, "transaction_id bigint, tx_datetime timestamp, customer_id bigint, terminal_id bigint, "
              "tx_amount double, tx_fraud int"
    ).withColumn("tx_date", F.to_date("tx_datetime"))
    return {r["transaction_id"]: r.asDict() for r in build_features(df, label_delay_days=delay).collect()}


def _online(rows, delay):
    by_customer: dict[int, list[CustomerTransaction]] = {}
    by_terminal: dict[int, list[TerminalTransaction]] = {}
    for tx_id, when, customer, terminal, amount, fraud in rows:
        s = epoch_seconds(when)
        by_customer.setdefault(customer, []).append(CustomerTransaction(s, tx_id, terminal, amount))
        by_terminal.setdefault(terminal, []).append(TerminalTransaction(s, fraud))
    out = {}
    for tx_id, when, customer, terminal, amount, _ in rows:
        current = CustomerTransaction(epoch_seconds(when), tx_id, terminal, amount)
        out[tx_id] = online_features(current, by_customer[customer], by_terminal[terminal], label_delay_days=delay)
    return out


def _assert_same(spark_row: dict, online_row: dict, tx_id: int) -> None:
    for column in FEATURE_COLUMNS:
        want, got = spark_row[column], online_row[column]
        if want is None or got is None:
            assert want is None and got is None, f"transaction {tx_id}, {column}: Spark {want!r}, online {got!r}"
        elif isinstance(want, int) and not isinstance(want, bool):
            assert got == want and isinstance(got, int), f"transaction {tx_id}, {column}: Spark {want}, online {got!r}"
        else:
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (
                f"transaction {tx_id}, {column}: Spark {want!r}, online {got!r}")


@pytest.mark.parametrize(("seed", "delay"), [(1, 7), (2, 7), (3, 0)])
def test_single_customer_engine_equals_spark_engine(spark, seed, delay):
    rows = _random_silver(seed)
    assert len({r[0] for r in rows}) == len(rows)
    spark_rows = _spark_features(spark, rows, delay)
    online_rows = _online(rows, delay)
    assert set(spark_rows) == set(online_rows)
    for tx_id, spark_row in spark_rows.items():
        _assert_same(spark_row, online_rows[tx_id], tx_id)
    # the frames do hit the hard cases
    ties = len(rows) - len({(r[1], r[2]) for r in rows})
    assert ties >= 10, "the random frame should hold same-second transactions of a customer"
    assert any(r["customer_high_amount_count_7d"] for r in spark_rows.values())
    assert any(r["terminal_days_since_first_fraud_30d"] is not None for r in spark_rows.values())
    assert any(r["customer_seconds_since_prev_tx"] is None for r in spark_rows.values())


def test_a_wrong_engine_is_caught(spark):
    """The comparison can fail: a 1-day window read as 86 401 seconds differs on the random frame."""
    rows = _random_silver(1)
    spark_rows = _spark_features(spark, rows, 7)
    shifted = tuple(
        fd.CustomerRecentCount(window_seconds=DAY + 1, output_column="customer_tx_count_1d")
        if isinstance(d, fd.CustomerRecentCount) else d
        for d in fd.FEATURE_DEFINITIONS
    )
    # the 1-day count recomputed with a window one second too long
    by_customer: dict[int, list[CustomerTransaction]] = {}
    for tx_id, when, customer, terminal, amount, _ in rows:
        by_customer.setdefault(customer, []).append(CustomerTransaction(epoch_seconds(when), tx_id, terminal, amount))
    differ = 0
    for tx_id, when, customer, terminal, amount, _ in rows:
        current = CustomerTransaction(epoch_seconds(when), tx_id, terminal, amount)
        got = online_features(current, by_customer[customer], [], definitions=shifted)
        differ += got["customer_tx_count_1d"] != spark_rows[tx_id]["customer_tx_count_1d"]
    assert differ > 0


def test_history_after_the_transaction_and_the_transaction_itself_are_ignored():
    t = epoch_seconds(dt.datetime(2018, 4, 10, 12, 0, 0))
    current = CustomerTransaction(t, 5, 1, 10.0)
    history = [CustomerTransaction(t - 10, 1, 1, 30.0), CustomerTransaction(t, 4, 2, 20.0),
               current, CustomerTransaction(t, 6, 3, 99.0), CustomerTransaction(t + 5, 7, 1, 99.0)]
    got = online_features(current, history, [])
    assert got["customer_tx_count_1d"] == 3
    assert got["customer_avg_amount_1d"] == pytest.approx(20.0)
    assert got["customer_distinct_terminals_1d"] == 2
    assert got["customer_seconds_since_prev_tx"] == 0.0
    assert got["terminal_tx_count_30d"] == 0 and got["terminal_risk_30d"] == 0.0


def test_every_definition_needs_an_engine():
    class Unknown:
        columns = ("x",)

    current = CustomerTransaction(0, 1, 1, 1.0)
    with pytest.raises(TypeError, match="no implementation"):
        online_features(current, [], [], definitions=(Unknown(),))
    with pytest.raises(ValueError, match="label_delay_days"):
        online_features(current, [], [], label_delay_days=-1)
    with pytest.raises(ValueError, match="naive"):
        epoch_seconds(dt.datetime(2018, 4, 1, tzinfo=dt.UTC))


def test_definitions_produce_exactly_the_feature_columns_and_the_lookback():
    from fraud_mlops.medallion.features import lookback_days

    assert ("tx_amount",) + tuple(sorted(fd.defined_columns())) == ("tx_amount",) + tuple(
        sorted(c for c in FEATURE_COLUMNS if c != "tx_amount"))
    assert fd.customer_reach_seconds() == 37 * DAY
    assert lookback_days(7) == 37 and lookback_days(0) == 37
