"""Reason codes: per-feature contributions that add up to the model's margin."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.lifecycle import explain
from fraud_mlops.lifecycle.training import FraudProbabilityModel, feature_matrix, fit_estimator
from fraud_mlops.medallion.schema import FEATURE_COLUMNS

from .synthetic_gold import make_gold_pdf


@pytest.fixture(scope="module")
def data():
    import datetime as dt

    days = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(6)]
    return make_gold_pdf(days, 300, seed=4)


def _logit(p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("model_type,tolerance", [("xgboost", 1e-5), ("logistic_regression", 1e-9)])
def test_contributions_plus_bias_equal_the_margin(data, model_type, tolerance):
    estimator, _ = fit_estimator(model_type, {"n_estimators": 30} if model_type == "xgboost" else None, data)
    model = FraudProbabilityModel(estimator, model_type=model_type)
    contributions, bias = model.contributions(data)
    assert contributions.shape == (len(data), len(FEATURE_COLUMNS)) and bias.shape == (len(data),)
    margin = contributions.sum(axis=1) + bias
    np.testing.assert_allclose(margin, _logit(model.predict(None, data)), atol=tolerance * 10, rtol=tolerance)
    # the nulls of the data are handled (XGBoost natively, the LR by its median imputer)
    assert np.isfinite(contributions).all()


def test_logistic_contribution_is_coefficient_times_standardised_value(data):
    estimator, _ = fit_estimator("logistic_regression", None, data)
    contributions, _ = explain.feature_contributions(estimator, "logistic_regression", feature_matrix(data))
    j = list(FEATURE_COLUMNS).index("tx_amount")
    scaler, clf = estimator.named_steps["scaler"], estimator.named_steps["classifier"]
    expected = (data["tx_amount"] - scaler.mean_[j]) / scaler.scale_[j] * clf.coef_[0][j]
    np.testing.assert_allclose(contributions[:, j], expected.to_numpy(), rtol=1e-9)


def test_top_reasons_order_ties_and_errors():
    contributions = np.array([[0.1, 2.0, -3.0, 2.0], [0.0, 0.0, 0.0, 0.5]])
    out = explain.top_reasons(contributions, ["a", "b", "c", "d"], k=3)
    assert list(out.columns) == explain.reason_columns(3)
    assert out.iloc[0][["reason_1", "reason_2", "reason_3"]].tolist() == ["b", "d", "a"]  # tie: earlier feature
    assert out.iloc[1]["reason_1"] == "d" and out.iloc[1]["reason_1_contribution"] == 0.5
    with pytest.raises(ValueError):
        explain.top_reasons(contributions, ["a", "b"], k=1)
    with pytest.raises(ValueError):
        explain.top_reasons(contributions, ["a", "b", "c", "d"], k=5)


def test_reason_codes_survive_logging_and_loading(data, tmp_path):
    import mlflow

    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.lifecycle.training import train_and_log
    from fraud_mlops.platform.config import LakehouseConfig

    configure_mlflow(LakehouseConfig("c", "s", "delta-rs", tmp_path), "explain")
    train, test = data.iloc[:1200], data.iloc[1200:]
    window = {"train_start": "2018-04-01", "train_end": "2018-04-04", "delay_days": 0, "test_days": 2}
    result = train_and_log(train, test, "xgboost", {"n_estimators": 20}, extra_params=window)
    loaded = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    codes = loaded.reason_codes(test.head(10))
    assert list(codes.index) == list(test.head(10).index)
    assert set(codes["reason_1"]) <= set(FEATURE_COLUMNS)
    assert (codes["reason_1_contribution"] >= codes["reason_2_contribution"]).all()
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "reason_codes")}
    assert artifacts == {"reason_codes/mean_abs_contribution.csv", "reason_codes/mean_abs_contribution.png"}
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/reason_codes/mean_abs_contribution.csv"))
    assert list(table.columns) == ["feature", "mean_abs_contribution"] and len(table) == len(FEATURE_COLUMNS)
