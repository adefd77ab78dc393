"""Job task entry points (``python_wheel_task`` entry points of the bundle's jobs).

Each entry point parses its named parameters, gets the Spark session and the target's tables, calls
the library, and reports a JSON result (:func:`fraud_mlops.runtime.report`); as a console script it
exits 0, or 1 with the exception on failure (``tasks.<name>.run(argv)`` returns the result dict).
Nothing else lives here: the logic is in the library modules. On Databricks the runtime calls them as console scripts (``fraud-bronze --catalog=...``);
locally :mod:`fraud_mlops.runner` calls the same functions in-process with the same arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fraud_mlops.config import LakehouseConfig
from fraud_mlops.lakehouse import Lakehouse
from fraud_mlops.runtime import entry_point, parse_int, parse_named_parameters, report

TARGET = ("catalog", "schema")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _lakehouse(params: dict[str, str]) -> Lakehouse:
    from fraud_mlops.spark import get_spark

    return Lakehouse(get_spark(), LakehouseConfig.from_env(params["catalog"], params["schema"]))


@entry_point
def bronze(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Ingest new landing files into ``bronze_transactions`` (parameters: catalog, schema,
    landing_path, file_pattern)."""
    from fraud_mlops.ingestion import ingest_bronze

    p = parse_named_parameters(argv, [*TARGET, "landing_path"], {"file_pattern": "*.csv*"})
    return report("bronze", ingest_bronze(_lakehouse(p), p["landing_path"], p["file_pattern"]))


@entry_point
def silver(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate, type and de-duplicate new bronze rows into silver and quarantine."""
    from fraud_mlops.ingestion import build_silver

    p = parse_named_parameters(argv, TARGET)
    return report("silver", build_silver(_lakehouse(p)))


@entry_point
def gold(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Build the gold feature table and the daily summary for the new days (parameter
    label_delay_days, default 7)."""
    from fraud_mlops.ingestion import build_gold

    p = parse_named_parameters(argv, TARGET, {"label_delay_days": "7"})
    delay = parse_int(p["label_delay_days"], "label_delay_days")
    return report("gold", build_gold(_lakehouse(p), label_delay_days=delay))


def _gold_loader(lakehouse: Lakehouse, version: int | None = None):
    """A callable ``(first_day, last_day) -> pandas.DataFrame`` over the gold feature table, at Delta
    ``version`` when given (so that what is read is what the run logs)."""
    from pyspark.sql import functions as F

    from fraud_mlops.config import GOLD_FEATURES

    def load(first_day, last_day):
        gold = lakehouse.read(GOLD_FEATURES, version=version)
        return gold.where(F.col("tx_date").between(first_day, last_day)).toPandas()

    return load


def default_training_window(
    latest_gold_day, delay_days: int, test_days: int, train_days: int = 7
) -> tuple[Any, Any]:
    """The most recent window whose test days are all in gold: ``train_end = latest - delay - test``,
    ``train_start = train_end - (train_days - 1)`` (dates)."""
    import datetime as dt

    train_end = latest_gold_day - dt.timedelta(days=delay_days + test_days)
    return train_end - dt.timedelta(days=train_days - 1), train_end


@entry_point
def train(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the candidate (XGBoost by default) and the logistic-regression baseline on a time-based
    split of gold, log both to MLflow, register the candidate and tag it ``challenger``.

    Empty ``train_start``/``train_end`` mean the latest full window (see
    :func:`default_training_window`)."""
    from pyspark.sql import functions as F

    from fraud_mlops import config as C
    from fraud_mlops.gate import run_training
    from fraud_mlops.lakehouse import TableNotFoundError
    from fraud_mlops.runtime import parse_float, parse_optional_date, set_task_value
    from fraud_mlops.tracking import configure_mlflow
    from fraud_mlops.training import required_date_range

    p = parse_named_parameters(
        argv,
        [*TARGET, "experiment_name", "model_name"],
        {"train_start": "", "train_end": "", "delay_days": "7", "test_days": "7", "candidate_model": "xgboost",
         "n_estimators": "200", "max_depth": "4", "learning_rate": "0.05", "seed": "42"},
    )
    lakehouse = _lakehouse(p)
    delay, test_days = parse_int(p["delay_days"], "delay_days"), parse_int(p["test_days"], "test_days")
    start = parse_optional_date(p["train_start"], "train_start")
    end = parse_optional_date(p["train_end"], "train_end")
    gold_version = lakehouse.version(C.GOLD_FEATURES)
    if gold_version is None:
        raise TableNotFoundError(f"{lakehouse.ref(C.GOLD_FEATURES).full_name} does not exist: run ingestion first")
    if start is None or end is None:
        latest = lakehouse.read(C.GOLD_FEATURES, version=gold_version).agg(F.max("tx_date")).collect()[0][0]
        if latest is None:
            raise ValueError(f"{lakehouse.ref(C.GOLD_FEATURES).full_name} is empty: nothing to train on")
        default_start, default_end = default_training_window(latest, delay, test_days)
        start, end = start or default_start, end or default_end
    configure_mlflow(lakehouse.config, p["experiment_name"])
    versions = {lakehouse.ref(C.GOLD_FEATURES).full_name: gold_version}
    gold_pdf = _gold_loader(lakehouse, gold_version)(*required_date_range(start, end, delay, test_days))
    xgb_params = {
        "n_estimators": parse_int(p["n_estimators"], "n_estimators"),
        "max_depth": parse_int(p["max_depth"], "max_depth"),
        "learning_rate": parse_float(p["learning_rate"], "learning_rate"),
        "seed": parse_int(p["seed"], "seed"),
    }
    result = run_training(
        gold_pdf,
        train_start=start,
        train_end=end,
        delay_days=delay,
        test_days=test_days,
        model_name=p["model_name"],
        candidate_model=p["candidate_model"],
        xgb_params=xgb_params,
        table_versions=versions,
    )
    set_task_value("model_version", result["registered_version"])
    return report("train", result)


@entry_point
def validate(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the ``challenger`` and the ``champion`` on the challenger's test window and record the
    gate's decision on the challenger version (thresholds are parameters)."""
    from fraud_mlops.gate import GateThresholds, run_validation
    from fraud_mlops.runtime import parse_float
    from fraud_mlops.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "experiment_name", "model_name"],
        {"min_average_precision": "0.3", "min_roc_auc": "0.75", "max_ap_degradation": "0.02"},
    )
    lakehouse = _lakehouse(p)
    configure_mlflow(lakehouse.config, p["experiment_name"])
    thresholds = GateThresholds(
        min_average_precision=parse_float(p["min_average_precision"], "min_average_precision"),
        min_roc_auc=parse_float(p["min_roc_auc"], "min_roc_auc"),
        max_ap_degradation=parse_float(p["max_ap_degradation"], "max_ap_degradation"),
    )
    from fraud_mlops.config import GOLD_FEATURES

    loader = _gold_loader(lakehouse, lakehouse.version(GOLD_FEATURES))
    return report("validate", run_validation(loader, p["model_name"], thresholds))


@entry_point
def promote(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Move the ``champion`` alias to the challenger only if its validation passed; otherwise keep
    the champion and report why (the challenger stays tagged ``challenger``)."""
    from fraud_mlops.gate import run_promotion
    from fraud_mlops.tracking import configure_mlflow

    p = parse_named_parameters(argv, [*TARGET, "model_name"])
    lakehouse = _lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_promotion(p["model_name"])
    verdict = "PROMOTED to champion" if result.get("promoted") else "NOT promoted"
    print(f"[promote] version {result.get('version')} {verdict}: " + "; ".join(result.get("reasons") or []))
    return report("promote", result)


@entry_point
def score(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score gold rows of ``[score_start, score_end]`` (empty: the latest gold day) with
    ``models:/<model_name>@champion`` and merge them into ``predictions``."""
    from fraud_mlops.runtime import parse_float, parse_optional_date
    from fraud_mlops.scoring import run_batch_scoring
    from fraud_mlops.tracking import configure_mlflow

    p = parse_named_parameters(
        argv, [*TARGET, "model_name"], {"score_start": "", "score_end": "", "decision_threshold": "0.5"}
    )
    lakehouse = _lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_batch_scoring(
        lakehouse,
        p["model_name"],
        parse_optional_date(p["score_start"], "score_start"),
        parse_optional_date(p["score_end"], "score_end"),
        parse_float(p["decision_threshold"], "decision_threshold"),
    )
    return report("score", result)


@entry_point
def monitor(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Drift (PSI of every feature and of the score against the champion's training window) and
    quality (average precision, card precision top-100, on the window's rows at least
    ``label_delay_days`` old, whose labels are known) for a window; append them to
    ``monitoring_metrics``; publish the ``alert`` and ``retrain`` task values, and fail when
    ``fail_on_alert`` is true and a threshold is breached."""
    from fraud_mlops.monitoring import MonitoringThresholds, run_monitoring
    from fraud_mlops.runtime import parse_bool, parse_float, parse_optional_date, set_task_value
    from fraud_mlops.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "model_name"],
        {"window_start": "", "window_end": "", "psi_alert_threshold": "0.2", "psi_retrain_threshold": "0.25",
         "min_average_precision": "0.3", "fail_on_alert": "false", "label_delay_days": "7"},
    )
    lakehouse = _lakehouse(p)
    configure_mlflow(lakehouse.config)
    thresholds = MonitoringThresholds(
        psi_alert_threshold=parse_float(p["psi_alert_threshold"], "psi_alert_threshold"),
        psi_retrain_threshold=parse_float(p["psi_retrain_threshold"], "psi_retrain_threshold"),
        min_average_precision=parse_float(p["min_average_precision"], "min_average_precision"),
    )
    result = run_monitoring(
        lakehouse,
        p["model_name"],
        parse_optional_date(p["window_start"], "window_start"),
        parse_optional_date(p["window_end"], "window_end"),
        thresholds,
        label_delay_days=parse_int(p["label_delay_days"], "label_delay_days"),
    )
    set_task_value("alert", "true" if result.alert else "false")
    set_task_value("retrain", "true" if result.retrain else "false")
    if result.alert:
        print("[monitor] ALERT: " + "; ".join(result.reasons), flush=True)
    out = report("monitor", result.to_dict())
    if result.alert and parse_bool(p["fail_on_alert"], "fail_on_alert"):
        result.raise_for_alert()
    return out
