"""End to end on a slice of the real transactions, through the bundle's own job definitions.

Lands 21 days, runs the ingestion job, lands 3 more days and runs it again (only the new days are
recomputed, and gold equals a from-scratch build), re-runs it (nothing changes), then trains,
validates and promotes, scores twice (the second run changes nothing) and monitors.
"""

from __future__ import annotations

import datetime as dt
import runpy
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from bundlekit.loader import load_bundle
from bundlekit.runner import run_job
from fraud_mlops.medallion import features
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.platform import config as C

from ..conftest import REPO_ROOT, SHIPPED_LANDING

FIRST_DAYS = [f"2018-07-{d:02d}" for d in range(8, 29)]
LATER_DAYS = ["2018-07-29", "2018-07-30", "2018-07-31"]
TABLES = (C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE, C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY)


def _land(landing, days):
    landing.mkdir(parents=True, exist_ok=True)
    for day in days:
        shutil.copy(SHIPPED_LANDING / f"{day}.csv.gz", landing / f"{day}.csv.gz")


def _run(bundle, job, params=None):
    result = run_job(bundle, job, params or {}, log=lambda line: None)
    assert result.ok, {k: t.error for k, t in result.tasks.items() if t.error}
    return result


@pytest.mark.skipif(not SHIPPED_LANDING.is_dir(), reason="the shipped landing slice is missing")
def test_jobs_end_to_end_on_real_data(spark, lakehouse, tmp_path, monkeypatch, online_store_url):
    monkeypatch.chdir(tmp_path)  # the training task's git lookup and any stray relative path stay here
    landing = tmp_path / "landing"
    bundle = load_bundle(
        REPO_ROOT, "dev", {"landing_path": str(landing), "catalog": lakehouse.config.catalog,
                           "schema": lakehouse.config.schema}
    )

    # Ingestion, in two landings: the second recomputes only the new days.
    _land(landing, FIRST_DAYS)
    first = _run(bundle, "ingestion")
    assert first.tasks["bronze"].result["files_ingested"] == len(FIRST_DAYS)
    _land(landing, LATER_DAYS)
    second = _run(bundle, "ingestion")
    assert second.tasks["bronze"].result["files_ingested"] == len(LATER_DAYS)
    assert second.tasks["gold"].result["recomputed_from"] == LATER_DAYS[0]
    silver_result = second.tasks["silver"].result
    assert silver_result["rows_in"] == silver_result["rows_silver"] + silver_result["rows_quarantined"]
    n_bronze = lakehouse.count(C.BRONZE_TRANSACTIONS)
    assert n_bronze == lakehouse.count(C.SILVER_TRANSACTIONS) + lakehouse.count(C.SILVER_QUARANTINE)
    assert lakehouse.count(C.GOLD_FEATURES) == lakehouse.count(C.SILVER_TRANSACTIONS)
    assert lakehouse.count(C.GOLD_DAILY_SUMMARY) == len(FIRST_DAYS) + len(LATER_DAYS)
    from_scratch = features.build_features(lakehouse.read(C.SILVER_TRANSACTIONS))
    assert_df_equality(lakehouse.read(C.GOLD_FEATURES), from_scratch, ignore_row_order=True,
                       ignore_nullable=True, allow_nan_equality=True)
    assert "tx_fraud_scenario" not in lakehouse.read(C.GOLD_FEATURES).columns

    versions = {t: lakehouse.version(t) for t in TABLES}
    _run(bundle, "ingestion")
    assert {t: lakehouse.version(t) for t in TABLES} == versions, "a re-run with no new file must change nothing"

    # Training: train -> validate -> promote, on a short split of the slice.
    split = {"train_start": "2018-07-22", "train_end": "2018-07-24", "delay_days": "2", "test_days": "3",
             "n_folds": "2", "ablation": "false", "backtest_weeks": "1", "alert_budget": "20",
             "search_space": '{"xgboost": {"n_estimators": [20, 40]}, "logistic_regression": {"C": [1.0]}}',
             "min_average_precision": "0.2", "min_roc_auc": "0.7"}
    training = _run(bundle, "training", split)
    train = training.tasks["train"].result
    assert set(train["models"]) == {"xgboost", "logistic_regression"}
    assert train["window"]["test_start"] == "2018-07-27" and train["window"]["test_end"] == "2018-07-29"
    # chosen on the two validation folds before the training window's end, never on the test days
    assert [f["validation_end"] for f in train["selection"]["folds"]] == ["2018-07-24", "2018-07-21"]
    assert train["models"]["xgboost"]["params"]["n_estimators"] == train["selection"]["selected"]["xgboost"]["params"]["n_estimators"]
    assert train["decision"]["alert_budget"] == 20 and 0 < train["decision"]["decision_threshold"] < 1
    assert training.tasks["promote"].result["promoted"] is True, training.tasks["validate"].result["reasons"]
    version = training.tasks["promote"].result["champion_version"]

    # Batch scoring with @champion; the same range again changes nothing.
    scoring_params = {"score_start": "2018-07-30", "score_end": "2018-07-31"}
    scored = _run(bundle, "batch_scoring", scoring_params).tasks["score"].result
    n_days = lakehouse.read(C.GOLD_FEATURES).where(F.col("tx_date") >= "2018-07-30").count()
    assert scored["rows_scored"] == scored["inserted"] == n_days and scored["model_version"] == version
    assert scored["decision_threshold"] == train["decision"]["decision_threshold"] and scored["alert_budget"] == 20
    predictions_version = lakehouse.version(C.PREDICTIONS)
    again = _run(bundle, "batch_scoring", scoring_params).tasks["score"].result
    assert again["inserted"] == again["updated"] == 0
    assert lakehouse.version(C.PREDICTIONS) == predictions_version

    # Real-time scoring: the online_features job publishes silver to the online store (PostgreSQL) and a
    # re-run publishes nothing; then every transaction of 2018-07-31 goes through the REST endpoint in
    # time order, each request's features computed from the store alone, and every answer equals the
    # batch job's score of the same transaction.
    monkeypatch.setenv("FRAUD_MLOPS_ONLINE_STORE", online_store_url)
    published = _run(bundle, "online_features", {"publish_end": "2018-07-30"}).tasks["publish"].result
    assert published["days_published"][-1] == "2018-07-30" and published["rows"] == lakehouse.read(
        C.SILVER_TRANSACTIONS).where(F.col("tx_date") <= "2018-07-30").count()
    assert _run(bundle, "online_features", {"publish_end": "2018-07-30"}).tasks["publish"].result["rows"] == 0
    from fraud_mlops.serving.replay import replay_against_batch

    parity = replay_against_batch(lakehouse, bundle.variables["model_name"], landing,
                                  dt.date(2018, 7, 31), dt.date(2018, 7, 31))
    n_day = lakehouse.read(C.GOLD_FEATURES).where(F.col("tx_date") == "2018-07-31").count()
    assert parity["n_requests"] == parity["n_compared"] == n_day, parity
    assert parity["equal"] and parity["max_abs_difference"] <= 1e-6, parity
    # Monitoring writes its metrics and decides on the retrain branch.
    window = {"window_start": "2018-07-30", "window_end": "2018-07-31", "min_average_precision": "0.05",
              "label_delay_days": "0"}
    monitoring = _run(bundle, "monitoring", {**window, "psi_retrain_threshold": "100"})
    monitor = monitoring.tasks["monitor"].result
    assert monitor["n_transactions"] == n_days and 0.0 <= monitor["score_psi"] < 0.25
    assert monitor["average_precision"] is not None and monitor["alerts_per_day_mean"] is not None
    assert monitor["retrain"] is False and monitoring.tasks["retrain"].status == "EXCLUDED"
    metrics = lakehouse.read(C.MONITORING_METRICS)
    assert metrics.where("metric = 'psi'").count() == len(FEATURE_COLUMNS) + 1
    # A retrain decision runs the training job with its defaults: 56 days of history and 4 prequential
    # folds, which these 24 days cannot fill, so it fails with an error naming what is missing.
    retrain = run_job(bundle, "monitoring", {**window, "psi_retrain_threshold": "0"}, log=lambda line: None)
    assert retrain.tasks["monitor"].result["retrain"] is True and retrain.tasks["retrain"].status == "FAILED"
    assert "train FAILED" in retrain.tasks["retrain"].error

    # The inference log the quality monitor watches: every scored transaction, labelled here (delay 0);
    # the second run of the same window changes nothing.
    logged = monitor["inference_log"]
    assert logged["rows_in"] == logged["rows_out"] == logged["inserted"] == logged["labelled"] == n_days
    assert lakehouse.count(C.INFERENCE_LOG) == lakehouse.count(C.PREDICTIONS) == n_days
    again_logged = retrain.tasks["monitor"].result["inference_log"]
    assert again_logged["inserted"] == again_logged["updated"] == 0
    assert again_logged["table_version"] == logged["table_version"]

    # The dashboard's datasets and widgets, and the SQL alert, on these tables (tests/test_dashboard.py).
    from ..test_dashboard import TABLES as DASHBOARD_TABLES
    from ..test_dashboard import alert_query, check_queries, load_dashboard, register_tables

    register_tables(spark, {t: lakehouse.read(t) for t in DASHBOARD_TABLES})
    problems, datasets = check_queries(spark, load_dashboard())
    assert problems == []
    assert datasets["daily_summary"].count() == len(FIRST_DAYS) + len(LATER_DAYS)
    assert datasets["card_alerts_vs_budget"].where("series = 'alert budget'").collect()[0]["cards"] == 20
    # the second run of the window replaced the first one's rows: one PSI per feature and the score
    assert datasets["psi_over_time"].count() == len(FEATURE_COLUMNS) + 1
    latest = datasets["latest_run"].first()
    assert latest["retrain"] == 1.0 and latest["alert"] == float(retrain.tasks["monitor"].result["alert"])
    fired = spark.sql(alert_query(lakehouse.config.catalog, lakehouse.config.schema)).collect()
    assert len(fired) == 1 and fired[0]["alert"] == latest["alert"] and fired[0]["retrain"] == 1.0
    for table in DASHBOARD_TABLES:
        spark.catalog.dropTempView(table)

    # The exploratory notebook imports the same library and runs on the same tables.
    monkeypatch.setenv("FRAUD_CATALOG", lakehouse.config.catalog)
    monkeypatch.setenv("FRAUD_SCHEMA", lakehouse.config.schema)
    namespace = runpy.run_path(str(REPO_ROOT / "notebooks" / "explore_features.py"))
    assert namespace["gold"].count() == lakehouse.count(C.GOLD_FEATURES)
    # ... as do the chart notebooks: every figure is written, none empty.
    figures = tmp_path / "figures"
    monkeypatch.setenv("FRAUD_FIGURES_DIR", str(figures))
    expected = {"data_overview": 4, "model_report": 6, "monitoring_report": 4}
    for notebook, n_figures in expected.items():
        written = runpy.run_path(str(REPO_ROOT / "notebooks" / f"{notebook}.py"))["ctx"].written
        assert len(written) == n_figures, (notebook, written)
        assert all(Path(p).stat().st_size > 5_000 for p in written), written
    assert len(list(figures.glob("*.png"))) == sum(expected.values())
    # The HTML report of the same tables: every section, with the model versions and charts.
    from fraud_mlops.reporting.html_report import report_summary, write_report

    page = write_report(lakehouse, bundle.variables["model_name"], tmp_path / "report.html").read_text(encoding="utf-8")
    assert report_summary(page)["charts"] == 5 and "<td>champion</td>" in page
    # ... and so does the training-history study, here on one fold and the slice's few days.
    monkeypatch.setenv("TRAIN_END", "2018-07-31")
    monkeypatch.setenv("TRAIN_DAYS", "2,4")
    monkeypatch.setenv("N_FOLDS", "1")
    study = runpy.run_path(str(REPO_ROOT / "notebooks" / "training_history_study.py"))["study"]
    assert list(study["train_days"]) == [2, 4] and study["average_precision"].between(0, 1).all()
