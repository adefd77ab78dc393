"""Replay landing files through the REST endpoint in time order and compare with batch scoring.

The proof of no training/serving skew: the same transactions, scored one request at a time from the
online store, must get the scores the batch job gave them from the gold table (to 1e-6).
:func:`replay_against_batch` does it all for a target: it publishes silver up to the day before the
first replayed day into a separate schema of the online store (``<schema>_replay``, so a running
endpoint's store is not touched), serves the champion on a free local port (in a child process),
sends every transaction
of the days in ``(TX_DATETIME, TRANSACTION_ID)`` order over HTTP, and joins the answers with the
``predictions`` table.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import requests

log = logging.getLogger("fraud_mlops.serving.replay")

__all__ = ["compare_with_batch", "landing_requests", "replay", "replay_against_batch"]

#: Largest difference between a replayed and a batch score that still counts as equal.
SCORE_TOLERANCE = 1e-6
_FIELDS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]


def landing_requests(landing: Path | str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The transactions of ``[start, end]`` found in the landing folder's ``*.csv`` and ``*.csv.gz``
    files, as request bodies, in ``(TX_DATETIME, TRANSACTION_ID)`` order.

    Returns:
        A DataFrame with the columns TRANSACTION_ID (int), TX_DATETIME (str), CUSTOMER_ID (int),
        TERMINAL_ID (int), TX_AMOUNT (float); rows that do not parse are left out here (silver
        quarantines them, the endpoint would answer 422).

    Raises:
        FileNotFoundError: the folder holds no landing file.
    """
    folder = Path(landing)
    files = sorted([*folder.glob("*.csv"), *folder.glob("*.csv.gz")])
    if not files:
        raise FileNotFoundError(f"no *.csv or *.csv.gz landing file in {folder}")
    frames = []
    for file in files:
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt") as handle:
            frame = pd.read_csv(handle, dtype=str)
        frames.append(frame[[c for c in _FIELDS if c in frame.columns]])
    rows = pd.concat(frames, ignore_index=True)
    when = pd.to_datetime(rows["TX_DATETIME"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    rows = rows[when.notna() & (when.dt.date >= start) & (when.dt.date <= end)].copy()
    for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    rows["TX_AMOUNT"] = pd.to_numeric(rows["TX_AMOUNT"], errors="coerce")
    rows = rows.dropna().astype({"TRANSACTION_ID": "int64", "CUSTOMER_ID": "int64", "TERMINAL_ID": "int64"})
    return rows.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(drop=True)


def replay(url: str, transactions: pd.DataFrame, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """POST every row of ``transactions`` to ``<url>/score``, one after the other.

    Returns:
        One row per request: ``transaction_id`` (int), ``status`` (HTTP status), ``fraud_probability``
        (float, NaN unless 200), ``decision`` (int, -1 unless 200), ``model_version`` (str),
        ``latency_ms`` (float, client-side).
    """
    out = []
    n = len(transactions)
    with requests.Session() as http:
        for i, row in enumerate(transactions[_FIELDS].itertuples(index=False, name=None)):
            body = dict(zip(_FIELDS, row, strict=True))
            body = {k: (v.item() if hasattr(v, "item") else v) for k, v in body.items()}
            started = time.perf_counter()
            answer = http.post(f"{url}/score", json=body, timeout=30)
            latency = (time.perf_counter() - started) * 1000
            ok = answer.status_code == 200
            data = answer.json() if ok else {}
            out.append((body["TRANSACTION_ID"], answer.status_code, data.get("fraud_probability", float("nan")),
                        data.get("decision", -1), data.get("model_version", ""), latency))
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, n)
    return pd.DataFrame(out, columns=["transaction_id", "status", "fraud_probability", "decision", "model_version",
                                      "latency_ms"])


def compare_with_batch(responses: pd.DataFrame, predictions: pd.DataFrame,
                       tolerance: float = SCORE_TOLERANCE) -> dict[str, Any]:
    """Join replayed answers with batch predictions on ``transaction_id``.

    Args:
        responses: from :func:`replay`.
        predictions: rows of the ``predictions`` table: ``transaction_id``, ``score``, ``decision``,
            ``model_version``.
        tolerance: largest absolute score difference counted as equal.

    Returns:
        ``n_requests``, ``n_ok`` (200 answers), ``n_compared`` (answered and in the batch table),
        ``n_missing_in_batch``, ``max_abs_difference``, ``n_over_tolerance``, ``n_decisions_differ``,
        ``n_model_version_differs``, ``equal`` (every request answered and compared, none over the
        tolerance, same decisions), ``latency_ms_p50``/``p99``.
    """
    ok = responses[responses["status"] == 200]
    joined = ok.merge(predictions[["transaction_id", "score", "decision", "model_version"]],
                      on="transaction_id", how="left", suffixes=("", "_batch"))
    compared = joined[joined["score"].notna()]
    difference = (compared["fraud_probability"] - compared["score"]).abs()
    result = {
        "n_requests": len(responses),
        "n_ok": len(ok),
        "n_compared": len(compared),
        "n_missing_in_batch": int(joined["score"].isna().sum()),
        "max_abs_difference": float(difference.max()) if len(compared) else None,
        "n_over_tolerance": int((difference > tolerance).sum()),
        "n_decisions_differ": int((compared["decision"] != compared["decision_batch"]).sum()),
        "n_model_version_differs": int((compared["model_version"] != compared["model_version_batch"]).sum()),
        "latency_ms_p50": float(responses["latency_ms"].quantile(0.5)) if len(responses) else None,
        "latency_ms_p99": float(responses["latency_ms"].quantile(0.99)) if len(responses) else None,
    }
    result["equal"] = bool(len(responses) and result["n_ok"] == result["n_requests"] == result["n_compared"]
                           and result["n_over_tolerance"] == 0 and result["n_decisions_differ"] == 0
                           and result["n_model_version_differs"] == 0)
    return result


def replay_against_batch(lakehouse, model_name: str, landing: Path | str, start: dt.date, end: dt.date,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Replay the landing transactions of ``[start, end]`` through a fresh endpoint and compare them
    with the ``predictions`` table (see the module docstring).

    Needs silver up to ``start - 1`` (published to ``<schema>_replay``), ``@champion`` in the registry
    and batch predictions of the days by that champion (``fraud-mlops run batch_scoring``).

    Returns:
        :func:`compare_with_batch`'s figures plus ``days`` and ``published`` (the publish step's result).

    Raises:
        ValueError: ``start`` is after ``end``.
        OnlineStoreUnavailableError: no online store is configured or reachable.
    """
    from pyspark.sql import functions as F

    from fraud_mlops.online.publish import publish_online_store
    from fraud_mlops.online.store import OnlineStore, OnlineStoreLocation, connection
    from fraud_mlops.platform import config as C
    from fraud_mlops.serving.server import ServerProcess

    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    config = lakehouse.config
    schema = f"{config.schema}_replay"
    location = OnlineStoreLocation.for_target(config.catalog, schema)
    location.ensure_database()
    with connection(location) as conn:
        OnlineStore(schema).drop(conn)  # a replay starts from silver alone
    published = publish_online_store(lakehouse, location, publish_end=start - dt.timedelta(days=1))
    transactions = landing_requests(landing, start, end)
    # the endpoint in a process of its own: the client here must not share its interpreter lock
    with ServerProcess(config.catalog, schema, model_name) as server:
        responses = replay(server.url, transactions, progress)
    predictions = (lakehouse.read(C.PREDICTIONS).where(F.col("tx_date").between(F.lit(start), F.lit(end)))
                   .select("transaction_id", "score", "decision", "model_version").toPandas())
    result = compare_with_batch(responses, predictions)
    result.update({"days": [start.isoformat(), end.isoformat()], "published": published})
    return result
