"""Entry points of the ``monitoring`` job (``resources/monitoring_job.yml``): drift and quality of the champion, alert and retraining trigger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import entry_point, parse_int, parse_named_parameters, report
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def monitor(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Drift (PSI of every feature and of the score against the champion's training window) and
    quality (average precision, card precision top-100, on the window's rows at least
    ``label_delay_days`` old, whose labels are known) for a window; append them to
    ``monitoring_metrics``; publish the ``alert`` and ``retrain`` task values, and fail when
    ``fail_on_alert`` is true and a threshold is breached."""
    from bundlekit.task_runtime import parse_bool, parse_float, parse_optional_date, set_task_value
    from fraud_mlops.lifecycle.monitoring import MonitoringThresholds, run_monitoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv,
        [*TARGET, "model_name"],
        {"window_start": "", "window_end": "", "psi_alert_threshold": "0.2", "psi_retrain_threshold": "0.25",
         "min_average_precision": "0.3", "fail_on_alert": "false", "label_delay_days": "7"},
    )
    lakehouse = target_lakehouse(p)
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
