"""Entry points of the ``monitoring`` job (``resources/monitoring_job.yml``): drift, quality and alert budget of the
champion, shadow comparison with the challenger, alert and retraining trigger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
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


@entry_point
def monitor(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Drift (PSI of every feature and of the score against the champion's training window),
    quality (average precision, card precision top-100, on the window's rows at least
    ``label_delay_days`` old, whose labels are known), alerts per day against the alert budget (an
    alert when their mean exceeds ``max_alerts_over_budget`` times the budget) and, while a challenger
    is scored in shadow, the champion/challenger comparison, for a window; append them to
    ``monitoring_metrics``; bring the inference log (the champion's decisions, with the labels known at
    the window's end) up to date for the quality monitor; publish the ``alert`` and ``retrain`` task
    values, and fail when ``fail_on_alert`` is true and a threshold is breached.

    Every parameter is checked before anything is read or written (dates, their order, PSI thresholds
    >= 0, ``min_average_precision`` in [0, 1], ``max_alerts_over_budget`` > 0, ``label_delay_days``
    >= 0, ``fail_on_alert`` a boolean).
    """
    from fraud_mlops.lifecycle.inference_log import update_inference_log
    from fraud_mlops.lifecycle.monitoring import MonitoringThresholds, run_monitoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "model_name"],
        {"window_start": "", "window_end": "", "psi_alert_threshold": "0.2", "psi_retrain_threshold": "0.25",
         "min_average_precision": "0.3", "fail_on_alert": "false", "label_delay_days": "7",
         "max_alerts_over_budget": "1.25"},
    )
    window_start = parse_optional_date(p["window_start"], "window_start")
    window_end = parse_optional_date(p["window_end"], "window_end")
    check_date_order(window_start, window_end, "window_start", "window_end")
    thresholds = MonitoringThresholds(
        psi_alert_threshold=parse_float(p["psi_alert_threshold"], "psi_alert_threshold", minimum=0.0),
        psi_retrain_threshold=parse_float(p["psi_retrain_threshold"], "psi_retrain_threshold", minimum=0.0),
        min_average_precision=parse_probability(p["min_average_precision"], "min_average_precision"),
        max_alerts_over_budget=parse_float(p["max_alerts_over_budget"], "max_alerts_over_budget", above=0.0),
    )
    label_delay_days = parse_int(p["label_delay_days"], "label_delay_days", minimum=0)
    fail_on_alert = parse_bool(p["fail_on_alert"], "fail_on_alert")
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_monitoring(
        lakehouse, p["model_name"], window_start, window_end, thresholds, label_delay_days=label_delay_days
    )
    inference_log = update_inference_log(
        lakehouse, p["model_name"], result.window_end, label_delay_days, window_start=result.window_start
    )
    set_task_value("alert", "true" if result.alert else "false")
    set_task_value("retrain", "true" if result.retrain else "false")
    if result.alert:
        print("[monitor] ALERT: " + "; ".join(result.reasons), flush=True)
    out = report("monitor", {**result.to_dict(), "inference_log": inference_log})
    if result.alert and fail_on_alert:
        result.raise_for_alert()
    return out
