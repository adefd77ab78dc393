"""Column contracts of the silver and gold tables and of the model input.

Every layer and the model refer to columns through these constants, so that training and scoring
read exactly the same feature columns.
"""

from __future__ import annotations

#: Label column: 1 = fraudulent transaction, 0 = genuine (int).
LABEL_COLUMN = "tx_fraud"

#: Columns that must never be model inputs. ``tx_fraud_scenario`` is a simulation artefact of the
#: Fraud Detection Handbook data that names the fraud pattern (0 = genuine): it leaks the label.
LEAKING_COLUMNS: tuple[str, ...] = ("tx_fraud_scenario",)

#: silver_transactions: name -> Spark SQL type.
SILVER_COLUMNS: dict[str, str] = {
    "transaction_id": "bigint",
    "tx_datetime": "timestamp",  # local time of the transaction, stored as UTC wall time
    "tx_date": "date",
    "customer_id": "bigint",
    "terminal_id": "bigint",
    "tx_amount": "double",  # currency units, 2 decimals
    "tx_time_seconds": "bigint",  # seconds since 2018-04-01 00:00:00
    "tx_time_days": "int",  # whole days since 2018-04-01
    "tx_fraud": "int",
    "tx_fraud_scenario": "int",
    "_source_file": "string",
    "_ingested_at": "timestamp",
}

#: Gold key and context columns kept next to the features (not model inputs, except tx_amount).
GOLD_KEY_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "tx_datetime",
    "tx_date",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_fraud",
)

#: The Fraud Detection Handbook's baseline features (its chapter 3), with the issue's names.
HANDBOOK_FEATURES: tuple[str, ...] = (
    "is_weekend",
    "is_night",
    "customer_tx_count_1d",
    "customer_avg_amount_1d",
    "customer_tx_count_7d",
    "customer_avg_amount_7d",
    "customer_tx_count_30d",
    "customer_avg_amount_30d",
    "terminal_tx_count_1d",
    "terminal_risk_1d",
    "terminal_tx_count_7d",
    "terminal_risk_7d",
    "terminal_tx_count_30d",
    "terminal_risk_30d",
)

#: Further features fraud teams use (see :mod:`fraud_mlops.medallion.features` for definitions).
EXTRA_FEATURES: tuple[str, ...] = (
    "customer_seconds_since_prev_tx",
    "customer_amount_ratio_30d",
    "customer_tx_count_1h",
    "customer_distinct_terminals_1d",
)

#: Features kept on evidence: prequential validation (an ablation of :data:`FEATURE_GROUPS`) showed that
#: they help the model. How long a terminal has been known compromised (the Handbook's compromised-
#: terminal scenario lasts 28 days) and how many unusually large amounts the customer made lately.
EVIDENCE_FEATURES: tuple[str, ...] = (
    "terminal_days_since_first_fraud_30d",
    "customer_high_amount_count_7d",
)

#: Model input columns, in order: the amount, the Handbook features, the extra features, the features
#: kept on evidence (new features go at the end, so that earlier positions never move).
FEATURE_COLUMNS: tuple[str, ...] = ("tx_amount",) + HANDBOOK_FEATURES + EXTRA_FEATURES + EVIDENCE_FEATURES

#: The feature groups of the ablation study, in order: the name of a group -> its columns. Their
#: concatenation, in this order, is exactly :data:`FEATURE_COLUMNS`.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "handbook": ("tx_amount",) + HANDBOOK_FEATURES,
    "customer_behaviour": EXTRA_FEATURES,
    "terminal_fraud_age": ("terminal_days_since_first_fraud_30d",),
    "customer_high_amount": ("customer_high_amount_count_7d",),
}

assert tuple(c for group in FEATURE_GROUPS.values() for c in group) == FEATURE_COLUMNS, (
    "FEATURE_GROUPS must list exactly FEATURE_COLUMNS, in order"
)
assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS), "a feature is listed twice"
assert not set(FEATURE_COLUMNS) & set(LEAKING_COLUMNS), "a leaking column is listed as a feature"
