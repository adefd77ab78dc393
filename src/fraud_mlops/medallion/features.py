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
the features and keeps the rows whose ``tx_date`` is in ``[start, end]``. The one exception is
``customer_seconds_since_prev_tx``, which is unbounded in time (see
:func:`add_customer_seconds_since_prev_tx`).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fraud_mlops.medallion.schema import FEATURE_COLUMNS, GOLD_KEY_COLUMNS, LABEL_COLUMN

__all__ = [
    "DEFAULT_LABEL_DELAY_DAYS",
    "DEFAULT_WINDOWS_DAYS",
    "GOLD_COLUMNS",
    "SECONDS_PER_DAY",
    "add_customer_amount_ratio",
    "add_customer_distinct_terminals",
    "add_customer_recent_tx_count",
    "add_customer_seconds_since_prev_tx",
    "add_customer_spending_features",
    "add_terminal_risk_features",
    "add_time_features",
    "build_features",
    "history_start",
    "lookback_days",
]

#: Seconds in one day: every window of ``w`` days spans ``w * SECONDS_PER_DAY`` seconds.
SECONDS_PER_DAY = 86_400
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


def _customer_count(window_seconds: int) -> Column:
    """Number (bigint) of the customer's transactions in ``(t - window_seconds, t]`` up to this one."""
    return _customer_window_total(lambda: F.count(F.lit(1)), window_seconds, F.lit(0)).cast("long")


# --------------------------------------------------------------------------------------------------
# Look-back
# --------------------------------------------------------------------------------------------------
def lookback_days(label_delay_days: int = DEFAULT_LABEL_DELAY_DAYS) -> int:
    """Days of history needed before the first day to (re)compute, so that every window is complete.

    The oldest data any windowed feature of a transaction at time ``t`` reads is the start of the
    terminal windows, ``t - D - 30 days`` (exclusive), with ``D = label_delay_days`` and 30 days the
    largest window; the customer windows reach back only 30 days. So for the days ``[start, end]``
    the input must hold every transaction from ``start - (D + 30)`` days (00:00) on; features of
    earlier rows are incomplete and must be discarded. Default: ``7 + 30 = 37``.

    ``customer_seconds_since_prev_tx`` reports gaps of at most 30 days, so it fits the same bound.

    Args:
        label_delay_days: the delay period D in days (non-negative int), as passed to
            :func:`build_features`.

    Returns:
        ``label_delay_days + 30`` (int, days).

    Raises:
        ValueError: when ``label_delay_days`` is not a non-negative integer.
    """
    return _non_negative_int(label_delay_days, "label_delay_days") + max(DEFAULT_WINDOWS_DAYS)


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
def add_time_features(df: DataFrame) -> DataFrame:
    """Add the Handbook's date and time features ``is_weekend`` and ``is_night``.

    Definition (Handbook ch. 3, "Baseline feature transformation", date and time transformations):

    * ``is_weekend`` (int): 1 when ``tx_datetime`` falls on a Saturday or Sunday, else 0;
    * ``is_night`` (int): 1 when the hour of ``tx_datetime`` is 0 to 6 inclusive (00:00:00 to
      06:59:59), else 0.

    Both are read in the session time zone (UTC, i.e. the local wall time of the data). Null when
    ``tx_datetime`` is null.

    Args:
        df: needs ``tx_datetime`` (timestamp); other columns pass through.

    Returns:
        ``df`` with ``is_weekend`` and ``is_night`` (int) added.

    Raises:
        ValueError: when ``tx_datetime`` is missing.
    """
    _require_columns(df, ["tx_datetime"], "add_time_features")
    # dayofweek: 1 = Sunday ... 7 = Saturday.
    return df.withColumns(
        {
            "is_weekend": F.dayofweek("tx_datetime").isin(1, 7).cast("int"),
            "is_night": (F.hour("tx_datetime") <= 6).cast("int"),
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
        frame = (
            Window.partitionBy("terminal_id")
            .orderBy(_SECONDS)
            .rangeBetween(-(delay + w) * SECONDS_PER_DAY + 1, -delay * SECONDS_PER_DAY)
        )
        n_tx, n_fraud = f"_fx_n_{w}", f"_fx_fraud_{w}"
        raw[n_tx] = F.count(F.lit(1)).over(frame).cast("long")
        raw[n_fraud] = F.coalesce(F.sum(is_fraud).over(frame), F.lit(0))
        features[f"terminal_tx_count_{w}d"] = F.col(n_tx)
        features[f"terminal_risk_{w}d"] = (
            F.when(F.col(n_tx) > 0, F.col(n_fraud) / F.col(n_tx)).otherwise(F.lit(0.0)).cast("double")
        )
    return _with_seconds(df, lambda d: d.withColumns(raw).withColumns(features).drop(*raw))


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
    * ``customer_distinct_terminals_1d`` (bigint) - :func:`add_customer_distinct_terminals`.

    Definitions: the Handbook, ch. 3 "Baseline feature transformation" (see the module docstring),
    plus the extra features documented on their functions. ``tx_fraud_scenario`` and every other
    silver column are dropped. Features of transactions in the first
    :func:`lookback_days` days of the input are computed from incomplete history; an incremental run
    reads :func:`history_start` onwards and keeps only the days it recomputes.

    Args:
        silver: silver transactions; needs ``transaction_id`` (bigint), ``tx_datetime`` (timestamp),
            ``tx_date`` (date), ``customer_id`` (bigint), ``terminal_id`` (bigint), ``tx_amount``
            (double) and ``tx_fraud`` (int 0/1); further columns are ignored.
        label_delay_days: the delay period D in days for the terminal risk features; default 7.

    Returns:
        A lazy DataFrame with the columns :data:`GOLD_COLUMNS`.

    Raises:
        ValueError: when a required column is missing (all missing ones are named) or
            ``label_delay_days`` is not a non-negative integer.
    """
    _non_negative_int(label_delay_days, "label_delay_days")
    _require_columns(silver, GOLD_KEY_COLUMNS, "build_features")
    # The helper seconds column is added once and shared, and the window needing the finest order
    # (customer, second, id) comes first, so all customer windows reuse one shuffle and one sort.
    gold = (
        silver.select(*GOLD_KEY_COLUMNS)
        .withColumn(_SECONDS, _seconds())
        .transform(add_time_features)
        .transform(add_customer_seconds_since_prev_tx)
        .transform(add_customer_spending_features, windows_days=DEFAULT_WINDOWS_DAYS)
        .transform(add_customer_recent_tx_count, window_seconds=DEFAULT_RECENT_WINDOW_SECONDS)
        .transform(add_customer_distinct_terminals, window_days=DEFAULT_DISTINCT_TERMINALS_WINDOW_DAYS)
        .transform(add_customer_amount_ratio, window_days=DEFAULT_RATIO_WINDOW_DAYS)
        .transform(
            add_terminal_risk_features, windows_days=DEFAULT_WINDOWS_DAYS, label_delay_days=label_delay_days
        )
    )
    return gold.select(*GOLD_COLUMNS)
