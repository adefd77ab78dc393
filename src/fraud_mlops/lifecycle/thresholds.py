"""Decision thresholds sized to what investigators can do: an alert budget, or a cost matrix.

A fraud score becomes an alert when it reaches the model's *decision threshold*. Two ways to set it:

* **Alert budget** (the default): investigators can review ``k`` cards a day (``k = 100`` in the
  Fraud Detection Handbook's card precision top-k, ch. 4 "Precision top-k metrics"). On each
  validation day, a card's score is the maximum score of its transactions that day; the day's
  ``k``-th highest card score is the threshold that would have raised exactly ``k`` card alerts
  that day. The decision threshold is the **median** of those daily thresholds, so that on a typical
  day the alerts match the budget (days with more suspicious activity raise more alerts, as they
  should). Training computes it on the deployed model's *out-of-sample* scores of the days after its
  training window (no label is needed), never on its training rows.
* **Cost matrix**: with ``c_miss`` the cost of a missed fraud and ``c_alert`` the cost of
  reviewing a false alert, flagging a transaction with fraud probability ``p`` is worth it when
  ``p * c_miss >= (1 - p) * c_alert``, i.e. ``p >= c_alert / (c_alert + c_miss)`` (the Bayes
  decision rule for calibrated probabilities; C. Elkan, *The Foundations of Cost-Sensitive
  Learning*, IJCAI 2001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Cards investigators review per day (the Handbook's k of card precision top-k).
DEFAULT_ALERT_BUDGET = 100
ALERT_BUDGET, COST = "alert_budget", "cost"
THRESHOLD_METHODS = (ALERT_BUDGET, COST)

#: Model version tags that record a version's decision settings (written by training, read by batch
#: scoring and the report).
DECISION_THRESHOLD_TAG = "decision_threshold"
ALERT_BUDGET_TAG = "alert_budget"
THRESHOLD_METHOD_TAG = "threshold_method"
THRESHOLD_SOURCE_TAG = "threshold_source"


def daily_card_scores(scored: pd.DataFrame, day_col: str = "tx_date", card_col: str = "customer_id",
                      score_col: str = "score") -> pd.DataFrame:
    """One row per (day, card) with the card's maximum score that day (``day``, ``card``, ``score``).

    Raises:
        ValueError: a column is missing or a score is null.
    """
    missing = [c for c in (day_col, card_col, score_col) if c not in scored.columns]
    if missing:
        raise ValueError(f"scored frame lacks column(s) {missing}")
    if scored[score_col].isna().any():
        raise ValueError(f"column {score_col!r} holds null scores")
    cards = scored.groupby([day_col, card_col], sort=True)[score_col].max().reset_index()
    return cards.rename(columns={day_col: "day", card_col: "card", score_col: "score"})


def alert_budget_threshold(scored: pd.DataFrame, budget: int = DEFAULT_ALERT_BUDGET, *,
                           day_col: str = "tx_date", card_col: str = "customer_id",
                           score_col: str = "score") -> float:
    """The decision threshold that raises about ``budget`` card alerts per day (see module docstring).

    Args:
        scored: out-of-sample scores: ``tx_date`` (date), ``customer_id`` (bigint), ``score``
            (fraud probability in [0, 1]), one row per transaction, over one or more days.
        budget: cards investigators review per day (>= 1).

    Returns:
        The median over days of the day's ``budget``-th highest card score, in [0, 1]. A day with
        fewer than ``budget`` cards contributes its lowest card score (every card would be reviewed).

    Raises:
        ValueError: ``budget < 1``, an empty frame, a missing column or a null score.
    """
    if int(budget) < 1:
        raise ValueError(f"alert budget must be >= 1 card per day, got {budget}")
    if scored.empty:
        raise ValueError("alert_budget_threshold needs scored transactions")
    cards = daily_card_scores(scored, day_col, card_col, score_col)
    per_day = cards.groupby("day", sort=True)["score"].apply(
        lambda s: float(np.sort(s.to_numpy())[::-1][min(int(budget), len(s)) - 1])
    )
    return float(np.median(per_day.to_numpy()))


def cost_threshold(cost_missed_fraud: float, cost_false_alert: float) -> float:
    """The cost-minimising threshold ``c_alert / (c_alert + c_miss)`` (see module docstring).

    Args:
        cost_missed_fraud: cost of a fraud that is not flagged (currency units, > 0).
        cost_false_alert: cost of reviewing a genuine transaction that was flagged (currency, > 0).

    Raises:
        ValueError: a cost that is not a positive finite number.
    """
    for name, value in (("cost_missed_fraud", cost_missed_fraud), ("cost_false_alert", cost_false_alert)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    return float(cost_false_alert) / (float(cost_false_alert) + float(cost_missed_fraud))


def alerts_per_day(scored: pd.DataFrame, threshold: float, *, day_col: str = "tx_date",
                   card_col: str = "customer_id", score_col: str = "score") -> pd.Series:
    """Number of distinct cards with a score ``>= threshold`` per day (index: day; days without
    an alert count 0)."""
    cards = daily_card_scores(scored, day_col, card_col, score_col)
    return (cards["score"] >= threshold).groupby(cards["day"], sort=True).sum().astype(int)
