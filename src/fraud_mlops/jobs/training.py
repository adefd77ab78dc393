"""Entry points of the ``training`` job (``resources/training_job.yml``): train -> validate (the gate) -> promote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
    ParameterError,
    check_date_order,
    entry_point,
    parse_float,
    parse_int,
    parse_named_parameters,
    parse_optional_date,
    parse_probability,
    report,
    set_task_value,
)
from fraud_mlops.jobs.common import TARGET, target_lakehouse
from fraud_mlops.platform.lakehouse import Lakehouse


def _gold_loader(lakehouse: Lakehouse, version: int | None = None):
    """A callable ``(first_day, last_day) -> pandas.DataFrame`` over the gold feature table, at Delta
    ``version`` when given (so that what is read is what the run logs)."""
    from pyspark.sql import functions as F

    from fraud_mlops.platform.config import GOLD_FEATURES

    def load(first_day, last_day):
        gold = lakehouse.read(GOLD_FEATURES, version=version)
        return gold.where(F.col("tx_date").between(first_day, last_day)).toPandas()

    return load


@entry_point
def train(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the candidate (XGBoost by default) and the logistic-regression baseline on a time-based
    split of gold, log both to MLflow, register the candidate and tag it ``challenger``.

    Any subset of ``train_start``, ``train_end`` and ``train_days`` works
    (:func:`fraud_mlops.lifecycle.training.resolve_training_window`): both dates give the window;
    one date gives the ``train_days`` days ending or starting on it; neither gives the latest
    ``train_days`` days whose test days are all in gold.

    Every parameter is checked before anything is read, and the training data before anything is
    written (no MLflow run, no model version): dates and their order, ``delay_days`` >= 0,
    ``test_days`` >= 1, ``n_estimators`` and ``max_depth`` >= 1, ``learning_rate`` in (0, 1],
    ``seed`` >= 0, ``train_days`` >= 1, a known ``candidate_model``; a window with gold rows and both labels to learn from
    (:func:`fraud_mlops.lifecycle.training.check_training_data`)."""
    from pyspark.sql import functions as F

    from fraud_mlops.lifecycle.gate import run_training
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.lifecycle.training import (
        MODEL_TYPES,
        check_training_data,
        required_date_range,
        resolve_training_window,
    )
    from fraud_mlops.platform import config as C
    from fraud_mlops.platform.lakehouse import TableNotFoundError

    p = parse_named_parameters(
        argv,
        [*TARGET, "experiment_name", "model_name"],
        {"train_start": "", "train_end": "", "train_days": "7", "delay_days": "7", "test_days": "7",
         "candidate_model": "xgboost",
         "n_estimators": "200", "max_depth": "4", "learning_rate": "0.05", "seed": "42", "git_commit": ""},
    )
    delay = parse_int(p["delay_days"], "delay_days", minimum=0)
    test_days = parse_int(p["test_days"], "test_days", minimum=1)
    start = parse_optional_date(p["train_start"], "train_start")
    end = parse_optional_date(p["train_end"], "train_end")
    check_date_order(start, end, "train_start", "train_end")
    train_days = parse_int(p["train_days"], "train_days", minimum=1)
    if p["candidate_model"] not in MODEL_TYPES:
        raise ParameterError(f"parameter candidate_model={p['candidate_model']!r} is not a model type: "
                             f"use one of {', '.join(MODEL_TYPES)}")
    xgb_params = {
        "n_estimators": parse_int(p["n_estimators"], "n_estimators", minimum=1),
        "max_depth": parse_int(p["max_depth"], "max_depth", minimum=1),
        "learning_rate": parse_float(p["learning_rate"], "learning_rate", above=0.0, maximum=1.0),
        "seed": parse_int(p["seed"], "seed", minimum=0),
    }
    lakehouse = target_lakehouse(p)
    gold_version = lakehouse.version(C.GOLD_FEATURES)
    if gold_version is None:
        raise TableNotFoundError(f"{lakehouse.ref(C.GOLD_FEATURES).full_name} does not exist: run ingestion first")
    latest = None
    if start is None and end is None:
        latest = lakehouse.read(C.GOLD_FEATURES, version=gold_version).agg(F.max("tx_date")).collect()[0][0]
        if latest is None:
            raise ValueError(f"{lakehouse.ref(C.GOLD_FEATURES).full_name} is empty: nothing to train on")
    start, end = resolve_training_window(start, end, train_days, latest_gold_day=latest, delay_days=delay,
                                         test_days=test_days)
    gold_pdf = _gold_loader(lakehouse, gold_version)(*required_date_range(start, end, delay, test_days))
    check_training_data(gold_pdf, start, end, delay, test_days, table=lakehouse.ref(C.GOLD_FEATURES).full_name)
    configure_mlflow(lakehouse.config, p["experiment_name"])
    versions = {lakehouse.ref(C.GOLD_FEATURES).full_name: gold_version}
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
        git_commit=p["git_commit"] or None,
    )
    set_task_value("model_version", result["registered_version"])
    return report("train", result)


@entry_point
def validate(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the ``challenger`` and the ``champion`` on the challenger's test window and record the
    gate's decision on the challenger version (thresholds are parameters, checked first: the
    minimum AP and ROC AUC and the tolerated AP degradation are numbers in [0, 1])."""
    from fraud_mlops.lifecycle.gate import GateThresholds, run_validation
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "experiment_name", "model_name"],
        {"min_average_precision": "0.3", "min_roc_auc": "0.75", "max_ap_degradation": "0.02"},
    )
    thresholds = GateThresholds(
        min_average_precision=parse_probability(p["min_average_precision"], "min_average_precision"),
        min_roc_auc=parse_probability(p["min_roc_auc"], "min_roc_auc"),
        max_ap_degradation=parse_probability(p["max_ap_degradation"], "max_ap_degradation"),
    )
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config, p["experiment_name"])
    from fraud_mlops.platform.config import GOLD_FEATURES

    loader = _gold_loader(lakehouse, lakehouse.version(GOLD_FEATURES))
    return report("validate", run_validation(loader, p["model_name"], thresholds))


@entry_point
def promote(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Move the ``champion`` alias to the challenger only if its validation passed; otherwise keep
    the champion and report why (the challenger stays tagged ``challenger``)."""
    from fraud_mlops.lifecycle.gate import run_promotion
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(argv, [*TARGET, "model_name"])
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_promotion(p["model_name"])
    verdict = "PROMOTED to champion" if result.get("promoted") else "NOT promoted"
    print(f"[promote] version {result.get('version')} {verdict}: " + "; ".join(result.get("reasons") or []))
    return report("promote", result)
