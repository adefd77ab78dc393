"""Entry points of the ``training`` job (``resources/training_job.yml``): train -> validate (the gate) -> promote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
    ParameterError,
    check_date_order,
    entry_point,
    parse_bool,
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
    """Select by prequential validation, then train the candidate (XGBoost by default) and the
    logistic-regression baseline on a time-based split of gold, log everything to MLflow, register
    the candidate with its decision threshold and tag it ``challenger``
    (:func:`fraud_mlops.lifecycle.gate.run_training`).

    Any subset of ``train_start``, ``train_end`` and ``train_days`` works
    (:func:`fraud_mlops.lifecycle.training.resolve_training_window`): both dates give the window;
    one date gives the ``train_days`` days ending or starting on it; neither gives the latest
    ``train_days`` days whose test days are all in gold.

    Selection (``n_folds`` >= 1, 4 by default; 0 turns it off and uses ``n_estimators``,
    ``max_depth``, ``learning_rate`` as given): ``search_space`` (JSON ``{model_type: {parameter:
    [values]}}``, empty = :data:`fraud_mlops.lifecycle.selection.DEFAULT_SEARCH_SPACE`), ``n_random``
    (0 = grid), ``n_jobs`` (XGBoost threads, empty = all cores), ``ablation`` (true/false),
    ``backtest_weeks`` and ``backtest_start`` (empty = the weeks ending with the test window).
    Decision: ``threshold_method`` (``alert_budget`` or ``cost``), ``alert_budget`` (cards per day),
    ``cost_missed_fraud`` and ``cost_false_alert``.

    Every parameter is checked before anything is read, and the training data before anything is
    written (no MLflow run, no model version): dates and their order, ``delay_days`` >= 0,
    ``test_days`` >= 1, ``n_estimators`` and ``max_depth`` >= 1, ``learning_rate`` in (0, 1],
    ``seed`` >= 0, ``train_days`` >= 1, a known ``candidate_model``, the search space; a window with
    gold rows and both labels to learn from (:func:`fraud_mlops.lifecycle.training.check_training_data`)."""
    from pyspark.sql import functions as F

    from fraud_mlops.lifecycle.gate import DecisionSettings, run_training
    from fraud_mlops.lifecycle.selection import (
        SelectionSettings,
        check_history,
        parse_search_space,
        selection_date_range,
    )
    from fraud_mlops.lifecycle.thresholds import THRESHOLD_METHODS
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
        {"train_start": "", "train_end": "", "train_days": "56", "delay_days": "7", "test_days": "7",
         "known_compromised_days": "7", "candidate_model": "xgboost",
         "n_estimators": "100", "max_depth": "4", "learning_rate": "0.05", "seed": "42", "git_commit": "",
         "n_folds": "4", "search_space": "", "n_random": "0", "n_jobs": "", "ablation": "true",
         "backtest_weeks": "4", "backtest_start": "",
         "threshold_method": "alert_budget", "alert_budget": "100", "cost_missed_fraud": "", "cost_false_alert": ""},
    )
    delay = parse_int(p["delay_days"], "delay_days", minimum=0)
    test_days = parse_int(p["test_days"], "test_days", minimum=1)
    start = parse_optional_date(p["train_start"], "train_start")
    end = parse_optional_date(p["train_end"], "train_end")
    check_date_order(start, end, "train_start", "train_end")
    train_days = parse_int(p["train_days"], "train_days", minimum=1)
    known_days = parse_int(p["known_compromised_days"], "known_compromised_days", minimum=1)
    if p["candidate_model"] not in MODEL_TYPES:
        raise ParameterError(f"parameter candidate_model={p['candidate_model']!r} is not a model type: "
                             f"use one of {', '.join(MODEL_TYPES)}")
    xgb_params = {
        "n_estimators": parse_int(p["n_estimators"], "n_estimators", minimum=1),
        "max_depth": parse_int(p["max_depth"], "max_depth", minimum=1),
        "learning_rate": parse_float(p["learning_rate"], "learning_rate", above=0.0, maximum=1.0),
        "seed": parse_int(p["seed"], "seed", minimum=0),
    }
    try:
        space = parse_search_space(p["search_space"])
    except ValueError as exc:
        raise ParameterError(f"parameter search_space: {exc}") from exc
    n_folds = parse_int(p["n_folds"], "n_folds", minimum=0)
    if n_folds and p["candidate_model"] not in space:
        raise ParameterError(f"parameter search_space has no {p['candidate_model']} entry, the candidate model: "
                             "add one, or set n_folds=0")
    selection = SelectionSettings(
        n_folds=n_folds, search_space=space, n_random=parse_int(p["n_random"], "n_random", minimum=0),
        known_compromised_days=known_days,
        n_jobs=parse_int(p["n_jobs"], "n_jobs", minimum=1) if p["n_jobs"].strip() else None,
        ablation=parse_bool(p["ablation"], "ablation"),
        backtest_weeks=parse_int(p["backtest_weeks"], "backtest_weeks", minimum=0),
        backtest_start=parse_optional_date(p["backtest_start"], "backtest_start"), seed=xgb_params["seed"],
    )
    if p["threshold_method"] not in THRESHOLD_METHODS:
        raise ParameterError(f"parameter threshold_method={p['threshold_method']!r}: use one of "
                             f"{', '.join(THRESHOLD_METHODS)}")
    costs = {k: parse_float(p[k], k, above=0.0) if p[k].strip() else None
             for k in ("cost_missed_fraud", "cost_false_alert")}
    if p["threshold_method"] == "cost" and None in costs.values():
        raise ParameterError("threshold_method=cost needs both cost_missed_fraud and cost_false_alert")
    decision = DecisionSettings(p["threshold_method"], parse_int(p["alert_budget"], "alert_budget", minimum=1),
                                **costs)
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
    first, last = required_date_range(start, end, delay, test_days)
    if n_folds:
        first, last = selection_date_range(start, end, selection, delay_days=delay, test_days=test_days)
    gold_pdf = _gold_loader(lakehouse, gold_version)(first, last)
    table = lakehouse.ref(C.GOLD_FEATURES).full_name
    check_training_data(gold_pdf, start, end, delay, test_days, table=table, known_compromised_days=known_days)
    check_history(gold_pdf, start, f"the training window {start}..{end}", table)
    configure_mlflow(lakehouse.config, p["experiment_name"])
    versions = {table: gold_version}
    result = run_training(
        gold_pdf,
        train_start=start,
        train_end=end,
        delay_days=delay,
        test_days=test_days,
        model_name=p["model_name"],
        candidate_model=p["candidate_model"],
        xgb_params=xgb_params,
        lr_params={"seed": xgb_params["seed"]},
        table_versions=versions,
        git_commit=p["git_commit"] or None,
        selection=selection,
        decision=decision,
        known_compromised_days=known_days,
    )
    set_task_value("model_version", result["registered_version"])
    return report("train", result)


@entry_point
def validate(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the ``challenger`` and the ``champion`` on the challenger's test window and record the
    gate's decision on the challenger version (thresholds are parameters, checked first: the
    minimum AP and ROC AUC and the tolerated AP degradation are numbers in [0, 1],
    ``min_shadow_days`` and ``delay_days`` integers >= 0).

    With ``min_shadow_days`` > 0 (default 0: no shadow check) a challenger also needs that many
    labelled days of shadow scoring beside the champion, without an AP degradation on them: the
    evidence is :func:`fraud_mlops.lifecycle.monitoring.shadow_summary` over every day present in both
    ``predictions`` and ``predictions_shadow``, labels counting up to the latest gold day minus
    ``delay_days`` (the label delay, default 7, as for training). It is recorded on the version whenever there is a champion."""
    from fraud_mlops.lifecycle.gate import GateThresholds, validate_challenger
    from fraud_mlops.lifecycle.monitoring import shadow_source
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "experiment_name", "model_name"],
        {"min_average_precision": "0.3", "min_roc_auc": "0.75", "max_ap_degradation": "0.02",
         "min_shadow_days": "0", "delay_days": "7"},
    )
    thresholds = GateThresholds(
        min_average_precision=parse_probability(p["min_average_precision"], "min_average_precision"),
        min_roc_auc=parse_probability(p["min_roc_auc"], "min_roc_auc"),
        max_ap_degradation=parse_probability(p["max_ap_degradation"], "max_ap_degradation"),
        min_shadow_days=parse_int(p["min_shadow_days"], "min_shadow_days", minimum=0),
    )
    label_delay_days = parse_int(p["delay_days"], "delay_days", minimum=0)
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config, p["experiment_name"])
    from fraud_mlops.platform.config import GOLD_FEATURES

    loader = _gold_loader(lakehouse, lakehouse.version(GOLD_FEATURES))
    shadow = shadow_source(lakehouse, p["model_name"], label_delay_days)
    return report("validate", validate_challenger(p["model_name"], loader, thresholds, shadow_source=shadow))


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
