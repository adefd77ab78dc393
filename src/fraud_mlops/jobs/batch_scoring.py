"""Entry points of the ``batch_scoring`` job (``resources/batch_scoring_job.yml``): score gold with the ``@champion`` model into ``predictions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
    check_date_order,
    entry_point,
    parse_bool,
    parse_int,
    parse_named_parameters,
    parse_optional_date,
    parse_probability,
    report,
)
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def score(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score gold rows of ``[score_start, score_end]`` (empty: the days not scored yet) with
    ``models:/<model_name>@champion`` and merge them into ``predictions``; score the ``@challenger``
    (when there is one) into ``predictions_shadow`` (``shadow``, default true).

    ``decision_threshold`` and ``alert_budget`` empty (the default) use the values training recorded
    on the champion version. The parameters (dates and their order, ``decision_threshold`` in [0, 1],
    ``alert_budget`` >= 1, ``shadow`` a boolean) are checked before anything is read or written."""
    from fraud_mlops.lifecycle.scoring import run_batch_scoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv, [*TARGET, "model_name"],
        {"score_start": "", "score_end": "", "decision_threshold": "", "alert_budget": "", "shadow": "true"},
    )
    score_start = parse_optional_date(p["score_start"], "score_start")
    score_end = parse_optional_date(p["score_end"], "score_end")
    check_date_order(score_start, score_end, "score_start", "score_end")
    threshold = parse_probability(p["decision_threshold"], "decision_threshold") if p["decision_threshold"].strip() else None
    budget = parse_int(p["alert_budget"], "alert_budget", minimum=1) if p["alert_budget"].strip() else None
    shadow = parse_bool(p["shadow"], "shadow")
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_batch_scoring(lakehouse, p["model_name"], score_start, score_end, threshold,
                               alert_budget=budget, shadow=shadow)
    return report("score", result)
