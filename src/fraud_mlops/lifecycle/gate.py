"""Validation gate and promotion: a challenger becomes champion only after a passed validation.

The registry holds two aliases per model: ``challenger`` (the newest candidate, set by training)
and ``champion`` (the version batch scoring uses). The flows:

1. :func:`run_training`: split gold, train XGBoost and the logistic-regression baseline (one run
   each), register the candidate (``candidate_model``, XGBoost by default) and make it the
   ``challenger`` with ``validation_status=pending`` (:func:`register_challenger`).
2. :func:`run_validation` (:func:`validate_challenger`): re-derive the challenger's test window
   from its training run's parameters, score challenger and champion on that same window, apply
   :func:`decide`, and record the outcome as model version tags and in a validation run.
3. :func:`run_promotion` (:func:`promote_challenger`): move ``champion`` to the challenger only when
   its ``validation_status`` is ``passed`` (and the champion has not changed since that
   validation); otherwise leave ``champion`` untouched and tag the challenger
   ``promotion_status=rejected`` with the reasons.

Crash safety: a promotion is one commit, the move of the ``champion`` alias. The promotion tags are
written before it (a re-run overwrites them), the removal of the ``challenger`` alias after it. A
promotion killed before the alias moved has not happened, and the next promotion run does it; one
killed after it has happened, and the next run only removes the leftover ``challenger`` alias;
a run after a completed promotion changes nothing. A version whose promotion was interrupted and
never resumed is tagged ``promotion_status=superseded`` when the next challenger replaces it
(:func:`register_challenger`), so no version that is not the champion keeps ``promoted``.

Model version tag keys use only letters, digits and underscores (``validation_status``,
``validation_champion_version``, ``validation_<metric>``, ...): Unity Catalog's registry
(``databricks-uc``) rejects keys containing any of ``. , - = / :`` and caps values at 1000
characters. :func:`registry_tag_key` builds and checks every key; longer values are truncated with
a trailing ``…``.

MLflow must be configured beforehand (:func:`fraud_mlops.lifecycle.tracking.configure_mlflow`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from bundlekit.task_runtime import fault_point
from fraud_mlops.lifecycle.metrics import evaluate_scores
from fraud_mlops.lifecycle.selection import SelectionSettings, run_selection
from fraud_mlops.lifecycle.thresholds import (
    ALERT_BUDGET,
    ALERT_BUDGET_TAG,
    COST,
    DECISION_THRESHOLD_TAG,
    DEFAULT_ALERT_BUDGET,
    THRESHOLD_METHOD_TAG,
    THRESHOLD_METHODS,
    THRESHOLD_SOURCE_TAG,
    alert_budget_threshold,
    cost_threshold,
)
from fraud_mlops.lifecycle.training import (
    CARD_COLUMN,
    DAY_COLUMN,
    LOGISTIC_REGRESSION,
    MODEL_TYPES,
    XGBOOST,
    as_date,
    evaluation_window,
    model_input,
    required_date_range,
    time_split,
    train_and_log,
)
from fraud_mlops.lifecycle.training import (
    git_commit as current_git_commit,
)
from fraud_mlops.medallion.schema import LABEL_COLUMN

log = logging.getLogger("fraud_mlops")

CHAMPION = "champion"
CHALLENGER = "challenger"

#: Model version tag holding the validation outcome: ``pending``, ``passed`` or ``failed``.
VALIDATION_STATUS_TAG = "validation_status"
VALIDATION_REASONS_TAG = "validation_reasons"
#: Model version tag naming the champion version the validation compared against (``none``).
VALIDATION_CHAMPION_TAG = "validation_champion_version"
PROMOTION_STATUS_TAG = "promotion_status"
PROMOTION_REASONS_TAG = "promotion_reasons"
PROMOTED, REJECTED, SUPERSEDED = "promoted", "rejected", "superseded"
PENDING, PASSED, FAILED = "pending", "passed", "failed"

#: Metrics the gate reads (keys of :func:`fraud_mlops.lifecycle.metrics.evaluate_scores`).
GATE_METRICS = ("average_precision", "roc_auc")
_REASON_SEPARATOR = "; "
#: Characters Unity Catalog rejects in tag keys.
FORBIDDEN_TAG_KEY_CHARS = frozenset(".,-=/:")
#: Longest tag value Unity Catalog accepts; longer values are truncated (see :func:`tag_value`).
MAX_TAG_VALUE_CHARS = 1000
_TRUNCATION_MARKER = "…"

#: A gold source: a pandas frame, or a callable ``(first_day, last_day) -> frame`` that reads gold
#: ``tx_date`` in that inclusive range.
GoldSource = pd.DataFrame | Callable[[dt.date, dt.date], pd.DataFrame]


# ------------------------------------------------------------------------------------ the decision
@dataclass(frozen=True)
class GateThresholds:
    """What a challenger must reach to be promoted.

    Attributes:
        min_average_precision: minimum test average precision.
        min_roc_auc: minimum test ROC AUC.
        max_ap_degradation: tolerance: the challenger's average precision may be at most this much
            (absolute) below the champion's on the same test window, and, with ``min_shadow_days``,
            on the shadow days.
        min_shadow_days: labelled days of shadow scoring (challenger scored beside the champion on
            the same production transactions, :func:`fraud_mlops.lifecycle.monitoring.shadow_summary`)
            a challenger needs before it can replace a champion (int >= 0). 0, the default, turns the
            shadow check off (the gate then judges on the test window only).
    """

    min_average_precision: float = 0.3
    min_roc_auc: float = 0.75
    max_ap_degradation: float = 0.02
    min_shadow_days: int = 0

    def __post_init__(self) -> None:
        for name in ("min_average_precision", "min_roc_auc"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if not self.max_ap_degradation >= 0.0:
            raise ValueError(f"max_ap_degradation must be >= 0, got {self.max_ap_degradation}")
        days = self.min_shadow_days
        if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 0:
            raise ValueError(f"min_shadow_days must be an integer >= 0, got {days!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateDecision:
    """Outcome of :func:`decide`.

    Attributes:
        promote: True when every check passed.
        reasons: human-readable explanations: the failed checks when ``promote`` is False, the
            passed checks otherwise.
        candidate_metrics: the challenger's metrics.
        champion_metrics: the champion's metrics on the same window, None without a champion.
        champion_version: the champion's version, when known.
    """

    promote: bool
    reasons: list[str]
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "candidate_metrics": _json_metrics(self.candidate_metrics),
            "champion_metrics": None
            if self.champion_metrics is None
            else _json_metrics(self.champion_metrics),
            "champion_version": self.champion_version,
        }


def _fmt(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _metric(metrics: dict[str, Any] | None, name: str) -> float:
    if metrics is None or metrics.get(name) is None:
        return math.nan
    try:
        return float(metrics[name])
    except (TypeError, ValueError):
        return math.nan


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
        else:
            out[key] = value
    return out


def decide(
    candidate_metrics: dict[str, Any],
    champion_metrics: dict[str, Any] | None,
    thresholds: GateThresholds,
    *,
    champion_version: str | int | None = None,
    shadow: dict[str, Any] | None = None,
) -> GateDecision:
    """Decide whether a candidate may replace the champion (pure function).

    Checks, all of which must pass:

    1. ``average_precision >= min_average_precision``;
    2. ``roc_auc >= min_roc_auc``;
    3. with a champion: ``average_precision >= champion average_precision - max_ap_degradation``;
    4. only when ``thresholds.min_shadow_days > 0`` and there is a champion (``champion_metrics`` or
       ``champion_version`` given), on the shadow evidence ``shadow``: at least ``min_shadow_days``
       labelled shadow days (``shadow["n_days"]``; a None ``shadow`` has 0), a defined pooled average
       precision on them, and ``challenger_average_precision >= champion_average_precision -
       max_ap_degradation``. When ``shadow`` names a ``champion_version``, it must be the champion.
       Without a champion the check does not apply (a passing reason says so); with
       ``min_shadow_days == 0`` it is skipped and ``shadow`` is ignored (the reasons are unchanged).

    A missing or non-finite (``nan``: single-class test window) candidate metric fails its check.
    A champion whose average precision is not finite cannot be compared against; the candidate is
    then judged on the absolute thresholds only (and a reason says so).

    Args:
        candidate_metrics: the challenger's test-window metrics (``average_precision``, ``roc_auc``).
        champion_metrics: the champion's metrics on the same window, None without a champion.
        thresholds: the gate's limits.
        champion_version: the champion's version, for the reasons.
        shadow: pooled shadow evidence, as :func:`fraud_mlops.lifecycle.monitoring.shadow_summary`
            returns it: ``n_days`` (int), ``champion_average_precision`` and
            ``challenger_average_precision`` (float in [0, 1] or None), optionally
            ``champion_version``; None when the challenger was never scored in shadow.
    """
    champ_label = "champion" if champion_version is None else f"champion v{champion_version}"
    failures: list[str] = []
    passes: list[str] = []

    for name, minimum in (
        ("average_precision", thresholds.min_average_precision),
        ("roc_auc", thresholds.min_roc_auc),
    ):
        value = _metric(candidate_metrics, name)
        if not math.isfinite(value):
            failures.append(
                f"{name} is undefined (nan): the test window must hold frauds and genuine transactions"
            )
        elif value < minimum:
            failures.append(f"{name} {_fmt(value)} < minimum {_fmt(minimum)}")
        else:
            passes.append(f"{name} {_fmt(value)} >= minimum {_fmt(minimum)}")

    ap = _metric(candidate_metrics, "average_precision")
    if champion_metrics is None:
        if not failures:
            passes.insert(0, "no champion yet; absolute thresholds met")
    else:
        champ_ap = _metric(champion_metrics, "average_precision")
        tolerance = thresholds.max_ap_degradation
        if not math.isfinite(champ_ap):
            passes.append(f"{champ_label} average_precision is undefined; judged on absolute thresholds only")
        elif math.isfinite(ap):
            failed, reason = _compare_ap(ap, champ_ap, tolerance, champ_label)
            (failures if failed else passes).append(reason)

    if thresholds.min_shadow_days > 0:
        if champion_metrics is None and champion_version is None:
            passes.append(
                f"no champion: the shadow check (min_shadow_days {thresholds.min_shadow_days}) does not apply"
            )
        else:
            _check_shadow(shadow, thresholds, champion_version, champ_label, failures, passes)

    promote = not failures
    return GateDecision(
        promote=promote,
        reasons=passes if promote else failures,
        candidate_metrics=dict(candidate_metrics),
        champion_metrics=None if champion_metrics is None else dict(champion_metrics),
        champion_version=None if champion_version is None else str(champion_version),
    )


def _compare_ap(ap: float, champ_ap: float, tolerance: float, champ_label: str, *, metric: str = "average_precision",
                on: str = "") -> tuple[bool, str]:
    """``(failed, reason)`` of the check "at most ``tolerance`` below the champion's AP" (both finite);
    ``on`` qualifies where they were measured (e.g. ``"on 10 labelled shadow days"``)."""
    gap = champ_ap - ap
    where = f" {on}" if on else ""
    if gap > tolerance + 1e-12:
        return True, (f"{metric} {_fmt(ap)} is {_fmt(gap)} below {champ_label} {_fmt(champ_ap)}{where} "
                      f"(tolerance {_fmt(tolerance)})")
    if gap > 0:
        return False, (f"{metric} {_fmt(ap)} is {_fmt(gap)} below {champ_label} {_fmt(champ_ap)}{where}, "
                       f"within tolerance {_fmt(tolerance)}")
    return False, f"{metric} {_fmt(ap)} >= {champ_label} {_fmt(champ_ap)}{where}"


def _check_shadow(
    shadow: dict[str, Any] | None,
    thresholds: GateThresholds,
    champion_version: str | int | None,
    champ_label: str,
    failures: list[str],
    passes: list[str],
) -> None:
    """Check 4 of :func:`decide`: enough labelled shadow days, and no AP degradation on them."""
    needed = thresholds.min_shadow_days
    n_days = 0 if shadow is None else int(shadow.get("n_days") or 0)
    compared = None if shadow is None else shadow.get("champion_version")
    if compared is not None and champion_version is not None and str(compared) != str(champion_version):
        failures.append(
            f"shadow evidence compares against v{compared}, not {champ_label}: "
            "keep scoring in shadow and validate again"
        )
        return
    if n_days < needed:
        failures.append(
            f"needs {needed} labelled shadow days, has {n_days}: keep scoring in shadow and validate again"
        )
        return
    champ_ap = _metric(shadow, "champion_average_precision")
    ap = _metric(shadow, "challenger_average_precision")
    on_days = f"on {n_days} labelled shadow days"
    if not (math.isfinite(champ_ap) and math.isfinite(ap)):
        failures.append(
            f"shadow average_precision is undefined {on_days} (no fraud among them): "
            "keep scoring in shadow and validate again"
        )
        return
    failed, reason = _compare_ap(ap, champ_ap, thresholds.max_ap_degradation, champ_label,
                                 metric="shadow average_precision", on=on_days)
    (failures if failed else passes).append(reason)


# ------------------------------------------------------------------------------------ the registry
def _client(client: MlflowClient | None) -> MlflowClient:
    return client or MlflowClient()


def _aliases(client: MlflowClient, model_name: str) -> dict[str, str]:
    """``{alias: version}`` of a registered model.

    Raises:
        LookupError: the model is not registered.
    """
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise LookupError(f"model {model_name} is not registered: run training first") from exc
        raise
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def registry_tag_key(*parts: str) -> str:
    """Join ``parts`` with ``_`` into a tag key that Unity Catalog's registry accepts.

    ``registry_tag_key("validation", "champion", "roc_auc") == "validation_champion_roc_auc"``.

    Raises:
        ValueError: the key is empty or contains one of ``. , - = / :``.
    """
    key = "_".join(str(p) for p in parts)
    if not key.strip():
        raise ValueError("registry tag key must not be empty")
    bad = sorted({c for c in key if c in FORBIDDEN_TAG_KEY_CHARS})
    if bad:
        raise ValueError(f"registry tag key {key!r} contains forbidden character(s) {' '.join(bad)}")
    return key


def tag_value(value: Any) -> str:
    """``str(value)``, truncated to :data:`MAX_TAG_VALUE_CHARS` with a trailing ``…`` when longer."""
    text = str(value)
    if len(text) <= MAX_TAG_VALUE_CHARS:
        return text
    return text[: MAX_TAG_VALUE_CHARS - len(_TRUNCATION_MARKER)] + _TRUNCATION_MARKER


def _set_version_tags(client: MlflowClient, model_name: str, version: str, tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, registry_tag_key(key), tag_value(value))


def register_challenger(model_name: str, version: str | int, *, client: MlflowClient | None = None) -> dict:
    """Make ``version`` the ``challenger`` of ``model_name`` and mark it ``validation_status=pending``.

    The ``challenger`` alias moves to this version (a previous challenger keeps its tags but loses
    the alias). Refuses the current champion: it needs no validation. A previous challenger tagged
    ``promotion_status=promoted`` that is not the champion had its promotion interrupted before the
    alias moved (see the module docstring); it is re-tagged ``promotion_status=superseded`` with a
    reason. The alias moves last, so a crash before it leaves the previous challenger in place.

    Returns:
        ``{"model_name", "version", "alias", "validation_status"}``.

    Raises:
        LookupError: the model is not registered.
        ValueError: ``version`` is the champion.
    """
    client = _client(client)
    version = str(version)
    aliases = _aliases(client, model_name)
    if aliases.get(CHAMPION) == version:
        raise ValueError(f"{model_name} v{version} is already the champion; it cannot be the challenger")
    previous = aliases.get(CHALLENGER)
    if previous is not None and previous not in (version, aliases.get(CHAMPION)):
        previous_tags = client.get_model_version(model_name, previous).tags or {}
        if previous_tags.get(PROMOTION_STATUS_TAG) == PROMOTED:
            _set_version_tags(client, model_name, previous, {
                PROMOTION_STATUS_TAG: SUPERSEDED,
                PROMOTION_REASONS_TAG: f"its promotion was interrupted before the '{CHAMPION}' alias moved, "
                                       f"and v{version} replaced it as the challenger",
            })
    _set_version_tags(client, model_name, version, {VALIDATION_STATUS_TAG: PENDING})
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    log.info("%s v%s is the challenger (validation pending)", model_name, version)
    return {"model_name": model_name, "version": version, "alias": CHALLENGER, "validation_status": PENDING}


def window_from_run(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """The training window a run logged, as :func:`fraud_mlops.lifecycle.training.time_split` takes it:
    ``train_start``, ``train_end`` (dates), ``delay_days``, ``test_days`` and, when logged,
    ``known_compromised_days`` (ints).

    Raises:
        ValueError: the run lacks one of the window parameters.
    """
    params = client.get_run(run_id).data.params
    missing = [p for p in ("train_start", "train_end", "delay_days", "test_days") if p not in params]
    if missing:
        raise ValueError(
            f"training run {run_id} lacks parameter(s) {missing}; cannot re-derive its test window"
        )
    window: dict[str, Any] = {
        "train_start": dt.date.fromisoformat(params["train_start"]),
        "train_end": dt.date.fromisoformat(params["train_end"]),
        "delay_days": int(params["delay_days"]),
        "test_days": int(params["test_days"]),
    }
    # Runs logged before known_compromised_days existed blocked the cards of the whole window.
    known = params.get("known_compromised_days", "")
    if known not in ("", "None", "none"):
        window["known_compromised_days"] = int(known)
    return window


def _load_gold(gold: GoldSource, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    frame = gold(first_day, last_day) if callable(gold) else gold
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"gold source must give a pandas DataFrame, got {type(frame).__name__}")
    return frame


def score_model(model_uri: str, df: pd.DataFrame) -> np.ndarray:
    """Fraud probabilities of ``df`` by the pyfunc model at ``model_uri`` (only features are passed).

    Raises:
        ValueError: the model does not return one finite probability in [0, 1] per row.
    """
    model = mlflow.pyfunc.load_model(model_uri)
    scores = np.asarray(model.predict(model_input(df)), dtype="float64").reshape(-1)
    if len(scores) != len(df):
        raise ValueError(f"{model_uri} returned {len(scores)} scores for {len(df)} rows")
    if not np.all(np.isfinite(scores)) or scores.min(initial=0.0) < 0.0 or scores.max(initial=0.0) > 1.0:
        raise ValueError(f"{model_uri} does not return probabilities in [0, 1]")
    return scores


def _evaluate(model_uri: str, test_df: pd.DataFrame) -> dict[str, float]:
    scored = test_df[[DAY_COLUMN, CARD_COLUMN, LABEL_COLUMN]].copy()
    scored["score"] = score_model(model_uri, test_df)
    return evaluate_scores(scored)


def validate_challenger(
    model_name: str,
    gold: GoldSource,
    thresholds: GateThresholds | None = None,
    *,
    client: MlflowClient | None = None,
    shadow_source: Callable[[str, str], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Validate the ``challenger`` of ``model_name`` against the gate and record the outcome.

    The test window is re-derived from the challenger's training run parameters (``train_start``,
    ``train_end``, ``delay_days``, ``test_days``) with :func:`fraud_mlops.lifecycle.training.time_split` on the
    gold frame; ``gold`` may be a callable ``(first_day, last_day) -> DataFrame`` that receives
    :func:`fraud_mlops.lifecycle.training.required_date_range`. Challenger and (when one exists) champion are
    scored on that same window, and :func:`decide` judges.

    Shadow evidence: when ``shadow_source`` is given and there is a champion, it is called once as
    ``shadow_source(champion_version, challenger_version)`` (version strings) and must return the
    pooled shadow comparison (the dict of :func:`fraud_mlops.lifecycle.monitoring.shadow_summary`:
    ``n_days``, ``champion_average_precision``, ``challenger_average_precision``,
    ``champion_card_precision_top_100``, ``challenger_card_precision_top_100``) or None when the
    challenger was never scored in shadow; :func:`decide` reads it when
    ``thresholds.min_shadow_days > 0``. A callable keeps this module free of Spark
    (:func:`fraud_mlops.lifecycle.monitoring.shadow_source` builds one over the lakehouse).

    Recorded on the challenger version (tags): ``validation_status`` (``passed``/``failed``),
    ``validation_reasons`` (joined by ``"; "``), ``validation_run_id``, ``validation_test_start``,
    ``validation_test_end``, ``validation_champion_version`` (``none`` without champion),
    ``validation_<metric>`` (challenger) and ``validation_champion_<metric>`` (champion); values
    longer than 1000 characters end in ``…``. When shadow evidence was looked up (see above), also
    ``validation_shadow_days`` (labelled shadow days, ``0`` when ``shadow_source`` returned None) and
    ``validation_shadow_<metric>`` for ``champion_average_precision``,
    ``challenger_average_precision``, ``champion_card_precision_top_100`` and
    ``challenger_card_precision_top_100`` (``nan`` when undefined). The
    validation run (active experiment, run name ``validate-<model>-v<version>``) has the same
    outcome as tags, the window and thresholds as params and ``challenger_<metric>`` /
    ``champion_<metric>`` metrics (and ``shadow_days`` / ``shadow_<metric>`` with shadow evidence).
    While validating, the status is reset to ``pending``, so a validation that crashes never leaves
    a stale ``passed``.

    Returns:
        ``{"model_name", "challenger_version", "champion_version", "validation_status",
        "promote", "reasons", "challenger_metrics", "champion_metrics", "test_start", "test_end",
        "thresholds", "validation_run_id", "shadow"}`` (JSON-able; non-finite metrics become None;
        ``shadow`` is the shadow evidence, None when not looked up or not found).

    Raises:
        LookupError: the model has no ``challenger``.
        ValueError: the training run lacks window parameters, or the window is empty in gold.
    """
    client = _client(client)
    thresholds = thresholds or GateThresholds()
    aliases = _aliases(client, model_name)
    challenger_version = aliases.get(CHALLENGER)
    if challenger_version is None:
        raise LookupError(f"{model_name} has no '{CHALLENGER}' alias: run training first")
    champion_version = aliases.get(CHAMPION)
    challenger = client.get_model_version(model_name, challenger_version)
    if not challenger.run_id:
        raise ValueError(f"{model_name} v{challenger_version} has no source run; cannot re-derive its window")
    _set_version_tags(client, model_name, challenger_version, {VALIDATION_STATUS_TAG: PENDING})

    window = window_from_run(client, challenger.run_id)
    first_day, last_day = required_date_range(**window)
    gold_pdf = _load_gold(gold, first_day, last_day)
    _, test_df = time_split(gold_pdf, **window)
    test_start, test_end = evaluation_window(window["train_end"], window["delay_days"], window["test_days"])

    challenger_metrics = _evaluate(f"models:/{model_name}/{challenger_version}", test_df)
    champion_metrics = None
    if champion_version is not None:
        champion_metrics = _evaluate(f"models:/{model_name}/{champion_version}", test_df)
    shadow_checked = shadow_source is not None and champion_version is not None
    shadow = shadow_source(champion_version, challenger_version) if shadow_checked else None
    shadow_metrics: dict[str, float] = {}
    if shadow_checked:
        shadow_metrics["days"] = float(0 if shadow is None else shadow.get("n_days") or 0)
        for key in ("champion_average_precision", "challenger_average_precision",
                    "champion_card_precision_top_100", "challenger_card_precision_top_100"):
            shadow_metrics[key] = _metric(shadow, key)
    decision = decide(
        challenger_metrics, champion_metrics, thresholds, champion_version=champion_version, shadow=shadow
    )
    status = PASSED if decision.promote else FAILED
    reasons_text = _REASON_SEPARATOR.join(decision.reasons)

    with mlflow.start_run(run_name=f"validate-{model_name}-v{challenger_version}") as run:
        mlflow.set_tags(
            {
                "task": "validation",
                "model_name": model_name,
                "challenger_version": challenger_version,
                "champion_version": champion_version or "none",
                VALIDATION_STATUS_TAG: status,
                VALIDATION_REASONS_TAG: tag_value(reasons_text),
                "challenger_run_id": challenger.run_id,
            }
        )
        mlflow.log_params(
            {
                "test_start": test_start.isoformat(),
                "test_end": test_end.isoformat(),
                **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in window.items()},
                **thresholds.to_dict(),
            }
        )
        mlflow.log_metrics({f"challenger_{k}": float(v) for k, v in challenger_metrics.items()})
        if champion_metrics is not None:
            mlflow.log_metrics({f"champion_{k}": float(v) for k, v in champion_metrics.items()})
        if shadow_metrics:
            mlflow.log_metrics({f"shadow_{k}": v for k, v in shadow_metrics.items()})
        validation_run_id = run.info.run_id

    version_tags: dict[str, Any] = {
        "validation_run_id": validation_run_id,
        registry_tag_key("validation", "test_start"): test_start.isoformat(),
        registry_tag_key("validation", "test_end"): test_end.isoformat(),
        VALIDATION_CHAMPION_TAG: champion_version or "none",
        **{registry_tag_key("validation", k): repr(float(v)) for k, v in challenger_metrics.items()},
        **{
            registry_tag_key("validation", "champion", k): repr(float(v))
            for k, v in (champion_metrics or {}).items()
        },
        **{
            registry_tag_key("validation", "shadow", k): str(int(v)) if k == "days" else repr(float(v))
            for k, v in shadow_metrics.items()
        },
        VALIDATION_REASONS_TAG: reasons_text,
    }
    _set_version_tags(client, model_name, challenger_version, version_tags)
    # The status goes last: it is what promotion trusts.
    _set_version_tags(client, model_name, challenger_version, {VALIDATION_STATUS_TAG: status})
    log.info("%s v%s validation %s: %s", model_name, challenger_version, status, reasons_text)
    return {
        "model_name": model_name,
        "challenger_version": challenger_version,
        "champion_version": champion_version,
        "validation_status": status,
        "promote": decision.promote,
        "reasons": decision.reasons,
        "challenger_metrics": _json_metrics(challenger_metrics),
        "champion_metrics": None if champion_metrics is None else _json_metrics(champion_metrics),
        "test_start": test_start.isoformat(),
        "test_end": test_end.isoformat(),
        "thresholds": thresholds.to_dict(),
        "validation_run_id": validation_run_id,
        "shadow": None if shadow is None else _json_metrics(dict(shadow)),
    }


def promote_challenger(model_name: str, *, client: MlflowClient | None = None) -> dict[str, Any]:
    """Move ``champion`` to the challenger when, and only when, its validation passed.

    Promotion requires the challenger's ``validation_status`` tag to be ``passed`` and the current
    champion to be the one the validation compared against (``validation_champion_version``); a
    champion promoted in between forces a new validation. On success the version is tagged
    ``promotion_status=promoted``, ``promoted_at`` and ``previous_champion_version``, then
    ``champion`` moves to it (the commit point), then the ``challenger`` alias is removed. Otherwise
    ``champion`` is left untouched, ``challenger`` stays, and the challenger is tagged
    ``promotion_status=rejected`` with ``promotion_reasons``.

    Idempotent and resumable (fault points ``promote:after_tags``, ``promote:after_champion_alias``):
    after a crash before the alias moved a re-run promotes (the tags are overwritten); after a crash
    once it moved (``challenger`` and ``champion`` on the same version) a re-run removes the
    ``challenger`` alias and reports the promotion; once the promotion is complete (no ``challenger``)
    a re-run changes nothing.

    Returns:
        ``{"model_name", "promoted", "version", "champion_version", "previous_champion_version",
        "reasons"}``: ``version`` is the challenger (None without one), ``champion_version`` the
        champion after the call, ``previous_champion_version`` the champion before the promotion.

    Raises:
        LookupError: the model is not registered.
    """
    client = _client(client)
    aliases = _aliases(client, model_name)
    current_champion = aliases.get(CHAMPION)
    challenger_version = aliases.get(CHALLENGER)
    result: dict[str, Any] = {
        "model_name": model_name,
        "promoted": False,
        "version": challenger_version,
        "champion_version": current_champion,
        "previous_champion_version": current_champion,
        "reasons": [],
    }
    if challenger_version is None:
        result["reasons"] = [f"{model_name} has no '{CHALLENGER}' alias: nothing to promote"]
        return result

    tags = client.get_model_version(model_name, challenger_version).tags or {}
    if challenger_version == current_champion:
        # A promotion that moved the champion alias and died before removing the challenger alias
        # (its tags say promoted), or aliases set by hand: the champion is no challenger.
        client.delete_registered_model_alias(model_name, CHALLENGER)
        interrupted = tags.get(PROMOTION_STATUS_TAG) == PROMOTED
        previous = tags.get("previous_champion_version", "none") if interrupted else current_champion
        note = (f"v{challenger_version} is already the champion (an interrupted promotion); "
                f"the '{CHALLENGER}' alias is removed")
        reasons = [f"v{challenger_version} passed validation: " + tags.get(VALIDATION_REASONS_TAG, ""), note]
        log.info("%s v%s: %s", model_name, challenger_version, note)
        result.update(promoted=interrupted, previous_champion_version=None if previous == "none" else previous,
                      reasons=reasons if interrupted else [note])
        return result
    status = tags.get(VALIDATION_STATUS_TAG)
    reasons: list[str] = []
    if status != PASSED:
        reasons.append(f"validation_status of v{challenger_version} is {status or 'missing'}, not {PASSED}")
        reasons += [r for r in tags.get(VALIDATION_REASONS_TAG, "").split(_REASON_SEPARATOR) if r]
        if status in (None, PENDING):
            reasons.append("run the validation task first")
    else:
        validated_against = tags.get(VALIDATION_CHAMPION_TAG, "none")
        if validated_against != (current_champion or "none"):
            reasons.append(
                f"champion changed since validation (validated against {validated_against}, now "
                f"{current_champion or 'none'}); validate again"
            )

    if reasons:
        _set_version_tags(
            client,
            model_name,
            challenger_version,
            {PROMOTION_STATUS_TAG: REJECTED, PROMOTION_REASONS_TAG: _REASON_SEPARATOR.join(reasons)},
        )
        log.warning("%s v%s not promoted: %s", model_name, challenger_version, "; ".join(reasons))
        result["reasons"] = reasons
        return result

    # The tags first (a re-run overwrites them), then the one commit: the champion alias.
    _set_version_tags(
        client,
        model_name,
        challenger_version,
        {
            PROMOTION_STATUS_TAG: PROMOTED,
            PROMOTION_REASONS_TAG: "passed validation: " + tags.get(VALIDATION_REASONS_TAG, ""),
            "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "previous_champion_version": current_champion or "none",
        },
    )
    fault_point("promote:after_tags")
    client.set_registered_model_alias(model_name, CHAMPION, challenger_version)
    fault_point("promote:after_champion_alias")
    client.delete_registered_model_alias(model_name, CHALLENGER)
    reasons = [f"v{challenger_version} passed validation: " + tags.get(VALIDATION_REASONS_TAG, "")]
    log.info("%s v%s is the champion (was %s)", model_name, challenger_version, current_champion or "none")
    result.update(promoted=True, champion_version=challenger_version, reasons=reasons)
    return result


# ------------------------------------------------------------------------------------ task flows
@dataclass
class TrainingSummary:
    """What :func:`run_training` returns, as a dict via :meth:`to_dict`."""

    model_name: str | None
    candidate_model: str
    registered_version: str | None
    candidate_run_id: str
    candidate_model_uri: str
    window: dict[str, Any]
    n_train: int
    n_test: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    git_commit: str | None = None
    selection: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecisionSettings:
    """How training sets the candidate's decision threshold (:mod:`fraud_mlops.lifecycle.thresholds`).

    Attributes:
        method: ``alert_budget`` (the threshold that raises about ``alert_budget`` card alerts a day
            on out-of-sample scores) or ``cost`` (``cost_false_alert / (cost_false_alert +
            cost_missed_fraud)``).
        alert_budget: cards investigators review per day (>= 1); recorded with either method, as
            batch scoring marks the ``alert_budget`` highest-ranked cards of each day.
        cost_missed_fraud, cost_false_alert: the cost matrix (currency units, > 0), for ``cost``.
    """

    method: str = ALERT_BUDGET
    alert_budget: int = DEFAULT_ALERT_BUDGET
    cost_missed_fraud: float | None = None
    cost_false_alert: float | None = None

    def __post_init__(self) -> None:
        if self.method not in THRESHOLD_METHODS:
            raise ValueError(f"threshold method must be one of {list(THRESHOLD_METHODS)}, got {self.method!r}")
        if int(self.alert_budget) < 1:
            raise ValueError(f"alert_budget must be >= 1, got {self.alert_budget}")
        if self.method == COST and (self.cost_missed_fraud is None or self.cost_false_alert is None):
            raise ValueError("threshold method 'cost' needs cost_missed_fraud and cost_false_alert")


def _decision(settings: DecisionSettings, candidate_uri: str, after_training: pd.DataFrame) -> dict[str, Any]:
    """The candidate's decision threshold: the cost rule, or the alert-budget threshold of its scores
    on ``after_training``, the gold rows of the days after its training window (label-free)."""
    if settings.method == COST:
        threshold = cost_threshold(float(settings.cost_missed_fraud), float(settings.cost_false_alert))
        source = f"cost matrix: missed fraud {settings.cost_missed_fraud}, false alert {settings.cost_false_alert}"
    else:
        scored = after_training[[DAY_COLUMN, CARD_COLUMN]].assign(score=score_model(candidate_uri, after_training))
        threshold = alert_budget_threshold(scored, settings.alert_budget)
        days = pd.to_datetime(scored[DAY_COLUMN])
        source = (f"the model's scores of all {scored[DAY_COLUMN].nunique()} days after its training window "
                  f"({days.min().date()}..{days.max().date()}), no label used")
    return {"method": settings.method, "decision_threshold": float(threshold),
            "alert_budget": int(settings.alert_budget), "source": source}


def run_training(
    gold_pdf: pd.DataFrame,
    *,
    train_start: dt.date,
    train_end: dt.date,
    delay_days: int = 7,
    test_days: int = 7,
    model_name: str | None,
    candidate_model: str = XGBOOST,
    xgb_params: dict[str, Any] | None = None,
    lr_params: dict[str, Any] | None = None,
    table_versions: dict[str, int | None] | None = None,
    git_commit: str | None = None,
    selection: SelectionSettings | None = None,
    decision: DecisionSettings | None = None,
    known_compromised_days: int | None = None,
) -> dict[str, Any]:
    """Select, train and log XGBoost and the logistic-regression baseline; register the candidate.

    ``gold_pdf`` is the gold table as pandas, covering :func:`fraud_mlops.lifecycle.training.required_date_range`
    and, with ``selection``, :func:`fraud_mlops.lifecycle.selection.selection_date_range`.

    1. **Selection** (when ``selection`` is given with ``n_folds >= 1``): prequential validation over
       its search space (:func:`fraud_mlops.lifecycle.selection.run_selection`, one parent MLflow run
       with a nested run per candidate, the ablation and the backtest). The selected parameters of
       each model type in the space replace ``xgb_params`` / ``lr_params``; a model type absent from
       the space keeps the given parameters. The test window plays no part.
    2. **Refit** each model on the training window and evaluate it once on the test window, one run
       each (tags ``role=candidate|baseline``, ``selection_run_id``). Both see the same split, with
       ``known_compromised_days`` (see :func:`fraud_mlops.lifecycle.training.time_split`; None: the
       whole training window).
    3. **Decision threshold** of the candidate (``decision``, :class:`DecisionSettings`; alert budget of
       100 cards a day by default): the median over the days after the training window (the delay
       period and the test window, ``train_end + 1 .. test_end``) of the day's ``alert_budget``-th
       highest card score of the refitted candidate
       (:func:`fraud_mlops.lifecycle.thresholds.alert_budget_threshold`). These are out-of-sample
       scores of the very model that will be deployed, on the latest days there are, and no label is
       read, so the choice neither uses the test labels nor changes the (threshold-free) test metrics.
    4. **Registration**: the candidate is registered as ``model_name`` (when given), made the
       ``challenger`` (:func:`register_challenger`) and tagged ``decision_threshold``,
       ``alert_budget``, ``threshold_method`` and ``threshold_source``, which batch scoring reads.

    Returns:
        JSON-able ``{"model_name", "candidate_model", "registered_version", "candidate_run_id",
        "candidate_model_uri", "window": {"train_start", "train_end", "delay_days", "test_days",
        "known_compromised_days", "test_start", "test_end"}, "n_train", "n_test", "models":
        {model_type: {"run_id", "model_uri", "metrics", "params"}}, "git_commit", "selection" (None or
        :meth:`SelectionResult.to_dict`), "decision": {"method", "decision_threshold", "alert_budget",
        "source"}}``.

    Raises:
        ValueError: an unknown candidate model, or bad settings.
        fraud_mlops.lifecycle.training.TrainingDataError: a fold, the window or a backtest week that
            gold cannot fill.
    """
    if candidate_model not in MODEL_TYPES:
        raise ValueError(f"candidate_model must be one of {list(MODEL_TYPES)}, got {candidate_model!r}")
    decision = decision or DecisionSettings()
    train_df, test_df = time_split(gold_pdf, train_start, train_end, delay_days, test_days,
                                   known_compromised_days=known_compromised_days)
    test_start, test_end = evaluation_window(train_end, delay_days, test_days)
    commit = git_commit if git_commit is not None else current_git_commit()
    window = {
        "train_start": as_date(train_start, "train_start").isoformat(),
        "train_end": as_date(train_end, "train_end").isoformat(),
        "delay_days": int(delay_days),
        "test_days": int(test_days),
        "known_compromised_days": None if known_compromised_days is None else int(known_compromised_days),
        "test_start": test_start.isoformat(),
        "test_end": test_end.isoformat(),
    }
    params_by_model = {XGBOOST: dict(xgb_params or {}), LOGISTIC_REGRESSION: dict(lr_params or {})}
    selected = None
    if selection is not None and selection.n_folds >= 1:
        selected = run_selection(gold_pdf, train_start=as_date(train_start), train_end=as_date(train_end),
                                 delay_days=delay_days, test_days=test_days, settings=selection,
                                 candidate_model=candidate_model)
        for model_type, result in selected.selected.items():
            seed = params_by_model[model_type].get("seed")
            params_by_model[model_type] = {**result.candidate.params, **({"seed": seed} if seed is not None else {})}
    order = [candidate_model] + [m for m in MODEL_TYPES if m != candidate_model]
    models: dict[str, dict[str, Any]] = {}
    results = {}
    run_window = {k: ("none" if v is None else v) for k, v in window.items()}
    for model_type in order:
        is_candidate = model_type == candidate_model
        tags = {"role": "candidate" if is_candidate else "baseline"}
        if selected is not None:
            tags["selection_run_id"] = selected.run_id or "none"
        result = train_and_log(
            train_df,
            test_df,
            model_type,
            params_by_model[model_type],
            model_name=model_name if is_candidate else None,
            run_name=f"{model_type}-{window['train_start']}-{window['train_end']}",
            extra_params=run_window,
            table_versions=table_versions,
            git_commit=commit,
            tags=tags,
        )
        results[model_type] = result
        models[model_type] = {
            "run_id": result.run_id,
            "model_uri": result.model_uri,
            "metrics": _json_metrics(result.metrics),
            "params": result.params,
        }
    candidate = results[candidate_model]
    days = pd.to_datetime(gold_pdf[DAY_COLUMN]).dt.date
    after = gold_pdf.loc[(days > as_date(train_end)) & (days <= test_end)]
    decided = _decision(decision, candidate.model_uri, after)
    client = MlflowClient()
    client.log_param(candidate.run_id, DECISION_THRESHOLD_TAG, decided["decision_threshold"])
    client.log_param(candidate.run_id, ALERT_BUDGET_TAG, decided["alert_budget"])
    client.set_tag(candidate.run_id, THRESHOLD_SOURCE_TAG, decided["source"])
    registered = None
    if model_name is not None:
        if candidate.registered_version is None:
            raise RuntimeError(f"{candidate_model} model was not registered as {model_name}")
        registered = str(candidate.registered_version)
        _set_version_tags(client, model_name, registered, {
            DECISION_THRESHOLD_TAG: repr(decided["decision_threshold"]),
            ALERT_BUDGET_TAG: str(decided["alert_budget"]),
            THRESHOLD_METHOD_TAG: decided["method"],
            THRESHOLD_SOURCE_TAG: decided["source"],
        })
        register_challenger(model_name, registered)
    return TrainingSummary(
        model_name=model_name,
        candidate_model=candidate_model,
        registered_version=registered,
        candidate_run_id=candidate.run_id,
        candidate_model_uri=candidate.model_uri,
        window=window,
        n_train=len(train_df),
        n_test=len(test_df),
        models=models,
        git_commit=commit,
        selection=None if selected is None else selected.to_dict(),
        decision=decided,
    ).to_dict()


def run_validation(
    gold_pdf_loader: GoldSource, model_name: str, thresholds: GateThresholds | None = None
) -> dict[str, Any]:
    """Validate the challenger (see :func:`validate_challenger`); returns its summary dict."""
    return validate_challenger(model_name, gold_pdf_loader, thresholds)


def run_promotion(model_name: str) -> dict[str, Any]:
    """Promote the challenger when its validation passed (see :func:`promote_challenger`)."""
    return promote_challenger(model_name)
