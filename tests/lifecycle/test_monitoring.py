"""Monitoring: PSI on hand-computed cases, drift and quality metrics, alert flags, idempotent writes,
alerts against the alert budget, and the shadow comparison of champion and challenger."""

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
    METRICS,
    SCORE_FEATURE,
    SHADOW_COLUMNS,
    MonitoringAlert,
    MonitoringError,
    MonitoringThresholds,
    alert_statistics,
    evaluate_thresholds,
    population_stability_index,
    run_monitoring,
    shadow_comparison,
    shadow_source,
    shadow_summary,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraud_mlops.platform.config import GOLD_FEATURES, MONITORING_METRICS, PREDICTIONS, PREDICTIONS_SHADOW

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
    base_metrics = {
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
    # alert metrics need the predictions' decision (always there) and, for the budget ones, the
    # alert_budget / within_budget columns (there when batch scoring writes them); no challenger: no shadow
    alert_metrics = {"alerts_per_day_mean", "alerts_per_day_max"}
    optional = {"precision_flagged", "alert_budget", "precision_within_budget"}
    assert base_metrics | alert_metrics <= set(rows["metric"]) <= base_metrics | alert_metrics | optional
    assert set(rows["metric"]) <= set(METRICS) and result.shadow is None
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


# ============================================================================ alerts against the budget
def test_alert_statistics_by_hand():
    # day 1: cards 1, 2 flagged (card 1 twice), card 3 not; day 2: nothing flagged; day 3: unlabelled
    rows = pd.DataFrame(
        {
            "tx_date": [dt.date(2018, 6, 1)] * 4 + [dt.date(2018, 6, 2)] * 2 + [dt.date(2018, 6, 3)],
            "customer_id": [1, 1, 2, 3, 1, 4, 9],
            LABEL_COLUMN: [0, 1, 0, 1, 0, 0, 1],
            "decision": [1, 1, 1, 0, 0, 0, 1],
            "alert_budget": [2, 2, 2, 2, 3, 3, None],
            "within_budget": [1, 1, 0, 1, 1, 1, 1],
        }
    )
    stats = alert_statistics(rows, label_cutoff=dt.date(2018, 6, 2))
    # alerts per day: 2, 0, 1 -> mean 1, max 2; budget of the latest day that has one: 3
    assert stats["alerts_per_day_mean"] == 1.0 and stats["alerts_per_day_max"] == 2
    assert stats["alert_budget"] == 3
    # labelled (day, card) pairs within budget: (1,1) compromised, (1,3) compromised, (2,1), (2,4) -> 2/4
    assert stats["precision_within_budget"] == 0.5
    # flagged labelled pairs: (1,1) compromised, (1,2) not -> 1/2
    assert stats["precision_flagged"] == 0.5
    # an old table (no budget columns): what needs them is None, the rest is computed
    old = alert_statistics(rows.drop(columns=["alert_budget", "within_budget"]), dt.date(2018, 6, 2))
    assert old == {**stats, "alert_budget": None, "precision_within_budget": None}
    # no decision column at all: every value None, no error
    assert set(alert_statistics(rows[["tx_date", "customer_id", LABEL_COLUMN]]).values()) == {None}
    assert alert_statistics(rows.iloc[:0])["alerts_per_day_mean"] is None


def test_evaluate_thresholds_alert_budget():
    th = MonitoringThresholds(max_alerts_over_budget=1.25)
    assert evaluate_thresholds({"a": 0.0}, 0.0, None, th, alerts_per_day_mean=125.0, alert_budget=100) == (
        False,
        False,
        [],
    )
    alert, retrain, reasons = evaluate_thresholds(
        {"a": 0.0}, 0.0, None, th, alerts_per_day_mean=125.5, alert_budget=100
    )
    assert alert and not retrain and "alert budget 100" in reasons[0] and "125.50" in reasons[0]
    # unknown budget or unknown alerts: never an alert
    assert evaluate_thresholds({"a": 0.0}, 0.0, None, th, alerts_per_day_mean=1e6)[0] is False
    assert evaluate_thresholds({"a": 0.0}, 0.0, None, th, alert_budget=1)[0] is False
    with pytest.raises(ValueError, match="max_alerts_over_budget"):
        MonitoringThresholds(max_alerts_over_budget=0.0)


ALERT_DAYS = [dt.date(2018, 5, 1) + dt.timedelta(days=i) for i in range(4)]
FLAGGED_CARDS = [6, 10, 3, 9]  # cards with decision = 1 per day: mean 7, max 10
BUDGET = 5
# compromised cards per day; card 2 of day 0 has unknown labels; days 2 and 3 are not labelled
# (label_delay_days=2 from the last day) and would change every precision if they counted
COMPROMISED = [{0, 1, 5, 30}, {0, 1, 7, 20}, set(range(40)), set(range(40))]
# hand count on days 0-1: within budget (cards 0-4, card 2 of day 0 unlabelled): 2/4 + 2/5 = 4/9;
# flagged: day 0 cards 0-5 less card 2 -> {0, 1, 5} of 5, day 1 cards 0-9 -> {0, 1, 7} of 10: 6/15
EXPECTED_WITHIN = 4 / 9
EXPECTED_FLAGGED = 6 / 15
# every drift / quality limit out of reach: only the alert budget may raise an alert here
WINDOW_4 = (ALERT_DAYS[0], ALERT_DAYS[-1])  # label_delay_days=2: days 0 and 1 are labelled
NO_DRIFT_LIMITS = {"psi_alert_threshold": 1e9, "psi_retrain_threshold": 1e9, "min_average_precision": 0.0}


def _prediction_frame(spark, records, model_version, model_name=MODEL_NAME, columns=None):
    """Predictions rows (Spark) with the columns of scoring.PREDICTION_COLUMNS (or ``columns``);
    ``records`` are dicts, absent columns are null."""
    from fraud_mlops.lifecycle.scoring import PREDICTION_COLUMNS

    columns = columns or list(PREDICTION_COLUMNS)
    base = {
        "model_name": model_name,
        "model_version": str(model_version),
        "decision_threshold": 0.5,
        "scored_at": dt.datetime(2018, 6, 1, 4),
    }

    def py(value):
        return value.item() if isinstance(value, np.generic) else value

    tuples = [tuple(py({**base, **r}.get(c)) for c in columns) for r in records]
    schema = ", ".join(f"{c} {PREDICTION_COLUMNS[c]}" for c in columns)
    return spark.createDataFrame(tuples, schema)


def _alert_window(lakehouse, spark, train_pdf):
    """Gold of ALERT_DAYS with hand-set cards and labels; returns the window's pandas rows."""
    window = make_gold_pdf(ALERT_DAYS, PER_DAY, seed=14, id_offset=3_000_000, **GOLD_OPTIONS)
    j = np.tile(np.arange(PER_DAY), len(ALERT_DAYS))
    day = np.repeat(np.arange(len(ALERT_DAYS)), PER_DAY)
    card = j % 40  # 40 cards a day, 3 transactions each (j, j + 40, j + 80)
    window["customer_id"] = (day * 100 + card).astype("int64")
    fraud = np.array([c in COMPROMISED[d] and jj >= 80 for d, c, jj in zip(day, card, j)], dtype="int32")
    window[LABEL_COLUMN] = pd.array(fraud, dtype="Int32")
    window.loc[(day == 0) & (card == 2), LABEL_COLUMN] = pd.NA
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, pd.concat([train_pdf, window], ignore_index=True)))
    return window.assign(day_index=day, card_index=card, row_index=j)


def _alert_records(window):
    records = []
    for row in window.itertuples():
        flagged_card = row.card_index < FLAGGED_CARDS[row.day_index]
        # the card's first transaction is flagged, and the second one too for even cards
        second_of_even = row.row_index < 80 and row.card_index % 2 == 0
        decision = int(flagged_card and (row.row_index < 40 or second_of_even))
        records.append(
            {
                "transaction_id": row.transaction_id,
                "tx_date": row.tx_date,
                "customer_id": row.customer_id,
                "score": 0.9 if decision else 0.1,
                "decision": decision,
                "card_daily_rank": row.card_index + 1,
                "alert_budget": BUDGET,
                "within_budget": int(row.card_index < BUDGET),
            }
        )
    return records


def test_monitoring_reports_alerts_against_the_budget(lakehouse, spark, train_pdf, champion):
    window = _alert_window(lakehouse, spark, train_pdf)
    lakehouse.overwrite(PREDICTIONS, _prediction_frame(spark, _alert_records(window), champion))
    predictions_version = lakehouse.version(PREDICTIONS)

    result = run_monitoring(
        lakehouse, MODEL_NAME, *WINDOW_4, MonitoringThresholds(**NO_DRIFT_LIMITS), label_delay_days=2
    )
    assert result.alerts_per_day_mean == 7.0 and result.alerts_per_day_max == 10
    assert result.alert_budget == BUDGET
    assert result.precision_within_budget == pytest.approx(EXPECTED_WITHIN, rel=1e-12)
    assert result.precision_flagged == pytest.approx(EXPECTED_FLAGGED, rel=1e-12)
    # 7 alerts a day > 1.25 x 5: an alert, not a retrain
    assert result.alert and not result.retrain
    assert len(result.reasons) == 1 and "alert budget 5" in result.reasons[0], result.reasons
    assert result.shadow is None  # no challenger
    d = json.loads(json.dumps(result.to_dict()))
    assert d["alerts_per_day_mean"] == 7.0 and d["alert_budget"] == BUDGET and d["shadow"] is None

    rows = _metrics_pdf(lakehouse).set_index("metric")
    mean_row = rows.loc["alerts_per_day_mean"]
    assert mean_row["value"] == 7.0 and mean_row["threshold"] == 6.25 and mean_row["breached"]
    assert rows.loc["alerts_per_day_max", "value"] == 10.0
    assert rows.loc["alert_budget", "value"] == BUDGET
    assert rows.loc["precision_within_budget", "value"] == pytest.approx(EXPECTED_WITHIN)
    assert rows.loc["precision_flagged", "value"] == pytest.approx(EXPECTED_FLAGGED)

    # a wider tolerance (7 <= 1.5 x 5): no alert, same values; the window's rows are replaced
    lenient = run_monitoring(
        lakehouse,
        MODEL_NAME,
        *WINDOW_4,
        MonitoringThresholds(**NO_DRIFT_LIMITS, max_alerts_over_budget=1.5),
        label_delay_days=2,
    )
    assert not lenient.alert and lenient.reasons == [] and lenient.alerts_per_day_mean == 7.0
    rows = _metrics_pdf(lakehouse).set_index("metric")
    assert rows.loc["alerts_per_day_mean", "threshold"] == 7.5
    assert not rows.loc["alerts_per_day_mean", "breached"]
    assert lakehouse.version(PREDICTIONS) == predictions_version  # monitoring never writes predictions


def test_monitoring_of_an_old_predictions_table_leaves_budget_metrics_out(
    lakehouse, spark, train_pdf, champion
):
    window = _alert_window(lakehouse, spark, train_pdf)
    old_columns = [
        "transaction_id", "tx_date", "customer_id", "score", "model_name", "model_version", "decision",
        "decision_threshold", "scored_at",
    ]
    old = _prediction_frame(spark, _alert_records(window), champion, columns=old_columns)
    lakehouse.overwrite(PREDICTIONS, old)
    result = run_monitoring(
        lakehouse, MODEL_NAME, *WINDOW_4, MonitoringThresholds(**NO_DRIFT_LIMITS), label_delay_days=2
    )
    assert result.alert_budget is None and result.precision_within_budget is None
    assert result.alerts_per_day_mean == 7.0 and result.precision_flagged == pytest.approx(EXPECTED_FLAGGED)
    assert not result.alert  # no budget, no budget alert
    metrics = set(_metrics_pdf(lakehouse)["metric"])
    assert {"alerts_per_day_mean", "alerts_per_day_max", "precision_flagged"} <= metrics
    assert not metrics & {"alert_budget", "precision_within_budget"}


# ============================================================================ shadow comparison
SHADOW_DAYS = [dt.date(2018, 6, 1) + dt.timedelta(days=i) for i in range(4)]
N_SHADOW = 200  # transactions (= cards) a day: more than the 100 of card precision top-100


def _shadow_rank(version, j):
    """Rank (0 = highest score) of transaction j of day 1, whose frauds are j < 20, by model version."""
    if version == "1":  # champion: 10 frauds on top, 10 at the very bottom
        return j if j < 10 else (180 + j if j < 20 else j - 10)
    if version == "2":  # better challenger: the 20 frauds on top
        return j
    # worse challenger: the frauds at ranks 100..119
    return 100 + j if j < 20 else (j - 20 if j < 120 else j)


def _champion_ap():
    return (10 + sum((10 + i) / (190 + i) for i in range(1, 11))) / 20


def _worse_ap():
    return sum(i / (100 + i) for i in range(1, 21)) / 20


def _shadow_tables(lakehouse, spark, challenger_versions=("2",)):
    """Gold and predictions of SHADOW_DAYS, with the champion v1 and the challengers in shadow.

    Day 1: 20 frauds among 200; day 2: no fraud (scores below day 1's); day 3: labels unknown;
    day 4: labelled but within the label delay (window end day 4, delay 1). One extra champion-only
    transaction (a top-scored fraud) on day 1 that no challenger scored.
    """
    gold, champion, shadow = [], [], {v: [] for v in challenger_versions}
    for d, day in enumerate(SHADOW_DAYS):
        for j in range(N_SHADOW):
            tid, card = d * 10_000 + j, d * 1_000 + j
            label = int(j < 20) if d == 0 else (0 if d == 1 else (None if d == 2 else int(j < 50)))
            gold.append((tid, day, card, label))
            for version, out in [("1", champion), *shadow.items()]:
                if d == 0:
                    score = 1.0 - _shadow_rank(version, j) / 1000
                elif d == 1:
                    score = 0.1 + j / 10_000
                else:  # days that must not count: the worse challenger looks perfect there
                    score = (0.99 if j < 50 else 0.01) if version == "3" else 0.5
                out.append({"transaction_id": tid, "tx_date": day, "customer_id": card, "score": score})
    gold.append((99_999, SHADOW_DAYS[0], 99_999, 1))
    champion.append(
        {"transaction_id": 99_999, "tx_date": SHADOW_DAYS[0], "customer_id": 99_999, "score": 0.999}
    )
    gold_df = spark.createDataFrame(
        gold, f"transaction_id bigint, tx_date date, customer_id bigint, {LABEL_COLUMN} int"
    )
    lakehouse.overwrite(GOLD_FEATURES, gold_df)
    lakehouse.overwrite(PREDICTIONS, _prediction_frame(spark, champion, "1"))
    frames = [_prediction_frame(spark, rows, v) for v, rows in shadow.items()]
    shadow_df = frames[0]
    for frame in frames[1:]:
        shadow_df = shadow_df.unionByName(frame)
    lakehouse.overwrite(PREDICTIONS_SHADOW, shadow_df)


def test_shadow_comparison_better_and_worse_challenger(lakehouse, spark):
    _shadow_tables(lakehouse, spark, challenger_versions=("2", "3"))
    versions = {t: lakehouse.version(t) for t in (PREDICTIONS, PREDICTIONS_SHADOW, GOLD_FEATURES)}

    window = (SHADOW_DAYS[0], SHADOW_DAYS[-1])
    better = shadow_comparison(lakehouse, MODEL_NAME, "1", "2", *window, label_delay_days=1)
    assert list(better.columns) == list(SHADOW_COLUMNS)
    # day 3 (labels unknown) and day 4 (within the delay) are left out; the champion-only row too
    assert list(better["tx_date"]) == SHADOW_DAYS[:2]
    assert list(better["n_transactions"]) == [N_SHADOW, N_SHADOW] and list(better["n_frauds"]) == [20, 0]
    assert better["champion_average_precision"][0] == pytest.approx(_champion_ap(), rel=1e-12)
    assert better["challenger_average_precision"][0] == pytest.approx(1.0)
    assert math.isnan(better["champion_average_precision"][1])  # no fraud on day 2
    assert math.isnan(better["challenger_average_precision"][1])
    assert list(better["champion_card_precision_top_100"]) == [0.10, 0.0]
    assert list(better["challenger_card_precision_top_100"]) == [0.20, 0.0]
    pooled = better.attrs["pooled"]
    assert pooled["n_days"] == 2 and pooled["n_transactions"] == 2 * N_SHADOW and pooled["n_frauds"] == 20
    # day 2's scores are all below day 1's: pooling adds negatives after every fraud, AP unchanged
    assert pooled["champion_average_precision"] == pytest.approx(_champion_ap(), rel=1e-12)
    assert pooled["challenger_average_precision"] == pytest.approx(1.0)
    assert pooled["champion_card_precision_top_100"] == pytest.approx(0.05)
    assert pooled["challenger_card_precision_top_100"] == pytest.approx(0.10)
    assert (pooled["first_day"], pooled["last_day"]) == (SHADOW_DAYS[0], SHADOW_DAYS[1])

    worse = shadow_comparison(lakehouse, MODEL_NAME, "1", "3", *window, label_delay_days=1)
    assert worse["challenger_average_precision"][0] == pytest.approx(_worse_ap(), rel=1e-12)
    assert list(worse["challenger_card_precision_top_100"]) == [0.0, 0.0]
    assert worse.attrs["pooled"]["challenger_average_precision"] == pytest.approx(_worse_ap(), rel=1e-12)
    assert worse.attrs["pooled"]["champion_average_precision"] == pytest.approx(_champion_ap(), rel=1e-12)

    # no window end: the latest gold day, so the same labelled days; a window from day 2: one day, no fraud
    assert shadow_comparison(lakehouse, MODEL_NAME, "1", "2", label_delay_days=1).equals(better)
    late = shadow_comparison(lakehouse, MODEL_NAME, "1", "2", SHADOW_DAYS[1], SHADOW_DAYS[-1], label_delay_days=1)
    assert list(late["tx_date"]) == [SHADOW_DAYS[1]]
    assert math.isnan(late.attrs["pooled"]["challenger_average_precision"])
    # every day within the delay: no row, same columns
    none = shadow_comparison(lakehouse, MODEL_NAME, "1", "2", label_delay_days=30)
    assert none.empty and list(none.columns) == list(SHADOW_COLUMNS) and none.attrs["pooled"]["n_days"] == 0

    # the summary the gate and monitoring read (JSON-able, NaN as None)
    summary = shadow_summary(lakehouse, MODEL_NAME, "1", "3", label_delay_days=1)
    assert summary["challenger_version"] == "3" and summary["champion_version"] == "1"
    assert summary["n_days"] == 2
    assert (summary["first_day"], summary["last_day"]) == ("2018-06-01", "2018-06-02")
    assert summary["challenger_average_precision"] == pytest.approx(_worse_ap())
    json.dumps(summary, allow_nan=False)
    assert shadow_summary(lakehouse, MODEL_NAME, "1", "2", label_delay_days=30)["n_days"] == 0
    assert shadow_summary(lakehouse, MODEL_NAME, "1", "7") is None  # never scored in shadow
    assert shadow_source(lakehouse, MODEL_NAME, 1)("1", "2") == shadow_summary(
        lakehouse, MODEL_NAME, "1", "2", label_delay_days=1
    )

    # the gate reads that evidence: the worse challenger is blocked on its shadow days, the better passes
    from fraud_mlops.lifecycle.gate import GateThresholds, decide

    gate = GateThresholds(min_average_precision=0.5, min_roc_auc=0.5, min_shadow_days=2)
    metrics = {"average_precision": 0.9, "roc_auc": 0.9}
    assert not decide(metrics, metrics, gate, champion_version="1", shadow=summary).promote
    good = shadow_summary(lakehouse, MODEL_NAME, "1", "2", label_delay_days=1)
    assert decide(metrics, metrics, gate, champion_version="1", shadow=good).promote

    # read-only: no table was written
    assert {t: lakehouse.version(t) for t in versions} == versions
    with pytest.raises(ValueError, match="after"):
        shadow_comparison(lakehouse, MODEL_NAME, "1", "2", SHADOW_DAYS[1], SHADOW_DAYS[0])


def test_shadow_summary_without_shadow_table(lakehouse, spark):
    import shutil

    from fraud_mlops.platform.lakehouse import TableNotFoundError

    _shadow_tables(lakehouse, spark)
    shutil.rmtree(lakehouse.ref(PREDICTIONS_SHADOW).path)  # batch scoring never ran a shadow
    assert shadow_summary(lakehouse, MODEL_NAME, "1", "2") is None
    with pytest.raises(TableNotFoundError):
        shadow_comparison(lakehouse, MODEL_NAME, "1", "2")


def test_monitoring_compares_the_challenger_in_shadow(lakehouse, spark, train_pdf, champion):
    from mlflow.tracking import MlflowClient

    window = _alert_window(lakehouse, spark, train_pdf)
    records = _alert_records(window)
    lakehouse.overwrite(PREDICTIONS, _prediction_frame(spark, records, champion))
    client = MlflowClient()
    source = client.get_model_version(MODEL_NAME, champion)
    challenger = str(client.create_model_version(MODEL_NAME, source.source, run_id=source.run_id).version)
    # the challenger scores the same transactions in shadow, ranking compromised cards' rows first
    labels = window[LABEL_COLUMN].fillna(0).to_numpy()
    shadow_rows = [{**r, "score": 0.2 + 0.7 * float(y)} for r, y in zip(records, labels)]
    lakehouse.overwrite(PREDICTIONS_SHADOW, _prediction_frame(spark, shadow_rows, challenger))
    versions = {t: lakehouse.version(t) for t in (PREDICTIONS, PREDICTIONS_SHADOW)}
    limits = MonitoringThresholds(**NO_DRIFT_LIMITS, max_alerts_over_budget=2.0)
    try:
        client.set_registered_model_alias(MODEL_NAME, "challenger", challenger)
        result = run_monitoring(lakehouse, MODEL_NAME, *WINDOW_4, limits, label_delay_days=2)
        expected = shadow_summary(lakehouse, MODEL_NAME, champion, challenger, *WINDOW_4, label_delay_days=2)
        assert result.shadow == expected
        assert expected["n_days"] == 2 and expected["challenger_version"] == challenger
        assert expected["challenger_average_precision"] == pytest.approx(1.0)
        assert expected["champion_average_precision"] < 1.0
        assert not result.alert  # shadow results never raise an alert
        rows = _metrics_pdf(lakehouse)
        shadow = rows[rows["metric"].str.startswith("shadow_")].set_index("metric")
        assert set(shadow.index) == {
            "shadow_labelled_days",
            "shadow_champion_average_precision",
            "shadow_challenger_average_precision",
            "shadow_champion_card_precision_top_100",
            "shadow_challenger_card_precision_top_100",
        }
        assert (shadow["feature"] == challenger).all() and shadow.loc["shadow_labelled_days", "value"] == 2
        assert shadow.loc["shadow_challenger_average_precision", "value"] == pytest.approx(1.0)
        assert json.loads(result.to_json())["shadow"]["n_days"] == 2

        # the challenger alias on the monitored version itself: nothing to compare
        client.set_registered_model_alias(MODEL_NAME, "challenger", champion)
        assert run_monitoring(lakehouse, MODEL_NAME, *WINDOW_4, limits, label_delay_days=2).shadow is None
    finally:
        client.delete_registered_model_alias(MODEL_NAME, "challenger")
    # no challenger alias: no comparison
    result = run_monitoring(lakehouse, MODEL_NAME, *WINDOW_4, limits, label_delay_days=2)
    assert result.shadow is None
    assert not _metrics_pdf(lakehouse)["metric"].str.startswith("shadow_").any()
    assert {t: lakehouse.version(t) for t in versions} == versions  # predictions tables only read
