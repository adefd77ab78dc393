"""Charts of the pipeline's tables, as matplotlib figures (used by the notebooks).

Each function takes small pandas frames (read by :mod:`fraud_mlops.reporting.data`) and returns a
``matplotlib.figure.Figure``, without pyplot, so that it works in any process (a job, a notebook on
Databricks, a headless test). :func:`save` writes one as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def save(fig: Figure, folder: str | Path, name: str) -> Path:
    """Write ``fig`` to ``<folder>/<name>.png`` (the folder is created) and return the path."""
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------------------------ data
def daily_volume(summary: pd.DataFrame) -> Figure:
    """Transactions per day (bars) and the daily fraud rate (line, %), from ``gold_daily_fraud_summary``
    (``tx_date``, ``n_transactions``, ``fraud_rate``)."""
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    days = pd.to_datetime(summary["tx_date"])
    ax.bar(days, summary["n_transactions"], color="#9ab", width=0.8, label="transactions")
    ax.set_ylabel("transactions per day")
    rate = ax.twinx()
    rate.plot(days, 100 * summary["fraud_rate"].astype(float), color="#c33", label="fraud rate")
    rate.set_ylabel("fraud rate (%)", color="#c33")
    ax.set_title("Daily volume and fraud rate")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def amount_by_class(sample: pd.DataFrame) -> Figure:
    """Distribution of ``tx_amount`` (currency units, log bins) for genuine and fraudulent transactions."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    amounts = sample["tx_amount"].astype(float).clip(lower=0.01)
    bins = np.logspace(np.log10(max(amounts.min(), 0.01)), np.log10(max(amounts.max(), 1.0)), 50)
    for label, name, color in ((0, "genuine", "#69c"), (1, "fraud", "#c33")):
        values = amounts[sample["tx_fraud"] == label]
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.6, label=f"{name} ({len(values):,})", color=color)
    ax.set_xscale("log")
    ax.set_xlabel("amount (currency units, log scale)")
    ax.set_ylabel("density")
    ax.set_title("Amount by class")
    ax.legend()
    fig.tight_layout()
    return fig


def count_bars(counts: pd.DataFrame, label: str, value: str, title: str, xlabel: str) -> Figure:
    """Horizontal bars of ``counts[value]`` by ``counts[label]`` (largest on top); a note when empty."""
    fig = Figure(figsize=(7, 0.35 * max(len(counts), 3) + 1.5))
    ax = fig.subplots()
    if counts.empty:
        _empty(ax, "none")
    else:
        ordered = counts.sort_values(value)
        ax.barh(ordered[label].astype(str), ordered[value], color="#69c")
        ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ model
def pr_and_roc(labels: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    """Precision-recall and ROC curves of fraud scores (labels 0/1, scores in [0, 1])."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fig = Figure(figsize=(10, 4.2))
    pr, roc = fig.subplots(1, 2)
    precision, recall, _ = precision_recall_curve(labels, scores)
    pr.step(recall, precision, where="post", label=f"AP = {average_precision_score(labels, scores):.3f}")
    pr.axhline(labels.mean(), color="grey", linestyle="--", label=f"fraud rate {labels.mean():.3f}")
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.05), title="Precision-recall")
    pr.legend(loc="upper right")
    fpr, tpr, _ = roc_curve(labels, scores)
    roc.plot(fpr, tpr, label=f"ROC AUC = {roc_auc_score(labels, scores):.3f}")
    roc.plot([0, 1], [0, 1], color="grey", linestyle="--")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    roc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def card_precision_at_k(ks: list[int], precision: list[float], title: str) -> Figure:
    """Card precision@k (Handbook ch. 4) against k, the cards investigators can review per day."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(ks, precision, marker="o")
    ax.axvline(100, color="grey", linestyle="--", label="k = 100 (the alert budget)")
    ax.set(xlabel="k (cards reviewed per day)", ylabel="card precision@k", ylim=(0, 1.0), title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def alerts_per_day(alerts: pd.DataFrame, budget: int | None, title: str) -> Figure:
    """Card alerts per day (``tx_date``, ``alerts``) against the alert budget (a line)."""
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    if alerts.empty:
        _empty(ax, "no predictions")
    else:
        ax.bar(pd.to_datetime(alerts["tx_date"]), alerts["alerts"], color="#69c", label="cards flagged")
        if budget:
            ax.axhline(budget, color="#c33", linestyle="--", label=f"alert budget {budget}")
        ax.set_ylabel("cards flagged per day")
        ax.legend()
        fig.autofmt_xdate()
    ax.set_title(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ monitoring
def psi_heatmap(psi: pd.DataFrame) -> Figure:
    """PSI per feature (rows) and monitoring window end (columns), from ``monitoring_metrics`` rows
    (``window_end``, ``feature``, ``value``); 0.2 and more is drift."""
    fig = Figure(figsize=(9, 0.3 * max(psi["feature"].nunique() if not psi.empty else 1, 6) + 2))
    ax = fig.subplots()
    if psi.empty:
        _empty(ax, "no monitoring run yet")
    else:
        table = psi.pivot_table(index="feature", columns="window_end", values="value", aggfunc="last")
        image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="Reds", vmin=0, vmax=0.3)
        ax.set_yticks(range(len(table.index)), labels=table.index)
        ax.set_xticks(range(len(table.columns)), labels=[str(c) for c in table.columns], rotation=45, ha="right")
        fig.colorbar(image, ax=ax, label="PSI (>= 0.2: drift)")
    ax.set_title("PSI per feature, per monitoring window (reference: the champion's training window)")
    fig.tight_layout()
    return fig


def metrics_over_time(rows: pd.DataFrame, metrics: list[str], title: str) -> Figure:
    """Lines of ``value`` per ``window_end`` for each of ``metrics`` (``monitoring_metrics`` rows)."""
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    shown = rows[rows["metric"].isin(metrics)] if not rows.empty else rows
    if shown.empty:
        _empty(ax, "no labelled monitoring window yet")
    else:
        for metric, part in shown.groupby("metric"):
            part = part.sort_values("window_end")
            ax.plot(pd.to_datetime(part["window_end"]), part["value"].astype(float), marker="o", label=metric)
        ax.set_xlabel("monitoring window end")
        ax.legend()
        fig.autofmt_xdate()
    ax.set_title(title)
    fig.tight_layout()
    return fig
