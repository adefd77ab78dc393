"""Shared test helpers: a synthetic gold feature table and a tiny registered MLflow model.

Plain functions (no fixtures), used by ``test_scoring`` and ``test_monitoring``::

    from .synthetic_gold import make_gold_pdf, register_lr_model, to_spark
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraud_mlops.platform.config import LakehouseConfig

INT_FEATURES = frozenset(
    {"is_weekend", "is_night", "customer_distinct_terminals_1d", "customer_high_amount_count_7d"}
    | {c for c in FEATURE_COLUMNS if "_tx_count_" in c}
)
NULLABLE_FEATURES = ("customer_seconds_since_prev_tx", "customer_amount_ratio_30d", "terminal_days_since_first_fraud_30d")


# ----------------------------------------------------------------------------- synthetic gold
def make_gold_pdf(
    days,
    n_per_day,
    seed,
    id_offset=0,
    *,
    amount_factor=1.0,
    n_customers=60,
    risk_noise=0.02,
    noon_timestamps=False,
):
    """Synthetic gold rows (pandas): fraud driven by the amount and terminal risk (a strong signal).

    Args:
        days: the ``tx_date`` values; ``n_per_day`` rows each.
        seed: seed of the numpy generator; the same arguments give the same frame.
        id_offset: first ``transaction_id`` (ids are consecutive).
        amount_factor: multiplies ``tx_amount`` *after* the labels are drawn, so a factor other
            than 1 drifts the feature without changing the fraud rate.
        n_customers: ``customer_id`` is drawn uniformly from ``0 .. n_customers - 1``.
        risk_noise: standard deviation of the noise between the hidden risk that drives the labels
            and the ``terminal_risk_*`` features.
        noon_timestamps: every ``tx_datetime`` at 12:00 of its day; otherwise spread uniformly
            over the day (to the second).
    """
    rng = np.random.default_rng(seed)
    n = len(days) * n_per_day
    tx_date = np.repeat(np.array(days, dtype=object), n_per_day)
    if noon_timestamps:
        tx_datetime = [dt.datetime.combine(d, dt.time(12)) for d in tx_date]
    else:
        secs = rng.integers(0, 86_400, n)
        tx_datetime = [
            dt.datetime.combine(d, dt.time()) + dt.timedelta(seconds=int(s)) for d, s in zip(tx_date, secs)
        ]
    base_amount = rng.lognormal(3.5, 0.6, n)
    risk = rng.beta(1, 8, n)
    logit = -7.0 + 0.06 * base_amount + 20.0 * risk
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int32")
    pdf = pd.DataFrame(
        {
            "transaction_id": np.arange(id_offset, id_offset + n, dtype="int64"),
            "tx_datetime": tx_datetime,
            "tx_date": tx_date,
            "customer_id": rng.integers(0, n_customers, n).astype("int64"),
            "terminal_id": rng.integers(0, 200, n).astype("int64"),
            "tx_amount": np.round(base_amount * amount_factor, 2),
            LABEL_COLUMN: fraud,
        }
    )
    for c in FEATURE_COLUMNS:
        if c == "tx_amount":
            continue
        if c in INT_FEATURES:
            pdf[c] = rng.integers(0, 2 if c.startswith("is_") else 20, n).astype("int32")
        elif c.startswith("terminal_risk"):
            pdf[c] = np.clip(risk + rng.normal(0, risk_noise, n), 0, 1)
        else:
            pdf[c] = rng.lognormal(3.0, 0.5, n)
    for c in NULLABLE_FEATURES:
        pdf.loc[rng.random(n) < 0.1, c] = np.nan
    return pdf


def gold_schema():
    """The Spark schema of :func:`make_gold_pdf` frames (int features as int, the rest double)."""
    from pyspark.sql import types as T

    fields = [
        T.StructField("transaction_id", T.LongType()),
        T.StructField("tx_datetime", T.TimestampType()),
        T.StructField("tx_date", T.DateType()),
        T.StructField("customer_id", T.LongType()),
        T.StructField("terminal_id", T.LongType()),
        T.StructField("tx_amount", T.DoubleType()),
        T.StructField(LABEL_COLUMN, T.IntegerType()),
    ]
    for c in FEATURE_COLUMNS:
        if c != "tx_amount":
            fields.append(T.StructField(c, T.IntegerType() if c in INT_FEATURES else T.DoubleType()))
    return T.StructType(fields)


def to_spark(spark, pdf):
    """A :func:`make_gold_pdf` frame as a Spark DataFrame with :func:`gold_schema`."""
    schema = gold_schema()
    return spark.createDataFrame(pdf[[f.name for f in schema.fields]], schema)


# ----------------------------------------------------------------------------- tiny registered model
def mlflow_store_config(tmp_path_factory, basename="mlflow"):
    """A local :class:`LakehouseConfig` whose MLflow store lives in a fresh temporary folder."""
    return LakehouseConfig("c", "s", "delta-rs", tmp_path_factory.mktemp(basename))


def training_params(train_start, train_end, delay_days=7, test_days=7):
    """The training-window run params that scoring and monitoring read back from a model's run."""
    return {
        "train_start": train_start.isoformat(),
        "train_end": train_end.isoformat(),
        "delay_days": delay_days,
        "test_days": test_days,
    }


def register_lr_model(pdf, model_name, params, alias="champion"):
    """Log a pyfunc over a logistic regression on FEATURE_COLUMNS with run ``params``; register it.

    MLflow must already point at a store (``configure_mlflow``). Sets ``alias`` on the new version
    unless it is empty; returns the version as a string.
    """
    import mlflow
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feature_columns = list(FEATURE_COLUMNS)

    class LogisticFraudModel(mlflow.pyfunc.PythonModel):  # local class: pickled by value
        def __init__(self, clf):
            self.clf = clf

        def predict(self, context, model_input, params=None):
            x = model_input[feature_columns].astype("float64").fillna(0.0).to_numpy()
            return self.clf.predict_proba(x)[:, 1]

    x = pdf[feature_columns].astype("float64").fillna(0.0).to_numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, pdf[LABEL_COLUMN])
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        info = mlflow.pyfunc.log_model(name="model", python_model=LogisticFraudModel(clf))
    mv = mlflow.register_model(info.model_uri, model_name)
    assert mv.run_id == run.info.run_id
    if alias:
        MlflowClient().set_registered_model_alias(model_name, alias, mv.version)
    return str(mv.version)
