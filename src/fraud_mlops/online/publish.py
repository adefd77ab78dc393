"""The publish step: keep the online store current from the silver table (Spark side).

Each run publishes the silver days of the retention window (:func:`fraud_mlops.online.store.retention_days`,
38 days back from the newest silver day) that are new or whose silver row count changed since they
were published (a late file), replacing each day whole in one PostgreSQL transaction, then deletes
what fell out of the window. A crash leaves every day either as it was or fully replaced, and the
next run publishes what is left; a re-run publishes nothing and leaves the same tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import functions as F

from bundlekit.task_runtime import fault_point
from fraud_mlops.online.store import (
    OnlineStore,
    OnlineStoreLocation,
    as_publish_rows,
    connection,
    retention_days,
)
from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse

log = logging.getLogger("fraud_mlops.online.publish")

__all__ = ["publish_online_store"]


def publish_online_store(
    lakehouse: Lakehouse,
    location: OnlineStoreLocation,
    publish_start: dt.date | None = None,
    publish_end: dt.date | None = None,
    label_delay_days: int = 7,
) -> dict[str, Any]:
    """Publish silver transactions to the online store.

    Args:
        lakehouse: the target's tables (reads ``silver_transactions``: ``transaction_id``,
            ``customer_id``, ``terminal_id``, ``tx_datetime``, ``tx_date``, ``tx_amount``, ``tx_fraud``).
        location: the target's online store.
        publish_start: first day to publish; None: the retention window's first day before the newest
            day published (``publish_end``). Days given explicitly are republished even when unchanged.
        publish_end: last day to publish; None: the newest silver day. Requests of the days after it are
            scored from the endpoint's own records plus this history (the replay publishes up to the day
            before the first replayed day).
        label_delay_days: the terminal features' delay D in days (the gold table's, 7).

    Returns:
        ``{"window": [first, last], "days_published": [...], "rows": n, "endpoint_rows_replaced": n,
        "pruned": {...}, "counts": {...}}`` (dates as ISO strings).

    Raises:
        TableNotFoundError: there is no silver table yet.
        OnlineStoreUnavailableError: the store cannot be reached.
        ValueError: ``publish_start`` is after ``publish_end``.
    """
    silver = lakehouse.read(C.SILVER_TRANSACTIONS)
    last = publish_end or silver.agg(F.max("tx_date")).collect()[0][0]
    if last is None:
        return {"window": None, "days_published": [], "rows": 0, "reason": "silver is empty"}
    keep_from = last - dt.timedelta(days=retention_days(label_delay_days) - 1)
    first = publish_start or keep_from
    if first > last:
        raise ValueError(f"publish_start {first} is after publish_end {last}")
    window = silver.where(F.col("tx_date").between(F.lit(first), F.lit(last)))
    counts = {r["tx_date"]: int(r["n"]) for r in window.groupBy("tx_date").agg(F.count("*").alias("n")).collect()}

    store = OnlineStore(location.schema)
    location.ensure_database()
    with connection(location) as conn:
        store.create_tables(conn)
        published = store.published_days(conn)
        explicit = publish_start is not None
        days = sorted(d for d, n in counts.items() if explicit or published.get(d) != n)
        rows_total = replaced = 0
        if days:
            frame = (
                window.where(F.col("tx_date").isin(days))
                .select("tx_date", "transaction_id", "customer_id", F.col("tx_datetime").cast("long").alias("tx_seconds"),
                        "terminal_id", "tx_amount", "tx_fraud")
                .toPandas()
            )
            for day, part in frame.groupby("tx_date", sort=True):
                day = day if isinstance(day, dt.date) else day.date()
                rows = as_publish_rows(part[["transaction_id", "customer_id", "tx_seconds", "terminal_id", "tx_amount",
                                             "tx_fraud"]].itertuples(index=False, name=None))
                result = store.replace_day(conn, day, rows)
                rows_total += result["customer_rows"]
                replaced += result["endpoint_rows_replaced"]
                log.info("published %s: %d transactions", day, result["customer_rows"])
                fault_point("publish:after_day")  # crash tests: this day committed, the next not begun
        pruned = store.prune(conn, min(first, keep_from)) if publish_end is None else {}
        table_counts = store.counts(conn)
    return {"window": [first.isoformat(), last.isoformat()], "days_published": [d.isoformat() for d in days],
            "rows": rows_total, "endpoint_rows_replaced": replaced, "pruned": pruned, "counts": table_counts}
