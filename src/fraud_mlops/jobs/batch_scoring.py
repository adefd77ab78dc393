"""Entry points of the ``batch_scoring`` job (``resources/batch_scoring_job.yml``): score gold with the ``@champion`` model into ``predictions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
    check_date_order,
    entry_point,
    parse_named_parameters,
    parse_optional_date,
    parse_probability,
    report,
)
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def score(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score gold rows of ``[score_start, score_end]`` (empty: the latest gold day) with
    ``models:/<model_name>@champion`` and merge them into ``predictions``.

    The parameters (dates and their order, ``decision_threshold`` in [0, 1]) are checked before
    anything is read or written."""
    from fraud_mlops.lifecycle.scoring import run_batch_scoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv, [*TARGET, "model_name"], {"score_start": "", "score_end": "", "decision_threshold": "0.5"}
    )
    score_start = parse_optional_date(p["score_start"], "score_start")
    score_end = parse_optional_date(p["score_end"], "score_end")
    check_date_order(score_start, score_end, "score_start", "score_end")
    threshold = parse_probability(p["decision_threshold"], "decision_threshold")
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_batch_scoring(lakehouse, p["model_name"], score_start, score_end, threshold)
    return report("score", result)
