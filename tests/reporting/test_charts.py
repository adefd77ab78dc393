"""Charts: every figure builds from empty frames too (a table not written yet), and saves as PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_mlops.reporting import charts


def test_charts_of_empty_tables_say_so_instead_of_failing(tmp_path):
    empty_monitoring = pd.DataFrame(columns=["window_end", "metric", "feature", "value"])
    figures = {
        "bars": charts.count_bars(pd.DataFrame(columns=["reason", "n_rows"]), "reason", "n_rows", "t", "rows"),
        "alerts": charts.alerts_per_day(pd.DataFrame(columns=["tx_date", "alerts"]), None, "t"),
        "psi": charts.psi_heatmap(empty_monitoring),
        "quality": charts.metrics_over_time(empty_monitoring, ["average_precision"], "t"),
    }
    for name, fig in figures.items():
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts and texts[0] in ("none", "no predictions", "no monitoring run yet",
                                      "no labelled monitoring window yet"), name
        path = charts.save(fig, tmp_path / "figs", name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_and_budget_line():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.1).astype(int)
    scores = np.clip(labels * 0.4 + rng.random(500) * 0.6, 0, 1)
    fig = charts.pr_and_roc(labels, scores, "t")
    legends = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert any(text.startswith("AP = ") for text in legends) and any(t.startswith("ROC AUC = ") for t in legends)
    alerts = pd.DataFrame({"tx_date": pd.date_range("2018-08-01", periods=3), "alerts": [90, 110, 95]})
    fig = charts.alerts_per_day(alerts, 100, "t")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["alert budget 100", "cards flagged"]
