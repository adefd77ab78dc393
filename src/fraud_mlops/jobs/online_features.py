"""Entry point of the ``online_features`` job (``resources/online_features_job.yml``): publish silver
transactions to the online feature store that real-time scoring reads (PostgreSQL locally, Lakebase on
Databricks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bundlekit.task_runtime import (
    check_date_order,
    entry_point,
    parse_int,
    parse_named_parameters,
    parse_optional_date,
    report,
)
from fraud_mlops.jobs.common import TARGET, target_lakehouse


@entry_point
def publish(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Publish the silver days of the store's retention window that are new or changed (``publish_start``
    and ``publish_end`` empty), or exactly ``[publish_start, publish_end]``; then prune what fell out of
    the window. ``lakebase_instance`` names the Lakebase database instance on Databricks (locally the
    server of ``FRAUD_MLOPS_ONLINE_STORE`` is used). Dates are checked before anything is read."""
    from fraud_mlops.online.publish import publish_online_store
    from fraud_mlops.online.store import OnlineStoreLocation

    p = parse_named_parameters(
        argv, TARGET,
        {"publish_start": "", "publish_end": "", "lakebase_instance": "", "label_delay_days": "7"},
    )
    start = parse_optional_date(p["publish_start"], "publish_start")
    end = parse_optional_date(p["publish_end"], "publish_end")
    check_date_order(start, end, "publish_start", "publish_end")
    delay = parse_int(p["label_delay_days"], "label_delay_days", minimum=0)
    location = OnlineStoreLocation.for_target(p["catalog"], p["schema"], p["lakebase_instance"])
    result = publish_online_store(target_lakehouse(p), location, start, end, label_delay_days=delay)
    return report("publish", result)
