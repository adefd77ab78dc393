"""Entry points of the ``batch_scoring`` job (``resources/batch_scoring_job.yml``): score gold with the ``@champion`` model into ``predictions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import entry_point, parse_named_parameters, report
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def score(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score gold rows of ``[score_start, score_end]`` (empty: the latest gold day) with
    ``models:/<model_name>@champion`` and merge them into ``predictions``."""
    from bundlekit.task_runtime import parse_float, parse_optional_date
    from fraud_mlops.lifecycle.scoring import run_batch_scoring
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    p = parse_named_parameters(
        argv, [*TARGET, "model_name"], {"score_start": "", "score_end": "", "decision_threshold": "0.5"}
    )
    lakehouse = target_lakehouse(p)
    configure_mlflow(lakehouse.config)
    result = run_batch_scoring(
        lakehouse,
        p["model_name"],
        parse_optional_date(p["score_start"], "score_start"),
        parse_optional_date(p["score_end"], "score_end"),
        parse_float(p["decision_threshold"], "decision_threshold"),
    )
    return report("score", result)
