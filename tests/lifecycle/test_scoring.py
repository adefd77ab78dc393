"""Batch scoring with the @champion model: output contract, decisions, idempotent merges."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.platform.config import GOLD_FEATURES, PREDICTIONS

from .synthetic_gold import make_gold_pdf, mlflow_store_config, register_lr_model, to_spark, training_params

MODEL_NAME = "fraud_scoring_test_model"
TRAIN_DAYS = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(8)]
SCORE_DAYS = [dt.date(2018, 5, 1) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    return mlflow_store_config(tmp_path_factory, "mlflow")


@pytest.fixture(scope="module")
def train_pdf():
    return make_gold_pdf(TRAIN_DAYS, 120, seed=1)


@pytest.fixture(scope="module")
def champion(mlflow_store, train_pdf):
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store, "exp")
    return register_lr_model(train_pdf, MODEL_NAME, training_params(TRAIN_DAYS[0], TRAIN_DAYS[-1]))


@pytest.fixture()
def mlflow_env(mlflow_store, champion):
    """Point MLflow at this module's store (another test module may have moved it)."""
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store, "exp")
    return champion


@pytest.fixture()
def gold(lakehouse, spark, train_pdf):
    pdf = pd.concat([train_pdf, make_gold_pdf(SCORE_DAYS, 40, seed=2, id_offset=100_000)], ignore_index=True)
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, pdf))
    return pdf


def _sorted_rows(df):
    return [tuple(r) for r in df.orderBy("transaction_id").collect()]


# ----------------------------------------------------------------------------- tests
def test_champion_uri_and_missing_champion(mlflow_env):
    from fraud_mlops.lifecycle.scoring import ChampionNotFoundError, champion_uri, champion_version

    assert champion_uri("cat.sch.fraud") == "models:/cat.sch.fraud@champion"
    assert champion_version(MODEL_NAME) == mlflow_env
    with pytest.raises(ChampionNotFoundError, match="champion"):
        champion_version("no_such_model")
    with pytest.raises(ValueError):
        champion_uri(" ")


def test_score_transactions_schema_probabilities_and_decisions(spark, mlflow_env, train_pdf):
    import mlflow.pyfunc

    from fraud_mlops.lifecycle.scoring import PREDICTION_COLUMNS, score_transactions

    pdf = make_gold_pdf(SCORE_DAYS, 30, seed=3, id_offset=500)
    uri = f"models:/{MODEL_NAME}/{mlflow_env}"
    when = dt.datetime(2018, 5, 4, 6, 0, tzinfo=dt.UTC)
    out = score_transactions(spark, to_spark(spark, pdf), uri, MODEL_NAME, mlflow_env, 0.3, when)
    assert [(f.name, f.dataType.simpleString()) for f in out.schema.fields] == [
        (name, "int" if t == "int" else t) for name, t in PREDICTION_COLUMNS.items()
    ]
    res = out.toPandas().sort_values("transaction_id").reset_index(drop=True)
    assert len(res) == len(pdf)
    assert res["score"].between(0.0, 1.0).all() and res["score"].notna().all()
    assert (res["decision"] == (res["score"] >= 0.3).astype(int)).all()
    assert set(res["decision_threshold"]) == {0.3}
    assert set(res["model_version"]) == {mlflow_env} and set(res["model_name"]) == {MODEL_NAME}
    assert (pd.to_datetime(res["scored_at"]) == pd.Timestamp("2018-05-04 06:00:00")).all()
    # the Spark UDF gives the same probabilities as the pyfunc on the driver (features by name)
    expected = mlflow.pyfunc.load_model(uri).predict(pdf[list(FEATURE_COLUMNS)])
    np.testing.assert_allclose(res["score"].to_numpy(), np.asarray(expected), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="threshold"):
        score_transactions(spark, to_spark(spark, pdf), uri, MODEL_NAME, mlflow_env, 1.5)


def test_batch_scoring_is_idempotent(lakehouse, gold, mlflow_env):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring

    first = run_batch_scoring(lakehouse, MODEL_NAME, SCORE_DAYS[0], SCORE_DAYS[-1], threshold=0.5)
    n = len(SCORE_DAYS) * 40
    assert first["rows_scored"] == n and first["inserted"] == n and first["updated"] == 0
    assert first["model_version"] == mlflow_env
    assert (first["score_start"], first["score_end"]) == (
        SCORE_DAYS[0].isoformat(),
        SCORE_DAYS[-1].isoformat(),
    )
    rows_before = _sorted_rows(lakehouse.read(PREDICTIONS))
    version_before = lakehouse.version(PREDICTIONS)
    assert first["predictions_version"] == version_before

    second = run_batch_scoring(lakehouse, MODEL_NAME, SCORE_DAYS[0], SCORE_DAYS[-1], threshold=0.5)
    assert second["rows_scored"] == n
    assert second["inserted"] == 0 and second["updated"] == 0 and second["unchanged"] == n
    assert lakehouse.version(PREDICTIONS) == version_before  # no commit at all
    assert _sorted_rows(lakehouse.read(PREDICTIONS)) == rows_before
    assert sum(r[6] for r in rows_before) == first["flagged"]


def _scored_days(lakehouse):
    return {r["tx_date"] for r in lakehouse.read(PREDICTIONS).select("tx_date").distinct().collect()}


def test_default_range_catches_up_from_last_scored_day(lakehouse, spark, gold, mlflow_env):
    from fraud_mlops.lifecycle.scoring import default_range, run_batch_scoring

    # first run, no predictions table: the latest gold day only
    assert default_range(lakehouse) == (SCORE_DAYS[-1], SCORE_DAYS[-1])
    res = run_batch_scoring(lakehouse, MODEL_NAME, None, None, threshold=0.5)
    assert res["score_start"] == res["score_end"] == SCORE_DAYS[-1].isoformat()
    assert res["rows_scored"] == res["inserted"] == 40
    assert _scored_days(lakehouse) == {SCORE_DAYS[-1]}

    # two later days land in gold (say the run of the first one failed): the default scores both
    late_days = [SCORE_DAYS[-1] + dt.timedelta(days=i) for i in (1, 2)]
    late = make_gold_pdf(late_days, 25, seed=4, id_offset=200_000)
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, pd.concat([gold, late], ignore_index=True)))
    res = run_batch_scoring(lakehouse, MODEL_NAME, None, None, threshold=0.5)
    assert (res["score_start"], res["score_end"]) == (late_days[0].isoformat(), late_days[-1].isoformat())
    assert res["rows_scored"] == res["inserted"] == 50 and res["updated"] == res["unchanged"] == 0
    assert _scored_days(lakehouse) == {SCORE_DAYS[-1], *late_days}
    version = lakehouse.version(PREDICTIONS)
    assert res["predictions_version"] == version

    # everything is scored: the default range is empty, nothing is written
    assert default_range(lakehouse) == (late_days[-1] + dt.timedelta(days=1), late_days[-1])
    res = run_batch_scoring(lakehouse, MODEL_NAME, None, None, threshold=0.5)
    assert res["score_start"] is None and res["score_end"] is None
    assert res["rows_scored"] == res["inserted"] == res["updated"] == res["unchanged"] == res["flagged"] == 0
    assert res["predictions_version"] == version and lakehouse.version(PREDICTIONS) == version
    assert res["model_version"] == mlflow_env

    # a single bound means a single day (earlier days are never revisited by the default)
    one = run_batch_scoring(lakehouse, MODEL_NAME, SCORE_DAYS[0], None, threshold=0.5)
    assert one["score_start"] == one["score_end"] == SCORE_DAYS[0].isoformat() and one["inserted"] == 40
    with pytest.raises(ValueError, match="after"):
        run_batch_scoring(lakehouse, MODEL_NAME, SCORE_DAYS[-1], SCORE_DAYS[0])


def test_default_range_with_empty_predictions_table(lakehouse, spark, gold, mlflow_env):
    from fraud_mlops.lifecycle.scoring import PREDICTION_COLUMNS, default_range

    schema = ", ".join(f"{name} {t}" for name, t in PREDICTION_COLUMNS.items())
    lakehouse.overwrite(PREDICTIONS, spark.createDataFrame([], schema))
    assert lakehouse.exists(PREDICTIONS)
    assert default_range(lakehouse) == (SCORE_DAYS[-1], SCORE_DAYS[-1])


def test_threshold_change_and_new_champion_rewrite_rows(lakehouse, gold, mlflow_env, train_pdf):
    from pyspark.sql import functions as F

    from fraud_mlops.lifecycle.scoring import run_batch_scoring

    day = SCORE_DAYS[1]
    run_batch_scoring(lakehouse, MODEL_NAME, day, day, threshold=0.5)
    all_flagged = run_batch_scoring(lakehouse, MODEL_NAME, day, day, threshold=0.0)
    assert all_flagged["updated"] == 40 and all_flagged["inserted"] == 0 and all_flagged["flagged"] == 40
    preds = lakehouse.read(PREDICTIONS)
    assert preds.filter((F.col("decision") != 1) | (F.col("decision_threshold") != 0.0)).count() == 0
    assert preds.count() == 40

    # promote a new version: the same range is rescored and rewritten with the new version
    new_version = register_lr_model(
        train_pdf.sample(frac=0.7, random_state=0), MODEL_NAME, training_params(TRAIN_DAYS[0], TRAIN_DAYS[-1])
    )
    try:
        res = run_batch_scoring(lakehouse, MODEL_NAME, day, day, threshold=0.0)
        assert res["model_version"] == new_version and res["updated"] == 40 and res["inserted"] == 0
        versions = {r[0] for r in lakehouse.read(PREDICTIONS).select("model_version").distinct().collect()}
        assert versions == {new_version}
    finally:
        from mlflow.tracking import MlflowClient

        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", mlflow_env)


def test_explicit_range_without_gold_rows_is_an_error_and_writes_nothing(lakehouse, gold, mlflow_env):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring

    with pytest.raises(ValueError, match=r"no gold rows with tx_date in \[2019-01-01, 2019-01-02\]"):
        run_batch_scoring(lakehouse, MODEL_NAME, dt.date(2019, 1, 1), dt.date(2019, 1, 2))
    assert not lakehouse.exists(PREDICTIONS)


# ----------------------------------------------------------------------------- decisions, reason codes, shadow
XGB_MODEL = "fraud_scoring_xgb_model"


@pytest.fixture(scope="module")
def xgb_versions(mlflow_store, train_pdf):
    """An XGBoost champion (threshold and budget tags as training records them) and an LR challenger."""
    from mlflow.tracking import MlflowClient

    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.lifecycle.training import train_and_log

    configure_mlflow(mlflow_store, "exp")
    window = {"train_start": "2018-04-01", "train_end": "2018-04-06", "delay_days": 0, "test_days": 2}
    train, test = train_pdf.iloc[:720], train_pdf.iloc[720:]
    client = MlflowClient()
    versions = {}
    for alias, model_type, threshold, budget in (("champion", "xgboost", 0.2, 5), ("challenger", "logistic_regression", 0.3, 5)):
        result = train_and_log(train, test, model_type, {"n_estimators": 30} if model_type == "xgboost" else None,
                               model_name=XGB_MODEL, extra_params=window)
        version = str(result.registered_version)
        client.set_model_version_tag(XGB_MODEL, version, "decision_threshold", repr(threshold))
        client.set_model_version_tag(XGB_MODEL, version, "alert_budget", str(budget))
        client.set_registered_model_alias(XGB_MODEL, alias, version)
        versions[alias] = version
    return versions


def test_recorded_threshold_daily_ranks_budget_and_reason_codes(lakehouse, gold, mlflow_store, xgb_versions):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store, "exp")
    result = run_batch_scoring(lakehouse, XGB_MODEL, SCORE_DAYS[0], SCORE_DAYS[-1], shadow=False)
    assert result["decision_threshold"] == 0.2 and result["alert_budget"] == 5
    assert "tag decision_threshold" in result["threshold_source"] and result["shadow"] is None
    res = lakehouse.read(PREDICTIONS).toPandas()
    assert (res["decision"] == (res["score"] >= 0.2).astype(int)).all() and res["decision"].sum() > 0
    for _, day in res.groupby("tx_date"):
        # daily_rank: 1..n by score (descending), ties by transaction id
        ordered = day.sort_values(["score", "transaction_id"], ascending=[False, True])
        assert ordered["daily_rank"].tolist() == list(range(1, len(day) + 1))
        # card_daily_rank: the cards by their highest score; within_budget = the first 5 cards
        cards = day.groupby("customer_id")["score"].max().reset_index()
        cards = cards.sort_values(["score", "customer_id"], ascending=[False, True]).reset_index(drop=True)
        expected = dict(zip(cards["customer_id"], range(1, len(cards) + 1)))
        assert (day["card_daily_rank"] == day["customer_id"].map(expected)).all()
        assert day.loc[day["within_budget"] == 1, "customer_id"].nunique() == min(5, len(cards))
        assert (day["within_budget"] == (day["card_daily_rank"] <= 5)).all()
    flagged = res["decision"] == 1
    assert res.loc[flagged, "reason_1"].isin(FEATURE_COLUMNS).all()
    assert (res.loc[flagged, "reason_1_contribution"] >= res.loc[flagged, "reason_2_contribution"]).all()
    assert res.loc[~flagged, ["reason_1", "reason_3", "reason_3_contribution"]].isna().all().all()
    assert result["card_alerts"] == res.loc[flagged].groupby("tx_date")["customer_id"].nunique().sum()

    # a job override wins over the recorded values and rewrites the rows
    again = run_batch_scoring(lakehouse, XGB_MODEL, SCORE_DAYS[0], SCORE_DAYS[-1], threshold=0.9, alert_budget=2,
                              shadow=False)
    assert again["updated"] == len(res) and again["threshold_source"] == "job parameter decision_threshold"


def test_shadow_scoring_never_touches_predictions(lakehouse, gold, mlflow_store, xgb_versions):
    from fraud_mlops.lifecycle.scoring import run_batch_scoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.platform.config import PREDICTIONS_SHADOW

    configure_mlflow(mlflow_store, "exp")
    run_batch_scoring(lakehouse, XGB_MODEL, SCORE_DAYS[0], SCORE_DAYS[-1], shadow=False)
    before_rows, before_version = _sorted_rows(lakehouse.read(PREDICTIONS)), lakehouse.version(PREDICTIONS)
    assert not lakehouse.exists(PREDICTIONS_SHADOW)

    result = run_batch_scoring(lakehouse, XGB_MODEL, SCORE_DAYS[0], SCORE_DAYS[-1])
    assert lakehouse.version(PREDICTIONS) == before_version and _sorted_rows(lakehouse.read(PREDICTIONS)) == before_rows
    shadow = lakehouse.read(PREDICTIONS_SHADOW).toPandas()
    assert result["shadow"]["model_version"] == xgb_versions["challenger"] == shadow["model_version"].unique().item()
    assert result["shadow"]["decision_threshold"] == 0.3 and result["shadow"]["inserted"] == len(shadow)
    assert sorted(shadow["transaction_id"]) == sorted(r[0] for r in before_rows)
    # the challenger's own scores, not the champion's
    champion_scores = {r[0]: r[3] for r in before_rows}
    assert any(abs(champion_scores[t] - s) > 1e-6 for t, s in zip(shadow["transaction_id"], shadow["score"]))
    # a re-run changes neither table
    shadow_version = lakehouse.version(PREDICTIONS_SHADOW)
    again = run_batch_scoring(lakehouse, XGB_MODEL, SCORE_DAYS[0], SCORE_DAYS[-1])
    assert again["shadow"]["inserted"] == again["shadow"]["updated"] == 0
    assert (lakehouse.version(PREDICTIONS), lakehouse.version(PREDICTIONS_SHADOW)) == (before_version, shadow_version)
