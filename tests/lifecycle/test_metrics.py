"""Card precision top-k and the evaluation metrics, on hand-made data with hand-computed values."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_mlops.lifecycle.metrics import card_precision_top_k, evaluate_scores

D1, D2, D3 = dt.date(2018, 4, 1), dt.date(2018, 4, 2), dt.date(2018, 4, 3)


def _scored(rows):
    return pd.DataFrame(rows, columns=["tx_date", "customer_id", "score", "tx_fraud"])


@pytest.fixture()
def three_days():
    # k = 2 throughout.
    return _scored(
        [
            # Day 1. Card 1: its highest score (0.9) is on a genuine transaction, its fraud scores
            # only 0.2; per card, score = max = 0.9 and label = max = 1, so card 1 is a hit.
            (D1, 1, 0.9, 0),
            (D1, 1, 0.2, 1),
            (D1, 2, 0.8, 0),
            (D1, 3, 0.7, 1),
            (D1, 4, 0.1, 1),  # compromised but not in the top 2: not detected, stays in the pool
            # Top 2 = {1 (fraud), 2 (genuine)} -> 1/2. Detected: {1}.
            # Day 2. Card 1 (detected on day 1) leaves the pool despite its top score.
            (D2, 1, 0.95, 1),
            (D2, 3, 0.6, 1),
            (D2, 4, 0.5, 0),
            (D2, 5, 0.4, 1),
            # Pool {3, 4, 5}; top 2 = {3 (fraud), 4 (genuine)} -> 1/2. Detected: {1, 3}.
            # Day 3. Card 3 leaves the pool; one card left, the denominator stays k = 2.
            (D3, 3, 0.99, 1),
            (D3, 5, 0.3, 0),
            # Pool {5}; top 2 = {5 (genuine)} -> 0/2.
        ]
    )


def test_card_precision_top_k_hand_computed(three_days):
    mean, per_day = card_precision_top_k(three_days, k=2)
    assert per_day == [0.5, 0.5, 0.0]
    assert mean == pytest.approx(1 / 3)


def test_card_precision_top_k_ignores_row_order(three_days):
    shuffled = three_days.sample(frac=1.0, random_state=7)
    assert card_precision_top_k(shuffled, k=2) == card_precision_top_k(three_days, k=2)


def test_card_precision_top_k_with_timestamps_and_custom_columns(three_days):
    renamed = three_days.rename(
        columns={"tx_date": "day", "customer_id": "card", "score": "p", "tx_fraud": "y"}
    )
    renamed["day"] = pd.to_datetime(renamed["day"])
    mean, per_day = card_precision_top_k(
        renamed, k=2, day_col="day", card_col="card", score_col="p", label_col="y"
    )
    assert per_day == [0.5, 0.5, 0.0]
    assert mean == pytest.approx(1 / 3)


def test_card_precision_top_k_one_card_per_day():
    # k = 1: day 1 picks card 1 (0.9, compromised) -> 1.0; day 2 card 1 is blocked, the next best
    # card 2 is genuine -> 0.0.
    df = _scored([(D1, 1, 0.9, 1), (D1, 2, 0.5, 0), (D2, 1, 0.99, 1), (D2, 2, 0.8, 0), (D2, 3, 0.1, 1)])
    mean, per_day = card_precision_top_k(df, k=1)
    assert per_day == [1.0, 0.0]
    assert mean == 0.5


def test_card_precision_top_k_ties_are_broken_by_card_id():
    df = _scored([(D1, 9, 0.5, 0), (D1, 3, 0.5, 1), (D1, 5, 0.5, 0)])
    assert card_precision_top_k(df, k=1) == (1.0, [1.0])  # card 3 comes first
    df2 = _scored([(D1, 1, 0.5, 0), (D1, 3, 0.5, 1)])
    assert card_precision_top_k(df2, k=1) == (0.0, [0.0])


def test_card_precision_top_k_rejects_bad_input(three_days):
    with pytest.raises(ValueError, match="k must be"):
        card_precision_top_k(three_days, k=0)
    with pytest.raises(ValueError, match="lacks column"):
        card_precision_top_k(three_days.drop(columns=["score"]), k=2)
    with pytest.raises(ValueError, match="at least one"):
        card_precision_top_k(three_days.iloc[0:0], k=2)
    bad = three_days.copy()
    bad.loc[0, "score"] = np.nan
    with pytest.raises(ValueError, match="null scores"):
        card_precision_top_k(bad, k=2)


def test_evaluate_scores_matches_sklearn(three_days):
    metrics = evaluate_scores(three_days, k=2)
    assert set(metrics) == {
        "average_precision",
        "roc_auc",
        "card_precision_top_2",
        "n_transactions",
        "n_frauds",
    }
    y, s = three_days["tx_fraud"], three_days["score"]
    assert metrics["average_precision"] == pytest.approx(average_precision_score(y, s))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert metrics["card_precision_top_2"] == pytest.approx(1 / 3)
    assert metrics["n_transactions"] == 11
    assert metrics["n_frauds"] == 7


def test_evaluate_scores_default_key_is_top_100(three_days):
    metrics = evaluate_scores(three_days)
    # k = 100 holds every card. Day 1: compromised {1, 3, 4} -> 3/100, all detected. Day 2: cards 1
    # and 3 are blocked, 4 is detected too; pool {5}, compromised -> 1/100. Day 3: cards 3 and 5
    # are blocked; empty pool -> 0.
    assert metrics["card_precision_top_100"] == pytest.approx((0.03 + 0.01 + 0.0) / 3)


def test_evaluate_scores_single_class_window_gives_nan():
    df = _scored([(D1, 1, 0.9, 0), (D1, 2, 0.1, 0), (D2, 1, 0.3, 0)])
    metrics = evaluate_scores(df)
    assert math.isnan(metrics["average_precision"])
    assert math.isnan(metrics["roc_auc"])
    assert metrics["card_precision_top_100"] == 0.0
    assert metrics["n_frauds"] == 0
    only_frauds = _scored([(D1, 1, 0.9, 1), (D1, 2, 0.1, 1)])
    assert math.isnan(evaluate_scores(only_frauds)["average_precision"])


def test_evaluate_scores_rejects_missing_columns(three_days):
    with pytest.raises(ValueError, match="lacks column"):
        evaluate_scores(three_days.drop(columns=["customer_id"]))
