"""Monitoring: PSI on hand-computed cases, drift and quality metrics, alert flags, idempotent writes."""

from __future__ import annotations

import datetime as dt
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.lifecycle.monitoring import (
    SCORE_FEATURE,
    MonitoringAlert,
    MonitoringError,
    MonitoringThresholds,
    evaluate_thresholds,
    population_stability_index,
    run_monitoring,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraud_mlops.platform.config import GOLD_FEATURES, MONITORING_METRICS, PREDICTIONS

from .synthetic_gold import make_gold_pdf, mlflow_store_config, register_lr_model, to_spark, training_params

MODEL_NAME = "fraud_monitoring_test_model"
TRAIN_DAYS = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(8)]
WINDOW_DAYS = [dt.date(2018, 5, 1) + dt.timedelta(days=i) for i in range(7)]
PER_DAY = 120


# ============================================================================ PSI, by hand
def test_psi_identical_distributions_is_zero():
    x = np.arange(100.0)
    assert population_stability_index(x, x) == 0.0
    assert population_stability_index(x, np.concatenate([x, x])) == 0.0  # same shares, other size


def test_psi_known_shift_two_bins():
    # reference 0..9, bins=2: edge = median 4.5, shares (0.5, 0.5); current shares (0.8, 0.2)
    # PSI = (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5) = 0.3 ln(1.6) + 0.3 ln(2.5) = 0.3 ln 4
    ref = np.arange(10)
    cur = [0] * 8 + [9] * 2
    assert population_stability_index(ref, cur, bins=2) == pytest.approx(0.3 * math.log(4.0), rel=1e-12)
    assert 0.3 * math.log(4.0) == pytest.approx(0.4158883, abs=1e-7)


def test_psi_deciles_and_eps_floor():
    # reference 1..100: deciles give 10 bins of share 0.1; current all in the first decile:
    # PSI = 0.9 ln(1/0.1) + 9 * (1e-4 - 0.1) ln(1e-4/0.1)
    ref = np.arange(1, 101)
    cur = np.tile(np.arange(1, 11), 5)
    expected = 0.9 * math.log(10.0) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert population_stability_index(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(8.283089, abs=1e-6)
    # values beyond the reference range fall in the outer bins
    assert population_stability_index(ref, np.full(50, 1e9)) == pytest.approx(expected, rel=1e-12)


def test_psi_nan_is_its_own_bin():
    ref = [1.0, 2.0, 3.0, 4.0]
    # bins=2 -> edge 2.5; reference shares (0.5, 0.5, nan 0); current [1, 2, nan, nan] -> (0.5, 0, 0.5)
    # PSI = (eps-0.5) ln(eps/0.5) + (0.5-eps) ln(0.5/eps) = 2 (0.5-eps) ln(0.5/eps)
    expected = 2 * (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert population_stability_index(ref, [1.0, 2.0, np.nan, None], bins=2) == pytest.approx(
        expected, rel=1e-12
    )
    # the same missing rate on both sides is no drift; pandas nullable types are accepted
    with_nan = pd.Series(pd.array([1, 2, None, None, 3, 4], dtype="Int64"))
    assert population_stability_index(with_nan, with_nan) == 0.0
    # an all-missing reference still works (only the NaN bin is populated)
    assert population_stability_index([np.nan] * 4, [np.nan] * 3) == 0.0


def test_psi_constant_and_tied_values():
    const = np.full(10, 5.0)
    assert population_stability_index(const, np.full(7, 5.0)) == 0.0
    # bins (-inf, 5] and (5, inf): reference (1, 0->eps), current (0.5, 0.5)
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert population_stability_index(const, [5.0] * 5 + [6.0] * 5) == pytest.approx(expected, rel=1e-12)
    # a binary feature: tied deciles collapse, same shares -> 0, shifted shares -> > 0
    ref = [0] * 70 + [1] * 30
    assert population_stability_index(ref, [0] * 7 + [1] * 3) == pytest.approx(0.0, abs=1e-15)
    shifted = (0.5 - 0.7) * math.log(0.5 / 0.7) + (0.5 - 0.3) * math.log(0.5 / 0.3)
    assert population_stability_index(ref, [0, 1] * 50) == pytest.approx(shifted, rel=1e-12)


def test_psi_rejects_bad_input():
    with pytest.raises(ValueError):
        population_stability_index([], [1.0])
    with pytest.raises(ValueError):
        population_stability_index([1.0], [1.0], bins=0)
    with pytest.raises(ValueError):
        population_stability_index([1.0], [1.0], eps=0.0)
    with pytest.raises(TypeError):
        population_stability_index(["a", "b"], [1.0])


def test_evaluate_thresholds_flags():
    th = MonitoringThresholds(psi_alert_threshold=0.2, psi_retrain_threshold=0.25, min_average_precision=0.3)
    assert evaluate_thresholds({"a": 0.05}, 0.01, 0.8, th) == (False, False, [])
    alert, retrain, reasons = evaluate_thresholds({"a": 0.22}, 0.01, 0.8, th)
    assert alert and not retrain and "feature a" in reasons[0]
    alert, retrain, reasons = evaluate_thresholds({"a": 0.01}, 0.3, None, th)
    assert alert and retrain and "score" in reasons[0]
    alert, retrain, reasons = evaluate_thresholds({"a": 0.01}, 0.01, 0.1, th)
    assert alert and retrain and "average precision" in reasons[0]
    # retrain limit below the alert limit: each flag follows its own limit
    odd = MonitoringThresholds(psi_alert_threshold=0.5, psi_retrain_threshold=0.25)
    assert evaluate_thresholds({"a": 0.3}, 0.0, None, odd)[:2] == (False, True)


# ============================================================================ end to end
# this module's gold rows: noon timestamps, 80 customers, little terminal-risk noise (the data the
# thresholds below were set on; with these options make_gold_pdf gives the same rows as before)
GOLD_OPTIONS = {"n_customers": 80, "risk_noise": 0.01, "noon_timestamps": True}


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    return mlflow_store_config(tmp_path_factory, "mlflow_monitoring")


@pytest.fixture(scope="module")
def train_pdf():
    return make_gold_pdf(TRAIN_DAYS, PER_DAY, seed=11, **GOLD_OPTIONS)


@pytest.fixture(scope="module")
def registered(mlflow_store, train_pdf):
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store, "exp")
    return register_lr_model(train_pdf, MODEL_NAME, training_params(TRAIN_DAYS[0], TRAIN_DAYS[-1]))


@pytest.fixture()
def champion(mlflow_store, registered):
    from mlflow.tracking import MlflowClient

    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store, "exp")
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", registered)
    return registered


def _setup_window(lakehouse, spark, train_pdf, amount_factor=1.0):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring

    window = make_gold_pdf(
        WINDOW_DAYS, PER_DAY, seed=12, id_offset=1_000_000, amount_factor=amount_factor, **GOLD_OPTIONS
    )
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, pd.concat([train_pdf, window], ignore_index=True)))
    res = run_batch_scoring(lakehouse, MODEL_NAME, WINDOW_DAYS[0], WINDOW_DAYS[-1], threshold=0.5)
    assert res["inserted"] == len(window)
    return window


def _metrics_pdf(lakehouse):
    return lakehouse.read(MONITORING_METRICS).toPandas()


def test_monitoring_stable_window_writes_metrics_without_alert(lakehouse, spark, train_pdf, champion):
    window = _setup_window(lakehouse, spark, train_pdf)
    th = MonitoringThresholds()
    # default window: last 7 days of predictions; no label delay, so every label counts
    result = run_monitoring(lakehouse, MODEL_NAME, thresholds=th, label_delay_days=0)

    assert (result.window_start, result.window_end) == (WINDOW_DAYS[0], WINDOW_DAYS[-1])
    assert (result.reference_start, result.reference_end) == (TRAIN_DAYS[0], TRAIN_DAYS[-1])
    assert result.model_version == champion
    assert result.n_transactions == result.n_labeled == len(window)
    assert result.n_reference_transactions == len(train_pdf)
    assert set(result.feature_psi) == set(FEATURE_COLUMNS)
    assert result.max_feature_psi < 0.1 and result.score_psi < 0.1, result.to_dict()
    assert result.average_precision is not None and result.average_precision > 0.5, result.to_dict()
    assert 0.0 <= result.card_precision_top_100 <= 1.0
    assert result.fraud_rate == pytest.approx(window[LABEL_COLUMN].mean())
    assert not result.alert and not result.retrain and result.reasons == []
    result.raise_for_alert()  # no alert: no exception
    d = json.loads(json.dumps(result.to_dict()))
    assert d["window_start"] == WINDOW_DAYS[0].isoformat() and d["alert"] is False

    rows = _metrics_pdf(lakehouse)
    assert list(rows.columns) == [
        "monitoring_run_id",
        "computed_at",
        "window_start",
        "window_end",
        "model_name",
        "model_version",
        "metric",
        "feature",
        "value",
        "threshold",
        "breached",
    ]
    assert set(rows["metric"]) == {
        "psi",
        "average_precision",
        "card_precision_top_100",
        "fraud_rate",
        "n_transactions",
        "n_labeled",
        "n_reference_transactions",
        "alert",
        "retrain",
    }
    psi = rows[rows["metric"] == "psi"]
    assert set(psi["feature"]) == set(FEATURE_COLUMNS) | {SCORE_FEATURE}
    assert (psi["threshold"] == th.psi_alert_threshold).all() and not psi["breached"].any()
    assert rows[rows["metric"] != "psi"]["feature"].isna().all()
    n_tx = rows[rows["metric"] == "n_transactions"]["value"].item()
    assert n_tx == len(window)
    first_count, first_id = len(rows), result.monitoring_run_id
    assert rows["monitoring_run_id"].nunique() == 1

    # re-running the same window replaces its rows; a stricter AP limit raises both flags
    strict = run_monitoring(
        lakehouse,
        MODEL_NAME,
        WINDOW_DAYS[0],
        WINDOW_DAYS[-1],
        MonitoringThresholds(min_average_precision=0.99),
        label_delay_days=0,
    )
    assert strict.alert and strict.retrain and any("average precision" in r for r in strict.reasons)
    rows = _metrics_pdf(lakehouse)
    assert len(rows) == first_count and set(rows["monitoring_run_id"]) == {strict.monitoring_run_id} != {
        first_id
    }
    assert rows[rows["metric"] == "average_precision"]["breached"].item()
    with pytest.raises(MonitoringAlert, match="average precision"):
        strict.raise_for_alert()

    # another window adds rows; label delay leaves the last days unlabeled
    later = run_monitoring(lakehouse, MODEL_NAME, WINDOW_DAYS[2], WINDOW_DAYS[-1], th, label_delay_days=3)
    assert later.n_transactions == 5 * PER_DAY and later.n_labeled == 2 * PER_DAY
    rows = _metrics_pdf(lakehouse)
    assert len(rows) == 2 * first_count
    assert rows.groupby(["window_start", "window_end", "metric", "feature"], dropna=False).size().max() == 1


def test_monitoring_flags_drifted_feature(lakehouse, spark, train_pdf, champion):
    _setup_window(lakehouse, spark, train_pdf, amount_factor=3.0)  # amounts tripled in the window
    result = run_monitoring(lakehouse, MODEL_NAME, WINDOW_DAYS[0], WINDOW_DAYS[-1], MonitoringThresholds())

    # default label delay (7 days) over a 7-day window: no labeled row, the flags come from PSI only
    assert result.label_delay_days == 7 and result.n_labeled == 0 and result.average_precision is None
    assert result.max_feature_psi_column == "tx_amount"
    assert (
        result.feature_psi["tx_amount"] > 0.25 and result.max_feature_psi == result.feature_psi["tx_amount"]
    )
    assert result.score_psi > 0.25  # the model leans on the amount: its scores shift too
    assert result.alert and result.retrain
    assert any("tx_amount" in r for r in result.reasons)
    others = {c: v for c, v in result.feature_psi.items() if c != "tx_amount"}
    assert max(others.values()) < 0.2

    rows = _metrics_pdf(lakehouse)
    breached = rows[(rows["metric"] == "psi") & rows["breached"]]
    assert set(breached["feature"]) == {"tx_amount", SCORE_FEATURE}
    flags = rows[rows["metric"].isin(["alert", "retrain"])]
    assert (flags["value"] == 1.0).all() and flags["breached"].all()
    with pytest.raises(MonitoringAlert, match="tx_amount"):
        result.raise_for_alert()

    # the same window again: no duplicated rows
    run_monitoring(lakehouse, MODEL_NAME, WINDOW_DAYS[0], WINDOW_DAYS[-1], MonitoringThresholds())
    assert len(_metrics_pdf(lakehouse)) == len(rows)


def test_monitoring_errors(lakehouse, spark, train_pdf, champion):
    from fraud_mlops.platform.lakehouse import TableNotFoundError

    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, train_pdf))
    with pytest.raises(TableNotFoundError):
        run_monitoring(lakehouse, MODEL_NAME)  # nothing scored yet
    from pyspark.sql import functions as F

    # predictions of another version only: nothing to monitor for the champion
    preds = to_spark(spark, train_pdf.head(5)).select(
        "transaction_id",
        "tx_date",
        "customer_id",
        F.lit(0.1).alias("score"),
        F.lit(MODEL_NAME).alias("model_name"),
        F.lit("999").alias("model_version"),
        F.lit(0).alias("decision"),
        F.lit(0.5).alias("decision_threshold"),
        F.current_timestamp().alias("scored_at"),
    )
    lakehouse.overwrite(PREDICTIONS, preds)
    with pytest.raises(MonitoringError, match="no rows"):
        run_monitoring(lakehouse, MODEL_NAME)
    with pytest.raises(MonitoringError, match="no predictions"):
        run_monitoring(lakehouse, MODEL_NAME, TRAIN_DAYS[0], TRAIN_DAYS[1])
    with pytest.raises(ValueError, match="after"):
        run_monitoring(lakehouse, MODEL_NAME, TRAIN_DAYS[1], TRAIN_DAYS[0])
    assert not lakehouse.exists(MONITORING_METRICS)

    # a champion whose run lacks the training-window params has no reference
    register_lr_model(train_pdf, MODEL_NAME + "_no_params", {"delay_days": 7})
    with pytest.raises(MonitoringError, match="train_start"):
        run_monitoring(lakehouse, MODEL_NAME + "_no_params")


def test_monitoring_default_label_delay_excludes_last_seven_days(lakehouse, spark, train_pdf, champion):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring

    days = [dt.date(2018, 5, 1) + dt.timedelta(days=i) for i in range(10)]
    window = make_gold_pdf(days, PER_DAY, seed=13, id_offset=2_000_000, **GOLD_OPTIONS)
    # a few unknown labels among the old days: they count as unlabeled too
    unknown = window.index[window["tx_date"] == days[0]][:5]
    window[LABEL_COLUMN] = window[LABEL_COLUMN].astype("Int32")
    window.loc[unknown, LABEL_COLUMN] = pd.NA
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, pd.concat([train_pdf, window], ignore_index=True)))
    assert run_batch_scoring(lakehouse, MODEL_NAME, days[0], days[-1])["inserted"] == len(window)

    # window of 10 days ending on the latest scored day; default delay 7: labels of days 1-3 only
    strict = MonitoringThresholds(min_average_precision=0.99)
    result = run_monitoring(lakehouse, MODEL_NAME, thresholds=strict, window_days=10)
    assert (result.window_start, result.window_end) == (days[0], days[-1]) and result.label_delay_days == 7
    assert result.n_transactions == len(window)
    labeled = window[(window["tx_date"] <= days[2]) & window[LABEL_COLUMN].notna()]
    assert result.n_labeled == 3 * PER_DAY - len(unknown) == len(labeled)
    assert result.fraud_rate == pytest.approx(labeled[LABEL_COLUMN].astype(float).mean())
    assert result.average_precision is not None and result.card_precision_top_100 is not None
    assert result.alert and any("average precision" in r for r in result.reasons)
    # card precision was computed on the labeled rows only
    from fraud_mlops.lifecycle.metrics import card_precision_top_k

    scores = lakehouse.read(PREDICTIONS).select("transaction_id", "score").toPandas()
    scored_labeled = labeled.merge(scores, on="transaction_id").astype({LABEL_COLUMN: "int64"})
    assert result.card_precision_top_100 == pytest.approx(card_precision_top_k(scored_labeled)[0])
    rows = _metrics_pdf(lakehouse)
    assert rows[rows["metric"] == "n_labeled"]["value"].item() == len(labeled)
    assert rows[rows["metric"] == "n_transactions"]["value"].item() == len(window)

    # drift is unaffected by the delay: same PSI with every label known
    no_delay = run_monitoring(lakehouse, MODEL_NAME, thresholds=strict, window_days=10, label_delay_days=0)
    assert no_delay.n_labeled == len(window) - len(unknown)
    assert no_delay.feature_psi == pytest.approx(result.feature_psi)
    assert no_delay.score_psi == pytest.approx(result.score_psi)

    # the default 7-day window has no labeled row: quality metrics omitted, no AP alert
    recent = run_monitoring(lakehouse, MODEL_NAME, thresholds=strict)
    assert (recent.window_start, recent.window_end) == (days[3], days[-1])
    assert recent.n_transactions == 7 * PER_DAY and recent.n_labeled == 0
    assert recent.average_precision is None and recent.card_precision_top_100 is None
    assert recent.fraud_rate is None
    assert not any("average precision" in r for r in recent.reasons)
    assert not recent.alert and not recent.retrain, recent.to_dict()
    d = json.loads(json.dumps(recent.to_dict()))
    assert d["n_labeled"] == 0 and d["average_precision"] is None and d["label_delay_days"] == 7
    rows = _metrics_pdf(lakehouse)
    recent_rows = rows[pd.to_datetime(rows["window_start"]) == pd.Timestamp(days[3])]
    assert recent_rows[recent_rows["metric"] == "n_labeled"]["value"].item() == 0
    assert not set(recent_rows["metric"]) & {"average_precision", "card_precision_top_100", "fraud_rate"}
    assert not recent_rows["breached"].any()
