"""Prequential model selection: the folds, the search space, the selection rule, the ablation and the backtest."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.lifecycle import selection as S
from fraud_mlops.lifecycle.training import evaluation_window

from .synthetic_gold import make_gold_pdf, mlflow_store_config

D = dt.date


# ------------------------------------------------------------------------------------------ folds
def test_folds_of_the_handbook_split():
    folds = S.prequential_folds(D(2018, 7, 31), 56, delay_days=7, validation_days=7, n_folds=4)
    assert [(f.train_end, f.validation_start, f.validation_end) for f in folds] == [
        (D(2018, 7, 17), D(2018, 7, 25), D(2018, 7, 31)),
        (D(2018, 7, 10), D(2018, 7, 18), D(2018, 7, 24)),
        (D(2018, 7, 3), D(2018, 7, 11), D(2018, 7, 17)),
        (D(2018, 6, 26), D(2018, 7, 4), D(2018, 7, 10)),
    ]
    assert all((f.train_end - f.train_start).days + 1 == 56 for f in folds)
    assert S.folds_date_range(folds) == (D(2018, 5, 2), D(2018, 7, 31))


@settings(max_examples=200, deadline=None)
@given(train_days=st.integers(1, 120), delay=st.integers(0, 14), validation=st.integers(1, 14),
       n_folds=st.integers(1, 6), step=st.one_of(st.none(), st.integers(1, 14)))
def test_folds_never_overlap_their_delay_validation_or_the_test_window(train_days, delay, validation, n_folds, step):
    train_end = D(2018, 7, 31)
    test_start, _ = evaluation_window(train_end, delay, validation)
    folds = S.prequential_folds(train_end, train_days, delay_days=delay, validation_days=validation,
                                n_folds=n_folds, step_days=step)
    assert len(folds) == n_folds
    for f in folds:
        # training, then exactly `delay` unused days, then validation: no day shared
        assert f.train_start <= f.train_end < f.validation_start <= f.validation_end
        assert (f.validation_start - f.train_end).days == delay + 1
        assert (f.validation_end - f.validation_start).days + 1 == validation
        # every validation day is a training-window day of the final model, before its delay and test
        assert f.validation_end <= train_end < test_start
    if step is None or step >= validation:  # validation windows are disjoint
        spans = sorted((f.validation_start, f.validation_end) for f in folds)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("kwargs", [{"n_folds": 0}, {"validation_days": 0}, {"delay_days": -1}, {"step_days": 0}])
def test_bad_fold_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        S.prequential_folds(D(2018, 7, 31), 7, **kwargs)
    with pytest.raises(ValueError, match="train_days"):
        S.prequential_folds(D(2018, 7, 31), 0)


# ----------------------------------------------------------------------------------- search space
def test_search_space_default_json_and_errors():
    assert S.parse_search_space("") == S.parse_search_space(None) == S.DEFAULT_SEARCH_SPACE
    space = S.parse_search_space('{"xgboost": {"max_depth": [2, 3], "n_estimators": 50}}')
    assert space == {"xgboost": {"max_depth": [2, 3], "n_estimators": [50]}}
    for bad, message in [("{", "JSON"), ('{"svm": {}}', "unknown model type"), ("[]", "JSON object"),
                         ('{"xgboost": {"depth": [3]}}', "unknown xgboost parameter"),
                         ('{"xgboost": {"max_depth": []}}', "no value")]:
        with pytest.raises(ValueError, match=message):
            S.parse_search_space(bad)


def test_candidates_grid_and_random_search():
    space = {"xgboost": {"max_depth": [3, 4, 6], "n_estimators": [100, 200]}, "logistic_regression": {"C": [1.0]}}
    grid = S.candidates(space)
    assert len(grid) == 7 and grid[0] == S.Candidate("xgboost", {"max_depth": 3, "n_estimators": 100})
    sample = S.candidates(space, n_random=2, seed=5)
    assert len(sample) == 3 and sample == S.candidates(space, n_random=2, seed=5)
    assert all(c in grid for c in sample)


def _result(model_type, cp, ap):
    return S.CandidateResult(S.Candidate(model_type, {"cp": cp, "ap": ap}),
                             [{"card_precision_top_100": cp, "average_precision": ap, "roc_auc": 0.9}])


def test_select_best_card_precision_first_then_average_precision():
    a, b, c = _result("xgboost", 0.300, 0.60), _result("xgboost", 0.299, 0.70), _result("xgboost", 0.290, 0.90)
    assert S.select_best([a, b, c]) is b  # within 0.002 of the best CP: the higher AP wins
    assert S.select_best([a, b, c], cp_tolerance=0.0) is a
    assert S.select_best([c, _result("xgboost", 0.29, 0.90)]) is c  # a full tie: the earliest
    with pytest.raises(ValueError):
        S.select_best([])


# ------------------------------------------------------------------------------ run on synthetic gold
DAYS = [D(2018, 4, 1) + dt.timedelta(days=i) for i in range(40)]


@pytest.fixture(scope="module")
def gold():
    return make_gold_pdf(DAYS, 150, seed=11, n_customers=400)


def test_run_selection_logs_candidates_ablation_and_backtest(gold, tmp_path_factory):
    import mlflow

    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(mlflow_store_config(tmp_path_factory, "selection"), "selection")
    space = {"xgboost": {"max_depth": [2, 3], "n_estimators": [20]}, "logistic_regression": {"C": [0.1, 1.0]}}
    settings_ = S.SelectionSettings(n_folds=2, search_space=space, n_jobs=1, backtest_weeks=2,
                                    backtest_start=D(2018, 5, 1))
    train_start, train_end = D(2018, 4, 10), D(2018, 4, 23)
    first, last = S.selection_date_range(train_start, train_end, settings_, delay_days=2, test_days=3)
    assert first == D(2018, 4, 2) and last == D(2018, 5, 6)
    out = S.run_selection(gold, train_start=train_start, train_end=train_end, delay_days=2, test_days=3,
                          settings=settings_)
    assert set(out.selected) == {"xgboost", "logistic_regression"} and len(out.results) == 4
    for model_type, chosen in out.selected.items():
        pool = [r for r in out.results if r.candidate.model_type == model_type]
        assert chosen is S.select_best(pool)
    # the out-of-fold scores cover exactly the validation days of the folds
    days = set(out.selected["xgboost"].validation_scores["tx_date"])
    assert days == {f.validation_start + dt.timedelta(days=i) for f in out.folds for i in range(3)}
    assert out.ablation.loc[0, "features"] == "all features" and out.ablation.loc[0, "delta_average_precision"] == 0
    assert list(out.ablation["features"])[-1] == "handbook only"
    assert len(out.backtest) == 2 and list(out.backtest["test_start"]) == ["2018-05-01", "2018-05-04"]
    summary = out.to_dict()
    json.dumps(summary)
    assert summary["backtest"]["mean_average_precision"] == pytest.approx(out.backtest["average_precision"].mean())

    client = mlflow.MlflowClient()
    parent = client.get_run(out.run_id)
    assert parent.data.tags["task"] == "model_selection" and parent.data.params["n_folds"] == "2"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{out.run_id}'")
    assert len(children) == 4
    assert sum(c.data.tags["selected"] == "true" for c in children) == 2
    assert all("fold1_card_precision_top_100" in c.data.metrics for c in children)
    artifacts = {a.path for a in client.list_artifacts(out.run_id, "selection")}
    assert {"selection/leaderboard.csv", "selection/ablation.md", "selection/backtest.csv"} <= artifacts


def test_a_fold_without_fraud_is_a_clear_error(gold):
    from fraud_mlops.lifecycle.training import TrainingDataError

    quiet = gold.assign(tx_fraud=0)
    with pytest.raises(TrainingDataError, match="prequential fold 0"):
        S.run_selection(quiet, train_start=D(2018, 4, 10), train_end=D(2018, 4, 23), delay_days=2, test_days=3,
                        settings=S.SelectionSettings(n_folds=1, ablation=False), log_to_mlflow=False)


def test_a_fold_or_backtest_week_before_the_first_gold_day_is_refused(gold):
    from fraud_mlops.lifecycle.training import TrainingDataError

    # 14-day windows: fold 1 trains from 2018-03-30, before the first day (2018-04-01)
    with pytest.raises(TrainingDataError, match="prequential fold 1's training window starts on 2018-03-30"):
        S.run_selection(gold, train_start=D(2018, 4, 7), train_end=D(2018, 4, 20), delay_days=2, test_days=3,
                        settings=S.SelectionSettings(n_folds=2, ablation=False), log_to_mlflow=False)
    windows = S.backtest_windows(D(2018, 4, 10), 1, train_days=14, delay_days=2, test_days=3)
    with pytest.raises(TrainingDataError, match="backtest week 2018-04-10"):
        S.backtest(gold, S.Candidate("logistic_regression", {}), windows, delay_days=2, test_days=3)
