"""Entry points of the ``ingestion`` job (``resources/ingestion_job.yml``): bronze -> silver -> gold.

A rejected landing file does not stop the run: bronze logs it and goes on, silver and gold take the
readable files, and then the last task, ``gold``, fails the job while any rejected file is not
acknowledged (:class:`fraud_mlops.medallion.bronze.LandingFilesRejected`), so the run ends FAILED
and the job's failure e-mail goes out. docs/runbook-landing.md says what an operator does then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import entry_point, parse_int, parse_named_parameters, report
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def bronze(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Ingest new landing files into ``bronze_transactions`` (parameters: catalog, schema,
    landing_path, file_pattern). Rejected files are listed in the result (``files_rejected``) and
    logged; this task does not fail on them, so that silver and gold still run (``gold`` fails the
    job afterwards)."""
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
    label_delay_days, default 7), then fail the ingestion run while landing files are rejected.

    This is the job's last task, so the check runs after silver and gold have taken every readable
    file. The result (reported before the check) lists ``landing_files_rejected``: every file of
    ``bronze_ingestion_log`` that is rejected and neither ingested since nor acknowledged by an
    operator (``fraud-mlops landing reject``).

    Raises:
        LandingFilesRejected: that list is not empty; the message names each file and its error.
    """
    from fraud_mlops.medallion.bronze import LandingFilesRejected, unacknowledged_rejections
    from fraud_mlops.medallion.gold import build_gold

    p = parse_named_parameters(argv, TARGET, {"label_delay_days": "7"})
    delay = parse_int(p["label_delay_days"], "label_delay_days", minimum=0)
    lakehouse = target_lakehouse(p)
    result = build_gold(lakehouse, label_delay_days=delay)
    rejected = unacknowledged_rejections(lakehouse)
    result["landing_files_rejected"] = rejected
    report("gold", result)
    if rejected:
        raise LandingFilesRejected(rejected)
    return result
