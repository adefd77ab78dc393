"""The single-customer feature engine: the gold features of ONE incoming transaction, at request time.

It evaluates :data:`fraud_mlops.medallion.feature_definitions.FEATURE_DEFINITIONS`, the same
definitions the Spark engine (:func:`fraud_mlops.medallion.features.build_features`) evaluates for
training and batch scoring, from what the online store holds:

* the customer's earlier transactions (``(tx_seconds, transaction_id)`` strictly before the current
  one), at least :func:`~fraud_mlops.medallion.feature_definitions.customer_reach_seconds` back
  (37 days);
* the terminal's labelled transactions of ``(t - D - 30 days, t - D days]`` (D the label delay).

Rows outside those ranges are ignored, so the caller may pass more. Pure Python, no Spark: the
serving process needs none. The same window rule as the Spark engine (see
:mod:`~fraud_mlops.medallion.feature_definitions`): half-open windows ``(t - w, t]`` of whole seconds,
same-second transactions ordered by ``transaction_id``, and sums taken in that order as Spark does
(earlier seconds first, then the same-second rows up to the current one), so the values agree to
the last bit or within floating-point rounding of a different addition order.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS

__all__ = ["CustomerTransaction", "TerminalTransaction", "epoch_seconds", "online_features"]

_EPOCH = dt.datetime(1970, 1, 1)


def epoch_seconds(tx_datetime: dt.datetime) -> int:
    """Whole seconds since 1970-01-01 of a naive ``tx_datetime`` read as UTC wall time, as Spark's
    ``CAST(tx_datetime AS BIGINT)`` gives them in a UTC session (fractions of a second dropped).

    Raises:
        ValueError: when ``tx_datetime`` carries a time zone (the data's times are naive local times).
    """
    if tx_datetime.tzinfo is not None:
        raise ValueError("tx_datetime must be a naive local time, as in the landing files")
    return (tx_datetime - _EPOCH) // dt.timedelta(seconds=1)


@dataclass(frozen=True)
class CustomerTransaction:
    """One transaction of the customer: ``seconds`` (int, see :func:`epoch_seconds`),
    ``transaction_id`` (int), ``terminal_id`` (int or None), ``amount`` (float currency units, or None)."""

    seconds: int
    transaction_id: int
    terminal_id: int | None
    amount: float | None


@dataclass(frozen=True)
class TerminalTransaction:
    """One transaction of the terminal: ``seconds`` (int) and its label ``fraud`` (1, 0 or None)."""

    seconds: int
    fraud: int | None


class _Customer:
    """The customer's transactions up to and including the current one, in ``(seconds, id)`` order."""

    def __init__(self, rows: list[CustomerTransaction]):
        self.rows = rows
        self.seconds = [r.seconds for r in rows]

    def window(self, end: int, window_seconds: int) -> tuple[list[CustomerTransaction], list[CustomerTransaction]]:
        """Rows of ``(seconds[end] - window_seconds, seconds[end]]`` up to row ``end``, split into the
        strictly earlier seconds and the same-second rows (Spark's two frames)."""
        t = self.seconds[end]
        first = bisect.bisect_right(self.seconds, t - window_seconds, 0, end + 1)
        same = bisect.bisect_left(self.seconds, t, first, end + 1)
        earlier = self.rows[first:same] if window_seconds >= 2 else []
        return earlier, self.rows[same:end + 1]

    def mean_amount(self, end: int, window_seconds: int) -> tuple[int, float | None]:
        """(number of transactions, mean known amount or None) of the window ending at row ``end``."""
        earlier, peers = self.window(end, window_seconds)
        n = len(earlier) + len(peers)
        known = 0
        total_earlier = 0.0
        for r in earlier:
            if r.amount is not None:
                total_earlier += r.amount
                known += 1
        total_peers = 0.0
        for r in peers:
            if r.amount is not None:
                total_peers += r.amount
                known += 1
        return n, ((total_earlier + total_peers) / known if known else None)


def _time(definition: TimeFeatures, seconds: int) -> dict[str, int]:
    when = _EPOCH + dt.timedelta(seconds=seconds)
    return {"is_weekend": int(when.weekday() >= 5), "is_night": int(when.hour <= definition.night_last_hour)}


def _ratio(amount: float | None, mean: float | None) -> float | None:
    if amount is None or mean is None or mean == 0:
        return None
    return amount / mean


def _customer_values(definition: FeatureDefinition, customer: _Customer, values: dict) -> dict:
    end = len(customer.rows) - 1
    current = customer.rows[end]
    match definition:
        case CustomerPreviousGap():
            if end == 0:
                return {"customer_seconds_since_prev_tx": None}
            gap = current.seconds - customer.rows[end - 1].seconds
            limit = definition.max_gap_days * SECONDS_PER_DAY
            return {"customer_seconds_since_prev_tx": float(gap) if gap <= limit else None}
        case CustomerSpending():
            out: dict = {}
            for w in definition.windows_days:
                n, mean = customer.mean_amount(end, w * SECONDS_PER_DAY)
                out[f"customer_tx_count_{w}d"] = n
                out[f"customer_avg_amount_{w}d"] = mean
            return out
        case CustomerRecentCount():
            earlier, peers = customer.window(end, definition.window_seconds)
            return {definition.output_column: len(earlier) + len(peers)}
        case CustomerDistinctTerminals():
            earlier, peers = customer.window(end, definition.window_days * SECONDS_PER_DAY)
            terminals = {r.terminal_id for r in (*earlier, *peers) if r.terminal_id is not None}
            return {f"customer_distinct_terminals_{definition.window_days}d": len(terminals)}
        case CustomerAmountRatio():
            mean = values.get(f"customer_avg_amount_{definition.window_days}d", KeyError)
            if mean is KeyError:
                _, mean = customer.mean_amount(end, definition.window_days * SECONDS_PER_DAY)
            return {f"customer_amount_ratio_{definition.window_days}d": _ratio(current.amount, mean)}
        case CustomerHighAmountCount():
            ratio_seconds = definition.ratio_window_days * SECONDS_PER_DAY
            earlier, peers = customer.window(end, definition.window_days * SECONDS_PER_DAY)
            first = end + 1 - len(earlier) - len(peers)
            high = 0
            for j in range(first, end + 1):
                _, mean = customer.mean_amount(j, ratio_seconds)
                ratio = _ratio(customer.rows[j].amount, mean)
                if ratio is not None and ratio > definition.ratio_threshold:
                    high += 1
            return {f"customer_high_amount_count_{definition.window_days}d": high}
    raise TypeError(f"the single-customer engine has no implementation of feature definition {definition!r}")


def _terminal_values(definition: FeatureDefinition, seconds: int, terminal: Sequence[TerminalTransaction],
                     delay_days: int) -> dict:
    end = seconds - delay_days * SECONDS_PER_DAY

    def frame(window_days: int) -> list[TerminalTransaction]:
        start = end - window_days * SECONDS_PER_DAY
        return [r for r in terminal if start < r.seconds <= end]

    match definition:
        case TerminalRisk():
            out: dict = {}
            for w in definition.windows_days:
                rows = frame(w)
                frauds = sum(1 for r in rows if r.fraud == 1)
                out[f"terminal_tx_count_{w}d"] = len(rows)
                out[f"terminal_risk_{w}d"] = frauds / len(rows) if rows else 0.0
            return out
        case TerminalFraudAge():
            fraud_seconds = [r.seconds for r in frame(definition.window_days) if r.fraud == 1]
            age = (seconds - min(fraud_seconds)) / SECONDS_PER_DAY if fraud_seconds else None
            return {f"terminal_days_since_first_fraud_{definition.window_days}d": age}
    raise TypeError(f"the single-customer engine has no implementation of feature definition {definition!r}")


def online_features(
    current: CustomerTransaction,
    customer_history: Iterable[CustomerTransaction],
    terminal_history: Iterable[TerminalTransaction],
    label_delay_days: int = 7,
    definitions: tuple[FeatureDefinition, ...] = FEATURE_DEFINITIONS,
) -> dict[str, int | float | None]:
    """The model features of one transaction, from its customer's and terminal's history.

    Args:
        current: the transaction being scored (its ``seconds`` from :func:`epoch_seconds`).
        customer_history: the same customer's transactions; only those strictly before ``current`` in
            ``(seconds, transaction_id)`` order are used (later ones and ``current`` itself, if present,
            are ignored), so a replay may pass the customer's whole stored history.
        terminal_history: the labelled transactions of ``current``'s terminal (any order; only those in
            the delayed windows are read).
        label_delay_days: the delay period D in days of the terminal features (the gold table's, 7).
        definitions: the feature definitions (default: the gold table's).

    Returns:
        ``{column: value}`` for every column of :data:`~fraud_mlops.medallion.schema.FEATURE_COLUMNS`
        (``tx_amount`` included): counts as int, the rest float, None where the Spark engine gives null.

    Raises:
        TypeError: a definition of a kind this engine does not implement.
        ValueError: ``label_delay_days`` is negative.
    """
    if isinstance(label_delay_days, bool) or not isinstance(label_delay_days, int) or label_delay_days < 0:
        raise ValueError(f"label_delay_days must be a non-negative integer, got {label_delay_days!r}")
    key = (current.seconds, current.transaction_id)
    earlier = sorted(
        (r for r in customer_history if (r.seconds, r.transaction_id) < key),
        key=lambda r: (r.seconds, r.transaction_id),
    )
    customer = _Customer([*earlier, current])
    terminal = list(terminal_history)
    values: dict[str, int | float | None] = {"tx_amount": current.amount}
    for definition in definitions:
        if isinstance(definition, TimeFeatures):
            values.update(_time(definition, current.seconds))
        elif isinstance(definition, TerminalRisk | TerminalFraudAge):
            values.update(_terminal_values(definition, current.seconds, terminal, label_delay_days))
        else:
            values.update(_customer_values(definition, customer, values))
    missing = [c for c in FEATURE_COLUMNS if c not in values]
    if definitions is FEATURE_DEFINITIONS and missing:
        raise AssertionError(f"the feature definitions left column(s) {missing} uncomputed")
    return values
