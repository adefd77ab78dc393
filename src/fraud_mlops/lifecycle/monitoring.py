"""Drift, quality and alert-budget monitoring of the champion model, and the shadow comparison of the
challenger.

Definitions used here:

* **Population stability index (PSI)**: for bins ``i`` with reference proportion ``r_i`` and current
  proportion ``c_i``, ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` (a symmetrised Kullback-Leibler
  divergence). Bin edges are quantiles of the reference (deciles by default). Definition and
  statistical properties: B. Yurdakul, *Statistical Properties of Population Stability Index*,
  PhD dissertation, Western Michigan University, 2018; rule-of-thumb reading from N. Siddiqi,
  *Credit Risk Scorecards*, Wiley, 2006: < 0.1 no significant shift, 0.1-0.25 moderate shift,
  > 0.25 significant shift.
* **Average precision (AP)**: ``sklearn.metrics.average_precision_score`` (area under the
  precision-recall curve as a step-wise sum, scikit-learn documentation).
* **Card precision top-k**: the Fraud Detection Handbook's (Le Borgne et al., *Reproducible Machine
  Learning for Credit Card Fraud Detection - Practical Handbook*, 2022, section 4.2) daily share of
  fraudulent cards among the ``k`` cards with the highest risk, averaged over days; computed by
  :func:`fraud_mlops.lifecycle.metrics.card_precision_top_k`.
* **Alerts** (operational view of the same predictions): an *alert* is a card (``customer_id``) with at
  least one transaction of ``decision = 1`` on a day; investigators can review ``alert_budget`` cards a
  day (recorded on each predictions row). A card is *compromised* on a day when any of its transactions
  that day is a fraud (the card label is the day's maximum ``tx_fraud``, as in the Handbook). The
  precision within budget is the share of compromised cards among the (day, card) pairs with
  ``within_budget = 1``; unlike card precision top-k its denominator is the number of such pairs, and
  cards are not removed after a detection. See :func:`alert_statistics`.
* **Shadow mode**: while a ``challenger`` alias exists, batch scoring also scores it on the same
  transactions into :data:`fraud_mlops.platform.config.PREDICTIONS_SHADOW` (same columns as
  predictions). :func:`shadow_comparison` compares champion and challenger on the transactions both
  scored, on labelled days only; :func:`shadow_summary` pools it for monitoring and for the gate
  (:func:`fraud_mlops.lifecycle.gate.decide`, ``min_shadow_days``). Nothing here writes to
  ``predictions`` or ``predictions_shadow``.

Monitoring table (:data:`fraud_mlops.platform.config.MONITORING_METRICS`), one row per metric and run:

=================  =========  ===================================================================
column             type       meaning
=================  =========  ===================================================================
monitoring_run_id  string     id of the run (uuid4 hex), shared by the rows it wrote
computed_at        timestamp  UTC time of the run
window_start       date       first ``tx_date`` of the monitored window (inclusive)
window_end         date       last ``tx_date`` of the monitored window (inclusive)
model_name         string     registered model name
model_version      string     model version whose predictions were monitored
metric             string     see :data:`METRICS`
feature            string     feature column for ``psi`` (``__score__`` for the score PSI), the
                              challenger version for the ``shadow_*`` metrics, else null
value              double     the metric's value (unit in :data:`METRICS`)
threshold          double     the threshold it is compared with, null when none
breached           boolean    true when the value is on the wrong side of ``threshold``
=================  =========  ===================================================================

Re-running a window replaces its rows: the write is ``Lakehouse.overwrite`` with a ``replace_where``
predicate on (model_name, model_version, window_start, window_end), one atomic Delta commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_mlops.lifecycle.metrics import card_precision_top_k, evaluate_scores
from fraud_mlops.medallion.features import DEFAULT_LABEL_DELAY_DAYS  # 7: fraud labels are known 7 days later
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraud_mlops.platform.config import GOLD_FEATURES, MONITORING_METRICS, PREDICTIONS, PREDICTIONS_SHADOW
from fraud_mlops.platform.lakehouse import Lakehouse, sql_literal

log = logging.getLogger("fraud_mlops.lifecycle.monitoring")

#: ``feature`` value of the PSI row computed on the model score.
SCORE_FEATURE = "__score__"

#: Metric names written to the monitoring table, with their units.
METRICS: dict[str, str] = {
    "psi": "population stability index, unitless, >= 0 (reference = training window)",
    "average_precision": "average precision of the score on labeled window rows, in [0, 1]",
    "card_precision_top_100": "Handbook card precision top-100, mean over days, in [0, 1]",
    "fraud_rate": "share of labeled window rows with tx_fraud = 1, in [0, 1]",
    "n_transactions": "window transactions with a prediction of the monitored version (count)",
    "n_labeled": "window transactions with a known label (count): tx_fraud not null and tx_date <= "
    "window_end - label_delay_days",
    "n_reference_transactions": "gold rows of the reference (training) window (count)",
    "alerts_per_day_mean": "alerts per day (distinct cards with decision = 1 that day), mean over the "
    "window's days with predictions (cards/day)",
    "alerts_per_day_max": "alerts per day, maximum over the window's days (cards/day)",
    "alert_budget": "cards investigators can review per day (alert_budget of the latest window day's rows, "
    "cards/day)",
    "precision_within_budget": "share of compromised cards among the labeled (day, card) pairs with "
    "within_budget = 1, in [0, 1]",
    "precision_flagged": "share of compromised cards among the labeled (day, card) pairs with decision = 1, "
    "in [0, 1]",
    "shadow_champion_average_precision": "AP of the champion on the labeled transactions both champion and "
    "challenger scored (shadow mode), pooled over the days, in [0, 1]; feature = challenger version",
    "shadow_challenger_average_precision": "AP of the challenger on the same transactions, in [0, 1]; "
    "feature = challenger version",
    "shadow_champion_card_precision_top_100": "Handbook card precision top-100 of the champion on the same "
    "transactions, mean over the labeled shadow days, in [0, 1]; feature = challenger version",
    "shadow_challenger_card_precision_top_100": "Handbook card precision top-100 of the challenger on the "
    "same transactions, in [0, 1]; feature = challenger version",
    "shadow_labelled_days": "labeled days on which both champion and challenger scored transactions "
    "(count); feature = challenger version",
    "alert": "1.0 when the run raised an alert, else 0.0",
    "retrain": "1.0 when the run recommends retraining, else 0.0",
}

#: Spark schema of the monitoring table.
MONITORING_SCHEMA = T.StructType(
    [
        T.StructField("monitoring_run_id", T.StringType()),
        T.StructField("computed_at", T.TimestampType()),
        T.StructField("window_start", T.DateType()),
        T.StructField("window_end", T.DateType()),
        T.StructField("model_name", T.StringType()),
        T.StructField("model_version", T.StringType()),
        T.StructField("metric", T.StringType()),
        T.StructField("feature", T.StringType()),
        T.StructField("value", T.DoubleType()),
        T.StructField("threshold", T.DoubleType()),
        T.StructField("breached", T.BooleanType()),
    ]
)


# =============================================================================== PSI
def _as_float_array(values: Any, name: str) -> np.ndarray:
    """1-D float64 array of ``values``; None, NaN and pd.NA become NaN."""
    if not isinstance(values, (pd.Series, pd.Index)):
        arr = np.asarray(values)
        if arr.ndim > 1 and sum(d > 1 for d in arr.shape) > 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind in "biuf":
            return arr.astype("float64").ravel()
        values = pd.Series(arr.ravel())
    try:
        numeric = pd.to_numeric(pd.Series(values), errors="raise")
        return numeric.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric: {exc}") from exc


def _bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each right-closed bin ``(e_{i-1}, e_i]`` plus a last NaN bin."""
    nan = np.isnan(values)
    idx = np.searchsorted(edges, values[~nan], side="left")
    counts = np.bincount(idx, minlength=edges.size + 1).astype("float64")
    counts = np.append(counts, float(nan.sum()))
    return counts / values.size


def population_stability_index(reference: Any, current: Any, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``.

    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` where ``r_i`` and ``c_i`` are the shares of the
    reference and current values falling in bin ``i`` (Yurdakul, *Statistical Properties of
    Population Stability Index*, 2018; common reading: < 0.1 stable, 0.1-0.25 moderate shift,
    > 0.25 significant shift, Siddiqi, *Credit Risk Scorecards*, 2006).

    Binning:

    * Edges are the ``1/bins, 2/bins, ..., (bins-1)/bins`` quantiles of the reference's finite values
      (deciles for ``bins=10``, numpy's linear interpolation); bins are right-closed
      ``(e_{i-1}, e_i]``, the outer bins are open to -inf / +inf, so current values outside the
      reference range land in the outer bins.
    * Tied quantiles (discrete features, a point mass) are merged, so there may be fewer than ``bins``
      bins. A constant reference ``c`` gives the two bins ``(-inf, c]`` and ``(c, +inf)``.
    * NaN (null) values form a bin of their own, so a change in the missing-value rate counts as drift.
      Shares are taken over all values, NaN included.
    * Shares are floored at ``eps`` (not renormalised) so that empty bins give a finite value; a bin
      empty on both sides contributes 0.

    Args:
        reference: 1-D numeric values (list, numpy array, pandas Series; None / NaN / pd.NA are
            missing) of the reference population, e.g. the training window.
        current: 1-D numeric values of the population to compare, in the same unit.
        bins: number of quantile bins of the reference (>= 1).
        eps: floor of a bin share, in (0, 1).

    Returns:
        The PSI (float, unitless, >= 0); 0.0 for identical distributions.

    Raises:
        ValueError: an input is empty or not 1-D, ``bins < 1`` or ``eps`` is not in (0, 1).
        TypeError: an input is not numeric.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    ref = _as_float_array(reference, "reference")
    cur = _as_float_array(current, "current")
    if ref.size == 0 or cur.size == 0:
        raise ValueError("population_stability_index needs non-empty reference and current values")
    finite = ref[np.isfinite(ref)]
    if finite.size and bins > 1:
        edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, int(bins) + 1)[1:-1]))
    else:
        edges = np.array([], dtype="float64")
    r = np.maximum(_bin_proportions(ref, edges), eps)
    c = np.maximum(_bin_proportions(cur, edges), eps)
    return float(max(np.sum((c - r) * np.log(c / r)), 0.0))


# =============================================================================== results
@dataclass(frozen=True)
class MonitoringThresholds:
    """Limits that turn metrics into alert and retrain flags.

    Attributes:
        psi_alert_threshold: a feature or score PSI above it raises an alert (default 0.2).
        psi_retrain_threshold: a feature or score PSI above it recommends retraining (default 0.25,
            Siddiqi's "significant shift").
        min_average_precision: an average precision below it raises an alert and recommends
            retraining (default 0.3).
        max_alerts_over_budget: tolerated ratio of alerts to the alert budget (unitless, > 0; default
            1.25): a mean of alerts per day above ``max_alerts_over_budget * alert_budget`` raises an
            alert (not a retrain: the decision threshold, not the model, no longer fits the budget).
    """

    psi_alert_threshold: float = 0.2
    psi_retrain_threshold: float = 0.25
    min_average_precision: float = 0.3
    max_alerts_over_budget: float = 1.25

    def __post_init__(self) -> None:
        if self.psi_alert_threshold < 0 or self.psi_retrain_threshold < 0:
            raise ValueError("PSI thresholds must be >= 0")
        if not 0.0 <= self.min_average_precision <= 1.0:
            raise ValueError("min_average_precision must be in [0, 1]")
        if not (math.isfinite(self.max_alerts_over_budget) and self.max_alerts_over_budget > 0):
            raise ValueError(
                f"max_alerts_over_budget must be a ratio > 0, got {self.max_alerts_over_budget!r}"
            )


class MonitoringError(ValueError):
    """Monitoring cannot run: no predictions in the window, no reference window or reference rows."""


class MonitoringAlert(RuntimeError):
    """Raised by :meth:`MonitoringResult.raise_for_alert` when a run raised an alert.

    Attributes:
        result: the :class:`MonitoringResult` of the run.
    """

    def __init__(self, result: MonitoringResult):
        self.result = result
        super().__init__(
            f"monitoring alert for {result.model_name} v{result.model_version} "
            f"[{result.window_start}..{result.window_end}]: " + "; ".join(result.reasons)
        )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


@dataclass
class MonitoringResult:
    """Outcome of one :func:`run_monitoring` call (also written row-wise to the monitoring table).

    PSI values are unitless and computed on all ``n_transactions`` window rows;
    ``average_precision``, ``card_precision_top_100`` and ``fraud_rate`` are in [0, 1], computed on the
    ``n_labeled`` rows (label not null and ``tx_date <= window_end - label_delay_days``), and None when
    there is none (AP also when they hold no fraud). ``label_delay_days`` is the delay the run used.

    Alert fields (see :func:`alert_statistics`): ``alerts_per_day_mean`` / ``alerts_per_day_max`` in
    cards per day over the window's days, ``alert_budget`` in cards per day, ``precision_within_budget``
    and ``precision_flagged`` in [0, 1] on the labeled rows; each is None when the predictions lack the
    column it needs (a table written before the column existed) or, for the precisions, when no
    labeled card is within budget / flagged.

    ``shadow`` is None unless ``predictions_shadow`` holds rows of the current ``challenger`` alias
    (another version than the monitored one) in the window; then it is :func:`shadow_summary`'s dict:
    ``challenger_version``, ``champion_version``, ``n_days`` (labeled days compared), ``n_transactions``,
    ``n_frauds``, ``champion_average_precision``, ``challenger_average_precision``,
    ``champion_card_precision_top_100``, ``challenger_card_precision_top_100`` (None when undefined),
    ``first_day``, ``last_day``.
    """

    monitoring_run_id: str
    computed_at: dt.datetime
    model_name: str
    model_version: str
    window_start: dt.date
    window_end: dt.date
    reference_start: dt.date
    reference_end: dt.date
    n_transactions: int
    n_labeled: int
    n_reference_transactions: int
    feature_psi: dict[str, float]
    max_feature_psi: float
    max_feature_psi_column: str
    score_psi: float
    average_precision: float | None
    card_precision_top_100: float | None
    fraud_rate: float | None
    alert: bool
    retrain: bool
    reasons: list[str] = field(default_factory=list)
    alerts_per_day_mean: float | None = None
    alerts_per_day_max: int | None = None
    alert_budget: int | None = None
    precision_within_budget: float | None = None
    precision_flagged: float | None = None
    shadow: dict[str, Any] | None = None
    thresholds: MonitoringThresholds = field(default_factory=MonitoringThresholds)
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS
    metrics_table_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (dates and times as ISO strings, NaN as None)."""
        out = {k: v for k, v in asdict(self).items()}
        return _clean(out)

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def raise_for_alert(self) -> None:
        """Raise :class:`MonitoringAlert` when ``alert`` is true (for tasks run with fail_on_alert)."""
        if self.alert:
            raise MonitoringAlert(self)


def evaluate_thresholds(
    feature_psi: dict[str, float],
    score_psi: float,
    average_precision: float | None,
    thresholds: MonitoringThresholds,
    *,
    alerts_per_day_mean: float | None = None,
    alert_budget: int | None = None,
) -> tuple[bool, bool, list[str]]:
    """Turn metrics into flags.

    ``alert`` = any feature or score PSI > ``psi_alert_threshold`` or AP < ``min_average_precision``
    or ``alerts_per_day_mean > max_alerts_over_budget * alert_budget``; ``retrain`` = score PSI or
    any feature PSI > ``psi_retrain_threshold`` or AP < ``min_average_precision`` (alerts over the
    budget call for another decision threshold, not another model). A None AP (no labels), a None
    alert mean or a None budget never triggers.

    Returns:
        ``(alert, retrain, reasons)``; reasons are human-readable strings, one per breach.
    """
    reasons: list[str] = []
    alert = retrain = False
    for name, value in [*sorted(feature_psi.items()), (SCORE_FEATURE, score_psi)]:
        label = "score" if name == SCORE_FEATURE else f"feature {name}"
        over_alert = value > thresholds.psi_alert_threshold
        over_retrain = value > thresholds.psi_retrain_threshold
        alert, retrain = alert or over_alert, retrain or over_retrain
        if over_retrain:
            reasons.append(
                f"PSI of {label} = {value:.4f} > retrain threshold {thresholds.psi_retrain_threshold}"
            )
        elif over_alert:
            reasons.append(f"PSI of {label} = {value:.4f} > alert threshold {thresholds.psi_alert_threshold}")
    if average_precision is not None and average_precision < thresholds.min_average_precision:
        alert = retrain = True
        reasons.append(
            f"average precision = {average_precision:.4f} < minimum {thresholds.min_average_precision}"
        )
    if alerts_per_day_mean is not None and alert_budget is not None:
        limit = thresholds.max_alerts_over_budget * alert_budget
        if alerts_per_day_mean > limit:
            alert = True
            reasons.append(
                f"alerts per day = {alerts_per_day_mean:.2f} (mean) > "
                f"{thresholds.max_alerts_over_budget:g} x alert budget {alert_budget} = {limit:g}: "
                "the decision threshold flags more cards than "
                "investigators can review"
            )
    return alert, retrain, reasons


# =============================================================================== helpers
def _model_version(model_name: str, model_version: str | None):
    from mlflow.tracking import MlflowClient

    from fraud_mlops.lifecycle.scoring import champion_version

    version = champion_version(model_name) if model_version is None else str(model_version)
    return MlflowClient().get_model_version(model_name, version)


def _reference_window(mv: Any) -> tuple[dt.date, dt.date]:
    from mlflow.tracking import MlflowClient

    if not mv.run_id:
        raise MonitoringError(f"model version {mv.name} v{mv.version} has no source run: no training window")
    params = MlflowClient().get_run(mv.run_id).data.params
    try:
        return dt.date.fromisoformat(params["train_start"]), dt.date.fromisoformat(params["train_end"])
    except (KeyError, ValueError) as exc:
        raise MonitoringError(
            f"run {mv.run_id} of {mv.name} v{mv.version} lacks ISO params train_start/train_end: {exc}"
        ) from exc


def _date_predicate(column: str, start: dt.date, end: dt.date):
    return F.col(column).between(F.lit(start), F.lit(end))


def _replace_where(model_name: str, model_version: str, start: dt.date, end: dt.date) -> str:
    return (
        f"model_name = {sql_literal(model_name)} AND model_version = {sql_literal(model_version)}"
        f" AND window_start = CAST('{start.isoformat()}' AS DATE)"
        f" AND window_end = CAST('{end.isoformat()}' AS DATE)"
    )


def _predict(model: Any, pdf: pd.DataFrame) -> np.ndarray:
    out = model.predict(pdf[list(FEATURE_COLUMNS)])
    arr = np.asarray(out.to_numpy() if isinstance(out, (pd.Series, pd.DataFrame)) else out, dtype="float64")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != len(pdf):
        raise MonitoringError(
            f"model returned shape {arr.shape}; expected one probability per row ({len(pdf)})"
        )
    return arr


# =============================================================================== alerts
#: Predictions columns the alert statistics read; tables written before they existed lack them.
ALERT_COLUMNS = ("decision", "alert_budget", "within_budget")

_ALERT_KEYS = (
    "alerts_per_day_mean",
    "alerts_per_day_max",
    "alert_budget",
    "precision_within_budget",
    "precision_flagged",
)


def _numeric_column(rows: pd.DataFrame, column: str) -> pd.Series | None:
    """``rows[column]`` as float64 (nulls NaN), or None when the column is absent or all null."""
    if column not in rows.columns:
        return None
    values = pd.Series(_as_float_array(rows[column], column), index=rows.index)
    return None if values.isna().all() else values


def alert_statistics(rows: pd.DataFrame, label_cutoff: dt.date | None = None) -> dict[str, Any]:
    """Alerts per day against the alert budget, and the precision of the alerts on labeled days.

    An *alert* is a (day, card) pair with at least one transaction of ``decision = 1``; a card is
    *compromised* on a day when any of its transactions that day has ``tx_fraud = 1`` (card label =
    the day's maximum label, as in the Fraud Detection Handbook).

    * ``alerts_per_day_mean`` / ``alerts_per_day_max``: distinct cards with ``decision = 1`` per
      ``tx_date``, over every day present in ``rows`` (a day without alert counts 0), in cards per day.
    * ``alert_budget``: the ``alert_budget`` of the latest day that has one (the budget in force at the
      end of the window; the maximum when that day's rows disagree), in cards per day.
    * ``precision_within_budget``: on the *labeled* rows (``tx_fraud`` not null and ``tx_date <=
      label_cutoff``), the share of compromised cards among the (day, card) pairs whose
      ``within_budget`` is 1 (any of the card's rows that day).
    * ``precision_flagged``: the same share among the labeled (day, card) pairs with ``decision = 1``.

    Args:
        rows: one row per scored transaction (pandas), with ``tx_date`` (date), ``customer_id`` (int),
            ``tx_fraud`` (int 0/1, null when unknown) and any of ``decision`` (int 0/1),
            ``alert_budget`` (int) and ``within_budget`` (int 0/1). A missing or all-null column
            leaves the values that need it None (an old predictions table).
        label_cutoff: last ``tx_date`` whose labels count as known (inclusive); None: every label
            present counts.

    Returns:
        ``{"alerts_per_day_mean": float | None, "alerts_per_day_max": int | None, "alert_budget": int |
        None, "precision_within_budget": float | None, "precision_flagged": float | None}``; a
        precision is None also when no labeled pair is within budget / flagged.

    Raises:
        ValueError: ``rows`` lacks ``tx_date`` or ``customer_id`` (or ``tx_fraud`` while holding a
            ``decision`` or ``within_budget`` column).
        TypeError: a column that should be numeric is not.
    """
    out: dict[str, Any] = dict.fromkeys(_ALERT_KEYS)
    missing = [c for c in ("tx_date", "customer_id") if c not in rows.columns]
    if missing:
        raise ValueError(f"alert_statistics needs column(s) {missing}; got {list(rows.columns)}")
    if rows.empty:
        return out
    day = pd.to_datetime(rows["tx_date"]).dt.date
    decision = _numeric_column(rows, "decision")
    budget = _numeric_column(rows, "alert_budget")
    within = _numeric_column(rows, "within_budget")

    if decision is not None:
        flagged = decision == 1
        cards = rows.loc[flagged, "customer_id"].groupby(day[flagged]).nunique()
        per_day = cards.reindex(sorted(set(day)), fill_value=0)
        out["alerts_per_day_mean"] = float(per_day.mean())
        out["alerts_per_day_max"] = int(per_day.max())
    if budget is not None:
        known = budget.notna()
        latest = max(day[known])
        out["alert_budget"] = int(budget[known & (day == latest)].max())
    if decision is None and within is None:
        return out
    if LABEL_COLUMN not in rows.columns:
        raise ValueError(f"alert_statistics needs column {LABEL_COLUMN!r} for the precisions")
    label = pd.Series(_as_float_array(rows[LABEL_COLUMN], LABEL_COLUMN), index=rows.index)
    labeled = label.notna()
    if label_cutoff is not None:
        labeled &= day <= label_cutoff
    if not labeled.any():
        return out
    pairs = pd.DataFrame(
        {
            "day": day[labeled],
            "card": rows.loc[labeled, "customer_id"],
            "compromised": (label[labeled] > 0).astype("float64"),
            "flagged": np.nan if decision is None else decision[labeled],
            "within": np.nan if within is None else within[labeled],
        }
    ).groupby(["day", "card"]).max()  # NaN-skipping: a pair is flagged / within budget if any row is
    for key, column in (("precision_within_budget", "within"), ("precision_flagged", "flagged")):
        chosen = pairs.loc[pairs[column] == 1, "compromised"]
        if not chosen.empty:
            out[key] = float(chosen.mean())
    return out


# =============================================================================== shadow mode
def comparison_columns(names: tuple[str, str] = ("champion", "challenger")) -> tuple[str, ...]:
    """Columns of :func:`compare_scores` for two models' ``names``."""
    a, b = names
    return ("tx_date", "n_transactions", "n_frauds", f"{a}_average_precision", f"{b}_average_precision",
            f"{a}_card_precision_top_100", f"{b}_card_precision_top_100")


#: Columns of :func:`shadow_comparison`'s frame, in order.
SHADOW_COLUMNS = comparison_columns()
_SHADOW_METRICS = SHADOW_COLUMNS[3:]


def _version_filter(model_name: str, version: str):
    return (F.col("model_name") == F.lit(model_name)) & (F.col("model_version") == F.lit(str(version)))


def _range_filter(column: str, start: dt.date | None, end: dt.date | None):
    cond = F.lit(True)
    if start is not None:
        cond &= F.col(column) >= F.lit(start)
    if end is not None:
        cond &= F.col(column) <= F.lit(end)
    return cond


def _finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def shadow_comparison(
    lakehouse: Lakehouse,
    model_name: str,
    champion_version: str | int,
    challenger_version: str | int,
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS,
) -> pd.DataFrame:
    """Compare champion and challenger day by day on the same labeled transactions (read-only).

    The compared transactions are the inner join on ``transaction_id`` of

    * the ``predictions`` rows of ``model_name`` / ``champion_version`` (the champion's ``score``),
    * the ``predictions_shadow`` rows of ``model_name`` / ``challenger_version`` (the challenger's),
    * gold (``tx_date``, ``customer_id``, ``tx_fraud``),

    restricted to ``window_start <= tx_date <= window_end`` (an open side when None) and to the
    *labeled* rows: ``tx_fraud`` not null and ``tx_date <= cutoff``, where ``cutoff = window_end -
    label_delay_days`` (``window_end`` = the latest gold ``tx_date`` when None, i.e. "today"). So a
    transaction only one model scored, a day whose labels are not known yet, and an unlabeled row
    never count, and both models are judged on exactly the same rows.

    Metrics (:mod:`fraud_mlops.lifecycle.metrics`): per day, average precision of each score
    (:func:`~fraud_mlops.lifecycle.metrics.evaluate_scores`; NaN on a day without fraud, or with only
    frauds) and the Handbook's card precision top-100 of that day
    (:func:`~fraud_mlops.lifecycle.metrics.card_precision_top_k` over all compared days, so a card
    detected on an earlier day leaves the pool, and the mean of the daily column is the pooled value).

    Pooled summary, in ``frame.attrs["pooled"]`` (a dict): ``n_days``, ``n_transactions``, ``n_frauds``
    (ints), ``champion_average_precision`` / ``challenger_average_precision`` (AP on all compared
    transactions of all days together; NaN without fraud), ``champion_card_precision_top_100`` /
    ``challenger_card_precision_top_100`` (mean over the days; NaN without day), ``first_day`` and
    ``last_day`` (dates, None without day). :func:`shadow_summary` gives it as a JSON-able dict.

    Nothing is written: ``predictions``, ``predictions_shadow`` and gold keep their Delta versions.

    Args:
        lakehouse: the target's tables; reads ``predictions``, ``predictions_shadow`` and gold.
        model_name: registered model name (both tables' ``model_name``).
        champion_version: version whose ``predictions`` rows are the champion's scores.
        challenger_version: version whose ``predictions_shadow`` rows are the challenger's scores.
        window_start: first ``tx_date`` compared (inclusive), None for no lower bound.
        window_end: last ``tx_date`` of the window (inclusive), None for the latest gold day.
        label_delay_days: days after which a label counts as known (int >= 0; default 7).

    Returns:
        A pandas DataFrame with the columns :data:`SHADOW_COLUMNS`, one row per labeled day in date
        order: ``tx_date`` (date), ``n_transactions`` and ``n_frauds`` (int, compared transactions and
        frauds among them), ``champion_average_precision``, ``challenger_average_precision``,
        ``champion_card_precision_top_100``, ``challenger_card_precision_top_100`` (float in [0, 1],
        AP NaN when undefined). Empty (no row, same columns) when no labeled transaction was scored
        by both; ``attrs["pooled"]`` as above.

    Raises:
        fraud_mlops.platform.lakehouse.TableNotFoundError: predictions, predictions_shadow or gold
            does not exist.
        ValueError: ``window_start > window_end`` or a negative ``label_delay_days``.
    """
    if label_delay_days < 0:
        raise ValueError("label_delay_days must be >= 0")
    if window_start is not None and window_end is not None and window_start > window_end:
        raise ValueError(f"window_start {window_start} is after window_end {window_end}")
    champion_version, challenger_version = str(champion_version), str(challenger_version)
    champion = lakehouse.read(PREDICTIONS).filter(_version_filter(model_name, champion_version))
    challenger = lakehouse.read(PREDICTIONS_SHADOW).filter(_version_filter(model_name, challenger_version))
    gold = lakehouse.read(GOLD_FEATURES)
    if window_end is None:
        window_end = gold.agg(F.max("tx_date").alias("d")).first()["d"]
    cutoff = None if window_end is None else window_end - dt.timedelta(days=label_delay_days)
    empty_window = cutoff is None or (window_start is not None and cutoff < window_start)
    rows = pd.DataFrame(
        columns=["tx_date", "customer_id", LABEL_COLUMN, "champion_score", "challenger_score"]
    )
    if not empty_window:
        dates = _range_filter("tx_date", window_start, cutoff)
        joined = (
            gold.filter(dates & F.col(LABEL_COLUMN).isNotNull())
            .select("transaction_id", "tx_date", "customer_id", LABEL_COLUMN)
            .join(
                champion.filter(dates).select("transaction_id", F.col("score").alias("champion_score")),
                on="transaction_id",
                how="inner",
            )
            .join(
                challenger.filter(dates).select("transaction_id", F.col("score").alias("challenger_score")),
                on="transaction_id",
                how="inner",
            )
            .select("tx_date", "customer_id", LABEL_COLUMN, "champion_score", "challenger_score")
        )
        rows = joined.toPandas()
    return compare_scores(rows)


def compare_scores(rows: pd.DataFrame, names: tuple[str, str] = ("champion", "challenger")) -> pd.DataFrame:
    """Daily and pooled comparison of two models' scores on the same labeled rows.

    Args:
        rows: one row per transaction: ``tx_date``, ``customer_id``, ``tx_fraud`` (0/1) and
            ``<name>_score`` (fraud probability) for both ``names``.
        names: the two models' names (``("champion", "challenger")`` for the shadow comparison).

    Returns:
        One row per day with :func:`comparison_columns` (see :func:`shadow_comparison` for their
        meaning) and the pooled figures in ``attrs["pooled"]``.
    """
    columns = comparison_columns(names)
    metrics = columns[3:]
    pooled: dict[str, Any] = {
        "n_days": 0,
        "n_transactions": len(rows),
        "n_frauds": 0,
        **dict.fromkeys(metrics, math.nan),
        "first_day": None,
        "last_day": None,
    }
    if rows.empty:
        daily = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        daily = daily.astype({"tx_date": "object", "n_transactions": "int64", "n_frauds": "int64"})
        daily.attrs["pooled"] = pooled
        return daily
    rows = rows.assign(
        tx_date=pd.to_datetime(rows["tx_date"]).dt.date, **{LABEL_COLUMN: rows[LABEL_COLUMN].astype("int64")}
    ).sort_values(["tx_date", "customer_id"], kind="mergesort").reset_index(drop=True)
    days = sorted(set(rows["tx_date"]))
    daily = pd.DataFrame({"tx_date": days})
    grouped = rows.groupby("tx_date", sort=True)
    daily["n_transactions"] = grouped.size().to_numpy().astype("int64")
    daily["n_frauds"] = grouped[LABEL_COLUMN].sum().to_numpy().astype("int64")
    for model in names:
        score = f"{model}_score"
        daily[f"{model}_average_precision"] = [
            evaluate_scores(day_rows, score_col=score)["average_precision"] for _, day_rows in grouped
        ]
        _, per_day = card_precision_top_k(rows, k=100, score_col=score)
        daily[f"{model}_card_precision_top_100"] = per_day
        overall = evaluate_scores(rows, score_col=score)
        pooled[f"{model}_average_precision"] = overall["average_precision"]
        pooled[f"{model}_card_precision_top_100"] = overall["card_precision_top_100"]
    pooled.update(
        n_days=len(days), n_frauds=int(rows[LABEL_COLUMN].sum()), first_day=days[0], last_day=days[-1]
    )
    daily = daily[list(columns)]
    daily.attrs["pooled"] = pooled
    return daily


def shadow_summary(
    lakehouse: Lakehouse,
    model_name: str,
    champion_version: str | int,
    challenger_version: str | int,
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS,
) -> dict[str, Any] | None:
    """The pooled shadow evidence of a challenger, as monitoring records it and the gate reads it.

    None when ``predictions`` or ``predictions_shadow`` does not exist, or ``predictions_shadow`` has
    no row of ``challenger_version`` with ``tx_date`` in the window (the challenger was never scored in
    shadow there). Otherwise :func:`shadow_comparison`'s pooled summary as a JSON-able dict:
    ``{"champion_version", "challenger_version" (str), "n_days", "n_transactions", "n_frauds" (int),
    "champion_average_precision", "challenger_average_precision", "champion_card_precision_top_100",
    "challenger_card_precision_top_100" (float in [0, 1], None when undefined: no labeled day, or no
    fraud for AP), "first_day", "last_day" (ISO dates, None without labeled day)}``. ``n_days`` may be
    0: scored in shadow, but no day labeled yet. Read-only, like :func:`shadow_comparison`.

    Args: as :func:`shadow_comparison`.

    Raises:
        fraud_mlops.platform.lakehouse.TableNotFoundError: gold does not exist (while both predictions
            tables do).
        ValueError: ``window_start > window_end`` or a negative ``label_delay_days``.
    """
    if not (lakehouse.exists(PREDICTIONS) and lakehouse.exists(PREDICTIONS_SHADOW)):
        return None
    shadow_rows = (
        lakehouse.read(PREDICTIONS_SHADOW)
        .filter(_version_filter(model_name, str(challenger_version)))
        .filter(_range_filter("tx_date", window_start, window_end))
        .limit(1)
        .count()
    )
    if not shadow_rows:
        return None
    daily = shadow_comparison(
        lakehouse, model_name, champion_version, challenger_version,
        window_start, window_end, label_delay_days,
    )
    pooled = daily.attrs["pooled"]
    return {
        "champion_version": str(champion_version),
        "challenger_version": str(challenger_version),
        "n_days": int(pooled["n_days"]),
        "n_transactions": int(pooled["n_transactions"]),
        "n_frauds": int(pooled["n_frauds"]),
        **{k: _finite_or_none(pooled[k]) for k in _SHADOW_METRICS},
        "first_day": None if pooled["first_day"] is None else pooled["first_day"].isoformat(),
        "last_day": None if pooled["last_day"] is None else pooled["last_day"].isoformat(),
    }


def shadow_source(
    lakehouse: Lakehouse, model_name: str, label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS
) -> Callable[[str, str], dict[str, Any] | None]:
    """The ``shadow_source`` callable of :func:`fraud_mlops.lifecycle.gate.validate_challenger`.

    ``source(champion_version, challenger_version)`` is :func:`shadow_summary` over every day present
    in both predictions tables (no window bounds; labels known up to the latest gold day minus
    ``label_delay_days``). The gate stays free of Spark; this module does the reading.
    """

    def source(champion_version: str, challenger_version: str) -> dict[str, Any] | None:
        return shadow_summary(
            lakehouse, model_name, champion_version, challenger_version, label_delay_days=label_delay_days
        )

    return source


# =============================================================================== entry point
def run_monitoring(
    lakehouse: Lakehouse,
    model_name: str,
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
    thresholds: MonitoringThresholds | None = None,
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS,
    model_version: str | None = None,
    window_days: int = 7,
    psi_bins: int = 10,
    computed_at: dt.datetime | None = None,
) -> MonitoringResult:
    """Monitor drift and quality of a model version's predictions over a window of days.

    * **Model**: ``model_version`` of ``model_name``, the ``champion`` alias's version when None.
    * **Window** (inclusive ``tx_date`` range): ``window_end`` defaults to the latest ``tx_date`` of the
      model version's rows in ``predictions``, ``window_start`` to ``window_end - (window_days - 1)``
      (the last 7 days by default).
    * **Current population**: gold rows with ``tx_date`` in the window, inner-joined on
      ``transaction_id`` to the ``predictions`` rows of this model name and version (their ``score``).
    * **Reference population**: gold rows with ``tx_date`` in the version's training window (params
      ``train_start``/``train_end`` of the run that logged it), scored with the same pyfunc model on
      the driver. Note these scores are in-sample, so the score PSI carries some optimism of the fit.
    * **Drift**: PSI (:func:`population_stability_index`, ``psi_bins`` reference-quantile bins, NaN
      its own bin) of each column of :data:`FEATURE_COLUMNS` and of the score (feature ``__score__``),
      on **all** rows of the current population (labels play no part, so the delay does not apply).
    * **Quality**, only on the *labeled* window rows: ``tx_fraud`` not null **and** ``tx_date <=
      window_end - label_delay_days``. Fraud labels are known ``label_delay_days`` days after the
      transaction (7 in this project, :data:`fraud_mlops.medallion.features.DEFAULT_LABEL_DELAY_DAYS`), so by default the last 7 days
      of the window are left out of quality and a window of 7 days or less has no labeled row; pass
      ``label_delay_days=0`` to use every label present. On those rows: average precision (sklearn;
      None without a fraud), card precision top-100 (:func:`fraud_mlops.lifecycle.metrics.card_precision_top_k`,
      called with a pandas DataFrame with columns tx_date, customer_id, score, tx_fraud) and fraud
      rate; ``n_labeled`` counts them (``n_transactions`` counts the whole window).
    * **No labeled row**: ``n_labeled`` is 0, average precision, card precision and fraud rate are
      None and their metric rows are omitted; the flags then come from PSI alone (a missing AP never
      raises an alert).
    * **Alerts against the budget** (:func:`alert_statistics` on the current population, its
      ``decision``, ``alert_budget`` and ``within_budget`` columns): alerts per day (distinct cards
      with ``decision = 1``) over all window days, the budget, and on the labeled rows the precision
      of the cards within budget and of the flagged cards. A predictions table without these columns
      (written before they existed) leaves the values that need them None, and their rows out.
    * **Shadow comparison**: when ``predictions_shadow`` exists and holds window rows of the version
      the ``challenger`` alias points to (resolved with ``MlflowClient.get_model_version_by_alias``;
      no alias, or the monitored version itself, means no comparison), ``shadow`` is
      :func:`shadow_summary` over the window with the same label delay, and ``shadow_*`` rows are
      written with ``feature`` = the challenger version. Shadow results never change the flags.
    * **Flags**: see :func:`evaluate_thresholds`.

    Rows (schema :data:`MONITORING_SCHEMA`, metrics :data:`METRICS`) are written with
    ``Lakehouse.overwrite(MONITORING_METRICS, rows, replace_where=...)`` where the predicate selects the
    same (model_name, model_version, window_start, window_end): a re-run replaces that window's rows in
    one Delta commit, never duplicating them; other windows and versions are kept. ``predictions`` and
    ``predictions_shadow`` are only read.

    Args:
        lakehouse: the target's tables; reads gold, predictions and predictions_shadow, writes
            ``monitoring_metrics``.
        model_name: registered model name.
        window_start: first ``tx_date`` of the window, or None (see above).
        window_end: last ``tx_date`` of the window, or None (see above).
        thresholds: alert / retrain limits (defaults of :class:`MonitoringThresholds` when None).
        label_delay_days: days after which a transaction's label counts as known (int >= 0; default
            ``fraud_mlops.medallion.features.DEFAULT_LABEL_DELAY_DAYS`` = 7). Quality uses window rows with ``tx_date <=
            window_end - label_delay_days``; drift uses every window row.
        model_version: version to monitor; the champion's when None.
        window_days: length of the default window in days (>= 1).
        psi_bins: number of quantile bins of the PSI.
        computed_at: time recorded in ``computed_at`` (UTC; now when None).

    Returns:
        The :class:`MonitoringResult` (``.to_dict()`` is JSON-serialisable), with
        ``metrics_table_version`` set to the monitoring table's Delta version after the write.

    Raises:
        fraud_mlops.lifecycle.scoring.ChampionNotFoundError: ``model_version`` is None and there is no champion.
        fraud_mlops.platform.lakehouse.TableNotFoundError: gold or predictions does not exist.
        MonitoringError: no predictions of the version (in the window), the version's run has no
            ``train_start``/``train_end`` params, or the reference window has no gold rows.
        ValueError: ``window_start > window_end``, a negative delay, ``window_days < 1``.
        mlflow.exceptions.MlflowException: ``model_version`` does not exist.
        fraud_mlops.lifecycle.scoring.ModelLoadError: the model version cannot be loaded.
    """

    thresholds = thresholds or MonitoringThresholds()
    if label_delay_days < 0:
        raise ValueError("label_delay_days must be >= 0")
    if window_days < 1:
        raise ValueError("window_days must be >= 1")
    when = computed_at or dt.datetime.now(dt.UTC)
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)

    mv = _model_version(model_name, model_version)
    version = str(mv.version)
    ref_start, ref_end = _reference_window(mv)

    preds = lakehouse.read(PREDICTIONS).filter(
        (F.col("model_name") == F.lit(model_name)) & (F.col("model_version") == F.lit(version))
    )
    if window_end is None:
        latest = preds.agg(F.max("tx_date").alias("d")).first()
        if latest is None or latest["d"] is None:
            raise MonitoringError(
                f"predictions has no rows of {model_name} v{version}: run batch scoring first"
            )
        window_end = latest["d"]
    if window_start is None:
        window_start = window_end - dt.timedelta(days=window_days - 1)
    if window_start > window_end:
        raise ValueError(f"window_start {window_start} is after window_end {window_end}")

    gold = lakehouse.read(GOLD_FEATURES)
    feature_cols = list(FEATURE_COLUMNS)
    alert_cols = [c for c in ALERT_COLUMNS if c in preds.columns]  # an old table lacks some
    current_df: DataFrame = (
        gold.filter(_date_predicate("tx_date", window_start, window_end))
        .select("transaction_id", "tx_date", "customer_id", LABEL_COLUMN, *[c for c in feature_cols])
        .join(
            preds.filter(_date_predicate("tx_date", window_start, window_end)).select(
                "transaction_id", "score", *alert_cols
            ),
            on="transaction_id",
            how="inner",
        )
    )
    current = current_df.toPandas()
    if current.empty:
        raise MonitoringError(
            f"no predictions of {model_name} v{version} for gold rows with tx_date in [{window_start}, {window_end}]"
        )
    reference = gold.filter(_date_predicate("tx_date", ref_start, ref_end)).select(*feature_cols).toPandas()
    if reference.empty:
        raise MonitoringError(
            f"gold has no rows in the training window [{ref_start}, {ref_end}] of v{version}"
        )

    from fraud_mlops.lifecycle.scoring import challenger_version, load_pyfunc

    model = load_pyfunc(f"models:/{model_name}/{version}")
    reference_scores = _predict(model, reference)

    feature_psi = {
        c: population_stability_index(reference[c], current[c], bins=psi_bins) for c in feature_cols
    }
    score_psi = population_stability_index(reference_scores, current["score"], bins=psi_bins)
    max_col = max(feature_psi, key=lambda c: feature_psi[c])

    cutoff = window_end - dt.timedelta(days=label_delay_days)
    labeled = current[current[LABEL_COLUMN].notna() & (pd.to_datetime(current["tx_date"]).dt.date <= cutoff)]
    labeled = labeled.assign(**{LABEL_COLUMN: labeled[LABEL_COLUMN].astype("int64")})
    ap = cp = fraud_rate = None
    if not labeled.empty:
        fraud_rate = float(labeled[LABEL_COLUMN].mean())
        # The same definitions as training and validation (fraud_mlops.lifecycle.metrics); AP is undefined
        # (None) on a window with a single class.
        quality = evaluate_scores(labeled[["tx_date", "customer_id", "score", LABEL_COLUMN]].reset_index(drop=True))
        ap = quality["average_precision"] if math.isfinite(quality["average_precision"]) else None
        cp = quality["card_precision_top_100"]
    alerts = alert_statistics(current[["tx_date", "customer_id", LABEL_COLUMN, *alert_cols]], cutoff)

    shadow = None
    challenger = challenger_version(model_name)
    if challenger is not None and challenger != version:
        shadow = shadow_summary(
            lakehouse, model_name, version, challenger, window_start, window_end, label_delay_days
        )

    alert, retrain, reasons = evaluate_thresholds(
        feature_psi,
        score_psi,
        ap,
        thresholds,
        alerts_per_day_mean=alerts["alerts_per_day_mean"],
        alert_budget=alerts["alert_budget"],
    )
    result = MonitoringResult(
        monitoring_run_id=uuid.uuid4().hex,
        computed_at=when,
        model_name=model_name,
        model_version=version,
        window_start=window_start,
        window_end=window_end,
        reference_start=ref_start,
        reference_end=ref_end,
        n_transactions=len(current),
        n_labeled=len(labeled),
        n_reference_transactions=len(reference),
        feature_psi=feature_psi,
        max_feature_psi=float(feature_psi[max_col]),
        max_feature_psi_column=max_col,
        score_psi=float(score_psi),
        average_precision=ap,
        card_precision_top_100=cp,
        fraud_rate=fraud_rate,
        alert=alert,
        retrain=retrain,
        reasons=reasons,
        **alerts,
        shadow=shadow,
        thresholds=thresholds,
        label_delay_days=int(label_delay_days),
    )
    rows = metric_rows(result)
    lakehouse.overwrite(
        MONITORING_METRICS,
        lakehouse.spark.createDataFrame(rows, MONITORING_SCHEMA),
        replace_where=_replace_where(model_name, version, window_start, window_end),
    )
    result.metrics_table_version = lakehouse.version(MONITORING_METRICS)
    return result


def metric_rows(result: MonitoringResult) -> list[tuple]:
    """The monitoring-table rows of a result, as tuples in :data:`MONITORING_SCHEMA` order.

    One ``psi`` row per feature (threshold = ``psi_alert_threshold``, breached when above), one
    ``psi`` row with feature ``__score__``, ``average_precision`` (threshold = ``min_average_precision``,
    breached when below; omitted when undefined), ``card_precision_top_100`` and ``fraud_rate``
    (omitted without labels), the counts, ``alerts_per_day_mean`` (threshold =
    ``max_alerts_over_budget * alert_budget`` when the budget is known, breached when above),
    ``alerts_per_day_max``, ``alert_budget``, ``precision_within_budget``, ``precision_flagged`` (each
    omitted when None), the ``shadow_*`` rows when ``shadow`` is set (feature = challenger version;
    ``shadow_labelled_days`` always, the four metrics when defined), and ``alert`` / ``retrain`` (1.0 /
    0.0, breached = flag).
    """
    th = result.thresholds
    base = (
        result.monitoring_run_id,
        result.computed_at,
        result.window_start,
        result.window_end,
        result.model_name,
        result.model_version,
    )

    def row(metric: str, feature: str | None, value: float, threshold: float | None, breached: bool) -> tuple:
        return (*base, metric, feature, float(value), threshold, bool(breached))

    out: list[tuple] = []
    psi_items: Iterable[tuple[str, float]] = [*result.feature_psi.items(), (SCORE_FEATURE, result.score_psi)]
    for name, value in psi_items:
        out.append(row("psi", name, value, th.psi_alert_threshold, value > th.psi_alert_threshold))
    if result.average_precision is not None:
        ap = result.average_precision
        out.append(
            row("average_precision", None, ap, th.min_average_precision, ap < th.min_average_precision)
        )
    if result.card_precision_top_100 is not None:
        out.append(row("card_precision_top_100", None, result.card_precision_top_100, None, False))
    if result.fraud_rate is not None:
        out.append(row("fraud_rate", None, result.fraud_rate, None, False))
    out.append(row("n_transactions", None, result.n_transactions, None, False))
    out.append(row("n_labeled", None, result.n_labeled, None, False))
    out.append(row("n_reference_transactions", None, result.n_reference_transactions, None, False))
    if result.alerts_per_day_mean is not None:
        mean = result.alerts_per_day_mean
        limit = None if result.alert_budget is None else th.max_alerts_over_budget * result.alert_budget
        out.append(row("alerts_per_day_mean", None, mean, limit, limit is not None and mean > limit))
    for name in ("alerts_per_day_max", "alert_budget", "precision_within_budget", "precision_flagged"):
        value = getattr(result, name)
        if value is not None:
            out.append(row(name, None, value, None, False))
    if result.shadow is not None:
        challenger = str(result.shadow["challenger_version"])
        out.append(row("shadow_labelled_days", challenger, result.shadow["n_days"], None, False))
        for name in _SHADOW_METRICS:
            value = result.shadow.get(name)
            if value is not None and math.isfinite(value):
                out.append(row(f"shadow_{name}", challenger, value, None, False))
    out.append(row("alert", None, 1.0 if result.alert else 0.0, None, result.alert))
    out.append(row("retrain", None, 1.0 if result.retrain else 0.0, None, result.retrain))
    return out
