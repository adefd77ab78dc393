"""Clear errors for every bad input, before any write.

Each case calls a job's task entry point (as the runner does) with one bad parameter or one broken
object, and checks that the error names the parameter or object and what was expected, and that no
table (Delta version), no model version or alias and no MLflow run changed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from bundlekit.task_runtime import ParameterError
from fraud_mlops.jobs import batch_scoring, ingestion, monitoring, training
from fraud_mlops.lifecycle.scoring import ChampionNotFoundError, ModelLoadError
from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.lifecycle.training import TrainingDataError
from fraud_mlops.platform import config as C
from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse

from ..lifecycle.synthetic_gold import make_gold_pdf, register_lr_model, to_spark, training_params

CATALOG, SCHEMA = "fraud_bad", "fraud"
MODEL = f"{CATALOG}.{SCHEMA}.fraud_detector"
EXPERIMENT = "/Shared/bad-inputs"
DAYS = [dt.date(2018, 8, 1) + dt.timedelta(days=i) for i in range(24)]
NO_FRAUD_DAYS = DAYS[:5]  # labels all 0: no window there can train a model
TARGET = [f"--catalog={CATALOG}", f"--schema={SCHEMA}"]
TABLES = (C.GOLD_FEATURES, C.PREDICTIONS, C.MONITORING_METRICS, C.BRONZE_TRANSACTIONS, C.BRONZE_INGESTION_LOG)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Gold with 24 days (no fraud on the first 5), a champion, and its predictions and metrics."""
    root = tmp_path_factory.mktemp("bad-inputs")
    mp = pytest.MonkeyPatch()
    mp.setenv(C.LOCAL_ROOT_ENV, str(root))
    mp.delenv(C.BACKEND_ENV, raising=False)
    config = LakehouseConfig.from_env(CATALOG, SCHEMA)
    lakehouse = Lakehouse(spark, config)
    pdf = make_gold_pdf(DAYS, 40, seed=11)
    pdf.loc[pdf["tx_date"].isin(NO_FRAUD_DAYS), "tx_fraud"] = 0
    lakehouse.overwrite(C.GOLD_FEATURES, to_spark(spark, pdf))
    configure_mlflow(config)
    version = register_lr_model(pdf[pdf["tx_date"].between(DAYS[5], DAYS[11])], MODEL,
                                training_params(DAYS[5], DAYS[11]))
    batch_scoring.score.run([*TARGET, f"--model_name={MODEL}", f"--score_start={DAYS[19]}", f"--score_end={DAYS[23]}"])
    monitoring.monitor.run([*TARGET, f"--model_name={MODEL}", f"--window_start={DAYS[19]}", f"--window_end={DAYS[23]}"])
    yield {"root": root, "lakehouse": lakehouse, "version": version}
    mp.undo()


def _state(world) -> dict:
    lakehouse = world["lakehouse"]
    configure_mlflow(lakehouse.config)
    client = MlflowClient()
    models = {m.name: (sorted(m.aliases.items()), len(client.search_model_versions(f"name = '{m.name}'")))
              for m in client.search_registered_models()}
    runs = len(mlflow.search_runs(search_all_experiments=True))
    return {"tables": {t: lakehouse.version(t) for t in TABLES}, "models": models, "runs": runs}


def _train(*extra: str) -> list[str]:
    return [*TARGET, f"--experiment_name={EXPERIMENT}", f"--model_name={MODEL}", *extra]


def _window(start: dt.date, end: dt.date) -> list[str]:
    return [f"--train_start={start}", f"--train_end={end}", "--delay_days=1", "--test_days=3"]


CASES = [
    # training: each parameter, checked before anything is read or written
    ("train_start malformed", training.train, _train("--train_start=2018-13-01"), ParameterError,
     r"train_start='2018-13-01' is not a date YYYY-MM-DD"),
    ("train window reversed", training.train, _train(*_window(DAYS[10], DAYS[6])), ParameterError,
     r"train_start=2018-08-11 is after train_end=2018-08-07"),
    ("negative delay", training.train, _train("--delay_days=-1"), ParameterError, r"delay_days='-1' is out of range: it must be >= 0"),
    ("non-numeric test days", training.train, _train("--test_days=seven"), ParameterError, r"test_days='seven' is not an integer"),
    ("zero trees", training.train, _train("--n_estimators=0"), ParameterError, r"n_estimators='0' is out of range: it must be >= 1"),
    ("learning rate above 1", training.train, _train("--learning_rate=1.5"), ParameterError,
     r"learning_rate='1.5' is out of range: it must be > 0 and <= 1"),
    ("unknown model type", training.train, _train("--candidate_model=random_forest"), ParameterError,
     r"candidate_model='random_forest' is not a model type: use one of xgboost, logistic_regression"),
    ("search space not JSON", training.train, _train("--search_space={xgboost"), ParameterError,
     r"search_space: search_space is not valid JSON"),
    ("search space unknown parameter", training.train, _train('--search_space={"xgboost": {"depth": [3]}}'),
     ParameterError, r"unknown xgboost parameter\(s\) \['depth'\]"),
    ("search space without the candidate", training.train,
     _train('--search_space={"logistic_regression": {"C": [1]}}'), ParameterError,
     r"search_space has no xgboost entry, the candidate model"),
    ("negative folds", training.train, _train("--n_folds=-1"), ParameterError, r"n_folds='-1' is out of range"),
    ("ablation not a boolean", training.train, _train("--ablation=maybe"), ParameterError, r"ablation='maybe'"),
    ("unknown threshold method", training.train, _train("--threshold_method=gut"), ParameterError,
     r"threshold_method='gut': use one of alert_budget, cost"),
    ("zero alert budget", training.train, _train("--alert_budget=0"), ParameterError,
     r"alert_budget='0' is out of range: it must be >= 1"),
    ("cost method without costs", training.train, _train("--threshold_method=cost", "--cost_missed_fraud=100"),
     ParameterError, r"threshold_method=cost needs both cost_missed_fraud and cost_false_alert"),
    ("folds before the first gold day", training.train, _train(*_window(DAYS[5], DAYS[19]), "--n_folds=2"),
     TrainingDataError, r"prequential fold 1's training window starts on 2018-07-30, but the rows read begin on 2018-08-01"),
    ("window without gold rows", training.train, _train(*_window(dt.date(2017, 1, 1), dt.date(2017, 1, 7))),
     TrainingDataError, r"training set is empty.*\[2017-01-01, 2017-01-07\].*no row of the table falls in the window"),
    ("window without fraud labels", training.train, _train(*_window(NO_FRAUD_DAYS[0], NO_FRAUD_DAYS[2])),
     TrainingDataError, r"training window 2018-08-01..2018-08-03 has \d+ transactions and no fraud"),
    # the gate's thresholds
    ("gate threshold above 1", training.validate, _train("--min_roc_auc=1.5"), ParameterError,
     r"min_roc_auc='1.5' is out of range: it must be >= 0 and <= 1"),
    ("gate threshold not a number", training.validate, _train("--max_ap_degradation=small"), ParameterError,
     r"max_ap_degradation='small' is not a number"),
    # batch scoring
    ("decision threshold outside [0, 1]", batch_scoring.score, [*TARGET, f"--model_name={MODEL}", "--decision_threshold=1.2"],
     ParameterError, r"decision_threshold='1.2' is out of range"),
    ("alert budget not a number", batch_scoring.score, [*TARGET, f"--model_name={MODEL}", "--alert_budget=many"],
     ParameterError, r"alert_budget='many' is not an integer"),
    ("score window reversed", batch_scoring.score,
     [*TARGET, f"--model_name={MODEL}", "--score_start=2018-08-20", "--score_end=2018-08-19"], ParameterError,
     r"score_start=2018-08-20 is after score_end=2018-08-19"),
    ("score window without gold rows", batch_scoring.score,
     [*TARGET, f"--model_name={MODEL}", "--score_start=2019-01-01", "--score_end=2019-01-02"], ValueError,
     r"no gold rows with tx_date in \[2019-01-01, 2019-01-02\]"),
    ("model without champion", batch_scoring.score, [*TARGET, f"--model_name={CATALOG}.{SCHEMA}.nobody"],
     ChampionNotFoundError, r"'fraud_bad.fraud.nobody' has no version with alias 'champion'"),
    # monitoring
    ("negative PSI threshold", monitoring.monitor, [*TARGET, f"--model_name={MODEL}", "--psi_alert_threshold=-0.1"],
     ParameterError, r"psi_alert_threshold='-0.1' is out of range: it must be >= 0"),
    ("monitoring AP threshold above 1", monitoring.monitor, [*TARGET, f"--model_name={MODEL}", "--min_average_precision=2"],
     ParameterError, r"min_average_precision='2' is out of range"),
    ("negative label delay", monitoring.monitor, [*TARGET, f"--model_name={MODEL}", "--label_delay_days=-3"],
     ParameterError, r"label_delay_days='-3' is out of range"),
    ("fail_on_alert not a boolean", monitoring.monitor, [*TARGET, f"--model_name={MODEL}", "--fail_on_alert=maybe"],
     ParameterError, r"fail_on_alert='maybe' is not true/false"),
    ("monitoring window without predictions", monitoring.monitor,
     [*TARGET, f"--model_name={MODEL}", "--window_start=2018-08-02", "--window_end=2018-08-04"], ValueError,
     r"no predictions of fraud_bad.fraud.fraud_detector v1 .* \[2018-08-02, 2018-08-04\]"),
    # ingestion
    ("negative label delay for gold", ingestion.gold, [*TARGET, "--label_delay_days=-1"], ParameterError,
     r"label_delay_days='-1' is out of range: it must be >= 0"),
    ("landing folder that does not exist", ingestion.bronze, [*TARGET, "--landing_path=/nonexistent/landing"],
     FileNotFoundError, r"landing folder /nonexistent/landing does not exist"),
]


@pytest.mark.parametrize(("task", "argv", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error_and_changes_nothing(world, task, argv, error, message):
    before = _state(world)
    with pytest.raises(error, match=message):
        task.run(argv)
    assert _state(world) == before


def test_champion_whose_artifact_cannot_be_loaded(world, tmp_path):
    """The champion's files are gone (a cleaned-up artifact store): a clear error, nothing written."""
    configure_mlflow(world["lakehouse"].config)
    client = MlflowClient()
    mv = client.get_model_version(MODEL, world["version"])
    model_id = mv.model_id or (mv.source.removeprefix("models:/") if mv.source.startswith("models:/m-") else None)
    if model_id:  # logged by name (MLflow 3): the logged model's own artifact folder
        location = client.get_logged_model(model_id).artifact_location
    elif mv.source.startswith("runs:/"):
        run_id, _, path = mv.source.removeprefix("runs:/").partition("/")
        location = f"{client.get_run(run_id).info.artifact_uri}/{path}"
    else:
        location = mv.source
    store = Path(location.removeprefix("file://"))
    assert store.is_dir(), location
    moved = tmp_path / "moved"
    shutil.move(str(store), moved)
    try:
        before = _state(world)
        with pytest.raises(ModelLoadError, match=rf"cannot load model models:/{MODEL}/{world['version']}"):
            batch_scoring.score.run([*TARGET, f"--model_name={MODEL}", f"--score_start={DAYS[20]}",
                                     f"--score_end={DAYS[20]}", "--decision_threshold=0.3"])
        assert _state(world) == before
    finally:
        shutil.move(str(moved), store)


def test_champion_whose_version_was_deleted(world, tmp_path_factory):
    """Deleting the champion's version removes its alias: scoring says there is no champion."""
    configure_mlflow(world["lakehouse"].config)
    client = MlflowClient()
    name = f"{CATALOG}.{SCHEMA}.deleted"
    pdf = make_gold_pdf(DAYS[5:12], 30, seed=3)
    version = register_lr_model(pdf, name, training_params(DAYS[5], DAYS[11]))
    client.delete_model_version(name, version)
    before = _state(world)
    with pytest.raises(ChampionNotFoundError, match=r"'fraud_bad.fraud.deleted' has no version with alias 'champion'"):
        batch_scoring.score.run([*TARGET, f"--model_name={name}", f"--score_start={DAYS[20]}", f"--score_end={DAYS[20]}"])
    assert _state(world) == before
