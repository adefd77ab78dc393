"""Time split, estimators, the pyfunc model and the MLflow training run, on synthetic gold data."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.lifecycle.training import (
    FraudProbabilityModel,
    build_estimator,
    evaluation_window,
    feature_importances,
    feature_matrix,
    fit_estimator,
    git_commit,
    model_input,
    model_pip_requirements,
    required_date_range,
    resolve_training_window,
    time_split,
    train_and_log,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LEAKING_COLUMNS
from fraud_mlops.platform.config import LakehouseConfig

START = dt.date(2018, 4, 1)


def make_gold(n_days=22, n_customers=120, tx_per_day=2, fraud_rate=0.04, seed=0, informative=True):
    """Synthetic gold rows with the gold table's columns and dtypes (as ``toPandas()`` gives them).

    Frauds are the transactions with ``tx_amount`` above 250 when ``informative``; otherwise the
    amount carries no signal. ``tx_fraud_scenario`` always equals the label (it leaks it).
    """
    rng = np.random.default_rng(seed)
    per_day = n_customers * tx_per_day
    n = n_days * per_day
    day_idx = np.repeat(np.arange(n_days), per_day)
    fraud = rng.random(n) < fraud_rate
    if informative:
        amount = np.where(fraud, rng.uniform(250, 400, n), rng.uniform(5, 200, n))
    else:
        amount = rng.uniform(5, 400, n)
    dates = [START + dt.timedelta(days=int(d)) for d in day_idx]
    gold = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "tx_datetime": pd.to_datetime(dates) + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
            "tx_date": dates,
            "customer_id": np.tile(np.repeat(np.arange(n_customers), tx_per_day), n_days).astype("int64"),
            "terminal_id": rng.integers(0, 500, n).astype("int64"),
            "tx_amount": amount.round(2),
            "tx_fraud": fraud.astype("int32"),
        }
    )
    for column in FEATURE_COLUMNS:
        if column == "tx_amount":
            continue
        if column in ("is_weekend", "is_night"):
            gold[column] = rng.integers(0, 2, n).astype("int32")
        elif "count" in column or "distinct" in column:
            gold[column] = rng.integers(0, 10, n).astype("int64")
        else:
            gold[column] = rng.random(n)
    gold.loc[rng.random(n) < 0.1, "customer_seconds_since_prev_tx"] = np.nan
    gold.loc[rng.random(n) < 0.1, "customer_amount_ratio_30d"] = np.nan
    gold["tx_fraud_scenario"] = fraud.astype("int32")
    return gold


WINDOW = {"train_start": START, "train_end": dt.date(2018, 4, 7), "delay_days": 7, "test_days": 7}
FAST_XGB = {"n_estimators": 30, "max_depth": 3, "n_jobs": 2}


# ------------------------------------------------------------------------------------ the split
def _tiny_gold():
    """Six cards, one transaction a day from Mar 31 to Apr 10, frauds on chosen days."""
    fraud_days = {
        1: dt.date(2018, 4, 2),
        2: dt.date(2018, 4, 4),
        3: dt.date(2018, 4, 5),
        4: dt.date(2018, 4, 6),
        5: dt.date(2018, 3, 31),
    }
    rows = []
    for offset in range(11):
        day = dt.date(2018, 3, 31) + dt.timedelta(days=offset)
        for card in range(1, 7):
            rows.append({"tx_date": day, "customer_id": card, "tx_fraud": int(fraud_days.get(card) == day)})
    return pd.DataFrame(rows)


def test_window_helpers():
    assert evaluation_window(dt.date(2018, 4, 3), 2, 3) == (dt.date(2018, 4, 6), dt.date(2018, 4, 8))
    assert required_date_range(dt.date(2018, 4, 1), dt.date(2018, 4, 3), 2, 3) == (
        dt.date(2018, 4, 1),
        dt.date(2018, 4, 8),
    )
    assert required_date_range("2018-04-01", "2018-04-07") == (dt.date(2018, 4, 1), dt.date(2018, 4, 21))
    with pytest.raises(ValueError, match="before train_start"):
        required_date_range(dt.date(2018, 4, 3), dt.date(2018, 4, 1), 7, 7)
    with pytest.raises(ValueError, match="test_days"):
        required_date_range(dt.date(2018, 4, 1), dt.date(2018, 4, 3), 7, 0)


@pytest.mark.parametrize("day_kind", ["date", "timestamp", "string"])
def test_time_split_boundaries_and_known_compromised_cards(day_kind):
    gold = _tiny_gold()
    if day_kind == "timestamp":
        gold["tx_date"] = pd.to_datetime(gold["tx_date"])
    elif day_kind == "string":
        gold["tx_date"] = gold["tx_date"].astype(str)
    # Train Apr 1-3, delay 2 days, test Apr 6, 7, 8. On day d the labels up to d - 3 are known.
    train, test = time_split(gold, dt.date(2018, 4, 1), dt.date(2018, 4, 3), delay_days=2, test_days=3)

    train_days = sorted(set(pd.to_datetime(train["tx_date"]).dt.date))
    assert train_days == [dt.date(2018, 4, 1), dt.date(2018, 4, 2), dt.date(2018, 4, 3)]
    assert len(train) == 18

    test_days = pd.to_datetime(test["tx_date"]).dt.date
    cards_by_day = {d: sorted(test.loc[test_days == d, "customer_id"]) for d in sorted(set(test_days))}
    assert cards_by_day == {
        # card 1: fraud in training -> blocked on every test day
        # card 2: fraud Apr 4, known from Apr 7; card 3: fraud Apr 5, known from Apr 8
        # card 4: fraud on a test day (Apr 6) is not known before Apr 9; card 5: fraud before
        # train_start is not used (Handbook protocol); card 6: genuine
        dt.date(2018, 4, 6): [2, 3, 4, 5, 6],
        dt.date(2018, 4, 7): [3, 4, 5, 6],
        dt.date(2018, 4, 8): [4, 5, 6],
    }
    assert list(test.columns) == list(gold.columns)


def test_time_split_does_not_depend_on_row_order():
    gold = _tiny_gold()
    gold.insert(0, "transaction_id", np.arange(len(gold), dtype="int64"))
    shuffled = gold.sample(frac=1.0, random_state=3)
    for ordered, scrambled in zip(
        time_split(gold, dt.date(2018, 4, 1), dt.date(2018, 4, 3), delay_days=2, test_days=3),
        time_split(shuffled, dt.date(2018, 4, 1), dt.date(2018, 4, 3), delay_days=2, test_days=3),
    ):
        assert list(ordered["transaction_id"]) == sorted(ordered["transaction_id"])
        pd.testing.assert_frame_equal(ordered, scrambled)


def test_time_split_delay_zero():
    gold = _tiny_gold()
    # Train Apr 1-3, no delay, test Apr 4-5: on Apr 5 the labels of Apr 4 are known.
    _, test = time_split(gold, dt.date(2018, 4, 1), dt.date(2018, 4, 3), delay_days=0, test_days=2)
    days = pd.to_datetime(test["tx_date"]).dt.date
    assert sorted(test.loc[days == dt.date(2018, 4, 4), "customer_id"]) == [2, 3, 4, 5, 6]
    assert sorted(test.loc[days == dt.date(2018, 4, 5), "customer_id"]) == [3, 4, 5, 6]


def test_time_split_empty_sets_raise():
    gold = _tiny_gold()
    with pytest.raises(ValueError, match="training set is empty"):
        time_split(gold, dt.date(2019, 1, 1), dt.date(2019, 1, 7))
    with pytest.raises(ValueError, match="test set is empty"):
        time_split(gold, dt.date(2018, 4, 1), dt.date(2018, 4, 3), delay_days=7, test_days=7)


# ------------------------------------------------------------------------------------ estimators
def test_feature_matrix_selects_features_only():
    gold = make_gold(n_days=2, n_customers=5)
    matrix = feature_matrix(gold)
    assert list(matrix.columns) == list(FEATURE_COLUMNS)
    assert all(dtype == np.float64 for dtype in matrix.dtypes)
    assert not set(matrix.columns) & set(LEAKING_COLUMNS)
    with pytest.raises(ValueError, match="lacks feature"):
        feature_matrix(gold.drop(columns=["terminal_risk_7d"]))
    with pytest.raises(ValueError, match="leaking"):
        FraudProbabilityModel(object(), feature_columns=FEATURE_COLUMNS + ("tx_fraud_scenario",))


def test_unknown_parameters_and_model_types_are_rejected():
    with pytest.raises(ValueError, match="unknown xgboost parameter"):
        build_estimator("xgboost", {"n_estimator": 10})
    with pytest.raises(ValueError, match="unknown model_type"):
        build_estimator("random_forest", {})


@pytest.mark.parametrize("model_type", ["xgboost", "logistic_regression"])
def test_tx_fraud_scenario_is_never_a_model_input(model_type):
    # The features carry no signal; only tx_fraud_scenario (= the label) would. A model that used it
    # would rank perfectly.
    gold = make_gold(n_days=10, n_customers=60, fraud_rate=0.1, informative=False, seed=3)
    assert (gold["tx_fraud_scenario"] == gold["tx_fraud"]).all()
    estimator, _ = fit_estimator(model_type, FAST_XGB if model_type == "xgboost" else None, gold)
    assert list(estimator.feature_names_in_) == list(FEATURE_COLUMNS)
    model = FraudProbabilityModel(estimator, model_type=model_type)

    scores = model.predict(None, gold)
    flipped = gold.assign(tx_fraud_scenario=1 - gold["tx_fraud_scenario"])
    np.testing.assert_array_equal(model.predict(None, flipped), scores)
    np.testing.assert_array_equal(model.predict(None, gold.drop(columns=list(LEAKING_COLUMNS))), scores)
    importances = feature_importances(estimator, model_type)
    assert set(importances["feature"]) == set(FEATURE_COLUMNS)


def test_git_commit_helper(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAUD_MLOPS_GIT_COMMIT", "abc123")
    assert git_commit() == "abc123"
    monkeypatch.delenv("FRAUD_MLOPS_GIT_COMMIT")
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable: unavailable
    assert git_commit() is None


def test_pip_requirements_are_pinned():
    reqs = model_pip_requirements()
    names = [r.split("==")[0] for r in reqs]
    assert {"mlflow", "xgboost", "scikit-learn", "pandas", "numpy"} <= set(names)
    assert all("==" in r and r.split("==")[1] for r in reqs)


# ------------------------------------------------------------------------------------ MLflow run
@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_training")
    configure_mlflow(LakehouseConfig("fraud_test", "fraud", "delta-rs", root), "/fraud/test-training")
    return root


@pytest.fixture(scope="module")
def gold():
    return make_gold()


@pytest.fixture(scope="module")
def xgb_result(tracking, gold):
    train, test = time_split(gold, **WINDOW)
    return train_and_log(
        train,
        test,
        "xgboost",
        FAST_XGB,
        model_name="fraud_test_model",
        run_name="xgb-test",
        extra_params={**WINDOW, "test_start": dt.date(2018, 4, 15)},
        table_versions={"fraud_test.fraud.gold_transaction_features": 4},
        git_commit="0123456789abcdef0123456789abcdef01234567",
    )


def test_train_and_log_records_the_run(xgb_result, gold):
    client = MlflowClient()
    run = client.get_run(xgb_result.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags

    assert params["train_start"] == "2018-04-01"
    assert params["train_end"] == "2018-04-07"
    assert params["delay_days"] == "7" and params["test_days"] == "7"
    assert params["test_start"] == "2018-04-15"
    assert params["n_estimators"] == "30" and params["max_depth"] == "3"
    assert params["learning_rate"] == "0.1" and params["seed"] == "0"
    assert params["features"].split(",") == list(FEATURE_COLUMNS)
    assert params["table_version.fraud_test.fraud.gold_transaction_features"] == "4"
    assert "tx_fraud_scenario" not in params["features"]

    assert tags["model_type"] == "xgboost"
    assert tags["git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["table_version.fraud_test.fraud.gold_transaction_features"] == "4"

    for key in ("average_precision", "roc_auc", "card_precision_top_100", "n_transactions", "n_frauds"):
        assert metrics[f"test_{key}"] == pytest.approx(xgb_result.metrics[key])
    assert xgb_result.metrics["average_precision"] > 0.8  # the amount rule is learnable
    assert metrics["train_n_transactions"] == 7 * 240
    history = client.get_metric_history(xgb_result.run_id, "test_card_precision_top_100_daily")
    assert len(history) == 7

    artifacts = {f.path for f in client.list_artifacts(xgb_result.run_id, "plots")}
    artifacts |= {f.path for f in client.list_artifacts(xgb_result.run_id, "feature_importance")}
    assert {
        "plots/precision_recall_curve.png",
        "feature_importance/feature_importance.csv",
        "feature_importance/feature_importance.png",
    } <= artifacts
    csv_path = mlflow.artifacts.download_artifacts(
        run_id=xgb_result.run_id, artifact_path="feature_importance/feature_importance.csv"
    )
    importance = pd.read_csv(csv_path)
    assert set(importance["feature"]) == set(FEATURE_COLUMNS)
    assert importance.iloc[0]["feature"] == "tx_amount"


def test_train_and_log_registers_and_model_returns_probabilities(xgb_result, gold):
    client = MlflowClient()
    assert xgb_result.registered_version == 1
    version = client.get_model_version("fraud_test_model", "1")
    assert version.run_id == xgb_result.run_id

    model = mlflow.pyfunc.load_model("models:/fraud_test_model/1")
    signature = model.metadata.signature
    assert signature.inputs.input_names() == list(FEATURE_COLUMNS)
    assert "tx_fraud_scenario" not in signature.inputs.input_names()
    assert signature.outputs.input_names() == ["fraud_probability"]
    types = {spec.name: spec.type.name for spec in signature.inputs.inputs}
    # The gold types: bigint counts, int flags, double amounts/ratios/risks.
    assert types["customer_tx_count_1d"] == "long"
    assert types["is_night"] == "integer"
    assert types["tx_amount"] == "double" and types["customer_seconds_since_prev_tx"] == "double"
    assert model.metadata.saved_input_example_info is not None

    scores = model.predict(model_input(gold.head(500)))  # gold dtypes, as toPandas() gives them
    assert scores.ndim == 1 and scores.dtype == np.float64 and len(scores) == 500
    assert ((scores >= 0) & (scores <= 1)).all()
    assert len(np.unique(scores)) > 2  # probabilities, not 0/1 labels

    reqs_path = mlflow.pyfunc.get_model_dependencies(xgb_result.model_uri)
    with open(reqs_path) as fh:
        reqs = fh.read()
    for name in ("mlflow==", "xgboost==", "scikit-learn==", "pandas==", "numpy=="):
        assert name in reqs


def test_logistic_regression_baseline_run(tracking, gold):
    train, test = time_split(gold, **WINDOW)
    result = train_and_log(
        train, test, "logistic_regression", {"C": 0.5}, extra_params=WINDOW, model_name=None
    )
    assert result.registered_version is None
    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags["model_type"] == "logistic_regression"
    assert run.data.tags["git_commit"] == "unknown"
    assert run.data.params["C"] == "0.5"
    assert 0.0 <= result.metrics["roc_auc"] <= 1.0
    scores = mlflow.pyfunc.load_model(result.model_uri).predict(model_input(test))
    assert ((scores > 0) & (scores < 1)).all()
    json.dumps(result.to_dict(), allow_nan=False)


def test_train_and_log_requires_window_params(tracking, gold):
    train, test = time_split(gold, **WINDOW)
    with pytest.raises(ValueError, match="missing"):
        train_and_log(train, test, "logistic_regression", None, extra_params={"train_start": START})


def test_logged_model_loads_without_the_package(xgb_result, gold, tmp_path):
    # The wrapper class is pickled by value: a process where fraud_mlops cannot be imported loads it.
    features = model_input(gold.head(20))
    features.to_parquet(tmp_path / "features.parquet")
    expected = mlflow.pyfunc.load_model(xgb_result.model_uri).predict(features)
    local_model = mlflow.artifacts.download_artifacts(xgb_result.model_uri, dst_path=str(tmp_path / "model"))
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fraud_mlops"] = None  # any import of the package now fails
        import json, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({local_model!r})
        scores = model.predict(pd.read_parquet({str(tmp_path / "features.parquet")!r}))
        print(json.dumps([float(x) for x in scores]))
        """
    )
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got, expected)


def test_spark_udf_scores_gold_rows_as_they_are(spark, xgb_result, gold):
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(
        spark, "models:/fraud_test_model/1", env_manager="local", result_type="double"
    )
    sample = gold.head(200).drop(columns=["tx_datetime", "tx_date"])
    # Counts bigint, flags int, the rest double (with nulls), as in the gold table. One partition:
    # one Python worker loads the model.
    sdf = spark.createDataFrame(sample).coalesce(1)
    assert dict(sdf.dtypes)["customer_tx_count_1d"] == "bigint"
    assert dict(sdf.dtypes)["is_weekend"] == "int"
    features = F.struct(*[F.col(c) for c in FEATURE_COLUMNS])
    scored = sdf.select("transaction_id", udf(features).alias("score")).toPandas()
    scored = scored.sort_values("transaction_id")
    expected = mlflow.pyfunc.load_model("models:/fraud_test_model/1").predict(model_input(sample))
    np.testing.assert_allclose(scored["score"].to_numpy(), expected, rtol=1e-6)
    assert ((scored["score"] >= 0) & (scored["score"] <= 1)).all()


def test_training_window_from_any_subset_of_its_parameters():
    d = dt.date
    # Both dates: the window itself, whatever train_days says.
    assert resolve_training_window(d(2018, 7, 25), d(2018, 7, 31), 28) == (d(2018, 7, 25), d(2018, 7, 31))
    # train_end alone: the train_days days ending on it (the case that used to fail against the latest gold day).
    assert resolve_training_window(None, d(2018, 7, 31), 7) == (d(2018, 7, 25), d(2018, 7, 31))
    assert resolve_training_window(None, d(2018, 7, 31), 1) == (d(2018, 7, 31), d(2018, 7, 31))
    # train_start alone: the train_days days starting on it.
    assert resolve_training_window(d(2018, 7, 1), None, 14) == (d(2018, 7, 1), d(2018, 7, 14))
    # Neither: the latest window whose delay and test days are all in gold.
    latest = d(2018, 8, 31)
    assert resolve_training_window(None, None, 7, latest_gold_day=latest, delay_days=7, test_days=7) == (
        d(2018, 8, 11), d(2018, 8, 17))
    with pytest.raises(ValueError, match="train_days must be >= 1"):
        resolve_training_window(None, d(2018, 7, 31), 0)
    with pytest.raises(ValueError, match="train_start 2018-08-01 is after train_end 2018-07-31"):
        resolve_training_window(d(2018, 8, 1), d(2018, 7, 31))
    with pytest.raises(ValueError, match="gold has no day to count back from"):
        resolve_training_window(None, None, 7)
