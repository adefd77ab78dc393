"""Model selection by prequential validation, the feature ablation and the backtest.

Prequential validation is the protocol of the Fraud Detection Handbook (Le Borgne et al., chapter 5
"Model validation and selection", section "Prequential validation",
https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_5_ModelValidationAndSelection/ValidationStrategies.html):
every choice (hyperparameters, features, the decision threshold) is made on *validation* windows
that lie strictly before the test window, each one preceded by its own training window and delay
period, sliding back one week at a time. The test window is used once, to report the chosen model.

With ``T`` the training window's last day, ``L`` its length in days, ``D`` the delay period and
``V`` the validation length, fold ``i`` (``i = 0 .. K-1``) is::

    validation  = [T - s*i - V + 1, T - s*i]                   (s = step, V by default)
    delay       = the D days before the validation window
    train       = the L days before that delay

Fold 0's validation window is the last ``V`` days of the training window; the test window
(``T + D + 1 ..``) is never touched. A candidate's score is the mean over folds of card
precision@100 (the Handbook's operational metric), ties within ``cp_tolerance`` broken by the mean
average precision.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from fraud_mlops.lifecycle.metrics import evaluate_scores
from fraud_mlops.lifecycle.training import (
    CARD_COLUMN,
    DAY_COLUMN,
    LOGISTIC_REGRESSION,
    LR_DEFAULT_PARAMS,
    LR_OPTIONAL_PARAMS,
    MODEL_TYPES,
    XGB_DEFAULT_PARAMS,
    XGB_OPTIONAL_PARAMS,
    XGBOOST,
    TrainingDataError,
    as_date,
    evaluation_window,
    feature_matrix,
    fit_estimator,
    time_split,
)
from fraud_mlops.medallion.schema import FEATURE_COLUMNS, FEATURE_GROUPS, LABEL_COLUMN

log = logging.getLogger("fraud_mlops")

#: Folds of the default prequential validation (the Handbook uses 4).
DEFAULT_N_FOLDS = 4
#: Candidates within this much mean card precision@100 of the best are compared on average precision.
DEFAULT_CP_TOLERANCE = 0.002
#: The search space of the training job when none is given: small enough for minutes on 2 cores.
DEFAULT_SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {
    XGBOOST: {"max_depth": [3, 4, 6], "n_estimators": [100, 200], "learning_rate": [0.05], "scale_pos_weight": [1]},
    LOGISTIC_REGRESSION: {"C": [1.0]},
}
_ALLOWED_PARAMS = {
    XGBOOST: set(XGB_DEFAULT_PARAMS) | set(XGB_OPTIONAL_PARAMS),
    LOGISTIC_REGRESSION: set(LR_DEFAULT_PARAMS) | set(LR_OPTIONAL_PARAMS),
}
_SELECTION_METRICS = ("card_precision_top_100", "average_precision", "roc_auc")


# --------------------------------------------------------------------------------------- the folds
@dataclass(frozen=True)
class Fold:
    """One prequential fold: inclusive day ranges of its training and validation windows."""

    index: int
    train_start: dt.date
    train_end: dt.date
    validation_start: dt.date
    validation_end: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(self).items()}


def prequential_folds(
    train_end: dt.date | str,
    train_days: int,
    *,
    delay_days: int = 7,
    validation_days: int = 7,
    n_folds: int = DEFAULT_N_FOLDS,
    step_days: int | None = None,
) -> list[Fold]:
    """The ``n_folds`` prequential folds of a training window ending on ``train_end`` (module docstring).

    Args:
        train_end: last day of the training window (the test window starts ``delay_days + 1`` later).
        train_days: length in days of each fold's training window (>= 1), normally the length of
            the final training window.
        delay_days: the delay period between a fold's training and validation windows (>= 0).
        validation_days: length of each validation window (>= 1); the test window's length.
        n_folds: number of folds (>= 1).
        step_days: how far each fold slides back (>= 1); ``validation_days`` by default, so that
            validation windows do not overlap.

    Returns:
        Folds 0 .. n_folds-1, fold 0 the latest. Every validation day is ``<= train_end``, and in
        each fold ``train_end + delay_days < validation_start``.

    Raises:
        ValueError: a length or count out of range.
    """
    train_end = as_date(train_end, "train_end")
    step = validation_days if step_days is None else step_days
    for name, value, minimum in (("train_days", train_days, 1), ("delay_days", delay_days, 0),
                                 ("validation_days", validation_days, 1), ("n_folds", n_folds, 1),
                                 ("step_days", step, 1)):
        if int(value) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    folds = []
    for i in range(int(n_folds)):
        validation_end = train_end - dt.timedelta(days=int(step) * i)
        validation_start = validation_end - dt.timedelta(days=int(validation_days) - 1)
        fold_train_end = validation_start - dt.timedelta(days=int(delay_days) + 1)
        fold_train_start = fold_train_end - dt.timedelta(days=int(train_days) - 1)
        folds.append(Fold(i, fold_train_start, fold_train_end, validation_start, validation_end))
    return folds


def folds_date_range(folds: Sequence[Fold]) -> tuple[dt.date, dt.date]:
    """The ``tx_date`` range of gold the folds read: the earliest training day to the latest validation day."""
    return min(f.train_start for f in folds), max(f.validation_end for f in folds)


# ---------------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class Candidate:
    """One point of the search space: a model type and its estimator parameters."""

    model_type: str
    params: dict[str, Any]

    def label(self) -> str:
        return self.model_type + "(" + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


def parse_search_space(space: str | Mapping[str, Any] | None) -> dict[str, dict[str, list[Any]]]:
    """A validated search space ``{model_type: {parameter: [values, ...]}}``.

    ``space`` is a mapping or its JSON text (a job parameter); None or ``""`` gives
    :data:`DEFAULT_SEARCH_SPACE`. A scalar value stands for a one-value list.

    Raises:
        ValueError: not JSON, an unknown model type or parameter, or an empty list of values.
    """
    if space is None or (isinstance(space, str) and not space.strip()):
        return {m: {p: list(v) for p, v in params.items()} for m, params in DEFAULT_SEARCH_SPACE.items()}
    if isinstance(space, str):
        try:
            space = json.loads(space)
        except json.JSONDecodeError as exc:
            raise ValueError(f"search_space is not valid JSON: {exc}") from exc
    if not isinstance(space, Mapping) or not space:
        raise ValueError("search_space must be a non-empty JSON object {model_type: {parameter: [values]}}")
    out: dict[str, dict[str, list[Any]]] = {}
    for model_type, params in space.items():
        if model_type not in MODEL_TYPES:
            raise ValueError(f"search_space: unknown model type {model_type!r}; use {list(MODEL_TYPES)}")
        if not isinstance(params, Mapping):
            raise ValueError(  # noqa: TRY004 - a bad job parameter value, reported as ParameterError
                f"search_space[{model_type!r}] must be an object of parameter -> list of values")
        unknown = sorted(set(params) - _ALLOWED_PARAMS[model_type])
        if unknown:
            raise ValueError(f"search_space: unknown {model_type} parameter(s) {unknown}; "
                             f"allowed: {sorted(_ALLOWED_PARAMS[model_type])}")
        grid: dict[str, list[Any]] = {}
        for name, values in params.items():
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values:
                raise ValueError(f"search_space: {model_type}.{name} lists no value")
            grid[name] = values
        out[model_type] = grid
    return out


def candidates(space: Mapping[str, Mapping[str, Sequence[Any]]], n_random: int = 0, seed: int = 0) -> list[Candidate]:
    """The candidates of a search space: its full grid, or ``n_random`` points drawn from it.

    Args:
        space: from :func:`parse_search_space`.
        n_random: 0 for the full grid (grid search); otherwise a random search of that many
            distinct points per model type (all of them when the grid is smaller), drawn with ``seed``.

    Returns:
        Candidates in a deterministic order (model type as in ``space``, then grid order).
    """
    if int(n_random) < 0:
        raise ValueError(f"n_random must be >= 0, got {n_random}")
    out: list[Candidate] = []
    for model_type, grid in space.items():
        names = list(grid)
        points = [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]
        if n_random and n_random < len(points):
            picked = sorted(random.Random(seed).sample(range(len(points)), int(n_random)))
            points = [points[i] for i in picked]
        out += [Candidate(model_type, p) for p in points]
    return out


# ------------------------------------------------------------------------------------ evaluation
@dataclass
class FoldData:
    """The training and validation sets of one fold (gold rows) and the validation features (float64)."""

    fold: Fold
    train: pd.DataFrame
    validation: pd.DataFrame
    x_validation: pd.DataFrame


def check_history(gold: pd.DataFrame, first_day: dt.date, what: str, table: str = "gold") -> None:
    """Refuse a window that starts before the first day of ``gold``: it would silently train on fewer
    days than declared.

    Raises:
        TrainingDataError: ``gold`` holds no transaction on or before ``first_day``; the message names
            the window (``what``), its first day and the table's first day.
    """
    if gold.empty:
        raise TrainingDataError(f"{table}: no rows for {what} (starting {first_day})")
    earliest = pd.to_datetime(gold[DAY_COLUMN]).min().date()
    if earliest > first_day:
        raise TrainingDataError(
            f"{table}: {what} starts on {first_day}, but the rows read begin on {earliest}: there is not enough "
            "history; use fewer prequential folds (n_folds), fewer backtest weeks, a shorter train_days or a "
            "later window")


def fold_data(gold: pd.DataFrame, folds: Sequence[Fold], *, delay_days: int, known_compromised_days: int | None = 7,
              table: str = "gold") -> list[FoldData]:
    """Split ``gold`` into each fold's training and validation sets (:func:`time_split` with the fold's windows).

    Raises:
        TrainingDataError: a fold that starts before ``gold``'s first day (:func:`check_history`), whose
            training window lacks a class or whose validation window has no fraud; the message names
            the fold and its days.
    """
    out = []
    for fold in folds:
        check_history(gold, fold.train_start, f"prequential fold {fold.index}'s training window", table)
        validation_days = (fold.validation_end - fold.validation_start).days + 1
        try:
            train, validation = time_split(gold, fold.train_start, fold.train_end, delay_days, validation_days,
                                           known_compromised_days=known_compromised_days)
        except ValueError as exc:
            raise TrainingDataError(f"{table}: prequential fold {fold.index} ({fold.train_start}..{fold.train_end} "
                                    f"-> {fold.validation_start}..{fold.validation_end}): {exc}") from exc
        y_train = train[LABEL_COLUMN].astype(int)
        if y_train.nunique() < 2 or int(validation[LABEL_COLUMN].astype(int).sum()) == 0:
            raise TrainingDataError(
                f"{table}: prequential fold {fold.index} cannot be used: training {fold.train_start}..{fold.train_end} "
                f"has {int(y_train.sum())} frauds in {len(train)} rows, validation {fold.validation_start}.."
                f"{fold.validation_end} has {int(validation[LABEL_COLUMN].astype(int).sum())} frauds; "
                "use fewer folds (n_folds) or a later window")
        out.append(FoldData(fold, train, validation, feature_matrix(validation)))
    return out


@dataclass
class CandidateResult:
    """Per-fold and mean validation metrics of a candidate, and its out-of-fold validation scores."""

    candidate: Candidate
    fold_metrics: list[dict[str, float]]
    feature_columns: tuple[str, ...] = FEATURE_COLUMNS
    validation_scores: pd.DataFrame | None = field(default=None, repr=False)

    def mean(self, metric: str) -> float:
        values = [m[metric] for m in self.fold_metrics if math.isfinite(m[metric])]
        return float(np.mean(values)) if values else math.nan

    def std(self, metric: str) -> float:
        values = [m[metric] for m in self.fold_metrics if math.isfinite(m[metric])]
        return float(np.std(values)) if values else math.nan

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_type": self.candidate.model_type, "params": dict(self.candidate.params)}
        for metric in _SELECTION_METRICS:
            out[f"mean_{metric}"] = self.mean(metric)
            out[f"std_{metric}"] = self.std(metric)
        return out


def _with_n_jobs(candidate: Candidate, n_jobs: int | None) -> dict[str, Any]:
    params = dict(candidate.params)
    if candidate.model_type == XGBOOST and n_jobs is not None:
        params.setdefault("n_jobs", int(n_jobs))
    return params


def evaluate_candidate(data: Sequence[FoldData], candidate: Candidate, *, feature_columns: Sequence[str] | None = None,
                       n_jobs: int | None = None, keep_scores: bool = True) -> CandidateResult:
    """Fit ``candidate`` on each fold's training set and score its validation set.

    Args:
        data: from :func:`fold_data`.
        feature_columns: a subset of :data:`FEATURE_COLUMNS` (ablation); all by default.
        n_jobs: XGBoost threads (None: XGBoost's default, all cores).
        keep_scores: keep the out-of-fold validation scores (``tx_date``, ``customer_id``, ``score``,
            the label, ``fold``), for analysis.

    Returns:
        Its :class:`CandidateResult`: per fold :func:`fraud_mlops.lifecycle.metrics.evaluate_scores`.
    """
    columns = tuple(FEATURE_COLUMNS if feature_columns is None else feature_columns)
    params = _with_n_jobs(candidate, n_jobs)
    metrics, scores = [], []
    for d in data:
        estimator, _ = fit_estimator(candidate.model_type, params, d.train, feature_columns=columns)
        proba = estimator.predict_proba(d.x_validation.loc[:, list(columns)])[:, 1]
        scored = d.validation[[DAY_COLUMN, CARD_COLUMN, LABEL_COLUMN]].copy()
        scored["score"] = np.asarray(proba, dtype="float64")
        metrics.append(evaluate_scores(scored))
        if keep_scores:
            scores.append(scored.assign(fold=d.fold.index))
    return CandidateResult(candidate, metrics, columns, pd.concat(scores, ignore_index=True) if scores else None)


def select_best(results: Sequence[CandidateResult], cp_tolerance: float = DEFAULT_CP_TOLERANCE) -> CandidateResult:
    """The best candidate: the highest mean card precision@100; among those within ``cp_tolerance``
    of it, the highest mean average precision; then the earliest.

    Raises:
        ValueError: no result.
    """
    if not results:
        raise ValueError("no candidate to select from")

    def cp(r: CandidateResult) -> float:
        value = r.mean("card_precision_top_100")
        return value if math.isfinite(value) else -1.0

    best_cp = max(cp(r) for r in results)
    close = [r for r in results if cp(r) >= best_cp - cp_tolerance]
    return max(close, key=lambda r: (r.mean("average_precision") if math.isfinite(r.mean("average_precision"))
                                     else -1.0, -results.index(r)))


# ------------------------------------------------------------------------------------ the ablation
def ablation(data: Sequence[FoldData], candidate: Candidate, full: CandidateResult | None = None, *,
             n_jobs: int | None = None, groups: Mapping[str, Sequence[str]] = FEATURE_GROUPS) -> pd.DataFrame:
    """Prequential metrics of ``candidate`` with feature groups left out (an ablation table).

    Rows: ``all features``; ``without <group>`` for every group after the first (the Handbook's
    baseline group, ``handbook``); and ``<first group> only``. ``full`` (the candidate's result on all
    features) is reused when given.

    Returns:
        Columns ``features`` (str), ``n_features`` (int), ``mean_card_precision_top_100``,
        ``mean_average_precision``, ``mean_roc_auc`` (validation means over the folds), and
        ``delta_card_precision_top_100``, ``delta_average_precision`` against all features (the
        drop when a group is left out is what the group brings).
    """
    names = list(groups)
    variants: list[tuple[str, tuple[str, ...]]] = [("all features", FEATURE_COLUMNS)]
    for name in names[1:]:
        kept = tuple(c for c in FEATURE_COLUMNS if c not in set(groups[name]))
        variants.append((f"without {name}", kept))
    variants.append((f"{names[0]} only", tuple(groups[names[0]])))
    rows = []
    for label, columns in variants:
        if columns == FEATURE_COLUMNS and full is not None:
            result = full
        else:
            result = evaluate_candidate(data, candidate, feature_columns=columns, n_jobs=n_jobs, keep_scores=False)
        rows.append({"features": label, "n_features": len(columns),
                     **{f"mean_{m}": result.mean(m) for m in _SELECTION_METRICS}})
    table = pd.DataFrame(rows)
    for m in ("card_precision_top_100", "average_precision"):
        table[f"delta_{m}"] = table[f"mean_{m}"] - float(table.loc[0, f"mean_{m}"])
    return table


# ------------------------------------------------------------------------------------ the backtest
def backtest_windows(first_test_start: dt.date | str, n_weeks: int, *, train_days: int, delay_days: int = 7,
                     test_days: int = 7) -> list[dict[str, dt.date]]:
    """Consecutive test windows from ``first_test_start``, each with its own training window.

    Week ``j``: test ``first_test_start + j*test_days`` for ``test_days`` days; training the
    ``train_days`` days ending ``delay_days + 1`` days before the test starts.

    Returns:
        ``[{"train_start", "train_end", "test_start", "test_end"}, ...]`` (dates).
    """
    start = as_date(first_test_start, "backtest_start")
    if int(n_weeks) < 1:
        raise ValueError(f"backtest weeks must be >= 1, got {n_weeks}")
    out = []
    for j in range(int(n_weeks)):
        test_start = start + dt.timedelta(days=int(test_days) * j)
        train_end = test_start - dt.timedelta(days=int(delay_days) + 1)
        train_start = train_end - dt.timedelta(days=int(train_days) - 1)
        test_end = evaluation_window(train_end, delay_days, test_days)[1]
        out.append({"train_start": train_start, "train_end": train_end, "test_start": test_start, "test_end": test_end})
    return out


def backtest(gold: pd.DataFrame, candidate: Candidate, windows: Sequence[Mapping[str, dt.date]], *, delay_days: int = 7,
             test_days: int = 7, known_compromised_days: int | None = 7, n_jobs: int | None = None) -> pd.DataFrame:
    """Train ``candidate`` on each window's training days and evaluate it on its test days.

    Returns:
        One row per window: ``train_start``, ``train_end``, ``test_start``, ``test_end`` (ISO),
        ``average_precision``, ``roc_auc``, ``card_precision_top_100``, ``n_transactions``, ``n_frauds``.

    Raises:
        TrainingDataError: a window whose days gold does not hold.
    """
    rows = []
    params = _with_n_jobs(candidate, n_jobs)
    for w in windows:
        check_history(gold, w["train_start"], f"the training window of backtest week {w['test_start']}")
        try:
            train, test = time_split(gold, w["train_start"], w["train_end"], delay_days, test_days,
                                     known_compromised_days=known_compromised_days)
        except ValueError as exc:
            raise TrainingDataError(f"backtest window {w['test_start']}..{w['test_end']}: {exc}") from exc
        estimator, _ = fit_estimator(candidate.model_type, params, train)
        scored = test[[DAY_COLUMN, CARD_COLUMN, LABEL_COLUMN]].copy()
        scored["score"] = estimator.predict_proba(feature_matrix(test))[:, 1]
        rows.append({**{k: v.isoformat() for k, v in w.items()}, **evaluate_scores(scored)})
    return pd.DataFrame(rows)


def summarize_backtest(table: pd.DataFrame) -> dict[str, float]:
    """``mean_<metric>`` and ``std_<metric>`` (population standard deviation) over the backtest weeks."""
    out = {}
    for metric in _SELECTION_METRICS:
        values = table[metric].astype(float)
        out[f"mean_{metric}"] = float(values.mean())
        out[f"std_{metric}"] = float(values.std(ddof=0))
    return out


# ---------------------------------------------------------------------------------- the selection
@dataclass
class SelectionSettings:
    """How the training job selects its models (job parameters).

    Attributes:
        n_folds: prequential folds (0 turns selection off: the given parameters are used as they are).
        search_space: ``{model_type: {parameter: [values]}}`` (:func:`parse_search_space`).
        n_random: 0 = grid search; otherwise that many random points per model type.
        cp_tolerance: see :func:`select_best`.
        known_compromised_days: see :func:`fraud_mlops.lifecycle.training.time_split`.
        n_jobs: XGBoost threads per fit (None: all cores).
        ablation: also compute the feature ablation of the selected candidate.
        backtest_weeks: test weeks of the backtest (0: none).
        backtest_start: first backtest test day; None: the weeks ending with the test window.
        seed: random search seed.
    """

    n_folds: int = DEFAULT_N_FOLDS
    search_space: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: parse_search_space(None))
    n_random: int = 0
    cp_tolerance: float = DEFAULT_CP_TOLERANCE
    known_compromised_days: int | None = 7
    n_jobs: int | None = None
    ablation: bool = True
    backtest_weeks: int = 0
    backtest_start: dt.date | None = None
    seed: int = 0


@dataclass
class SelectionResult:
    """What :func:`run_selection` found: the selected candidate per model type and the evidence."""

    folds: list[Fold]
    results: list[CandidateResult]
    selected: dict[str, CandidateResult]
    ablation: pd.DataFrame | None = None
    backtest: pd.DataFrame | None = None
    run_id: str | None = None

    def leaderboard(self) -> pd.DataFrame:
        rows = []
        for r in self.results:
            row = r.summary()
            row["params"] = json.dumps(row["params"], sort_keys=True)
            row["selected"] = any(r is s for s in self.selected.values())
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "selection_run_id": self.run_id,
            "folds": [f.to_dict() for f in self.folds],
            "n_candidates": len(self.results),
            "selected": {m: {k: clean(v) for k, v in r.summary().items()} for m, r in self.selected.items()},
            "ablation": None if self.ablation is None else [
                {k: clean(v) for k, v in row.items()} for row in self.ablation.to_dict("records")],
            "backtest": None if self.backtest is None else {
                "weeks": [{k: clean(v) for k, v in row.items()} for row in self.backtest.to_dict("records")],
                **summarize_backtest(self.backtest)},
        }


def selection_date_range(train_start: dt.date, train_end: dt.date, settings: SelectionSettings, *,
                         delay_days: int = 7, test_days: int = 7) -> tuple[dt.date, dt.date]:
    """The ``tx_date`` range of gold that :func:`run_selection` reads (folds, test window, backtest)."""
    first, last = train_start, evaluation_window(train_end, delay_days, test_days)[1]
    train_days = (train_end - train_start).days + 1
    if settings.n_folds:
        f_first, _ = folds_date_range(prequential_folds(train_end, train_days, delay_days=delay_days,
                                                        validation_days=test_days, n_folds=settings.n_folds))
        first = min(first, f_first)
    for w in _backtest_windows(train_end, train_days, settings, delay_days, test_days):
        first, last = min(first, w["train_start"]), max(last, w["test_end"])
    return first, last


def _backtest_windows(train_end: dt.date, train_days: int, settings: SelectionSettings, delay_days: int,
                      test_days: int) -> list[dict[str, dt.date]]:
    if not settings.backtest_weeks:
        return []
    start = settings.backtest_start
    if start is None:  # the weeks ending with the test window
        test_start = evaluation_window(train_end, delay_days, test_days)[0]
        start = test_start - dt.timedelta(days=test_days * (settings.backtest_weeks - 1))
    return backtest_windows(start, settings.backtest_weeks, train_days=train_days, delay_days=delay_days,
                            test_days=test_days)


def _log_table(table: pd.DataFrame, path: str) -> None:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    mlflow.log_text(buffer.getvalue(), path)


def ablation_markdown(table: pd.DataFrame) -> str:
    """The ablation table as Markdown (for the run's artifacts and the README)."""
    lines = ["| features | n | validation card precision@100 | validation AP | delta CP@100 | delta AP |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['features']} | {r['n_features']} | {r['mean_card_precision_top_100']:.4f} | "
                     f"{r['mean_average_precision']:.4f} | {r['delta_card_precision_top_100']:+.4f} | "
                     f"{r['delta_average_precision']:+.4f} |")
    return "\n".join(lines) + "\n"


def run_selection(gold: pd.DataFrame, *, train_start: dt.date, train_end: dt.date, delay_days: int = 7,
                  test_days: int = 7, settings: SelectionSettings | None = None, candidate_model: str = XGBOOST,
                  table: str = "gold", log_to_mlflow: bool = True) -> SelectionResult:
    """Prequential model selection over ``settings.search_space``, logged to MLflow.

    Fold ``i``'s training window has the length of ``[train_start, train_end]``; validation windows
    have the test window's length (``test_days``). Every candidate is fitted on every fold's
    training set and scored on its validation set; per model type the best one is selected
    (:func:`select_best`). Then, for ``candidate_model``'s selection, the feature ablation
    (:func:`ablation`, when ``settings.ablation``) and the backtest (``settings.backtest_weeks``).

    MLflow (when ``log_to_mlflow``, in the active experiment): a parent run
    ``model-selection-<train_start>-<train_end>`` (tag ``task=model_selection``) with the settings as
    params, the selected candidates' mean metrics (``selected_<model_type>_mean_<metric>``),
    ``selection/leaderboard.csv``, ``selection/folds.csv``, ``selection/ablation.csv`` and ``.md``,
    ``selection/backtest.csv`` and ``backtest_mean_<metric>`` / ``backtest_std_<metric>`` metrics; one
    nested run per candidate with its parameters and ``fold<i>_<metric>``, ``mean_<metric>``,
    ``std_<metric>`` metrics and the tag ``selected``.

    Raises:
        ValueError: settings out of range, ``n_folds == 0``, or ``candidate_model`` missing from the space.
        TrainingDataError: a fold or backtest window that gold cannot fill.
    """
    settings = settings or SelectionSettings()
    if settings.n_folds < 1:
        raise ValueError("run_selection needs n_folds >= 1")
    train_start, train_end = as_date(train_start, "train_start"), as_date(train_end, "train_end")
    train_days = (train_end - train_start).days + 1
    folds = prequential_folds(train_end, train_days, delay_days=delay_days, validation_days=test_days,
                              n_folds=settings.n_folds)
    data = fold_data(gold, folds, delay_days=delay_days, known_compromised_days=settings.known_compromised_days,
                     table=table)
    pool = candidates(settings.search_space, settings.n_random, settings.seed)
    results = []
    for i, candidate in enumerate(pool, 1):
        result = evaluate_candidate(data, candidate, n_jobs=settings.n_jobs)
        log.info("selection %d/%d %s: validation CP@100 %.4f AP %.4f", i, len(pool), candidate.label(),
                 result.mean("card_precision_top_100"), result.mean("average_precision"))
        results.append(result)
    selected = {m: select_best([r for r in results if r.candidate.model_type == m], settings.cp_tolerance)
                for m in settings.search_space}
    out = SelectionResult(folds, results, selected)
    chosen = selected.get(candidate_model)
    if chosen is not None and settings.ablation:
        out.ablation = ablation(data, chosen.candidate, chosen, n_jobs=settings.n_jobs)
    windows = _backtest_windows(train_end, train_days, settings, delay_days, test_days)
    if chosen is not None and windows:
        out.backtest = backtest(gold, chosen.candidate, windows, delay_days=delay_days, test_days=test_days,
                                known_compromised_days=settings.known_compromised_days, n_jobs=settings.n_jobs)
    if log_to_mlflow:
        out.run_id = _log_selection(out, settings, train_start, train_end, delay_days, test_days)
    return out


def _log_selection(out: SelectionResult, settings: SelectionSettings, train_start: dt.date, train_end: dt.date,
                   delay_days: int, test_days: int) -> str:
    with mlflow.start_run(run_name=f"model-selection-{train_start}-{train_end}") as parent:
        mlflow.set_tags({"task": "model_selection"})
        mlflow.log_params({
            "train_start": train_start.isoformat(), "train_end": train_end.isoformat(),
            "delay_days": delay_days, "validation_days": test_days, "n_folds": settings.n_folds,
            "search_space": json.dumps(settings.search_space, sort_keys=True)[:6000],
            "n_random": settings.n_random, "cp_tolerance": settings.cp_tolerance,
            "known_compromised_days": settings.known_compromised_days,
            "selection_metric": "mean validation card_precision_top_100, then average_precision",
            "n_candidates": len(out.results),
        })
        for result in out.results:
            is_selected = any(result is s for s in out.selected.values())
            with mlflow.start_run(run_name=result.candidate.label()[:250], nested=True):
                mlflow.set_tags({"task": "model_selection_candidate", "model_type": result.candidate.model_type,
                                 "selected": str(is_selected).lower()})
                mlflow.log_params({"model_type": result.candidate.model_type, **result.candidate.params})
                metrics = {}
                for fold, values in zip(out.folds, result.fold_metrics, strict=True):
                    metrics.update({f"fold{fold.index}_{m}": values[m] for m in _SELECTION_METRICS})
                metrics.update({f"mean_{m}": result.mean(m) for m in _SELECTION_METRICS})
                metrics.update({f"std_{m}": result.std(m) for m in _SELECTION_METRICS})
                mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        for model_type, result in out.selected.items():
            mlflow.log_metrics({f"selected_{model_type}_mean_{m}": result.mean(m) for m in _SELECTION_METRICS
                                if math.isfinite(result.mean(m))})
            mlflow.log_params({f"selected_{model_type}": json.dumps(result.candidate.params, sort_keys=True)})
        _log_table(out.leaderboard(), "selection/leaderboard.csv")
        _log_table(pd.DataFrame([f.to_dict() for f in out.folds]), "selection/folds.csv")
        if out.ablation is not None:
            _log_table(out.ablation, "selection/ablation.csv")
            mlflow.log_text(ablation_markdown(out.ablation), "selection/ablation.md")
        if out.backtest is not None:
            _log_table(out.backtest, "selection/backtest.csv")
            mlflow.log_metrics({f"backtest_{k}": v for k, v in summarize_backtest(out.backtest).items()
                                if math.isfinite(v)})
        return parent.info.run_id
