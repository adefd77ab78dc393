"""The inference log the quality monitor watches: the champion's decisions with the labels known so far,
written idempotently, labels filled in once the label delay has passed."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from fraud_mlops.lifecycle.inference_log import (
    INFERENCE_LOG_COLUMNS,
    InferenceLogError,
    inference_rows,
    update_inference_log,
)
from fraud_mlops.platform.config import GOLD_FEATURES, INFERENCE_LOG, PREDICTIONS

MODEL = "fraud_test.fraud.fraud_detector"
DAYS = [dt.date(2018, 8, 1) + dt.timedelta(days=i) for i in range(6)]
SCORED_AT = dt.datetime(2018, 8, 7, 4, 0)
GOLD_SCHEMA = "transaction_id long, tx_datetime timestamp, tx_date date, customer_id long, tx_fraud int"
PREDICTION_SCHEMA = ("transaction_id long, tx_date date, customer_id long, score double, model_name string, "
                     "model_version string, decision int, decision_threshold double, scored_at timestamp")
LOG_SCHEMA = ", ".join(f"{name} {sql_type}" for name, sql_type in INFERENCE_LOG_COLUMNS.items())


def _tx(day_index: int, k: int) -> int:
    return 100 * day_index + k


def _gold_rows(days: range) -> list[tuple]:
    """Three transactions a day; the second of each day is a fraud."""
    return [(_tx(i, k), dt.datetime.combine(DAYS[i], dt.time(10 + k)), DAYS[i], 7 + k, int(k == 1))
            for i in days for k in range(3)]


def _prediction_rows(days: range, version: str = "1", shift: float = 0.0) -> list[tuple]:
    return [(_tx(i, k), DAYS[i], 7 + k, round(0.1 + 0.4 * k + shift, 6), MODEL, version, int(k == 1), 0.45, SCORED_AT)
            for i in days for k in range(3)]


def _expected(spark, days: range, labelled_through: dt.date, version: str = "1", shift: float = 0.0):
    rows = []
    gold = {r[0]: r for r in _gold_rows(days)}
    for tx, day, customer, score, model, v, decision, _, scored in _prediction_rows(days, version, shift):
        label = gold[tx][4] if day <= labelled_through else None
        rows.append((tx, gold[tx][1], day, customer, model, v, score, decision, label, scored))
    return spark.createDataFrame(rows, LOG_SCHEMA)


def _tables(lakehouse, spark, gold_days: range, prediction_days: range, **kwargs) -> None:
    lakehouse.overwrite(GOLD_FEATURES, spark.createDataFrame(_gold_rows(gold_days), GOLD_SCHEMA))
    lakehouse.overwrite(PREDICTIONS, spark.createDataFrame(_prediction_rows(prediction_days, **kwargs), PREDICTION_SCHEMA))


def test_rows_carry_the_label_only_once_the_delay_has_passed(spark):
    gold = spark.createDataFrame(_gold_rows(range(3)), GOLD_SCHEMA)
    predictions = spark.createDataFrame(_prediction_rows(range(3)), PREDICTION_SCHEMA)
    rows = inference_rows(predictions, gold, as_of=DAYS[2], label_delay_days=1)
    assert list(rows.columns) == list(INFERENCE_LOG_COLUMNS)
    assert_df_equality(rows, _expected(spark, range(3), labelled_through=DAYS[1]), ignore_row_order=True,
                       ignore_nullable=True)
    with pytest.raises(ValueError, match="label_delay_days must be >= 0"):
        inference_rows(predictions, gold, as_of=DAYS[2], label_delay_days=-1)


def test_the_log_is_built_once_then_labels_fill_in_and_reruns_write_nothing(spark, lakehouse):
    _tables(lakehouse, spark, range(5), range(5))
    first = update_inference_log(lakehouse, MODEL, as_of=DAYS[4], label_delay_days=2, window_start=DAYS[2])
    assert first["first_day"] is None and first["last_day"] == DAYS[4].isoformat()
    assert first["rows_in"] == first["rows_out"] == first["inserted"] == 15 and first["updated"] == 0
    assert (first["labelled"], first["unlabelled"]) == (9, 6)  # days 1-3 labelled (<= day 5 - 2), 4-5 not yet
    assert_df_equality(lakehouse.read(INFERENCE_LOG), _expected(spark, range(5), labelled_through=DAYS[2]),
                       ignore_row_order=True, ignore_nullable=True)
    assert lakehouse.table_properties(INFERENCE_LOG)["delta.enableChangeDataFeed"] == "true"

    version = lakehouse.version(INFERENCE_LOG)
    again = update_inference_log(lakehouse, MODEL, as_of=DAYS[4], label_delay_days=2, window_start=DAYS[2])
    assert again["inserted"] == again["updated"] == 0 and lakehouse.version(INFERENCE_LOG) == version

    # A day later: day 6 is scored, day 4's labels are now known; days 1-3 are not read again.
    _tables(lakehouse, spark, range(6), range(6))
    later = update_inference_log(lakehouse, MODEL, as_of=DAYS[5], label_delay_days=2, window_start=DAYS[5])
    assert later["first_day"] == DAYS[3].isoformat()  # the earliest day still without labels
    assert (later["rows_in"], later["inserted"], later["updated"]) == (9, 3, 3)
    assert_df_equality(lakehouse.read(INFERENCE_LOG), _expected(spark, range(6), labelled_through=DAYS[3]),
                       ignore_row_order=True, ignore_nullable=True)


def test_rescored_rows_are_rewritten(spark, lakehouse):
    _tables(lakehouse, spark, range(3), range(3))
    update_inference_log(lakehouse, MODEL, as_of=DAYS[2], label_delay_days=0)
    _tables(lakehouse, spark, range(3), range(3), version="2", shift=0.01)
    rescored = update_inference_log(lakehouse, MODEL, as_of=DAYS[2], label_delay_days=0, window_start=DAYS[0])
    assert (rescored["inserted"], rescored["updated"]) == (0, 9)
    assert_df_equality(lakehouse.read(INFERENCE_LOG),
                       _expected(spark, range(3), labelled_through=DAYS[2], version="2", shift=0.01),
                       ignore_row_order=True, ignore_nullable=True)


def test_a_prediction_without_gold_row_fails_before_any_write(spark, lakehouse):
    _tables(lakehouse, spark, range(2), range(3))  # day 3 scored but missing from gold
    with pytest.raises(InferenceLogError, match="3 of 9 predictions rows .* have no gold row"):
        update_inference_log(lakehouse, MODEL, as_of=DAYS[2], label_delay_days=0)
    assert not lakehouse.exists(INFERENCE_LOG)
    with pytest.raises(ValueError, match="after as_of"):
        update_inference_log(lakehouse, MODEL, as_of=DAYS[0], label_delay_days=0, window_start=DAYS[1])
