"""Entry points of the ``ingestion`` job (``resources/ingestion_job.yml``): bronze -> silver -> gold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import entry_point, parse_int, parse_named_parameters, report
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def bronze(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Ingest new landing files into ``bronze_transactions`` (parameters: catalog, schema,
    landing_path, file_pattern)."""
    from fraud_mlops.medallion.bronze import ingest_bronze

    p = parse_named_parameters(argv, [*TARGET, "landing_path"], {"file_pattern": "*.csv*"})
    return report("bronze", ingest_bronze(target_lakehouse(p), p["landing_path"], p["file_pattern"]))


@entry_point
def silver(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate, type and de-duplicate new bronze rows into silver and quarantine."""
    from fraud_mlops.medallion.silver import build_silver

    p = parse_named_parameters(argv, TARGET)
    return report("silver", build_silver(target_lakehouse(p)))


@entry_point
def gold(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Build the gold feature table and the daily summary for the new days (parameter
    label_delay_days, default 7)."""
    from fraud_mlops.medallion.gold import build_gold

    p = parse_named_parameters(argv, TARGET, {"label_delay_days": "7"})
    delay = parse_int(p["label_delay_days"], "label_delay_days")
    return report("gold", build_gold(target_lakehouse(p), label_delay_days=delay))
