"""Decision thresholds from an alert budget or a cost matrix."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraud_mlops.lifecycle import thresholds as T


def _scored(n_days=9, cards_per_day=(400, 1500), seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_days):
        n_cards = int(rng.integers(*cards_per_day))
        cards = np.arange(n_cards)
        tx = rng.integers(1, 4, n_cards)  # 1-3 transactions per card
        frames.append(pd.DataFrame({
            "tx_date": dt.date(2018, 8, 1) + dt.timedelta(days=i),
            "customer_id": np.repeat(cards, tx),
            "score": rng.beta(0.5, 20, int(tx.sum())),
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("budget", [1, 25, 100, 300])
def test_alert_budget_threshold_raises_the_budget_on_a_typical_day(budget):
    scored = _scored()
    threshold = T.alert_budget_threshold(scored, budget)
    alerts = T.alerts_per_day(scored, threshold)
    assert len(alerts) == 9
    # the median day raises exactly the budget (scores are continuous: no ties)
    assert int(np.median(alerts.to_numpy())) == budget
    # and every day's k-th card score brackets it: half the days above, half below
    assert (alerts >= budget).sum() >= 5 and (alerts <= budget).sum() >= 5


def test_alert_budget_threshold_uses_the_card_maximum_and_small_days():
    scored = pd.DataFrame({"tx_date": ["d1"] * 4 + ["d2"] * 2, "customer_id": [1, 1, 2, 3, 1, 2],
                           "score": [0.9, 0.1, 0.5, 0.4, 0.3, 0.2]})
    # d1 cards: 0.9, 0.5, 0.4 -> 2nd = 0.5; d2 cards: 0.3, 0.2 -> 2nd = 0.2; median = 0.35
    assert T.alert_budget_threshold(scored, 2) == pytest.approx(0.35)
    # a budget larger than a day's cards: its lowest card score
    assert T.alert_budget_threshold(scored, 10) == pytest.approx((0.4 + 0.2) / 2)


def test_alert_budget_errors():
    with pytest.raises(ValueError, match=">= 1"):
        T.alert_budget_threshold(_scored(1), 0)
    with pytest.raises(ValueError, match="needs scored"):
        T.alert_budget_threshold(_scored(1).iloc[0:0], 5)
    with pytest.raises(ValueError, match="null"):
        T.alert_budget_threshold(pd.DataFrame({"tx_date": [1], "customer_id": [1], "score": [None]}), 1)


def test_cost_threshold_is_the_bayes_rule():
    assert T.cost_threshold(cost_missed_fraud=99.0, cost_false_alert=1.0) == pytest.approx(0.01)
    assert T.cost_threshold(1.0, 1.0) == 0.5
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            T.cost_threshold(bad, 1.0)
