"""Declared data-quality rules of the silver layer and the split into valid and quarantined rows.

A rule is a name, a human-readable description and a Spark SQL boolean expression over the bronze
columns (all strings, as landed) that is true for a valid row. Every rule is evaluated on every row,
so a quarantined row lists all the rules it broke, not only the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

#: Timestamp format of ``TX_DATETIME`` in the landing files.
TX_DATETIME_FORMAT = "yyyy-MM-dd HH:mm:ss"

#: ``TX_DATETIME`` parsed as a timestamp, or null when it is not exactly ``yyyy-MM-dd HH:mm:ss``. The
#: shape check comes first because Spark's parser raises (SparkUpgradeException), instead of
#: returning null, on some near-miss values such as ``2018-6-19 00:00:31`` under the default
#: ``spark.sql.legacy.timeParserPolicy``.
PARSED_TX_DATETIME = (
    "CASE WHEN TX_DATETIME RLIKE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' "
    f"THEN try_to_timestamp(TX_DATETIME, '{TX_DATETIME_FORMAT}') END"
)


@dataclass(frozen=True)
class Rule:
    """One data-quality rule: ``expression`` is true for rows that pass."""

    name: str
    description: str
    expression: str

    def column(self) -> Column:
        """The rule as a non-null boolean Column (a null result counts as a failure)."""
        return F.coalesce(F.expr(self.expression), F.lit(False))


#: The silver rules over the bronze columns. ``try_cast``/``try_to_timestamp`` return null instead of
#: failing, whatever the session's ANSI setting, so a bad value breaks its rule and never the job.
SILVER_RULES: tuple[Rule, ...] = (
    Rule("well_formed_row", "the CSV line has the landing file's columns", "_corrupt_record IS NULL"),
    Rule(
        "transaction_id_present",
        "TRANSACTION_ID is a non-negative integer",
        "try_cast(TRANSACTION_ID AS BIGINT) >= 0",
    ),
    Rule("customer_id_present", "CUSTOMER_ID is a non-negative integer", "try_cast(CUSTOMER_ID AS BIGINT) >= 0"),
    Rule("terminal_id_present", "TERMINAL_ID is a non-negative integer", "try_cast(TERMINAL_ID AS BIGINT) >= 0"),
    Rule(
        "tx_datetime_parseable",
        f"TX_DATETIME parses as {TX_DATETIME_FORMAT}",
        f"({PARSED_TX_DATETIME}) IS NOT NULL",
    ),
    Rule(
        "tx_amount_non_negative",
        "TX_AMOUNT is a finite number >= 0 (currency units)",
        "try_cast(TX_AMOUNT AS DOUBLE) >= 0 AND NOT isnan(try_cast(TX_AMOUNT AS DOUBLE)) "
        "AND try_cast(TX_AMOUNT AS DOUBLE) < double('Infinity')",
    ),
    Rule("tx_fraud_binary", "TX_FRAUD is 0 or 1", "trim(TX_FRAUD) IN ('0', '1')"),
    Rule(
        "tx_fraud_scenario_valid",
        "TX_FRAUD_SCENARIO is an integer 0-3, 0 exactly when TX_FRAUD is 0",
        "try_cast(TX_FRAUD_SCENARIO AS INT) BETWEEN 0 AND 3 "
        "AND (try_cast(TX_FRAUD_SCENARIO AS INT) = 0) = (trim(TX_FRAUD) = '0')",
    ),
)

#: Rule name given to a row whose ``transaction_id`` is already in silver or earlier in the batch.
DUPLICATE_RULE = Rule(
    "unique_transaction_id",
    "TRANSACTION_ID not seen before (in silver, or earlier in the same batch)",
    "true",
)


def with_rule_results(df: DataFrame, rules: tuple[Rule, ...] = SILVER_RULES) -> DataFrame:
    """Add ``failed_rules`` (array<string>): the names of the rules each row breaks (empty if none).

    Takes the bronze columns the rules reference (strings) and returns all input columns plus
    ``failed_rules``.
    """
    failures = [F.when(~r.column(), F.lit(r.name)) for r in rules]
    return df.withColumn("failed_rules", F.filter(F.array(*failures), lambda x: x.isNotNull()))
