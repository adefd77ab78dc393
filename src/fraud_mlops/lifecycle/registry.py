"""The model registry side of scoring, without Spark: aliases, loading a version, its decision settings.

Batch scoring (:mod:`fraud_mlops.lifecycle.scoring`) and the REST endpoint (:mod:`fraud_mlops.serving`)
both resolve ``@champion`` and its recorded decision threshold here; the endpoint's process has no
Spark, so nothing here imports it.
"""

from __future__ import annotations

import logging
from typing import Any

from fraud_mlops.lifecycle.thresholds import (
    ALERT_BUDGET_TAG,
    DECISION_THRESHOLD_TAG,
    DEFAULT_ALERT_BUDGET,
    THRESHOLD_METHOD_TAG,
    THRESHOLD_SOURCE_TAG,
)

log = logging.getLogger("fraud_mlops.lifecycle.registry")

#: Registry alias of the model that scores production traffic.
CHAMPION_ALIAS = "champion"
#: Registry alias of the candidate scored in shadow mode.
CHALLENGER_ALIAS = "challenger"
#: Threshold used when neither the job nor the model version gives one.
FALLBACK_THRESHOLD = 0.5


class ChampionNotFoundError(LookupError):
    """Raised when the registered model has no version with the ``champion`` alias."""


class ModelLoadError(RuntimeError):
    """Raised when a registered model version's artifact cannot be loaded (deleted, corrupt, or
    needing a package that is not installed)."""


def load_pyfunc(model_uri: str):
    """``mlflow.pyfunc.load_model(model_uri)``, with a clear error when it cannot be loaded.

    Raises:
        ModelLoadError: the artifact is missing or cannot be loaded; the message names the URI.
    """
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises MlflowException, OSError, ImportError ... for one cause
        raise ModelLoadError(f"cannot load model {model_uri}: {type(exc).__name__}: {exc}") from exc


def champion_uri(model_name: str) -> str:
    """The MLflow URI of the champion alias of ``model_name``: ``models:/<model_name>@champion``.

    Args:
        model_name: registered model name (``catalog.schema.model`` in Unity Catalog).

    Returns:
        The alias URI (string). It is not checked against the registry; use :func:`champion_version`
        to resolve (and verify) the version it points to.

    Raises:
        ValueError: ``model_name`` is empty.
    """
    if not model_name or not model_name.strip():
        raise ValueError("model_name must be a non-empty registered model name")
    return f"models:/{model_name}@{CHAMPION_ALIAS}"


def champion_version(model_name: str) -> str:
    """Resolve the ``champion`` alias of ``model_name`` to a version number.

    Uses ``MlflowClient().get_model_version_by_alias`` against the current registry URI (set it with
    :func:`fraud_mlops.lifecycle.tracking.configure_mlflow`).

    Returns:
        The version number as a string (for example ``"3"``).

    Raises:
        ChampionNotFoundError: the model does not exist or no version carries the ``champion`` alias
            (promote a version first).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    champion_uri(model_name)  # validates the name
    try:
        mv = MlflowClient().get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except MlflowException as exc:
        raise ChampionNotFoundError(
            f"registered model {model_name!r} has no version with alias '{CHAMPION_ALIAS}' "
            f"(promote a model version first; deleting a version also removes its aliases): {exc.message}"
        ) from exc
    return str(mv.version)


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"decision threshold must be in [0, 1], got {threshold!r}")
    return value


def version_decision(model_name: str, version: str) -> dict[str, Any]:
    """The decision settings training recorded on a model version (its tags).

    Returns:
        ``{"decision_threshold": float | None, "alert_budget": int | None, "threshold_method": str | None,
        "threshold_source": str | None}``; None where the version has no such tag (a model registered
        before thresholds were recorded).
    """
    from mlflow.tracking import MlflowClient

    tags = MlflowClient().get_model_version(model_name, version).tags or {}

    def number(key: str, cast):
        try:
            return cast(float(tags[key]))
        except (KeyError, TypeError, ValueError):
            return None

    return {
        "decision_threshold": number(DECISION_THRESHOLD_TAG, float),
        "alert_budget": number(ALERT_BUDGET_TAG, int),
        "threshold_method": tags.get(THRESHOLD_METHOD_TAG),
        "threshold_source": tags.get(THRESHOLD_SOURCE_TAG),
    }


def challenger_version(model_name: str) -> str | None:
    """The version the ``challenger`` alias points to, or None when there is none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, CHALLENGER_ALIAS).version)
    except MlflowException:
        return None


def decision_for(model_name: str, version: str, threshold: float | None, alert_budget: int | None) -> tuple[float, int, str]:
    """The decision threshold, alert budget and where the threshold came from, for scoring ``version``.

    Args:
        model_name: registered model name.
        version: the version that scores.
        threshold: an explicit threshold in [0, 1] (a job parameter), or None for the version's tag.
        alert_budget: an explicit budget (cards per day), or None for the version's tag (else 100).

    Returns:
        ``(threshold, alert_budget, source)``: the version's ``decision_threshold`` tag unless
        overridden, :data:`FALLBACK_THRESHOLD` when it has none (logged as a warning).

    Raises:
        ValueError: the threshold is outside [0, 1].
    """
    recorded = version_decision(model_name, version)
    if threshold is not None:
        source = "job parameter decision_threshold"
    elif recorded["decision_threshold"] is not None:
        threshold = recorded["decision_threshold"]
        source = f"v{version} tag decision_threshold ({recorded['threshold_method']}: {recorded['threshold_source']})"
    else:
        threshold = FALLBACK_THRESHOLD
        source = f"fallback {FALLBACK_THRESHOLD}: v{version} has no decision_threshold tag"
        log.warning("%s v%s has no decision_threshold tag: using %s", model_name, version, FALLBACK_THRESHOLD)
    budget = alert_budget if alert_budget is not None else (recorded["alert_budget"] or DEFAULT_ALERT_BUDGET)
    return _check_threshold(threshold), int(budget), source
