"""The served model's one-row path (OneRowModel): exactly the pyfunc's answers, or not used at all."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraud_mlops.lifecycle.training import LOGISTIC_REGRESSION, XGBOOST, FraudProbabilityModel, fit_estimator
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.serving.model import OneRowModel, one_thread

from ..lifecycle.synthetic_gold import make_gold_pdf


@pytest.fixture(scope="module")
def train_pdf():
    return make_gold_pdf([dt.date(2018, 5, 1) + dt.timedelta(days=i) for i in range(5)], 150, seed=7)


def _model(train_pdf, model_type, params):
    estimator, _ = fit_estimator(model_type, params, train_pdf)
    return FraudProbabilityModel(estimator, model_type=model_type)


def test_the_one_row_path_equals_the_pyfunc_on_gold_rows(train_pdf):
    model = _model(train_pdf, XGBOOST, {"n_estimators": 30, "max_depth": 3})
    one_row = OneRowModel.for_model(model)
    assert one_row is not None
    rows = make_gold_pdf([dt.date(2018, 6, 1)], 60, seed=8)
    with one_thread():
        for _, row in rows.iterrows():
            features = {c: (None if pd.isna(row[c]) else row[c].item() if hasattr(row[c], "item") else row[c])
                        for c in FEATURE_COLUMNS}
            frame = pd.DataFrame([features], columns=list(FEATURE_COLUMNS))
            probability, reasons = one_row.score(features, 3)
            assert probability == float(model.predict(None, frame)[0])
            codes = model.reason_codes(frame, 3).iloc[0]
            assert reasons == [(codes[f"reason_{i}"], float(codes[f"reason_{i}_contribution"])) for i in (1, 2, 3)]


def test_no_one_row_path_for_other_models_or_when_it_differs(train_pdf, monkeypatch):
    assert OneRowModel.for_model(_model(train_pdf, LOGISTIC_REGRESSION, {"C": 1.0})) is None
    xgb = _model(train_pdf, XGBOOST, {"n_estimators": 10, "max_depth": 2})

    def off_by_a_little(self, features, k):  # a one-row path that is not exact is never used
        return 0.5 + np.nextafter(0, 1), []

    monkeypatch.setattr(OneRowModel, "score", off_by_a_little)
    assert OneRowModel.for_model(xgb) is None
