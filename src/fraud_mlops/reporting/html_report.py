"""One self-contained HTML page with the pipeline's state: tables, quarantine, model versions, monitoring.

``fraud-mlops report`` (and the end of ``make demo``) writes it. The page needs nothing but a
browser: the charts (:mod:`fraud_mlops.reporting.charts`, matplotlib) are embedded as PNG data URIs,
the styles inline. A short script at the end of the page counts the charts that loaded and puts the
count on ``<body data-charts-loaded=... data-charts-expected=...>``, and reports a chart that did not
load on the browser console, so a headless browser can check the page (``tests/reporting``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fraud_mlops.lifecycle.thresholds import ALERT_BUDGET_TAG, DECISION_THRESHOLD_TAG
from fraud_mlops.platform import config as C
from fraud_mlops.platform.lakehouse import Lakehouse
from fraud_mlops.reporting import charts
from fraud_mlops.reporting import data as D

#: Tables listed with their row counts and Delta versions, in pipeline order.
REPORT_TABLES: tuple[str, ...] = (
    C.BRONZE_INGESTION_LOG, C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE,
    C.SILVER_PROCESSED_FILES, C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY, C.PREDICTIONS, C.PREDICTIONS_SHADOW,
    C.MONITORING_METRICS, C.INFERENCE_LOG,
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; } td.n { text-align: right; }
img.chart { max-width: 100%; display: block; margin: .8rem 0; }
.note { color: #666; font-size: .9rem; }
"""
_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var charts = document.querySelectorAll("img.chart"), loaded = 0;
  charts.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { loaded += 1; }
    else { console.error("chart did not load: " + img.alt); }
  });
  document.body.dataset.chartsLoaded = String(loaded);
  document.body.dataset.chartsExpected = String(charts.length);
});
"""


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _table(frame: pd.DataFrame, empty: str = "none") -> str:
    if frame.empty:
        return f'<p class="note">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for value in record:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) >= 1000:
                value = int(value)
            text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else (
                f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value)))
            cells.append(f'<td class="n">{text}</td>' if numeric else f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def table_counts(lakehouse: Lakehouse) -> pd.DataFrame:
    """``table`` (full name), ``rows``, ``delta_version`` of :data:`REPORT_TABLES` (a missing table: no
    row count, version ``not written``)."""
    rows = []
    for name in REPORT_TABLES:
        version = lakehouse.version(name)
        rows.append({"table": lakehouse.ref(name).full_name,
                     "rows": lakehouse.count(name) if version is not None else None,
                     "delta_version": "not written" if version is None else str(version)})
    return pd.DataFrame(rows)


def model_versions(model_name: str) -> pd.DataFrame:
    """The registered model's versions, newest first: ``version``, ``aliases``, ``validation_status``,
    ``validation AP``, ``decision_threshold``, ``alert_budget``, ``promotion_status``, ``created`` (UTC).
    Empty when the model is not registered."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        model = client.get_registered_model(model_name)
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return pd.DataFrame()
    by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = mv.tags or {}
        ap = tags.get("validation_average_precision")
        rows.append({
            "version": str(mv.version),
            "aliases": ", ".join(sorted(by_version.get(str(mv.version), []))),
            "validation_status": tags.get("validation_status", ""),
            "validation AP": float(ap) if ap not in (None, "") else None,
            "decision_threshold": float(tags[DECISION_THRESHOLD_TAG]) if tags.get(DECISION_THRESHOLD_TAG) else None,
            "alert_budget": tags.get(ALERT_BUDGET_TAG, ""),
            "promotion_status": tags.get("promotion_status", ""),
            "created": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
        })
    return pd.DataFrame(rows)


def latest_monitoring(rows: pd.DataFrame) -> pd.DataFrame:
    """The latest monitoring window's headline metrics (``metric``, ``value``, ``breached``)."""
    if rows.empty:
        return rows
    latest = rows[rows["window_end"] == rows["window_end"].max()]
    keep = ["average_precision", "card_precision_top_100", "fraud_rate", "alerts_per_day_mean", "alert_budget",
            "precision_within_budget", "n_transactions", "n_labeled", "alert", "retrain"]
    head = latest[latest["metric"].isin(keep)][["metric", "value", "breached"]]
    psi = latest[latest["metric"] == "psi"].sort_values("value", ascending=False).head(3)
    psi = psi.assign(metric="psi " + psi["feature"].astype(str))[["metric", "value", "breached"]]
    return pd.concat([head, psi], ignore_index=True)


def build_report(lakehouse: Lakehouse, model_name: str, *, generated_at: dt.datetime | None = None) -> str:
    """The report as an HTML string (see the module docstring). MLflow must point at the target's
    registry (:func:`fraud_mlops.lifecycle.tracking.configure_mlflow`). Tables that do not exist yet
    are shown as such; no section fails for lack of data."""
    when = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    monitoring = D.monitoring_rows(lakehouse)
    alerts, budget = D.alerts_by_day(lakehouse, model_name)
    quarantine = D.quarantine_reasons(lakehouse)
    sections: list[tuple[str, str]] = [
        ("Tables", _table(table_counts(lakehouse))),
        ("Daily volume and fraud rate",
         _img(charts.daily_volume(D.daily_summary(lakehouse)), "daily volume and fraud rate")),
        ("Quarantine", _table(quarantine, "no quarantined row")
         + _img(charts.count_bars(quarantine, "reason", "n_rows", "Quarantined rows by reason", "rows"),
                "quarantine reasons")),
        (f"Model versions of {model_name}", _table(model_versions(model_name), "the model is not registered yet")),
        ("Alerts per day against the budget",
         _img(charts.alerts_per_day(alerts, budget, "Cards flagged per day (predictions)"), "alerts per day")),
        ("Latest monitoring", _table(latest_monitoring(monitoring), "no monitoring run yet")
         + _img(charts.metrics_over_time(monitoring, ["average_precision", "card_precision_top_100",
                                                      "precision_within_budget"], "Quality on labelled days"),
                "quality over time")
         + _img(charts.psi_heatmap(monitoring[monitoring["metric"] == "psi"] if not monitoring.empty else monitoring),
                "PSI per feature")),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>fraud-mlops report: {html.escape(lakehouse.config.catalog)}.{html.escape(lakehouse.config.schema)}"
        f"</title><style>{_STYLE}</style></head><body>"
        f"<h1>fraud-mlops: {html.escape(lakehouse.config.catalog)}.{html.escape(lakehouse.config.schema)}</h1>"
        f'<p class="note">generated {when}; model {html.escape(model_name)}</p>{body}'
        f"<script>{_CHECK_SCRIPT}</script></body></html>"
    )


def write_report(lakehouse: Lakehouse, model_name: str, path: str | Path) -> Path:
    """Write :func:`build_report` to ``path`` (folders created) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(lakehouse, model_name), encoding="utf-8")
    return path


def report_summary(page: str) -> dict[str, Any]:
    """What a page holds, read from its HTML: ``charts`` (number of embedded charts), ``sections`` (titles)."""
    import re

    return {"charts": page.count('<img class="chart"'), "sections": re.findall(r"<h2>(.*?)</h2>", page)}
