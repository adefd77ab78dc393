"""Model training: the Handbook's time split, the two estimators, the pyfunc model, MLflow logging.

The protocol is the one of the Fraud Detection Handbook (Le Borgne et al., *Reproducible Machine
Learning for Credit Card Fraud Detection - Practical Handbook*, chapter 3 "Baseline fraud detection
system", ``get_train_test_set``,
https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineModeling.html):
a training window, then a *delay period* during which the labels of the newest transactions are not
known yet (frauds are reported with a delay), then the test days. A card known to be compromised is
blocked, so its later transactions are not scored and leave the test set.

Only :data:`fraud_mlops.medallion.schema.FEATURE_COLUMNS` ever reach an estimator; the leaking
``tx_fraud_scenario`` column is rejected wherever a feature matrix is built.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pandas as pd

from fraud_mlops.lifecycle import explain
from fraud_mlops.lifecycle.explain import (
    DEFAULT_REASON_CODES,
    feature_contributions,
    mean_absolute_contributions,
    top_reasons,
)
from fraud_mlops.lifecycle.metrics import card_precision_top_k, evaluate_scores
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, LABEL_COLUMN, LEAKING_COLUMNS

log = logging.getLogger("fraud_mlops")

#: Model types this module trains.
XGBOOST = "xgboost"
LOGISTIC_REGRESSION = "logistic_regression"
MODEL_TYPES: tuple[str, ...] = (XGBOOST, LOGISTIC_REGRESSION)

#: Day and card columns of the gold table used by the split and the card metrics.
DAY_COLUMN = "tx_date"
CARD_COLUMN = "customer_id"

#: Run parameters that define the split; validation and monitoring re-derive windows from them.
WINDOW_PARAMS: tuple[str, ...] = ("train_start", "train_end", "delay_days", "test_days")

#: Name of the logged model inside a run (``runs:/<run_id>/model``).
MODEL_ARTIFACT_NAME = "model"

#: Environment variable that, when set, gives the commit to record (e.g. ``${bundle.git.commit}``).
GIT_COMMIT_ENV = "FRAUD_MLOPS_GIT_COMMIT"

#: XGBoost defaults; ``seed`` maps to ``random_state``.
XGB_DEFAULT_PARAMS: dict[str, Any] = {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.1, "seed": 0}
#: Further XGBoost parameters a caller may set.
XGB_OPTIONAL_PARAMS: frozenset[str] = frozenset(
    {
        "n_jobs",
        "subsample",
        "colsample_bytree",
        "min_child_weight",
        "scale_pos_weight",
        "reg_lambda",
        "reg_alpha",
        "gamma",
        "max_bin",
    }
)
#: Logistic-regression baseline defaults; ``seed`` maps to ``random_state``.
LR_DEFAULT_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 1000, "seed": 0}
LR_OPTIONAL_PARAMS: frozenset[str] = frozenset({"class_weight", "tol"})


# ---------------------------------------------------------------------------------------- the split
def as_date(value: dt.date | str, name: str = "date") -> dt.date:
    """A date from a date, a datetime (its date) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not a date YYYY-MM-DD") from exc


def _check_window(train_start: dt.date, train_end: dt.date, delay_days: int, test_days: int) -> None:
    if train_end < train_start:
        raise ValueError(f"train_end {train_end} is before train_start {train_start}")
    if int(delay_days) < 0:
        raise ValueError(f"delay_days must be >= 0, got {delay_days}")
    if int(test_days) < 1:
        raise ValueError(f"test_days must be >= 1, got {test_days}")


def evaluation_window(train_end: dt.date, delay_days: int = 7, test_days: int = 7) -> tuple[dt.date, dt.date]:
    """First and last test day: ``train_end + delay_days + 1`` and ``train_end + delay_days + test_days``."""
    train_end = as_date(train_end, "train_end")
    first = train_end + dt.timedelta(days=int(delay_days) + 1)
    return first, first + dt.timedelta(days=int(test_days) - 1)


def required_date_range(
    train_start: dt.date,
    train_end: dt.date,
    delay_days: int = 7,
    test_days: int = 7,
    known_compromised_days: int | None = None,
) -> tuple[dt.date, dt.date]:
    """The ``tx_date`` range of gold that :func:`time_split` reads: train start to last test day.

    Days before ``train_start`` are never used (as in the Handbook, cards compromised before the
    training window are not treated as known), so the split depends only on this range, whatever
    ``known_compromised_days`` (accepted so that a run's window parameters can be passed whole).
    """
    del known_compromised_days
    train_start = as_date(train_start, "train_start")
    train_end = as_date(train_end, "train_end")
    _check_window(train_start, train_end, delay_days, test_days)
    return train_start, evaluation_window(train_end, delay_days, test_days)[1]


#: Days of history a model trains on when the window is not given in full (the Handbook's one week).
DEFAULT_TRAIN_DAYS = 7


def resolve_training_window(
    train_start: dt.date | None,
    train_end: dt.date | None,
    train_days: int = DEFAULT_TRAIN_DAYS,
    *,
    latest_gold_day: dt.date | None = None,
    delay_days: int = 7,
    test_days: int = 7,
) -> tuple[dt.date, dt.date]:
    """The training window ``(train_start, train_end)`` from any subset of its parameters.

    * both dates given: that window (``train_days`` is not used);
    * ``train_end`` only: the ``train_days`` days ending on it;
    * ``train_start`` only: the ``train_days`` days starting on it;
    * neither: the latest window whose test days are all in gold, ``train_end = latest_gold_day -
      delay_days - test_days``, and the ``train_days`` days ending there.

    Args:
        train_days: length of the window in days (>= 1) when it is not given by both dates.
        latest_gold_day: the last ``tx_date`` in gold; needed only when neither date is given.

    Raises:
        ValueError: ``train_days < 1``, ``train_start`` after ``train_end``, or neither date and no
            ``latest_gold_day``.
    """
    if int(train_days) < 1:
        raise ValueError(f"train_days must be >= 1, got {train_days}")
    span = dt.timedelta(days=int(train_days) - 1)
    if train_start is None and train_end is None:
        if latest_gold_day is None:
            raise ValueError("neither train_start nor train_end is given, and gold has no day to count back from")
        train_end = latest_gold_day - dt.timedelta(days=int(delay_days) + int(test_days))
    if train_start is None:
        assert train_end is not None
        train_start = train_end - span
    if train_end is None:
        train_end = train_start + span
    if train_start > train_end:
        raise ValueError(f"train_start {train_start} is after train_end {train_end}")
    return train_start, train_end


def _day_values(series: pd.Series) -> pd.Series:
    """``tx_date`` as midnight timestamps, whether it holds dates, timestamps or ISO strings."""
    days = pd.to_datetime(series)
    if getattr(days.dt, "tz", None) is not None:
        days = days.dt.tz_localize(None)
    return days.dt.normalize()


def time_split(
    gold: pd.DataFrame,
    train_start: dt.date,
    train_end: dt.date,
    delay_days: int = 7,
    test_days: int = 7,
    *,
    day_col: str = DAY_COLUMN,
    card_col: str = CARD_COLUMN,
    label_col: str = LABEL_COLUMN,
    known_compromised_days: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split gold transactions into a training set and a delayed test set (Handbook protocol).

    * train: the transactions with ``train_start <= tx_date <= train_end``;
    * test: the days ``d = train_end + delay_days + 1 ... train_end + delay_days + test_days``. On
      day ``d`` the fraud labels known are those of the last ``known_compromised_days`` days of the
      training window (all of it when None) and of the days up to ``d - delay_days - 1``; the cards
      with such a known fraud are blocked, so their transactions of day ``d`` are dropped from the
      test set (Handbook ch. 3, ``get_train_test_set``, whose training window is one week).

    ``known_compromised_days`` keeps the test set the same whatever the length of the training
    window: with 8 weeks of history, blocking every card that was ever compromised in those 8 weeks
    would remove most compromised cards from the test days and cap card precision. The training
    job passes 7 (the Handbook's week); with a 7-day window that is the Handbook's split exactly.

    Only rows from ``train_start`` onward are used, so the result depends only on gold within
    :func:`required_date_range`. Both frames keep all columns of ``gold`` (with a fresh index) and
    are in ``transaction_id`` order when that column exists, so a model trained on them does not
    depend on the order in which the table's files happened to be read.

    Raises:
        ValueError: a bad window, a missing column, or an empty training or test set.
    """
    train_start = as_date(train_start, "train_start")
    train_end = as_date(train_end, "train_end")
    _check_window(train_start, train_end, delay_days, test_days)
    if known_compromised_days is not None and int(known_compromised_days) < 1:
        raise ValueError(f"known_compromised_days must be >= 1 or None, got {known_compromised_days}")
    missing = [c for c in (day_col, card_col, label_col) if c not in gold.columns]
    if missing:
        raise ValueError(f"gold frame lacks column(s) {missing}")
    if "transaction_id" in gold.columns:
        gold = gold.sort_values("transaction_id", kind="stable").reset_index(drop=True)

    days = _day_values(gold[day_col])
    is_fraud = gold[label_col].fillna(0).astype(int) == 1
    train_mask = (days >= pd.Timestamp(train_start)) & (days <= pd.Timestamp(train_end))
    train_df = gold.loc[train_mask]
    if train_df.empty:
        raise ValueError(
            f"training set is empty: gold has no transaction with {day_col} in [{train_start}, {train_end}]"
        )

    known_mask = train_mask
    if known_compromised_days is not None:
        known_from = train_end - dt.timedelta(days=int(known_compromised_days) - 1)
        known_mask = train_mask & (days >= pd.Timestamp(known_from))
    known_compromised = set(gold.loc[known_mask & is_fraud, card_col].tolist())
    first_test, last_test = evaluation_window(train_end, delay_days, test_days)
    parts = []
    n_blocked = 0
    for i in range(int(test_days)):
        day = first_test + dt.timedelta(days=i)
        # Labels of day - delay_days - 1 = train_end + i become known on `day`.
        feedback_day = day - dt.timedelta(days=int(delay_days) + 1)
        if feedback_day > train_end:
            fed_back = (days == pd.Timestamp(feedback_day)) & is_fraud
            known_compromised.update(gold.loc[fed_back, card_col].tolist())
        on_day = days == pd.Timestamp(day)
        blocked = gold[card_col].isin(known_compromised)
        n_blocked += int((on_day & blocked).sum())
        parts.append(gold.loc[on_day & ~blocked])
    test_df = pd.concat(parts) if parts else gold.iloc[0:0]
    if test_df.empty:
        raise ValueError(
            f"test set is empty: gold has no transaction of a card not known compromised on the test days "
            f"[{first_test}, {last_test}] ({n_blocked} transaction(s) of known compromised cards dropped); "
            f"gold must cover {day_col} up to {last_test}"
        )
    return train_df.reset_index(drop=True), test_df.reset_index(drop=True)


class TrainingDataError(ValueError):
    """The gold rows of a training window cannot train and test a model (no rows, one class only)."""


def check_training_data(
    gold: pd.DataFrame,
    train_start: dt.date,
    train_end: dt.date,
    delay_days: int = 7,
    test_days: int = 7,
    *,
    table: str = "gold",
    label_col: str = LABEL_COLUMN,
    known_compromised_days: int | None = None,
) -> tuple[int, int]:
    """Check, before anything is trained or logged, that a window can train and test a model.

    The training set (:func:`time_split`) must hold both classes of ``label_col`` (a model cannot
    learn from legitimate transactions alone), and the test set at least one fraud (average
    precision and card precision are undefined without one).

    Args:
        gold: gold rows covering :func:`required_date_range` (``tx_date``, ``customer_id``, the label).
        table: the table's name, for messages.

    Returns:
        ``(n_train, n_test)``: the number of training and test transactions.

    Raises:
        TrainingDataError: an empty training or test set, no fraud or no legitimate transaction in
            the training window, or no fraud in the test window; the message names the window, the
            table and what it holds.
    """
    try:
        train_df, test_df = time_split(gold, train_start, train_end, delay_days, test_days, label_col=label_col,
                                       known_compromised_days=known_compromised_days)
    except ValueError as exc:
        covered = ""
        if not gold.empty and DAY_COLUMN in gold.columns:
            days = _day_values(gold[DAY_COLUMN])
            covered = f" (the rows read cover {days.min().date()}..{days.max().date()})"
        elif gold.empty:
            covered = " (no row of the table falls in the window)"
        raise TrainingDataError(f"{table}: {exc}{covered}") from exc
    train_frauds = int((train_df[label_col].fillna(0).astype(int) == 1).sum())
    if train_frauds == 0 or train_frauds == len(train_df):
        which = "fraud" if train_frauds == 0 else "legitimate transaction"
        raise TrainingDataError(
            f"{table}: the training window {train_start}..{train_end} has {len(train_df)} transactions and no "
            f"{which} ({label_col}): a model cannot learn from one class; choose another window")
    if int((test_df[label_col].fillna(0).astype(int) == 1).sum()) == 0:
        first, last = evaluation_window(train_end, delay_days, test_days)
        raise TrainingDataError(
            f"{table}: the test window {first}..{last} has {len(test_df)} transactions and no fraud ({label_col}): "
            "average precision and card precision are undefined; choose another window")
    return len(train_df), len(test_df)


# ------------------------------------------------------------------------------------ model input
def _assert_no_leak(columns: list[str] | tuple[str, ...] | pd.Index) -> None:
    leaked = sorted(set(columns) & set(LEAKING_COLUMNS))
    if leaked:
        raise ValueError(f"leaking column(s) {leaked} must never be model inputs")


def model_input(df: pd.DataFrame) -> pd.DataFrame:
    """The pyfunc model's input: exactly :data:`FEATURE_COLUMNS`, in order, with the frame's dtypes.

    Every other column of ``df`` (keys, label, ``tx_fraud_scenario``) is left out. The dtypes are
    kept, so that a gold frame (``toPandas()``: bigint counts as int64, int flags as int32, doubles
    as float64) matches the logged signature, which is inferred from the gold training rows.

    Raises:
        ValueError: a feature column is missing.
    """
    _assert_no_leak(FEATURE_COLUMNS)
    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"frame lacks feature column(s) {missing}")
    selected = df.loc[:, list(FEATURE_COLUMNS)]
    _assert_no_leak(selected.columns)
    return selected


def feature_matrix(df: pd.DataFrame, feature_columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The estimator's input: :func:`model_input` cast to float64 (nulls become NaN).

    ``feature_columns`` (a subset of :data:`FEATURE_COLUMNS`, for an ablation) selects fewer columns.

    Raises:
        ValueError: a feature column is missing, or ``feature_columns`` names a non-feature.
    """
    selected = model_input(df)
    if feature_columns is not None:
        unknown = [c for c in feature_columns if c not in FEATURE_COLUMNS]
        if unknown:
            raise ValueError(f"{unknown} are not feature columns")
        selected = selected.loc[:, list(feature_columns)]
    return selected.astype("float64")


def _labels(df: pd.DataFrame) -> pd.Series:
    if LABEL_COLUMN not in df.columns:
        raise ValueError(f"frame lacks the label column {LABEL_COLUMN!r}")
    labels = df[LABEL_COLUMN]
    if labels.isna().any():
        raise ValueError(f"label column {LABEL_COLUMN!r} holds nulls")
    return labels.astype(int)


class FraudProbabilityModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper returning the fraud probability of each transaction.

    ``predict(context, model_input)`` selects :attr:`feature_columns` (by name, in order) from a
    pandas DataFrame, casts them to float64 and returns ``predict_proba(X)[:, 1]`` as a 1-D float64
    array: a probability in [0, 1], never a 0/1 label. Extra input columns are ignored.

    The logged signature takes the feature types of the gold training rows (counts ``long``, flags
    ``integer``, the rest ``double``), so gold rows are scored as they are: with
    ``mlflow.pyfunc.spark_udf(spark, uri, env_manager="local", result_type="double")`` applied to
    ``F.struct(*FEATURE_COLUMNS)``, or ``predict(model_input(gold_pdf))`` in pandas. MLflow's schema
    enforcement refuses lossy conversions (e.g. ``double`` into a ``long`` column, ``bigint`` into
    a ``double`` column), so do not cast the features before scoring.
    """

    def __init__(
        self,
        estimator: Any,
        feature_columns: tuple[str, ...] = FEATURE_COLUMNS,
        model_type: str | None = None,
    ):
        leaked = sorted(set(feature_columns) & set(LEAKING_COLUMNS))
        if leaked:
            raise ValueError(f"leaking column(s) {leaked} must never be model inputs")
        self.estimator = estimator
        self.feature_columns = tuple(feature_columns)
        self.model_type = model_type

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature column(s) {missing}")
        features = frame.loc[:, list(self.feature_columns)].astype("float64")
        proba = self.estimator.predict_proba(features)[:, 1]
        return np.asarray(proba, dtype="float64")

    def contributions(self, model_input: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions to the margin (log-odds) and the bias of each row, in
        :attr:`feature_columns` order; they add up to ``logit(predict(...))``
        (:func:`fraud_mlops.lifecycle.explain.feature_contributions`)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        features = frame.loc[:, list(self.feature_columns)].astype("float64")
        return feature_contributions(self.estimator, self.model_type, features)

    def reason_codes(self, model_input: pd.DataFrame, k: int = DEFAULT_REASON_CODES) -> pd.DataFrame:
        """The top ``k`` contributions of each row as reason codes (columns ``reason_1``,
        ``reason_1_contribution``, ...; see :func:`fraud_mlops.lifecycle.explain.top_reasons`),
        index aligned with ``model_input``."""
        contributions, _ = self.contributions(model_input)
        reasons = top_reasons(contributions, self.feature_columns, k)
        reasons.index = model_input.index
        return reasons


# ------------------------------------------------------------------------------------- estimators
def _resolve_params(
    defaults: dict[str, Any], optional: frozenset[str], params: dict[str, Any] | None, model_type: str
) -> dict[str, Any]:
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults) - set(optional))
    if unknown:
        raise ValueError(
            f"unknown {model_type} parameter(s) {unknown}; allowed: {sorted(set(defaults) | set(optional))}"
        )
    return {**defaults, **params}


def build_estimator(model_type: str, params: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """An unfitted estimator of ``model_type`` and the full parameter set it uses (for logging).

    * ``xgboost``: ``xgboost.XGBClassifier`` (histogram trees; missing values handled natively);
      parameters ``n_estimators``, ``max_depth``, ``learning_rate``, ``seed`` and
      :data:`XGB_OPTIONAL_PARAMS`.
    * ``logistic_regression``: a scikit-learn ``Pipeline`` of ``SimpleImputer(median)``,
      ``StandardScaler`` and ``LogisticRegression``; parameters ``C``, ``max_iter``, ``seed`` and
      :data:`LR_OPTIONAL_PARAMS`.

    Raises:
        ValueError: unknown model type or parameter.
    """
    if model_type == XGBOOST:
        from xgboost import XGBClassifier

        resolved = _resolve_params(XGB_DEFAULT_PARAMS, XGB_OPTIONAL_PARAMS, params, model_type)
        kwargs = {k: v for k, v in resolved.items() if k != "seed"}
        estimator = XGBClassifier(
            objective="binary:logistic",
            tree_method="hist",
            eval_metric="aucpr",
            random_state=int(resolved["seed"]),
            **kwargs,
        )
        return estimator, resolved
    if model_type == LOGISTIC_REGRESSION:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        resolved = _resolve_params(LR_DEFAULT_PARAMS, LR_OPTIONAL_PARAMS, params, model_type)
        kwargs = {k: v for k, v in resolved.items() if k != "seed"}
        estimator = Pipeline(
            [
                # keep_empty_features: an all-null feature keeps its slot, so coefficients map 1:1.
                ("imputer", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scaler", StandardScaler()),
                ("classifier", LogisticRegression(random_state=int(resolved["seed"]), **kwargs)),
            ]
        )
        return estimator, resolved
    raise ValueError(f"unknown model_type {model_type!r}; expected one of {list(MODEL_TYPES)}")


def fit_estimator(
    model_type: str,
    params: dict[str, Any] | None,
    train_df: pd.DataFrame,
    feature_columns: tuple[str, ...] | None = None,
) -> tuple[Any, dict]:
    """Fit an estimator of ``model_type`` on the features of ``train_df``; return it and its params.

    ``feature_columns`` (default: all of :data:`FEATURE_COLUMNS`) restricts the inputs, for an
    ablation study.

    Raises:
        ValueError: the training set holds a single class, or a feature column is missing.
    """
    estimator, resolved = build_estimator(model_type, params)
    expected = list(FEATURE_COLUMNS if feature_columns is None else feature_columns)
    features = feature_matrix(train_df, tuple(expected))
    labels = _labels(train_df)
    if labels.nunique() < 2:
        raise ValueError(
            f"training set holds a single class ({LABEL_COLUMN}={int(labels.iloc[0])} only): cannot train"
        )
    estimator.fit(features, labels)
    fitted = list(getattr(estimator, "feature_names_in_", []))
    if fitted != expected:
        raise AssertionError(f"estimator was fitted on {fitted}, expected {expected}")
    _assert_no_leak(fitted)
    return estimator, resolved


def feature_importances(estimator: Any, model_type: str) -> pd.DataFrame:
    """``feature``/``importance`` per feature, most important first.

    XGBoost: the booster's ``feature_importances_`` (gain). Logistic regression: the absolute
    coefficients of the standardised features.
    """
    if model_type == XGBOOST:
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif model_type == LOGISTIC_REGRESSION:
        values = np.abs(np.asarray(estimator.named_steps["classifier"].coef_, dtype=float)[0])
    else:
        raise ValueError(f"unknown model_type {model_type!r}")
    table = pd.DataFrame({"feature": list(FEATURE_COLUMNS), "importance": values})
    return table.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)


# ------------------------------------------------------------------------------------ MLflow logging
def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The commit of the code being run, or None when it cannot be known.

    ``$FRAUD_MLOPS_GIT_COMMIT`` wins when set (a Databricks job can pass ``${bundle.git.commit}``);
    otherwise ``git rev-parse HEAD`` in ``cwd`` (the working directory by default). Returns None when
    git is not installed, ``cwd`` is not inside a repository, or git fails.
    """
    from_env = os.environ.get(GIT_COMMIT_ENV, "").strip()
    if from_env:
        return from_env
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", sha):
        return None
    return sha


def model_pip_requirements() -> list[str]:
    """The pinned requirements of the logged pyfunc model (the installed versions)."""
    import sklearn
    import xgboost

    return [
        f"mlflow=={mlflow.__version__}",
        f"xgboost=={xgboost.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
    ]


def _param_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pr_curve_figure(labels: np.ndarray, scores: np.ndarray, title: str):
    from matplotlib.figure import Figure
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores)
    ap = average_precision_score(labels, scores)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.step(recall, precision, where="post", label=f"AP = {ap:.3f}")
    ax.axhline(labels.mean(), color="grey", linestyle="--", label=f"fraud rate = {labels.mean():.3f}")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def _importance_figure(table: pd.DataFrame, title: str, xlabel: str = "importance"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 0.3 * len(table) + 1.5))
    ax = fig.subplots()
    ordered = table.iloc[::-1]
    ax.barh(ordered["feature"], ordered["importance"])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


@dataclass
class TrainResult:
    """Outcome of :func:`train_and_log`.

    Attributes:
        run_id: the MLflow run.
        model_type: ``xgboost`` or ``logistic_regression``.
        metrics: :func:`fraud_mlops.lifecycle.metrics.evaluate_scores` of the test set (unprefixed keys).
        model_uri: the logged model's URI (loadable by ``mlflow.pyfunc.load_model``).
        registered_version: the registry version when registered, else None.
        params: the estimator parameters used.
    """

    run_id: str
    model_type: str
    metrics: dict[str, float]
    model_uri: str
    registered_version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (non-finite metrics become None)."""
        out = asdict(self)
        out["metrics"] = {k: _finite_or_none(v) for k, v in self.metrics.items()}
        return out


def _log_pyfunc(
    model: FraudProbabilityModel,
    signature: Any,
    input_example: pd.DataFrame,
    registered_model_name: str | None,
):
    # Pickle the wrapper class by value: the logged model then loads without this package (model
    # serving, a later wheel version), needing only the pinned requirements.
    modules = [sys.modules[__name__], explain]
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT_NAME,
            python_model=model,
            signature=signature,
            input_example=input_example,
            pip_requirements=model_pip_requirements(),
            registered_model_name=registered_model_name,
        )
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def train_and_log(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    model_type: str,
    params: dict[str, Any] | None = None,
    *,
    model_name: str | None = None,
    run_name: str | None = None,
    extra_params: dict[str, Any] | None = None,
    table_versions: dict[str, int | None] | None = None,
    git_commit: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fit one model, evaluate it on the test set and record everything in one MLflow run.

    The run (in the active experiment, see :func:`fraud_mlops.lifecycle.tracking.configure_mlflow`) holds:

    * params: the estimator parameters, ``model_type``, ``features`` (comma-separated),
      ``n_features``, every ``extra_params`` entry (dates as ISO strings; ``train_start``,
      ``train_end``, ``delay_days`` and ``test_days`` are required), and
      ``table_version.<catalog.schema.table>`` per table read;
    * metrics: ``test_<metric>`` for each :func:`evaluate_scores` key, ``train_n_transactions``,
      ``train_n_frauds`` and the per-day ``test_card_precision_top_100_daily`` (step = test day);
    * tags: ``model_type``, ``git_commit`` (``unknown`` when None), ``table_version.<name>``, ``tags``;
    * artifacts: ``plots/precision_recall_curve.png`` (when the test set has both classes),
      ``feature_importance/feature_importance.csv`` and ``.png``, the mean absolute contribution of
      each feature to the test log-odds (``reason_codes/mean_abs_contribution.csv`` and ``.png``),
      and the pyfunc model ``model``
      with signature, input example and pinned pip requirements, registered as ``model_name``
      when given.

    Raises:
        ValueError: a window parameter is missing from ``extra_params``, a parameter name clashes,
            the training set has a single class, or a feature column is missing.
    """
    extra = dict(extra_params or {})
    missing = [p for p in WINDOW_PARAMS if p not in extra]
    if missing:
        raise ValueError(f"extra_params must give {list(WINDOW_PARAMS)}; missing {missing}")
    if test_df.empty:
        raise ValueError("test set is empty")

    estimator, resolved = fit_estimator(model_type, params, train_df)
    model = FraudProbabilityModel(estimator, model_type=model_type)

    scored = test_df[[DAY_COLUMN, CARD_COLUMN, LABEL_COLUMN]].copy()
    scored["score"] = model.predict(None, test_df)
    metrics = evaluate_scores(scored)
    _, daily_cp = card_precision_top_k(scored, k=100)
    train_labels = _labels(train_df)

    clashes = sorted(set(resolved) & (set(extra) | {"model_type", "features", "n_features"}))
    if clashes:
        raise ValueError(f"parameter name(s) {clashes} given both as model and extra parameters")
    table_tags = {
        f"table_version.{name}": ("none" if version is None else str(version))
        for name, version in (table_versions or {}).items()
    }
    run_params: dict[str, Any] = {
        **{k: _param_value(v) for k, v in resolved.items()},
        "model_type": model_type,
        "features": ",".join(FEATURE_COLUMNS),
        "n_features": len(FEATURE_COLUMNS),
        **{k: _param_value(v) for k, v in extra.items()},
        **table_tags,
    }

    raw_features = model_input(train_df)
    complete = raw_features.dropna()
    input_example = (complete if not complete.empty else raw_features).head(5).reset_index(drop=True)
    example_output = pd.Series(model.predict(None, input_example), name="fraud_probability")
    signature = mlflow.models.infer_signature(input_example, example_output)

    with mlflow.start_run(run_name=run_name or model_type) as run:
        mlflow.set_tags(
            {"model_type": model_type, "git_commit": git_commit or "unknown", **table_tags, **(tags or {})}
        )
        mlflow.log_params(run_params)
        mlflow.log_metrics(
            {
                **{f"test_{k}": float(v) for k, v in metrics.items()},
                "train_n_transactions": float(len(train_df)),
                "train_n_frauds": float(train_labels.sum()),
            }
        )
        for step, value in enumerate(daily_cp):
            mlflow.log_metric("test_card_precision_top_100_daily", value, step=step)

        labels = scored[LABEL_COLUMN].astype(int).to_numpy()
        if 0 < labels.sum() < len(labels):
            mlflow.log_figure(
                _pr_curve_figure(
                    labels, scored["score"].to_numpy(), f"{model_type}: precision-recall (test)"
                ),
                "plots/precision_recall_curve.png",
            )
        else:
            mlflow.set_tag("precision_recall_curve", "skipped: the test set holds a single class")
        importance = feature_importances(estimator, model_type)
        buffer = io.StringIO()
        importance.to_csv(buffer, index=False)
        mlflow.log_text(buffer.getvalue(), "feature_importance/feature_importance.csv")
        mlflow.log_figure(
            _importance_figure(importance, f"{model_type}: feature importance"),
            "feature_importance/feature_importance.png",
        )
        contributions, _ = model.contributions(test_df)
        mean_abs = mean_absolute_contributions(contributions, FEATURE_COLUMNS)
        buffer = io.StringIO()
        mean_abs.to_csv(buffer, index=False)
        mlflow.log_text(buffer.getvalue(), "reason_codes/mean_abs_contribution.csv")
        mlflow.log_figure(
            _importance_figure(
                mean_abs.rename(columns={"mean_abs_contribution": "importance"}),
                f"{model_type}: mean |contribution| to the log-odds (test)",
                xlabel="mean |contribution| (log-odds)",
            ),
            "reason_codes/mean_abs_contribution.png",
        )

        info = _log_pyfunc(model, signature, input_example, model_name)
        version = getattr(info, "registered_model_version", None)
        log.info("logged %s model run %s (%s)", model_type, run.info.run_id, info.model_uri)
        return TrainResult(
            run_id=run.info.run_id,
            model_type=model_type,
            metrics=metrics,
            model_uri=info.model_uri,
            registered_version=int(version) if version is not None else None,
            params=resolved,
        )
