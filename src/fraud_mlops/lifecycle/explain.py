"""Reason codes: how much each feature pushed one transaction's score towards fraud.

A contribution is measured on the model's *margin* (log-odds of fraud, ``logit(p)``), where the
contributions of all features plus a bias add up exactly to the margin:

* **XGBoost**: the booster's ``predict(..., pred_contribs=True)``, that is TreeSHAP (S. Lundberg,
  G. Erion, S.-I. Lee, *Consistent Individualized Feature Attribution for Tree Ensembles*, 2018;
  https://xgboost.readthedocs.io/en/stable/prediction.html#prediction-options): one SHAP value per
  feature and the expected margin as the bias.
* **Logistic regression**: ``coefficient x standardised value`` per feature (after the pipeline's
  median imputation and standard scaling), the intercept as the bias.

The *reason codes* of a transaction are the ``k`` features with the largest contributions (the ones
that raised its fraud score most), as fraud investigators read them next to an alert.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Number of reason codes written next to a flagged transaction.
DEFAULT_REASON_CODES = 3


def reason_columns(k: int = DEFAULT_REASON_CODES) -> list[str]:
    """``["reason_1", "reason_1_contribution", ..., "reason_k", "reason_k_contribution"]``."""
    cols: list[str] = []
    for i in range(1, k + 1):
        cols += [f"reason_{i}", f"reason_{i}_contribution"]
    return cols


def feature_contributions(estimator: Any, model_type: str, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-row, per-feature contributions to the margin, and the bias.

    Args:
        estimator: a fitted ``xgboost.XGBClassifier`` (``model_type="xgboost"``) or the scikit-learn
            ``Pipeline(imputer, scaler, classifier)`` of the logistic regression
            (``model_type="logistic_regression"``).
        model_type: ``xgboost`` or ``logistic_regression``.
        features: the estimator's input, float64, columns in the order it was fitted on (NaN = missing).

    Returns:
        ``(contributions, bias)``: an ``(n_rows, n_features)`` float64 array in log-odds units and an
        ``(n_rows,)`` array; ``contributions.sum(axis=1) + bias`` is the margin ``logit(p)`` of each row.

    Raises:
        ValueError: an unknown ``model_type``.
    """
    if len(features) == 0:
        return np.zeros((0, features.shape[1])), np.zeros(0)
    if model_type == "xgboost":
        import xgboost

        matrix = xgboost.DMatrix(features, missing=np.nan)
        values = np.asarray(estimator.get_booster().predict(matrix, pred_contribs=True), dtype="float64")
        return values[:, :-1], values[:, -1]
    if model_type == "logistic_regression":
        imputed = estimator.named_steps["imputer"].transform(features)
        scaled = estimator.named_steps["scaler"].transform(imputed)
        classifier = estimator.named_steps["classifier"]
        contributions = np.asarray(scaled, dtype="float64") * np.asarray(classifier.coef_, dtype="float64")[0]
        bias = np.full(len(features), float(np.asarray(classifier.intercept_)[0]))
        return contributions, bias
    raise ValueError(f"unknown model_type {model_type!r}")


def top_reasons(contributions: np.ndarray, feature_names: list[str] | tuple[str, ...],
                k: int = DEFAULT_REASON_CODES) -> pd.DataFrame:
    """The ``k`` largest contributions of each row, as reason codes.

    Args:
        contributions: ``(n_rows, n_features)`` array from :func:`feature_contributions`.
        feature_names: the features' names, in the arrays' column order.
        k: number of reason codes (>= 1; at most the number of features).

    Returns:
        A DataFrame with :func:`reason_columns` (``reason_i`` string: feature name; ``reason_i_contribution``
        double: its contribution in log-odds), ``reason_1`` the largest. Ties go to the earlier feature.

    Raises:
        ValueError: ``k`` out of range or a shape mismatch.
    """
    names = list(feature_names)
    if contributions.ndim != 2 or contributions.shape[1] != len(names):
        raise ValueError(f"contributions of shape {contributions.shape} do not match {len(names)} features")
    if not 1 <= k <= len(names):
        raise ValueError(f"k must be in [1, {len(names)}], got {k}")
    # Stable sort on the negated values: the largest first, ties in feature order.
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    out: dict[str, Any] = {}
    for i in range(k):
        idx = order[:, i]
        out[f"reason_{i + 1}"] = [names[j] for j in idx]
        out[f"reason_{i + 1}_contribution"] = contributions[np.arange(len(idx)), idx].astype("float64")
    return pd.DataFrame(out, columns=reason_columns(k))


def mean_absolute_contributions(contributions: np.ndarray, feature_names: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """``feature`` / ``mean_abs_contribution`` (log-odds), largest first: the global importance
    that the per-transaction reason codes add up to."""
    values = np.abs(contributions).mean(axis=0) if len(contributions) else np.zeros(len(feature_names))
    table = pd.DataFrame({"feature": list(feature_names), "mean_abs_contribution": values})
    return table.sort_values("mean_abs_contribution", ascending=False, kind="mergesort").reset_index(drop=True)
