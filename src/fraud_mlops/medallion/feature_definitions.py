"""The feature definitions: what each gold feature is, once, for the two engines that compute it.

Every model feature is declared here as a small frozen dataclass holding its parameters (window
lengths, thresholds) and the names of the columns it produces. Two engines evaluate the same
declarations:

* the **Spark engine**, :func:`fraud_mlops.medallion.features.build_features`, turns each definition
  into window aggregates over all transactions (training, batch scoring, the gold table);
* the **single-customer engine**, :func:`fraud_mlops.online.features.online_features`, evaluates the
  same definitions for one incoming transaction from that customer's recent transactions and that
  terminal's labelled transactions, read from the online store (real-time scoring).

Neither engine has feature parameters of its own: both iterate over :data:`FEATURE_DEFINITIONS`, and
a definition with no implementation in an engine is an error there, not a silently missing column.
That the engines agree is tested on random transactions with ties and exact window boundaries
(``tests/online/test_online_features.py``) and by replaying whole days of the shipped transactions
through the REST endpoint against the batch scores (``tests/serving``).

This module imports nothing from Spark, so the serving process (a Databricks App has no Spark)
can use it.

Window rule shared by all customer features (the Handbook's, made exact): the customer's
transactions with ``tx_datetime`` in ``(t - w, t]`` that come at or before the current one in
``(tx_datetime, transaction_id)`` order, the current one included. Terminal features read the
terminal's transactions in ``(t - D - w, t - D]`` (D the label delay in days), never the current one
when ``D >= 1``. Times are whole seconds; a day is 86 400 seconds.

Source: Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection - Practical
Handbook* (2022), ch. 3 "Baseline feature transformation" for the Handbook features; the extra
features are documented on their ``add_*`` functions in :mod:`fraud_mlops.medallion.features`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fraud_mlops.medallion.schema import FEATURE_COLUMNS

__all__ = [
    "FEATURE_DEFINITIONS",
    "SECONDS_PER_DAY",
    "CustomerAmountRatio",
    "CustomerDistinctTerminals",
    "CustomerHighAmountCount",
    "CustomerPreviousGap",
    "CustomerRecentCount",
    "CustomerSpending",
    "FeatureDefinition",
    "TerminalFraudAge",
    "TerminalRisk",
    "TimeFeatures",
    "customer_reach_seconds",
    "defined_columns",
    "lookback_days",
    "terminal_reach_days",
]

#: Seconds in one day.
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TimeFeatures:
    """``is_weekend`` (Saturday or Sunday) and ``is_night`` (hour 0 to ``night_last_hour``), int 0/1."""

    night_last_hour: int = 6

    @property
    def columns(self) -> tuple[str, ...]:
        return ("is_weekend", "is_night")

    @property
    def customer_reach_seconds(self) -> int:
        return 0


@dataclass(frozen=True)
class CustomerPreviousGap:
    """``customer_seconds_since_prev_tx`` (double, seconds); null past ``max_gap_days``."""

    max_gap_days: int = 30

    @property
    def columns(self) -> tuple[str, ...]:
        return ("customer_seconds_since_prev_tx",)

    @property
    def customer_reach_seconds(self) -> int:
        return self.max_gap_days * SECONDS_PER_DAY


@dataclass(frozen=True)
class CustomerSpending:
    """``customer_tx_count_{w}d`` (bigint) and ``customer_avg_amount_{w}d`` (double, currency) per window."""

    windows_days: tuple[int, ...] = (1, 7, 30)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for w in self.windows_days for c in (f"customer_tx_count_{w}d", f"customer_avg_amount_{w}d"))

    @property
    def customer_reach_seconds(self) -> int:
        return max(self.windows_days) * SECONDS_PER_DAY


@dataclass(frozen=True)
class CustomerRecentCount:
    """A short-window count of the customer's transactions (bigint), ``customer_tx_count_1h``."""

    window_seconds: int = 3_600
    output_column: str = "customer_tx_count_1h"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.output_column,)

    @property
    def customer_reach_seconds(self) -> int:
        return self.window_seconds


@dataclass(frozen=True)
class CustomerDistinctTerminals:
    """``customer_distinct_terminals_{w}d`` (bigint): distinct terminals of the customer's window."""

    window_days: int = 1

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"customer_distinct_terminals_{self.window_days}d",)

    @property
    def customer_reach_seconds(self) -> int:
        return self.window_days * SECONDS_PER_DAY


@dataclass(frozen=True)
class CustomerAmountRatio:
    """``customer_amount_ratio_{w}d`` (double): ``tx_amount / customer_avg_amount_{w}d``; needs that mean."""

    window_days: int = 30

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"customer_amount_ratio_{self.window_days}d",)

    @property
    def customer_reach_seconds(self) -> int:
        return self.window_days * SECONDS_PER_DAY


@dataclass(frozen=True)
class CustomerHighAmountCount:
    """``customer_high_amount_count_{w}d`` (bigint): the window's transactions whose
    ``customer_amount_ratio_{r}d`` exceeds ``ratio_threshold``; each ratio reads ``r`` more days."""

    window_days: int = 7
    ratio_threshold: float = 3.0
    ratio_window_days: int = 30

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"customer_high_amount_count_{self.window_days}d",)

    @property
    def customer_reach_seconds(self) -> int:
        return (self.window_days + self.ratio_window_days) * SECONDS_PER_DAY


@dataclass(frozen=True)
class TerminalRisk:
    """``terminal_tx_count_{w}d`` (bigint) and ``terminal_risk_{w}d`` (double, fraud share) per window,
    over the terminal's transactions of ``(t - D - w days, t - D days]``."""

    windows_days: tuple[int, ...] = (1, 7, 30)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for w in self.windows_days for c in (f"terminal_tx_count_{w}d", f"terminal_risk_{w}d"))

    @property
    def terminal_reach_days(self) -> int:
        return max(self.windows_days)


@dataclass(frozen=True)
class TerminalFraudAge:
    """``terminal_days_since_first_fraud_{w}d`` (double, days): age of the terminal's earliest known
    fraud in ``(t - D - w days, t - D days]``; null when none."""

    window_days: int = 30

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"terminal_days_since_first_fraud_{self.window_days}d",)

    @property
    def terminal_reach_days(self) -> int:
        return self.window_days


#: Any feature definition.
FeatureDefinition = (
    TimeFeatures
    | CustomerPreviousGap
    | CustomerSpending
    | CustomerRecentCount
    | CustomerDistinctTerminals
    | CustomerAmountRatio
    | CustomerHighAmountCount
    | TerminalRisk
    | TerminalFraudAge
)

#: The gold features, in the order both engines compute them (a definition may read the columns of
#: an earlier one: the amount ratio reads the 30-day mean, the high-amount count reads the ratio).
FEATURE_DEFINITIONS: tuple[FeatureDefinition, ...] = (
    TimeFeatures(night_last_hour=6),
    CustomerPreviousGap(max_gap_days=30),
    CustomerSpending(windows_days=(1, 7, 30)),
    CustomerRecentCount(window_seconds=3_600, output_column="customer_tx_count_1h"),
    CustomerDistinctTerminals(window_days=1),
    CustomerAmountRatio(window_days=30),
    CustomerHighAmountCount(window_days=7, ratio_threshold=3.0, ratio_window_days=30),
    TerminalRisk(windows_days=(1, 7, 30)),
    TerminalFraudAge(window_days=30),
)


def defined_columns(definitions: tuple[FeatureDefinition, ...] = FEATURE_DEFINITIONS) -> tuple[str, ...]:
    """The columns the definitions produce, in order (``tx_amount`` is an input, not among them)."""
    return tuple(c for d in definitions for c in d.columns)


def customer_reach_seconds(definitions: tuple[FeatureDefinition, ...] = FEATURE_DEFINITIONS) -> int:
    """How far back (seconds) the customer features of a transaction read the customer's history:
    the longest customer window, or a window over rows that each read a window of their own
    (the high-amount count over the amount ratios, ``7 + 30`` days). Default: 37 days."""
    return max(getattr(d, "customer_reach_seconds", 0) for d in definitions)


def terminal_reach_days(definitions: tuple[FeatureDefinition, ...] = FEATURE_DEFINITIONS) -> int:
    """The longest terminal window in days (30 by default); the terminal features of a transaction
    read ``(t - D - this, t - D]``."""
    return max(getattr(d, "terminal_reach_days", 0) for d in definitions)


def lookback_days(label_delay_days: int, definitions: tuple[FeatureDefinition, ...] = FEATURE_DEFINITIONS) -> int:
    """Days of history the features of a transaction read, for the label delay D (days, >= 0): the
    longer of ``D +`` :func:`terminal_reach_days` and :func:`customer_reach_seconds` in whole days
    (37 for the default definitions, whatever D <= 7). Checked and documented for the Spark engine by
    :func:`fraud_mlops.medallion.features.lookback_days`; the online store keeps this much history."""
    customer_days = math.ceil(customer_reach_seconds(definitions) / SECONDS_PER_DAY)
    return max(label_delay_days + terminal_reach_days(definitions), customer_days)


def _check() -> None:
    produced = defined_columns()
    missing = [c for c in FEATURE_COLUMNS if c != "tx_amount" and c not in produced]
    extra = [c for c in produced if c not in FEATURE_COLUMNS]
    if missing or extra:
        raise AssertionError(f"FEATURE_DEFINITIONS must produce exactly FEATURE_COLUMNS: missing {missing}, extra {extra}")
    if math.ceil(customer_reach_seconds() / SECONDS_PER_DAY) < 1:
        raise AssertionError("the customer features must read at least one day")


_check()
