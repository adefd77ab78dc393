"""Batch scoring of gold transactions with the registered ``@champion`` model.

The champion is the model version that the registry alias ``champion`` points to (MLflow model
aliases: https://mlflow.org/docs/latest/model-registry.html). Scoring resolves the alias to a version
number once and then loads that exact version (``models:/<name>/<version>``), so the version written
next to every score is the version that produced it even if the alias moves while the job runs.

The model is an ``mlflow.pyfunc`` model that takes a pandas DataFrame of
:data:`fraud_mlops.medallion.schema.FEATURE_COLUMNS` and returns one fraud probability per row (1-D). It is
applied with :func:`mlflow.pyfunc.spark_udf`, so scoring scales with the cluster.

Predictions table (:data:`fraud_mlops.platform.config.PREDICTIONS`), one row per transaction:

==================  =========  ==============================================================
column              type       meaning
==================  =========  ==============================================================
transaction_id      bigint     key, from gold
tx_date             date       transaction day, from gold
customer_id         bigint     card / customer id, from gold
score               double     fraud probability in [0, 1] (unitless)
model_name          string     registered model name
model_version       string     registered model version that produced ``score``
decision            int        1 when ``score >= decision_threshold`` (flag as fraud), else 0
decision_threshold  double     threshold used for ``decision``, in [0, 1]
daily_rank          int        rank of the transaction's score among its day's (1 = highest;
                               ties by ``transaction_id``)
card_daily_rank     int        rank of the card among the day's cards by its highest score that
                               day (1 = most suspicious card; ties by ``customer_id``)
alert_budget        int        cards investigators review per day (the model version's budget)
within_budget       int        1 when ``card_daily_rank <= alert_budget``, else 0
reason_<i>          string     for flagged rows (``decision = 1``), the feature with the i-th
                               largest contribution to the score (i = 1..3); null otherwise
reason_<i>_         double     that feature's contribution to the log-odds of fraud (TreeSHAP
contribution                   for XGBoost, coefficient x standardised value for the logistic
                               regression; see :mod:`fraud_mlops.lifecycle.explain`)
scored_at           timestamp  UTC time of the scoring run
==================  =========  ==============================================================

The decision threshold and the alert budget are those recorded on the champion version by training
(tags ``decision_threshold`` and ``alert_budget``; :func:`fraud_mlops.lifecycle.gate.run_training`),
unless the job overrides them. Ranks are computed per scored day, so a run always scores whole days.

Shadow mode: when the registry also has a ``challenger`` version (another version than the
champion), the same transactions are scored by it into :data:`fraud_mlops.platform.config.PREDICTIONS_SHADOW`
(same columns, with the challenger's own threshold). Nothing downstream reads that table except
monitoring and the validation gate, which compare both models on the same labelled days.

Writes are a Delta MERGE on ``transaction_id`` that only touches rows whose model, threshold or score
changed (see :data:`UPDATE_CONDITION`), so re-running a range with the same champion is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_mlops.lifecycle.explain import DEFAULT_REASON_CODES, reason_columns
from fraud_mlops.lifecycle.registry import (  # noqa: F401 (re-exported: they were scoring's names)
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    FALLBACK_THRESHOLD,
    ChampionNotFoundError,
    ModelLoadError,
    _check_threshold,
    challenger_version,
    champion_uri,
    champion_version,
    decision_for,
    load_pyfunc,
    version_decision,
)
from fraud_mlops.lifecycle.thresholds import DEFAULT_ALERT_BUDGET
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.platform.config import GOLD_FEATURES, PREDICTIONS, PREDICTIONS_SHADOW
from fraud_mlops.platform.lakehouse import Lakehouse

log = logging.getLogger("fraud_mlops.lifecycle.scoring")

#: Columns of the predictions table, in order, with their Spark SQL types.
PREDICTION_COLUMNS: dict[str, str] = {
    "transaction_id": "bigint",
    "tx_date": "date",
    "customer_id": "bigint",
    "score": "double",
    "model_name": "string",
    "model_version": "string",
    "decision": "int",
    "decision_threshold": "double",
    "daily_rank": "int",
    "card_daily_rank": "int",
    "alert_budget": "int",
    "within_budget": "int",
    "reason_1": "string",
    "reason_1_contribution": "double",
    "reason_2": "string",
    "reason_2_contribution": "double",
    "reason_3": "string",
    "reason_3_contribution": "double",
    "scored_at": "timestamp",
}

#: MERGE update predicate over ``t`` (predictions) and ``s`` (new scores): a matched row is rewritten
#: only when another model or version scored it, the decision threshold changed, or the score moved by
#: more than 1e-9 (the gold features were rebuilt). Re-scoring with the same champion, threshold and
#: features therefore rewrites nothing, and ``scored_at`` keeps the time of the first scoring.
UPDATE_CONDITION = (
    "t.model_name <> s.model_name"
    " OR t.model_version <> s.model_version"
    " OR t.decision_threshold <> s.decision_threshold"
    " OR t.alert_budget <> s.alert_budget"
    " OR abs(t.score - s.score) > 1e-9"
)


def _utc(ts: dt.datetime | None) -> dt.datetime:
    if ts is None:
        return dt.datetime.now(dt.UTC)
    if ts.tzinfo is None:  # naive: taken as UTC wall time
        return ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)


def _reason_fields(k: int = DEFAULT_REASON_CODES) -> list[T.StructField]:
    return [T.StructField(c, T.DoubleType() if c.endswith("_contribution") else T.StringType())
            for c in reason_columns(k)]


def add_reason_codes(df: DataFrame, model: Any, k: int = DEFAULT_REASON_CODES) -> DataFrame:
    """Add the reason codes of the flagged rows (``decision = 1``) and drop the feature columns.

    Args:
        df: scored rows with ``decision`` (int) and every column of :data:`FEATURE_COLUMNS`.
        model: the unwrapped python model (:class:`fraud_mlops.lifecycle.training.FraudProbabilityModel`),
            whose ``reason_codes(frame, k)`` gives the top contributions; a model without that method
            (logged before reason codes existed) leaves them null.

    Returns:
        ``df`` without the feature columns, plus ``reason_1`` (string), ``reason_1_contribution``
        (double, log-odds), ... ``reason_k_contribution``: null on rows with ``decision = 0``.
    """
    features = list(FEATURE_COLUMNS)
    kept = [f for f in df.schema.fields if f.name not in set(features)]
    schema = T.StructType(kept + _reason_fields(k))
    names = [f.name for f in schema.fields]
    explainable = callable(getattr(model, "reason_codes", None))
    if not explainable:
        log.warning("the model has no reason_codes method (logged by an older version): reason codes stay null")

    def explain(batches):
        import pandas as pd

        for pdf in batches:
            out = pdf[[f.name for f in kept]].copy()
            for i in range(1, k + 1):
                out[f"reason_{i}"] = pd.Series([None] * len(pdf), index=pdf.index, dtype="object")
                out[f"reason_{i}_contribution"] = pd.Series(float("nan"), index=pdf.index, dtype="float64")
            flagged = pdf["decision"] == 1
            if explainable and flagged.any():
                codes = model.reason_codes(pdf.loc[flagged, features], k)
                for column in codes.columns:
                    out.loc[flagged, column] = codes[column].to_numpy()
            yield out[names]

    return df.mapInPandas(explain, schema)


def score_transactions(
    spark: SparkSession,
    gold: DataFrame,
    model_uri: str,
    model_name: str,
    model_version: str,
    threshold: float,
    scored_at: dt.datetime | None = None,
    alert_budget: int = DEFAULT_ALERT_BUDGET,
    explain_model: Any = None,
) -> DataFrame:
    """Score gold rows with an MLflow pyfunc model and shape them as predictions rows.

    The model is applied with ``mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local",
    result_type="double")`` on one struct column of :data:`FEATURE_COLUMNS`, so the model receives a
    pandas DataFrame whose columns carry the feature names (not positional names). Ranks are computed
    per ``tx_date`` over the rows given (pass whole days). Reason codes of the flagged rows come from
    ``explain_model`` (:func:`add_reason_codes`); the python model behind ``model_uri`` when None. The
    result is lazy: every action re-runs the model, so cache it when it is used more than once.

    Args:
        spark: the Spark session.
        gold: rows of ``gold_transaction_features``; needs ``transaction_id`` bigint, ``tx_date`` date,
            ``customer_id`` bigint and every column of :data:`FEATURE_COLUMNS` (numeric, may be null).
        model_uri: any MLflow model URI (``models:/<name>/<version>``, ``models:/<name>@champion``,
            ``runs:/...``).
        model_name: registered model name, written to ``model_name``.
        model_version: registered model version, written to ``model_version``.
        threshold: decision threshold in [0, 1] on the fraud probability; ``decision`` is 1 when
            ``score >= threshold``.
        scored_at: time of the scoring run (naive values are taken as UTC); now (UTC) when None.
        alert_budget: cards investigators review per day (>= 1): ``within_budget`` marks the rows of
            the day's ``alert_budget`` highest-ranked cards.
        explain_model: the python model for reason codes (see above).

    Returns:
        A DataFrame with the columns of :data:`PREDICTION_COLUMNS` (see the module docstring), in that
        order and with those types.

    Raises:
        ValueError: ``threshold`` is outside [0, 1], ``alert_budget < 1`` or ``gold`` lacks a required column.
        ModelLoadError: the model cannot be loaded.
    """
    import mlflow.pyfunc

    threshold = _check_threshold(threshold)
    if int(alert_budget) < 1:
        raise ValueError(f"alert_budget must be >= 1 card per day, got {alert_budget}")
    required = ["transaction_id", "tx_date", "customer_id", *FEATURE_COLUMNS]
    missing = [c for c in required if c not in gold.columns]
    if missing:
        raise ValueError(f"gold rows lack column(s) {missing} needed for scoring")
    try:
        predict = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local", result_type="double")
    except Exception as exc:  # the artifact is loaded here, before any row is scored or written
        raise ModelLoadError(f"cannot load model {model_uri} for scoring: {type(exc).__name__}: {exc}") from exc
    if explain_model is None:
        explain_model = load_pyfunc(model_uri).unwrap_python_model()
    features = F.struct(*[F.col(c) for c in FEATURE_COLUMNS])
    when = _utc(scored_at)
    scored = gold.select(
        F.col("transaction_id").cast("bigint").alias("transaction_id"),
        F.col("tx_date").cast("date").alias("tx_date"),
        F.col("customer_id").cast("bigint").alias("customer_id"),
        *[F.col(c) for c in FEATURE_COLUMNS],
        predict(features).cast("double").alias("score"),
    )
    by_day = Window.partitionBy("tx_date")
    card_score = F.max("score").over(Window.partitionBy("tx_date", "customer_id"))
    ranked = (
        scored.withColumn("_card_score", card_score)
        .withColumns({
            "decision": F.when(F.col("score") >= F.lit(threshold), F.lit(1)).otherwise(F.lit(0)).cast("int"),
            "daily_rank": F.row_number().over(by_day.orderBy(F.col("score").desc(), "transaction_id")).cast("int"),
            "card_daily_rank": F.dense_rank()
            .over(by_day.orderBy(F.col("_card_score").desc(), "customer_id"))
            .cast("int"),
        })
        .withColumn("within_budget", (F.col("card_daily_rank") <= F.lit(int(alert_budget))).cast("int"))
        .drop("_card_score")
    )
    explained = add_reason_codes(ranked, explain_model)
    return explained.select(
        "transaction_id",
        "tx_date",
        "customer_id",
        "score",
        F.lit(str(model_name)).cast("string").alias("model_name"),
        F.lit(str(model_version)).cast("string").alias("model_version"),
        "decision",
        F.lit(threshold).cast("double").alias("decision_threshold"),
        "daily_rank",
        "card_daily_rank",
        F.lit(int(alert_budget)).cast("int").alias("alert_budget"),
        "within_budget",
        *[f.name for f in _reason_fields()],
        F.lit(when).cast(T.TimestampType()).alias("scored_at"),
    )


def _latest_date(df: DataFrame) -> dt.date | None:
    row = df.agg(F.max("tx_date").alias("d")).first()
    return None if row is None else row["d"]


def default_range(lakehouse: Lakehouse, gold: DataFrame | None = None) -> tuple[dt.date, dt.date] | None:
    """The range :func:`run_batch_scoring` scores when neither ``score_start`` nor ``score_end`` is given.

    ``end`` is the latest ``tx_date`` in gold. ``start`` is the day after the latest ``tx_date`` already
    in :data:`~fraud_mlops.platform.config.PREDICTIONS` (rows of any model name or version), so days missed by a
    failed or late run are caught up; when the predictions table does not exist or is empty, ``start =
    end`` (the latest gold day only). ``start > end`` means everything is already scored.

    Args:
        lakehouse: the target's tables.
        gold: the gold table as read by the caller (read here when None).

    Returns:
        ``(start, end)`` (``datetime.date``, inclusive; possibly ``start > end``), or None when gold has
        no rows.
    """
    gold = lakehouse.read(GOLD_FEATURES) if gold is None else gold
    end = _latest_date(gold)
    if end is None:
        return None
    last_scored = _latest_date(lakehouse.read(PREDICTIONS)) if lakehouse.exists(PREDICTIONS) else None
    start = end if last_scored is None else last_scored + dt.timedelta(days=1)
    return start, end


def _resolve_range(
    lakehouse: Lakehouse, gold: DataFrame, score_start: dt.date | None, score_end: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    if score_start is None and score_end is None:
        return default_range(lakehouse, gold)
    start = score_start if score_start is not None else score_end
    end = score_end if score_end is not None else score_start
    assert start is not None and end is not None
    if start > end:
        raise ValueError(f"score_start {start} is after score_end {end}")
    return start, end


def _merge_predictions(lakehouse: Lakehouse, table: str, scored: DataFrame, start: dt.date, end: dt.date) -> dict[str, int]:
    """Merge scored rows into ``table`` on ``transaction_id``, writing only rows that change
    (:data:`UPDATE_CONDITION`); no commit at all when nothing changes."""
    existing = None
    if lakehouse.exists(table):
        existing = (
            lakehouse.read(table)
            .filter(F.col("tx_date").between(F.lit(start), F.lit(end)))
            .select("transaction_id", "model_name", "model_version", "decision_threshold", "alert_budget", "score")
        )
    return lakehouse.merge_changes(table, scored, existing, "transaction_id", UPDATE_CONDITION)


def _score_into(lakehouse: Lakehouse, table: str, gold: DataFrame, model_name: str, version: str, threshold: float,
                alert_budget: int, scored_at: dt.datetime | None, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Score ``gold`` with ``version`` and merge it into ``table``; the counts and what was used."""
    model_uri = f"models:/{model_name}/{version}"
    scored = score_transactions(lakehouse.spark, gold, model_uri, model_name, version, threshold, scored_at,
                                alert_budget=alert_budget).cache()
    try:
        stats = scored.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(
                F.when(F.col("score").isNull() | (F.col("score") < 0) | (F.col("score") > 1), 1).otherwise(0)
            ).alias("bad"),
            F.sum("decision").alias("flagged"),
            F.countDistinct(F.when(F.col("decision") == 1, F.struct("tx_date", "customer_id"))).alias("alerts"),
            F.countDistinct("tx_date").alias("days"),
        ).first()
        out: dict[str, Any] = {"rows_scored": int(stats["n"]), "inserted": 0, "updated": 0,
                               "flagged": int(stats["flagged"] or 0), "card_alerts": int(stats["alerts"] or 0),
                               "days": int(stats["days"] or 0)}
        if out["rows_scored"] == 0:
            return out
        if int(stats["bad"] or 0):
            raise ValueError(
                f"model {model_uri} returned {int(stats['bad'])} null score(s) or score(s) outside [0, 1]; "
                "it must return one fraud probability per row"
            )
        out.update(_merge_predictions(lakehouse, table, scored, start, end))
        return out
    finally:
        scored.unpersist()


def run_batch_scoring(
    lakehouse: Lakehouse,
    model_name: str,
    score_start: dt.date | None = None,
    score_end: dt.date | None = None,
    threshold: float | None = None,
    scored_at: dt.datetime | None = None,
    alert_budget: int | None = None,
    shadow: bool = True,
) -> dict[str, Any]:
    """Score the gold transactions of a date range with the champion (and the challenger, in shadow).

    Range: gold rows with ``score_start <= tx_date <= score_end`` (inclusive, calendar days of
    ``tx_date``). When only one of the two is given the range is that single day. When both are None
    (the daily job's default) the range is computed by :func:`default_range` so that a day missed by
    a failed or late run is still scored by the next one:

    * from the day after the latest ``tx_date`` already in ``predictions`` (any model name or version)
      to the latest ``tx_date`` in gold;
    * the latest gold day only when the predictions table does not exist or is empty;
    * nothing when every gold day is already scored (that start would be after the latest gold day):
      the run then loads no model, writes nothing and returns zero counts with ``score_start`` and
      ``score_end`` set to None, as when gold is empty.

    Days before the latest scored day are never revisited by the default range (pass explicit dates
    to re-score or back-fill them).

    The champion alias is resolved once (:func:`champion_version`) and the pinned version
    ``models:/<name>/<version>`` is loaded. Its decision threshold and alert budget are the version's
    tags (:func:`version_decision`) unless ``threshold`` / ``alert_budget`` are given; a version
    without a ``decision_threshold`` tag falls back to 0.5 (``threshold_source`` says so). Scores are
    validated (no nulls, all in [0, 1]) and then merged into
    :data:`~fraud_mlops.platform.config.PREDICTIONS` on ``transaction_id``: new transactions are
    inserted, existing ones are rewritten only when :data:`UPDATE_CONDITION` holds (other model or
    version, other threshold or budget, or a changed score). When nothing changes no merge is
    committed at all, so re-running a range with the same champion leaves the table (contents and
    Delta version) untouched.

    Shadow mode (``shadow``, default True): when a ``challenger`` version exists and differs from the
    champion, the same rows are scored by it with its own recorded threshold and merged the same way
    into :data:`~fraud_mlops.platform.config.PREDICTIONS_SHADOW`; ``predictions`` is never touched by it.

    Args:
        lakehouse: the target's tables; reads ``gold_transaction_features``, writes ``predictions``
            (and ``predictions_shadow``).
        model_name: registered model name (``catalog.schema.model`` in Unity Catalog).
        score_start: first ``tx_date`` to score (inclusive), or None (see above).
        score_end: last ``tx_date`` to score (inclusive), or None (see above).
        threshold: decision threshold in [0, 1] overriding the champion's, or None.
        scored_at: time recorded in ``scored_at`` (UTC; now when None).
        alert_budget: cards per day (>= 1) overriding the champion's, or None.
        shadow: score the challenger in shadow mode.

    Returns:
        A JSON-serialisable dict: ``rows_scored`` (gold rows scored), ``inserted``, ``updated``,
        ``unchanged`` (rows already up to date), ``flagged`` (rows with decision 1), ``card_alerts``
        (distinct (day, card) pairs flagged), ``alerts_per_day`` (``card_alerts`` / days scored),
        ``score_start`` and ``score_end`` (ISO dates of the range actually scored; both None when
        nothing was to be scored), ``model_name``, ``model_version``, ``model_uri`` (the pinned version
        URI), ``decision_threshold``, ``alert_budget``, ``threshold_source``, ``predictions_table``
        (full name), ``predictions_version`` (Delta version after the run, None if never written) and
        ``shadow`` (None, or the same counts for the challenger plus ``predictions_table``).

    Raises:
        ChampionNotFoundError: no ``champion`` alias on ``model_name``.
        fraud_mlops.platform.lakehouse.TableNotFoundError: the gold table does not exist.
        ValueError: ``score_start > score_end``, a threshold outside [0, 1], a budget < 1, explicit
            dates with no gold rows between them, or the model returned a null score or one outside [0, 1].
        ModelLoadError: the champion (or challenger) version's artifact cannot be loaded.
    """
    if threshold is not None:
        threshold = _check_threshold(threshold)
    if alert_budget is not None and int(alert_budget) < 1:
        raise ValueError(f"alert_budget must be >= 1 card per day, got {alert_budget}")
    version = champion_version(model_name)
    model_uri = f"models:/{model_name}/{version}"
    used_threshold, budget, source = decision_for(model_name, version, threshold, alert_budget)
    gold_all = lakehouse.read(GOLD_FEATURES)
    rng = _resolve_range(lakehouse, gold_all, score_start, score_end)
    result: dict[str, Any] = {
        "rows_scored": 0,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "flagged": 0,
        "card_alerts": 0,
        "alerts_per_day": None,
        "score_start": None,
        "score_end": None,
        "model_name": model_name,
        "model_version": version,
        "model_uri": model_uri,
        "decision_threshold": used_threshold,
        "alert_budget": budget,
        "threshold_source": source,
        "predictions_table": lakehouse.ref(PREDICTIONS).full_name,
        "predictions_version": lakehouse.version(PREDICTIONS),
        "shadow": None,
    }
    if rng is None:
        log.warning("gold table is empty: nothing to score")
        return result
    start, end = rng
    if start > end:  # default range, every gold day already scored
        log.info("predictions are up to date with gold (latest gold day %s): nothing to score", end)
        return result
    result["score_start"], result["score_end"] = start.isoformat(), end.isoformat()
    gold = gold_all.filter(F.col("tx_date").between(F.lit(start), F.lit(end)))
    counts = _score_into(lakehouse, PREDICTIONS, gold, model_name, version, used_threshold, budget, scored_at,
                         start, end)
    if counts["rows_scored"] == 0:
        if score_start is not None or score_end is not None:  # asked for by the caller: an error
            raise ValueError(
                f"no gold rows with tx_date in [{start}, {end}] (score_start/score_end) in "
                f"{lakehouse.ref(GOLD_FEATURES).full_name}: nothing to score; check the dates"
            )
        log.warning("no gold rows with tx_date in [%s, %s]: nothing to score", start, end)
        return result
    days = counts.pop("days")
    result.update(counts)
    result["alerts_per_day"] = round(counts["card_alerts"] / days, 2) if days else None
    result["unchanged"] = result["rows_scored"] - result["inserted"] - result["updated"]
    result["predictions_version"] = lakehouse.version(PREDICTIONS)

    challenger = challenger_version(model_name) if shadow else None
    if challenger is not None and challenger != version:
        shadow_threshold, shadow_budget, shadow_source = decision_for(model_name, challenger, None, budget)
        shadow_counts = _score_into(lakehouse, PREDICTIONS_SHADOW, gold, model_name, challenger, shadow_threshold,
                                    shadow_budget, scored_at, start, end)
        shadow_days = shadow_counts.pop("days")
        result["shadow"] = {
            **shadow_counts,
            "alerts_per_day": round(shadow_counts["card_alerts"] / shadow_days, 2) if shadow_days else None,
            "model_version": challenger,
            "decision_threshold": shadow_threshold,
            "threshold_source": shadow_source,
            "predictions_table": lakehouse.ref(PREDICTIONS_SHADOW).full_name,
            "predictions_version": lakehouse.version(PREDICTIONS_SHADOW),
        }
    return result
