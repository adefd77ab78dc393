"""The shared Spark feature library: silver transactions -> gold features, for training and scoring.

Training and batch scoring both call :func:`build_features`, so a model always sees features computed
by the same code. The library is a set of small pure functions ``DataFrame -> DataFrame`` that each
add a few columns and are composed with :meth:`pyspark.sql.DataFrame.transform`::

    gold = (
        silver.transform(add_time_features)
        .transform(add_customer_spending_features, windows_days=(1, 7, 30))
        ...
    )

Source of the definitions
-------------------------
The baseline features follow Y.-A. Le Borgne, W. Siblini, B. Lebichot, G. Bontempi, *Reproducible
Machine Learning for Credit Card Fraud Detection - Practical Handbook* (Université Libre de
Bruxelles, 2022), chapter 3 "Getting started", section "Baseline feature transformation"
(https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineFeatureTransformation.html),
called "the Handbook" below:

* date and time: ``is_weekend``, ``is_night``;
* customer spending behaviour: number of transactions and mean amount of the customer over the last
  1, 7 and 30 days;
* terminal risk: number of transactions of the terminal and share of them that were fraudulent, over
  1, 7 and 30 day windows that end a *delay period* (7 days) before the transaction, because labels
  of recent transactions are not yet known when a transaction is scored.

The Handbook computes them with pandas rolling windows over a time index; this module makes the
boundaries exact for Spark: all windows are half-open intervals ``(start, end]`` of whole seconds,
and transactions of one customer at the same second are ordered by ``transaction_id``.

Time
----
``tx_datetime`` is a naive local timestamp stored as UTC wall time and the session time zone is UTC
(see :func:`fraud_mlops.platform.session.get_spark`). Time differences use ``CAST(tx_datetime AS BIGINT)``
(whole seconds since the epoch); a day is 86 400 seconds. Calendar features (weekday, hour) are read
from the timestamp in the session time zone.

Ordering of a customer's transactions
-------------------------------------
"At or before this one" means in ``(tx_datetime, transaction_id)`` order: of two transactions of a
customer at the same second the one with the larger id sees the other one, not the reverse.
``transaction_id`` is assumed unique (it is the silver key). Spark's range frames over a time
column would include *later* same-second peers, so each customer window is computed as the strictly
earlier seconds of the window (range frame ``[-w + 1, -1]``) plus the same-second peers up to and
including the current row (row frame over ``(customer_id, second)`` ordered by ``transaction_id``).
No Python UDFs and no self-joins are used; every feature is a window aggregate.

Incremental computation
-----------------------
Every feature of a transaction depends only on transactions at or before it, at most
:func:`lookback_days` days earlier. A daily run that (re)computes the days ``[start, end]`` therefore
reads silver from ``start - lookback_days(label_delay_days)`` (see :func:`history_start`), computes
the features and keeps the rows whose ``tx_date`` is in ``[start, end]``. The reach is the longest of
two chains: the terminal windows end ``D`` days before the transaction and span up to 30 days
(``D + 30``); ``customer_high_amount_count_7d`` counts the customer's transactions of the last 7 days
by their own ``customer_amount_ratio_30d``, which reads 30 more days (``7 + 30``). So the look-back
is ``max(D + 30, 37)`` days: 37 for the Handbook's ``D = 7`` and still 37 for ``D = 0``.
``customer_seconds_since_prev_tx`` would be unbounded in time; it reports gaps of at most 30 days
to stay inside the look-back (see :func:`add_customer_seconds_since_prev_tx`).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Iterable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fraud_mlops.medallion import feature_definitions
from fraud_mlops.medallion.feature_definitions import (
    FEATURE_DEFINITIONS,
    SECONDS_PER_DAY,
    CustomerAmountRatio,
    CustomerDistinctTerminals,
    CustomerHighAmountCount,
    CustomerPreviousGap,
    CustomerRecentCount,
    CustomerSpending,
    FeatureDefinition,
    TerminalFraudAge,
    TerminalRisk,
    TimeFeatures,
    customer_reach_seconds,
    terminal_reach_days,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, GOLD_KEY_COLUMNS, LABEL_COLUMN

__all__ = [
    "DEFAULT_LABEL_DELAY_DAYS",
    "DEFAULT_WINDOWS_DAYS",
    "GOLD_COLUMNS",
    "SECONDS_PER_DAY",
    "add_customer_amount_ratio",
    "add_customer_distinct_terminals",
    "add_customer_high_amount_count",
    "add_customer_recent_tx_count",
    "add_customer_seconds_since_prev_tx",
    "add_customer_spending_features",
    "add_terminal_fraud_age",
    "add_terminal_risk_features",
    "add_time_features",
    "build_features",
    "history_start",
    "lookback_days",
    "spark_transform",
]

#: Window lengths in days of the Handbook's customer and terminal features.
DEFAULT_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
#: Delay period D in days: labels of transactions younger than D days are not used (Handbook: 7).
DEFAULT_LABEL_DELAY_DAYS = 7
#: Window in seconds of ``customer_tx_count_1h``.
DEFAULT_RECENT_WINDOW_SECONDS = 3_600
#: Window in days of ``customer_amount_ratio_30d``.
DEFAULT_RATIO_WINDOW_DAYS = 30
#: Window in days of ``customer_distinct_terminals_1d``.
DEFAULT_DISTINCT_TERMINALS_WINDOW_DAYS = 1
#: Longest gap reported by ``customer_seconds_since_prev_tx`` (days); within the look-back.
DEFAULT_PREV_TX_MAX_GAP_DAYS = 30
#: Window in days of ``terminal_days_since_first_fraud_30d`` (it ends the delay period before).
DEFAULT_FRAUD_AGE_WINDOW_DAYS = 30
#: Window in days of ``customer_high_amount_count_7d``.
DEFAULT_HIGH_AMOUNT_WINDOW_DAYS = 7
#: A transaction is a high amount when its ``customer_amount_ratio_30d`` exceeds this (strictly).
DEFAULT_HIGH_AMOUNT_RATIO_THRESHOLD = 3.0

#: Days before the delay period that the terminal features of :func:`build_features` read (the
#: longest terminal window of the feature definitions): their look-back is ``D +`` this.
TERMINAL_REACH_DAYS = terminal_reach_days()
#: Days back that the customer features of :func:`build_features` read, whatever the delay: the
#: longest customer window, or a window over rows that each read a window of their own (the
#: high-amount count over the amount ratios: ``7 + 30``), from the feature definitions.
CUSTOMER_REACH_DAYS = math.ceil(customer_reach_seconds() / SECONDS_PER_DAY)

#: The gold table's columns, in order: the key and context columns, then every model feature that is
#: not already one of them. ``tx_fraud_scenario`` (it leaks the label) is never among them.
GOLD_COLUMNS: tuple[str, ...] = tuple(GOLD_KEY_COLUMNS) + tuple(
    c for c in FEATURE_COLUMNS if c not in GOLD_KEY_COLUMNS
)

# Internal helper column: tx_datetime as whole seconds since the epoch. Each function adds and drops
# it; build_features adds it once so that all windows share it (see _with_seconds).
_SECONDS = "_fx_tx_seconds"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _require_columns(df: DataFrame, required: Iterable[str], caller: str) -> None:
    """Raise ``ValueError`` naming the columns of ``required`` that ``df`` lacks."""
    present = set(df.columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise ValueError(f"{caller}: input DataFrame lacks required column(s) {missing}")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _finite_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _windows(windows_days: Sequence[int]) -> tuple[int, ...]:
    windows = tuple(windows_days)
    if not windows:
        raise ValueError("windows_days must name at least one window")
    for w in windows:
        _positive_int(w, "every window in windows_days")
    if len(set(windows)) != len(windows):
        raise ValueError(f"windows_days has duplicates: {windows!r}")
    return windows


def _seconds() -> Column:
    """``tx_datetime`` as whole seconds since the epoch (bigint)."""
    return F.col("tx_datetime").cast("long")


def _with_seconds(df: DataFrame, transform: Callable[[DataFrame], DataFrame]) -> DataFrame:
    """Apply ``transform`` to ``df`` with the helper column ``_SECONDS`` present.

    When ``df`` already carries the helper column (inside :func:`build_features`) it is reused and
    kept, so that consecutive windows share one sort; otherwise it is added and dropped again.
    """
    if _SECONDS in df.columns:
        return transform(df)
    return transform(df.withColumn(_SECONDS, _seconds())).drop(_SECONDS)


def _customer_earlier_seconds(window_seconds: int) -> Window | None:
    """The customer's rows at the ``window_seconds - 1`` whole seconds before the current second.

    Together with :func:`_customer_peers_so_far` this is the window ``(t - window_seconds, t]`` in
    ``(tx_datetime, transaction_id)`` order. ``None`` when that range is empty (a 1-second window).
    """
    if window_seconds < 2:
        return None
    return Window.partitionBy("customer_id").orderBy(_SECONDS).rangeBetween(-(window_seconds - 1), -1)


def _customer_peers_so_far() -> Window:
    """The customer's rows at the current second with ``transaction_id`` up to the current one."""
    return (
        Window.partitionBy("customer_id", _SECONDS)
        .orderBy("transaction_id")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )


def _customer_window_total(
    agg: Callable[[], Column],
    window_seconds: int,
    empty: Column,
    combine: Callable[[Column, Column], Column] = operator.add,
) -> Column:
    """``agg`` over the customer's window ``(t - window_seconds, t]`` up to the current row.

    ``combine`` joins the aggregate over the strictly earlier seconds with the one over the
    same-second peers up to the current row; ``empty`` stands for an aggregate over no rows.
    """
    earlier = _customer_earlier_seconds(window_seconds)
    earlier_value = F.coalesce(agg().over(earlier), empty) if earlier is not None else empty
    return combine(earlier_value, F.coalesce(agg().over(_customer_peers_so_far()), empty))


def _terminal_delayed_window(window_days: int, label_delay_days: int) -> Window:
    """The terminal's rows with ``tx_datetime`` in ``(t - D - w days, t - D days]`` (D the delay)."""
    return (
        Window.partitionBy("terminal_id")
        .orderBy(_SECONDS)
        .rangeBetween(
            -(label_delay_days + window_days) * SECONDS_PER_DAY + 1, -label_delay_days * SECONDS_PER_DAY
        )
    )


def _customer_count(window_seconds: int) -> Column:
    """Number (bigint) of the customer's transactions in ``(t - window_seconds, t]`` up to this one."""
    return _customer_window_total(lambda: F.count(F.lit(1)), window_seconds, F.lit(0)).cast("long")


# --------------------------------------------------------------------------------------------------
# Look-back
# --------------------------------------------------------------------------------------------------
def lookback_days(label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS) -> int:
    """Days of history needed before the first day to (re)compute, so that every window is complete.

    The oldest data any feature of a transaction at time ``t`` reads (``D = label_delay_days``) is
    the older of:

    * the start of the terminal windows, ``t - D - 30 days`` (exclusive), 30 days being the longest
      terminal window (:data:`TERMINAL_REACH_DAYS`);
    * ``t - 37 days`` (exclusive) for ``customer_high_amount_count_7d``: it reads the customer's
      transactions of ``(t - 7 days, t]``, and the ``customer_amount_ratio_30d`` of each of them
      reads its own 30 days (:data:`CUSTOMER_REACH_DAYS`, ``7 + 30``); every other customer window,
      and the 30-day bound of ``customer_seconds_since_prev_tx``, reaches back 30 days at most.

    So for the days ``[start, end]`` the input must hold every transaction from
    ``start - max(D + 30, 37)`` days (00:00) on; features of earlier rows are incomplete and must be
    discarded. Default (``D = 7``): 37; ``D = 0``: still 37 (not 30).

    Args:
        label_delay_days: the delay period D in days (non-negative int), as passed to
            :func:`build_features`.

    Returns:
        ``max(label_delay_days + TERMINAL_REACH_DAYS, CUSTOMER_REACH_DAYS)``, i.e.
        ``max(label_delay_days + 30, 37)`` (int, days).

    Raises:
        ValueError: when ``label_delay_days`` is not a non-negative integer.
    """
    return feature_definitions.lookback_days(_non_negative_int(label_delay_days, "label_delay_days"))


def history_start(first_day: dt.date, label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS) -> dt.date:
    """The first ``tx_date`` to read so that the features of ``first_day`` onwards are complete.

    Args:
        first_day: the first day to (re)compute (``datetime.date``).
        label_delay_days: the delay period D in days, as passed to :func:`build_features`.

    Returns:
        ``first_day - lookback_days(label_delay_days)`` days (``datetime.date``).

    Raises:
        ValueError: when ``label_delay_days`` is not a non-negative integer.
    """
    return first_day - dt.timedelta(days=lookback_days(label_delay_days))


# --------------------------------------------------------------------------------------------------
# Feature transformations
# --------------------------------------------------------------------------------------------------
def add_time_features(df: DataFrame, night_last_hour: int = 6) -> DataFrame:
    """Add the Handbook's date and time features ``is_weekend`` and ``is_night``.

    Definition (Handbook ch. 3, "Baseline feature transformation", date and time transformations):

    * ``is_weekend`` (int): 1 when ``tx_datetime`` falls on a Saturday or Sunday, else 0;
    * ``is_night`` (int): 1 when the hour of ``tx_datetime`` is 0 to 6 inclusive (00:00:00 to
      06:59:59), else 0.

    Both are read in the session time zone (UTC, i.e. the local wall time of the data). Null when
    ``tx_datetime`` is null.

    Args:
        df: needs ``tx_datetime`` (timestamp); other columns pass through.
        night_last_hour: the last hour (0-23) that counts as night; default 6.

    Returns:
        ``df`` with ``is_weekend`` and ``is_night`` (int) added.

    Raises:
        ValueError: when ``tx_datetime`` is missing.
    """
    _require_columns(df, ["tx_datetime"], "add_time_features")
    if isinstance(night_last_hour, bool) or not isinstance(night_last_hour, int) or not 0 <= night_last_hour <= 23:
        raise ValueError(f"night_last_hour must be an hour 0-23, got {night_last_hour!r}")
    # dayofweek: 1 = Sunday ... 7 = Saturday.
    return df.withColumns(
        {
            "is_weekend": F.dayofweek("tx_datetime").isin(1, 7).cast("int"),
            "is_night": (F.hour("tx_datetime") <= F.lit(night_last_hour)).cast("int"),
        }
    )


def add_customer_spending_features(
    df: DataFrame, windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS
) -> DataFrame:
    """Add the Handbook's customer spending features for each window of ``w`` days.

    Definition (Handbook ch. 3, "Baseline feature transformation", customer ID transformations):
    over the same customer's transactions with ``tx_datetime`` in ``(t - w days, t]`` that come at
    or before the current one in ``(tx_datetime, transaction_id)`` order, the current one included:

    * ``customer_tx_count_{w}d`` (bigint): their number (>= 1);
    * ``customer_avg_amount_{w}d`` (double, currency units): their mean ``tx_amount``.

    A transaction exactly ``w`` days before is excluded, one a second later is included. Null
    amounts are counted as transactions but left out of the mean (null when no amount is known).

    Args:
        df: needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp), ``customer_id`` (bigint)
            and ``tx_amount`` (double).
        windows_days: window lengths in days (positive ints); default ``(1, 7, 30)``.

    Returns:
        ``df`` with the two columns per window added, in the order of ``windows_days``.

    Raises:
        ValueError: when a required column is missing or a window is not a positive integer.
    """
    windows = _windows(windows_days)
    _require_columns(
        df, ["transaction_id", "tx_datetime", "customer_id", "tx_amount"], "add_customer_spending_features"
    )
    amount = F.col("tx_amount").cast("double")
    # Each window aggregate once (Spark does not merge equal window expressions), then the features.
    raw: dict[str, Column] = {}
    features: dict[str, Column] = {}
    for w in windows:
        seconds = w * SECONDS_PER_DAY
        n_tx, n_amounts, total = f"_fx_n_{w}", f"_fx_na_{w}", f"_fx_sum_{w}"
        raw[n_tx] = _customer_count(seconds)
        raw[n_amounts] = _customer_window_total(lambda: F.count(amount), seconds, F.lit(0))
        raw[total] = _customer_window_total(lambda: F.sum(amount), seconds, F.lit(0.0))
        features[f"customer_tx_count_{w}d"] = F.col(n_tx)
        features[f"customer_avg_amount_{w}d"] = F.when(
            F.col(n_amounts) > 0, F.col(total) / F.col(n_amounts)
        ).cast("double")
    return _with_seconds(df, lambda d: d.withColumns(raw).withColumns(features).drop(*raw))


def add_terminal_risk_features(
    df: DataFrame,
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS,
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS,
) -> DataFrame:
    """Add the Handbook's terminal risk features for each window of ``w`` days.

    Definition (Handbook ch. 3, "Baseline feature transformation", terminal ID transformations):
    with ``D = label_delay_days`` (the delay period), over the same terminal's transactions with
    ``tx_datetime`` in ``(t - D - w days, t - D days]``:

    * ``terminal_tx_count_{w}d`` (bigint): their number;
    * ``terminal_risk_{w}d`` (double, share in [0, 1]): the share of them with ``tx_fraud = 1``;
      0.0 when there are none. A null label counts as not fraudulent.

    This is a pure time window: a transaction exactly ``D`` days before is included, exactly
    ``D + w`` days before excluded, and the current transaction is never in it when ``D >= 1``.
    These are the only features that read labels, and only labels at least ``D`` days old, so they
    are point-in-time correct for a model that learns the label ``D`` days late. ``D = 0`` would use
    the current transaction's own label and must not be used for a model.

    Args:
        df: needs ``tx_datetime`` (timestamp), ``terminal_id`` (bigint) and ``tx_fraud`` (int 0/1).
        windows_days: window lengths in days (positive ints); default ``(1, 7, 30)``.
        label_delay_days: the delay period D in days (non-negative int); default 7.

    Returns:
        ``df`` with the two columns per window added, in the order of ``windows_days``.

    Raises:
        ValueError: when a required column is missing, a window is not a positive integer or
            ``label_delay_days`` is not a non-negative integer.
    """
    windows = _windows(windows_days)
    delay = _non_negative_int(label_delay_days, "label_delay_days")
    _require_columns(df, ["tx_datetime", "terminal_id", LABEL_COLUMN], "add_terminal_risk_features")
    is_fraud = F.when(F.col(LABEL_COLUMN) == 1, 1).otherwise(0)
    raw: dict[str, Column] = {}
    features: dict[str, Column] = {}
    for w in windows:
        frame = _terminal_delayed_window(w, delay)
        n_tx, n_fraud = f"_fx_n_{w}", f"_fx_fraud_{w}"
        raw[n_tx] = F.count(F.lit(1)).over(frame).cast("long")
        raw[n_fraud] = F.coalesce(F.sum(is_fraud).over(frame), F.lit(0))
        features[f"terminal_tx_count_{w}d"] = F.col(n_tx)
        features[f"terminal_risk_{w}d"] = (
            F.when(F.col(n_tx) > 0, F.col(n_fraud) / F.col(n_tx)).otherwise(F.lit(0.0)).cast("double")
        )
    return _with_seconds(df, lambda d: d.withColumns(raw).withColumns(features).drop(*raw))


def add_terminal_fraud_age(
    df: DataFrame,
    window_days: int = DEFAULT_FRAUD_AGE_WINDOW_DAYS,
    label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS,
) -> DataFrame:
    """Add ``terminal_days_since_first_fraud_{w}d``: how long the terminal has been known compromised.

    Definition (an extra feature beyond the Handbook, over the window of its terminal risk): with
    ``D = label_delay_days``, ``t`` the transaction's ``tx_datetime`` and ``s`` the earliest
    ``tx_datetime`` of a fraudulent (``tx_fraud = 1``) transaction of the same terminal in
    ``(t - D - w days, t - D days]`` (the frame of ``terminal_risk_{w}d``), the feature is
    ``(t - s) / 86400`` (double, days, >= D, < D + w). Null when the terminal has no known fraud in
    that frame; a null label counts as not fraudulent. In the Handbook's compromised-terminal
    scenario a terminal stays compromised for 28 days, so the age of the first known fraud tells
    how far into such a period the terminal is.

    Like :func:`add_terminal_risk_features` this is a pure time window: a fraud exactly ``D`` days
    before is included, one exactly ``D + w`` days before excluded, and the current transaction is
    never in it when ``D >= 1``. Only labels at least ``D`` days old are read, so the feature is
    point-in-time correct for a model that learns the label ``D`` days late; ``D = 0`` would use the
    current transaction's own label and must not be used for a model.

    Args:
        df: needs ``tx_datetime`` (timestamp), ``terminal_id`` (bigint) and ``tx_fraud`` (int 0/1).
        window_days: ``w``, the window in days (positive int); default 30.
        label_delay_days: the delay period D in days (non-negative int); default 7.

    Returns:
        ``df`` with ``terminal_days_since_first_fraud_{w}d`` (double, days) added.

    Raises:
        ValueError: when a required column is missing, ``window_days`` is not a positive integer or
            ``label_delay_days`` is not a non-negative integer.
    """
    w = _positive_int(window_days, "window_days")
    delay = _non_negative_int(label_delay_days, "label_delay_days")
    _require_columns(df, ["tx_datetime", "terminal_id", LABEL_COLUMN], "add_terminal_fraud_age")
    fraud_seconds = F.when(F.col(LABEL_COLUMN) == 1, F.col(_SECONDS))
    first_fraud = F.min(fraud_seconds).over(_terminal_delayed_window(w, delay))
    age = ((F.col(_SECONDS) - first_fraud) / F.lit(SECONDS_PER_DAY)).cast("double")
    return _with_seconds(df, lambda d: d.withColumn(f"terminal_days_since_first_fraud_{w}d", age))


def add_customer_seconds_since_prev_tx(
    df: DataFrame, max_gap_days: int = DEFAULT_PREV_TX_MAX_GAP_DAYS
) -> DataFrame:
    """Add ``customer_seconds_since_prev_tx``: time since the customer's previous transaction.

    Definition (an extra feature beyond the Handbook): ``tx_datetime`` minus the ``tx_datetime`` of
    the same customer's previous transaction in ``(tx_datetime, transaction_id)`` order, in seconds
    (double, >= 0; 0.0 for a later transaction at the same second). Null when the customer has no
    previous transaction within ``max_gap_days`` days (30 by default): the bound keeps the feature
    inside the look-back of an incremental run (:func:`lookback_days` >= 30 days), so a daily
    recomputation gives exactly the value of a full rebuild.

    Args:
        df: needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp), ``customer_id`` (bigint).
        max_gap_days: longest gap (days) reported; longer gaps and first transactions give null.

    Returns:
        ``df`` with ``customer_seconds_since_prev_tx`` (double, seconds) added.

    Raises:
        ValueError: when a required column is missing or ``max_gap_days`` is not a positive integer.
    """
    _require_columns(
        df, ["transaction_id", "tx_datetime", "customer_id"], "add_customer_seconds_since_prev_tx"
    )
    max_gap = _positive_int(max_gap_days, "max_gap_days") * SECONDS_PER_DAY
    order = Window.partitionBy("customer_id").orderBy(_SECONDS, "transaction_id")
    raw_gap = F.col(_SECONDS) - F.lag(_SECONDS).over(order)
    gap = F.when(raw_gap <= max_gap, raw_gap.cast("double"))
    return _with_seconds(df, lambda d: d.withColumn("customer_seconds_since_prev_tx", gap))


def add_customer_amount_ratio(df: DataFrame, window_days: int = DEFAULT_RATIO_WINDOW_DAYS) -> DataFrame:
    """Add ``customer_amount_ratio_{w}d``: the amount relative to the customer's recent mean amount.

    Definition (an extra feature beyond the Handbook): ``tx_amount / customer_avg_amount_{w}d``
    (dimensionless double; 1.0 = a typical amount for this customer). Null when that mean is 0 or
    null, or ``tx_amount`` is null.

    Args:
        df: needs ``tx_amount`` (double) and ``customer_avg_amount_{w}d`` (double), the latter from
            :func:`add_customer_spending_features` with ``w`` among its windows.
        window_days: ``w``, the window of the mean in days (positive int); default 30.

    Returns:
        ``df`` with ``customer_amount_ratio_{w}d`` (double) added.

    Raises:
        ValueError: when a required column is missing or ``window_days`` is not a positive integer.
    """
    w = _positive_int(window_days, "window_days")
    mean = f"customer_avg_amount_{w}d"
    _require_columns(df, ["tx_amount", mean], "add_customer_amount_ratio")
    ratio = F.when(F.col(mean) != 0, F.col("tx_amount") / F.col(mean)).cast("double")
    return df.withColumn(f"customer_amount_ratio_{w}d", ratio)


def add_customer_high_amount_count(
    df: DataFrame,
    window_days: int = DEFAULT_HIGH_AMOUNT_WINDOW_DAYS,
    ratio_threshold: float = DEFAULT_HIGH_AMOUNT_RATIO_THRESHOLD,
    ratio_window_days: int = DEFAULT_RATIO_WINDOW_DAYS,
) -> DataFrame:
    """Add ``customer_high_amount_count_{w}d``: how many unusually large amounts the customer made.

    Definition (an extra feature beyond the Handbook, same window rule as its customer counts): the
    number (bigint, >= 0) of the same customer's transactions with ``tx_datetime`` in
    ``(t - w days, t]`` that come at or before the current one in ``(tx_datetime, transaction_id)``
    order, the current one included, whose ``customer_amount_ratio_{r}d`` is strictly greater than
    ``ratio_threshold`` (3.0 by default: more than three times the customer's mean amount of the
    previous ``r`` = 30 days). A null ratio counts as not high. Never null.

    Each counted transaction's ratio reads its own ``r`` days, so the feature of a transaction at
    ``t`` depends on transactions back to ``t - w - r`` days (see :func:`lookback_days`).

    Args:
        df: needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp), ``customer_id`` (bigint)
            and ``customer_amount_ratio_{r}d`` (double), the latter from
            :func:`add_customer_amount_ratio` with ``window_days = r``.
        window_days: ``w``, the window in days (positive int); default 7.
        ratio_threshold: a ratio above this (finite number, dimensionless) is a high amount;
            default 3.0.
        ratio_window_days: ``r``, the window in days of the ratio that is read (positive int);
            default 30.

    Returns:
        ``df`` with ``customer_high_amount_count_{w}d`` (bigint) added.

    Raises:
        ValueError: when a required column (the ratio column included) is missing, a window is not a
            positive integer or ``ratio_threshold`` is not a finite number.
    """
    w = _positive_int(window_days, "window_days")
    threshold = _finite_number(ratio_threshold, "ratio_threshold")
    ratio = f"customer_amount_ratio_{_positive_int(ratio_window_days, 'ratio_window_days')}d"
    _require_columns(
        df, ["transaction_id", "tx_datetime", "customer_id", ratio], "add_customer_high_amount_count"
    )
    # count() skips nulls: a ratio at or below the threshold, or null, gives null and is not counted.
    is_high = F.when(F.col(ratio) > F.lit(threshold), F.lit(1))
    count = _customer_window_total(lambda: F.count(is_high), w * SECONDS_PER_DAY, F.lit(0)).cast("long")
    return _with_seconds(df, lambda d: d.withColumn(f"customer_high_amount_count_{w}d", count))


def add_customer_recent_tx_count(
    df: DataFrame,
    window_seconds: int = DEFAULT_RECENT_WINDOW_SECONDS,
    output_column: str = "customer_tx_count_1h",
) -> DataFrame:
    """Add a short-window customer transaction count (velocity), by default ``customer_tx_count_1h``.

    Definition (an extra feature beyond the Handbook, same rule as its customer counts): the number
    (bigint, >= 1) of the same customer's transactions with ``tx_datetime`` in
    ``(t - window_seconds, t]`` that come at or before the current one in
    ``(tx_datetime, transaction_id)`` order, the current one included. Never null.

    Args:
        df: needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp), ``customer_id`` (bigint).
        window_seconds: the window in seconds (positive int); default 3600 (one hour).
        output_column: name of the added column; default ``customer_tx_count_1h``.

    Returns:
        ``df`` with ``output_column`` (bigint) added.

    Raises:
        ValueError: when a required column is missing or ``window_seconds`` is not a positive integer.
    """
    seconds = _positive_int(window_seconds, "window_seconds")
    _require_columns(df, ["transaction_id", "tx_datetime", "customer_id"], "add_customer_recent_tx_count")
    return _with_seconds(df, lambda d: d.withColumn(output_column, _customer_count(seconds)))


def add_customer_distinct_terminals(
    df: DataFrame, window_days: int = DEFAULT_DISTINCT_TERMINALS_WINDOW_DAYS
) -> DataFrame:
    """Add ``customer_distinct_terminals_{w}d``: how many terminals the customer used recently.

    Definition (an extra feature beyond the Handbook): the number (bigint, >= 1 when ``terminal_id``
    is known) of distinct ``terminal_id`` among the same customer's transactions with
    ``tx_datetime`` in ``(t - w days, t]`` that come at or before the current one in
    ``(tx_datetime, transaction_id)`` order, the current one included. Null terminals are ignored.

    Args:
        df: needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp), ``customer_id`` and
            ``terminal_id`` (bigint).
        window_days: ``w``, the window in days (positive int); default 1.

    Returns:
        ``df`` with ``customer_distinct_terminals_{w}d`` (bigint) added.

    Raises:
        ValueError: when a required column is missing or ``window_days`` is not a positive integer.
    """
    w = _positive_int(window_days, "window_days")
    _require_columns(
        df,
        ["transaction_id", "tx_datetime", "customer_id", "terminal_id"],
        "add_customer_distinct_terminals",
    )
    terminals = _customer_window_total(
        lambda: F.collect_set("terminal_id"),
        w * SECONDS_PER_DAY,
        F.array().cast("array<bigint>"),
        combine=F.array_union,
    )
    distinct = F.size(terminals).cast("long")
    return _with_seconds(df, lambda d: d.withColumn(f"customer_distinct_terminals_{w}d", distinct))


def spark_transform(definition: FeatureDefinition, label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS
                    ) -> Callable[[DataFrame], DataFrame]:
    """The Spark engine of one feature definition: a ``DataFrame -> DataFrame`` adding its columns.

    Args:
        definition: one of :data:`fraud_mlops.medallion.feature_definitions.FEATURE_DEFINITIONS`.
        label_delay_days: the delay period D in days of the terminal features (non-negative int).

    Returns:
        A function that adds ``definition.columns`` with the ``add_*`` function of its kind, called
        with the definition's parameters.

    Raises:
        TypeError: when the definition is of a kind this engine does not know.
    """
    match definition:
        case TimeFeatures():
            return lambda df: add_time_features(df, night_last_hour=definition.night_last_hour)
        case CustomerPreviousGap():
            return lambda df: add_customer_seconds_since_prev_tx(df, max_gap_days=definition.max_gap_days)
        case CustomerSpending():
            return lambda df: add_customer_spending_features(df, windows_days=definition.windows_days)
        case CustomerRecentCount():
            return lambda df: add_customer_recent_tx_count(
                df, window_seconds=definition.window_seconds, output_column=definition.output_column)
        case CustomerDistinctTerminals():
            return lambda df: add_customer_distinct_terminals(df, window_days=definition.window_days)
        case CustomerAmountRatio():
            return lambda df: add_customer_amount_ratio(df, window_days=definition.window_days)
        case CustomerHighAmountCount():
            return lambda df: add_customer_high_amount_count(
                df, window_days=definition.window_days, ratio_threshold=definition.ratio_threshold,
                ratio_window_days=definition.ratio_window_days)
        case TerminalRisk():
            return lambda df: add_terminal_risk_features(
                df, windows_days=definition.windows_days, label_delay_days=label_delay_days)
        case TerminalFraudAge():
            return lambda df: add_terminal_fraud_age(
                df, window_days=definition.window_days, label_delay_days=label_delay_days)
    raise TypeError(f"the Spark engine has no implementation of feature definition {definition!r}")


def build_features(silver: DataFrame, label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS) -> DataFrame:
    """Compute the gold feature table from silver transactions (used by training and scoring).

    One output row per input transaction, keyed by ``transaction_id``, with exactly the columns
    :data:`GOLD_COLUMNS`, in that order: ``schema.GOLD_KEY_COLUMNS`` (passed through) followed by
    the features of ``schema.FEATURE_COLUMNS`` not already among them:

    * ``is_weekend``, ``is_night`` (int) - :func:`add_time_features`;
    * ``customer_tx_count_{1,7,30}d`` (bigint), ``customer_avg_amount_{1,7,30}d`` (double) -
      :func:`add_customer_spending_features`;
    * ``terminal_tx_count_{1,7,30}d`` (bigint), ``terminal_risk_{1,7,30}d`` (double) -
      :func:`add_terminal_risk_features` with delay ``label_delay_days``;
    * ``customer_seconds_since_prev_tx`` (double, seconds) -
      :func:`add_customer_seconds_since_prev_tx`;
    * ``customer_amount_ratio_30d`` (double) - :func:`add_customer_amount_ratio`;
    * ``customer_tx_count_1h`` (bigint) - :func:`add_customer_recent_tx_count`;
    * ``customer_distinct_terminals_1d`` (bigint) - :func:`add_customer_distinct_terminals`;
    * ``terminal_days_since_first_fraud_30d`` (double, days) - :func:`add_terminal_fraud_age` with
      delay ``label_delay_days``;
    * ``customer_high_amount_count_7d`` (bigint) - :func:`add_customer_high_amount_count` over
      ``customer_amount_ratio_30d > 3.0``.

    Definitions: the Handbook, ch. 3 "Baseline feature transformation" (see the module docstring),
    plus the extra features documented on their functions. ``tx_fraud_scenario`` and every other
    silver column are dropped. Features of transactions in the first
    :func:`lookback_days` days of the input are computed from incomplete history; an incremental run
    reads :func:`history_start` onwards and keeps only the days it recomputes.

    Args:
        silver: silver transactions; needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp),
            ``tx_date`` (date), ``customer_id`` (bigint), ``terminal_id`` (bigint), ``tx_amount``
            (double) and ``tx_fraud`` (int 0/1); further columns are ignored.
        label_delay_days: the delay period D in days for the terminal features (risk and fraud
            age); default 7.

    Returns:
        A lazy DataFrame with the columns :data:`GOLD_COLUMNS`.

    Raises:
        ValueError: when a required column is missing (all missing ones are named) or
            ``label_delay_days`` is not a non-negative integer.
    """
    delay = _non_negative_int(label_delay_days, "label_delay_days")
    _require_columns(silver, GOLD_KEY_COLUMNS, "build_features")
    # The helper seconds column is added once and shared, and the window needing the finest order
    # (customer, second, id) comes first, so all customer windows reuse one shuffle and one sort.
    gold = silver.select(*GOLD_KEY_COLUMNS).withColumn(_SECONDS, _seconds())
    for definition in FEATURE_DEFINITIONS:
        gold = gold.transform(spark_transform(definition, delay))
    return gold.select(*GOLD_COLUMNS)
