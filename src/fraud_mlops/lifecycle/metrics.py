"""Fraud-detection metrics: threshold-free transaction metrics and the card precision top-k.

The card precision top-k follows the protocol of the *Reproducible Machine Learning for Credit Card
Fraud Detection - Practical Handbook* (Le Borgne, Siblini, Lebichot, Bontempi; Université Libre de
Bruxelles, 2022), chapter 4, section 4 "Precision top-k metrics"
(https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_4_PerformanceMetrics/TopKBased.html):
investigators can check only ``k`` cards a day, so what matters is the share of compromised cards
among the ``k`` most suspicious cards of each day.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_mlops.medallion.schema import LABEL_COLUMN


def _check_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"scored frame lacks column(s) {missing}; it has {list(df.columns)}")


def card_precision_top_k(
    df: pd.DataFrame,
    k: int = 100,
    day_col: str = "tx_date",
    card_col: str = "customer_id",
    score_col: str = "score",
    label_col: str = LABEL_COLUMN,
) -> tuple[float, list[float]]:
    """Mean daily card precision top-k, as defined by the Fraud Detection Handbook.

    Source: Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection -
    Practical Handbook*, chapter 4, section "Precision top-k metrics", functions
    ``card_precision_top_k_day`` and ``card_precision_top_k``
    (https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_4_PerformanceMetrics/TopKBased.html).

    For each day, in date order:

    1. the transactions of cards already *detected* on an earlier day are dropped (a detected card
       is blocked, so it leaves the pool of cards to check);
    2. the transactions are aggregated per card: the card's score is the maximum score of its
       transactions that day and its label is the maximum label (compromised if any transaction
       is fraudulent);
    3. the ``k`` cards with the highest score are selected (ties are broken by card id, ascending,
       so that the result is deterministic);
    4. the day's precision is the number of compromised cards among them divided by ``k``; those
       compromised cards are detected and leave the pool for the following days.

    As in the Handbook the denominator is always ``k``, even on a day with fewer than ``k`` cards.

    Returns:
        ``(mean, per_day)``: the mean over the days present in ``df`` and the list of daily
        precisions in date order.

    Raises:
        ValueError: ``k < 1``, a column is missing, a score is null, or ``df`` is empty.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check_columns(df, [day_col, card_col, score_col, label_col])
    if df.empty:
        raise ValueError("card_precision_top_k needs at least one scored transaction")
    if df[score_col].isna().any():
        raise ValueError(f"column {score_col!r} holds null scores")

    data = df[[day_col, card_col, score_col, label_col]]
    detected: set[Any] = set()
    per_day: list[float] = []
    for _, day_df in data.groupby(day_col, sort=True):
        pool = day_df[~day_df[card_col].isin(detected)]
        cards = pool.groupby(card_col, sort=True).agg(score=(score_col, "max"), label=(label_col, "max"))
        cards = cards.reset_index().sort_values(
            ["score", card_col], ascending=[False, True], kind="mergesort"
        )
        top = cards.head(k)
        hits = top.loc[top["label"] > 0, card_col]
        per_day.append(len(hits) / k)
        detected.update(hits.tolist())
    return float(np.mean(per_day)), per_day


def evaluate_scores(
    df: pd.DataFrame,
    score_col: str = "score",
    label_col: str = LABEL_COLUMN,
    day_col: str = "tx_date",
    card_col: str = "customer_id",
    k: int = 100,
) -> dict[str, float]:
    """Threshold-free metrics of fraud scores on a test window.

    Returns a dict with:

    * ``average_precision``: area under the precision-recall curve, scikit-learn's
      ``average_precision_score`` (the Handbook's recommended transaction-level metric);
    * ``roc_auc``: area under the ROC curve;
    * ``card_precision_top_<k>`` (``card_precision_top_100`` by default): see
      :func:`card_precision_top_k`;
    * ``n_transactions`` and ``n_frauds`` (as floats, so that the dict logs as MLflow metrics).

    A window holding a single class (no fraud, or only frauds) has no defined ranking metric:
    ``average_precision`` and ``roc_auc`` are then ``nan`` (not an exception), so that a training
    run is still recorded; the validation gate (:func:`fraud_mlops.lifecycle.gate.decide`) treats a ``nan``
    metric as a failed check, so such a model is never promoted.

    Raises:
        ValueError: a column is missing, a score is null, or ``df`` is empty.
    """
    _check_columns(df, [score_col, label_col, day_col, card_col])
    if df.empty:
        raise ValueError("evaluate_scores needs at least one scored transaction")
    y_true = df[label_col].astype(int).to_numpy()
    y_score = df[score_col].astype(float).to_numpy()
    if np.isnan(y_score).any():
        raise ValueError(f"column {score_col!r} holds null scores")
    n_frauds = int(y_true.sum())
    both_classes = 0 < n_frauds < len(y_true)
    ap = float(average_precision_score(y_true, y_score)) if both_classes else math.nan
    auc = float(roc_auc_score(y_true, y_score)) if both_classes else math.nan
    cp_mean, _ = card_precision_top_k(
        df, k=k, day_col=day_col, card_col=card_col, score_col=score_col, label_col=label_col
    )
    return {
        "average_precision": ap,
        "roc_auc": auc,
        f"card_precision_top_{k}": cp_mean,
        "n_transactions": float(len(y_true)),
        "n_frauds": float(n_frauds),
    }
