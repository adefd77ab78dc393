"""One real-time scoring request: validated landing fields in, the champion's answer out, recorded.

In one PostgreSQL transaction, holding the customer's advisory lock (so that two requests of one
customer take turns and each sees the other):

1. a ``TRANSACTION_ID`` scored before gets its stored answer back (``"repeated": true``) and nothing
   is written; the same id with different fields is a 409 conflict;
2. the customer's transactions of the last 37 days and the terminal's labelled transactions of its
   delayed windows are read from the online store;
3. :func:`fraud_mlops.online.features.online_features` computes the features from the same
   definitions as the batch feature library;
4. the served ``@champion`` gives the fraud probability and the reason codes; the decision is
   ``probability >= decision_threshold`` (the threshold training recorded for the alert budget);
5. the transaction is added to the customer's history and the answer stored, then committed.

If the store fails at any step, the transaction is rolled back: nothing is written and the caller
answers 503.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from fraud_mlops.medallion.feature_definitions import (
    SECONDS_PER_DAY,
    customer_reach_seconds,
    terminal_reach_days,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.online.features import CustomerTransaction, epoch_seconds, online_features
from fraud_mlops.online.store import OnlineStore, OnlineStoreUnavailableError
from fraud_mlops.serving.model import ChampionWatcher, ServedModel, one_thread

__all__ = ["LANDING_FIELDS", "NoChampionError", "ScoringConflictError", "TransactionScorer"]

#: The request fields: the landing file's columns known when a card is presented (no label).
LANDING_FIELDS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")
TX_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class NoChampionError(RuntimeError):
    """There is no ``@champion`` to score with yet (or it could not be loaded)."""


class ScoringConflictError(ValueError):
    """A ``TRANSACTION_ID`` already scored came again with different fields."""


@dataclass(frozen=True)
class ScoringSettings:
    """Settings of the scorer: the features' label delay D (days) and the number of reason codes."""

    label_delay_days: int = 7
    reason_codes: int = 3


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pyfunc_answer(python_model: Any, features: dict[str, Any], k: int) -> tuple[float, list[tuple[str, Any]]]:
    """``(probability, [(feature, contribution), ...])`` of one row from the pyfunc's ``predict`` and
    (when it has them) ``reason_codes`` on a one-row DataFrame of FEATURE_COLUMNS."""
    frame = pd.DataFrame([{c: features[c] for c in FEATURE_COLUMNS}], columns=list(FEATURE_COLUMNS))
    probability = float(python_model.predict(None, frame)[0])
    top: list[tuple[str, Any]] = []
    if callable(getattr(python_model, "reason_codes", None)):
        codes = python_model.reason_codes(frame, k).iloc[0]
        for i in range(1, k + 1):
            feature = codes.get(f"reason_{i}")
            if isinstance(feature, str):
                top.append((feature, codes.get(f"reason_{i}_contribution")))
    return probability, top


class TransactionScorer:
    """Scores one transaction at a time against the online store (see the module docstring).

    Args:
        pool: connections to the target's online store database.
        store: its tables (:class:`fraud_mlops.online.store.OnlineStore`).
        watcher: the served ``@champion``.
        settings: label delay and reason codes.
    """

    def __init__(self, pool: ConnectionPool, store: OnlineStore, watcher: ChampionWatcher,
                 settings: ScoringSettings | None = None):
        self.pool = pool
        self.store = store
        self.watcher = watcher
        self.settings = settings or ScoringSettings()
        self._customer_reach = customer_reach_seconds()
        self._terminal_reach = terminal_reach_days() * SECONDS_PER_DAY

    def score(self, request: dict[str, Any]) -> dict[str, Any]:
        """Score one validated request (:data:`LANDING_FIELDS`: ints, ``TX_DATETIME`` text
        ``YYYY-MM-DD HH:MM:SS``, ``TX_AMOUNT`` a finite number >= 0).

        Returns:
            The answer: ``transaction_id`` (int), ``fraud_probability`` (float in [0, 1]), ``decision``
            (1 = alert, 0 = pass), ``decision_threshold`` (float), ``alert_budget`` (cards per day),
            ``reason_codes`` (list of ``{"feature", "contribution"}``, contribution in log-odds),
            ``model_name``, ``model_version``, ``features`` (the computed feature values),
            ``scored_at`` (ISO UTC) and ``repeated`` (True when the id was scored before).

        Raises:
            OnlineStoreUnavailableError: the store cannot be reached (nothing was written).
            NoChampionError: no champion is loaded (nothing was written).
            ScoringConflictError: the id was scored before with other fields (nothing was written).
        """
        when = dt.datetime.strptime(request["TX_DATETIME"], TX_DATETIME_FORMAT)
        current = CustomerTransaction(epoch_seconds(when), int(request["TRANSACTION_ID"]),
                                      int(request["TERMINAL_ID"]), float(request["TX_AMOUNT"]))
        customer_id = int(request["CUSTOMER_ID"])
        try:
            with self.pool.connection() as conn, conn.transaction():
                self.store.customer_lock(conn, customer_id)
                earlier = self.store.scored(conn, current.transaction_id)
                if earlier is not None:
                    stored_request, stored_response = earlier
                    if stored_request != request:
                        differ = sorted(k for k in set(request) | set(stored_request)
                                        if request.get(k) != stored_request.get(k))
                        raise ScoringConflictError(
                            f"TRANSACTION_ID {current.transaction_id} was scored before with other values of {differ}")
                    return {**stored_response, "repeated": True}
                model = self.watcher.current()
                if model is None:
                    raise NoChampionError(self.watcher.last_error or "no champion model is loaded yet")
                history = self.store.customer_history(conn, customer_id, current.seconds, current.transaction_id,
                                                      self._customer_reach)
                delay = self.settings.label_delay_days * SECONDS_PER_DAY
                terminal = self.store.terminal_history(conn, current.terminal_id,
                                                       current.seconds - delay - self._terminal_reach,
                                                       current.seconds - delay)
                features = online_features(current, history, terminal, self.settings.label_delay_days)
                response = self._answer(model, current, features)
                self.store.record(conn, customer_id, current, request, response, model.version)
                return response
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise OnlineStoreUnavailableError(f"the online store is unavailable: {exc}") from exc

    def _answer(self, model: ServedModel, current: CustomerTransaction, features: dict[str, Any]) -> dict[str, Any]:
        k = self.settings.reason_codes
        with one_thread():
            if model.one_row is not None:
                probability, top = model.one_row.score(features, k)
            else:
                probability, top = _pyfunc_answer(model.python_model, features, k)
        decision = int(probability >= model.threshold)
        reasons = [{"feature": feature, "contribution": _finite(contribution)} for feature, contribution in top]
        return {
            "transaction_id": current.transaction_id,
            "fraud_probability": probability,
            "decision": decision,
            "decision_threshold": model.threshold,
            "alert_budget": model.alert_budget,
            "reason_codes": reasons,
            "model_name": model.name,
            "model_version": model.version,
            "features": {c: (_finite(v) if isinstance(v, float) else v) for c, v in features.items()},
            "scored_at": dt.datetime.now(dt.UTC).isoformat(),
            "repeated": False,
        }

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "no_champion" | "store_unavailable", "store": ..., "model": ...}``."""
        model = self.watcher.current()
        store = "ok"
        try:
            with self.pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.OperationalError) as exc:
            store = f"unavailable: {exc}"
        status = "ok" if model is not None and store == "ok" else ("store_unavailable" if store != "ok" else "no_champion")
        return {
            "status": status,
            "store": store,
            "model": None if model is None else {
                "name": model.name, "version": model.version, "decision_threshold": model.threshold,
                "alert_budget": model.alert_budget, "threshold_source": model.threshold_source,
                "loaded_at": model.loaded_at.isoformat()},
            "model_error": self.watcher.last_error,
        }
