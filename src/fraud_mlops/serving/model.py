"""The model the endpoint serves: ``@champion`` with its recorded decision threshold, reloaded when the
alias moves, without dropping a request.

A :class:`ChampionWatcher` resolves the alias, loads that version and swaps it in as one immutable
:class:`ServedModel`; each request takes the current one once, so a request in flight finishes on the
model it started with while the next one gets the new champion. A background thread re-checks the
alias every ``poll_seconds``. Until a champion exists (the first deploy of a fresh environment) the
endpoint answers 503 and keeps checking.

A request scores one row. For an XGBoost champion, :class:`OneRowModel` computes its probability and
reason codes straight from the booster on a NumPy row, the same numbers as the pyfunc's ``predict``
and ``reason_codes`` on a one-row pandas DataFrame for a fifth of the CPU time (pandas' and
XGBoost's DataFrame handling cost about 4 ms per request, most of what a request costs); it is used
only when it gives exactly the pyfunc's numbers on check rows at load time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraud_mlops.lifecycle.registry import (
    CHAMPION_ALIAS,
    ChampionNotFoundError,
    champion_version,
    decision_for,
    load_pyfunc,
)

log = logging.getLogger("fraud_mlops.serving.model")

__all__ = ["ChampionWatcher", "OneRowModel", "ServedModel", "one_thread"]

#: Rows of the load-time check of :class:`OneRowModel` against the pyfunc.
_CHECK_ROWS = 32


def one_thread() -> contextlib.AbstractContextManager:
    """XGBoost limited to one thread for the calls inside the block (the setting is per thread, so it
    is set around each request's model calls, in the thread that makes them).

    One row gains nothing from parallel threads, while starting XGBoost's OpenMP workers for each call
    costs milliseconds when the machine is busy (2 cores serving concurrent requests: ``predict`` of
    one row 15 ms instead of 1.6 ms, ``reason_codes`` 20 ms instead of 4 ms; see
    ``benchmarks/bench_serving.py``). The numbers are the same: XGBoost parallelizes over rows.
    """
    try:
        import xgboost
    except ImportError:  # a champion without XGBoost (the logistic regression) where it is not installed
        return contextlib.nullcontext()
    return xgboost.config_context(nthread=1)


class OneRowModel:
    """The fraud probability and reason codes of ONE row of an XGBoost champion, from a NumPy row.

    The same computation as :class:`fraud_mlops.lifecycle.training.FraudProbabilityModel` (``predict``:
    ``predict_proba(X)[:, 1]`` of the features as float64; ``reason_codes``: the booster's
    ``pred_contribs``, largest first, ties to the earlier feature as
    :func:`fraud_mlops.lifecycle.explain.top_reasons`), without building pandas DataFrames.
    :meth:`for_model` builds one only when it reproduces the pyfunc exactly.
    """

    def __init__(self, estimator: Any, feature_columns: tuple[str, ...]):
        import xgboost

        self._dmatrix = xgboost.DMatrix
        self.estimator = estimator
        self.booster = estimator.get_booster()
        self.feature_columns = tuple(feature_columns)

    @classmethod
    def for_model(cls, python_model: Any, seed: int = 0) -> OneRowModel | None:
        """A one-row model of ``python_model`` when it is an XGBoost ``FraudProbabilityModel`` and gives
        exactly its ``predict`` and ``reason_codes`` on :data:`_CHECK_ROWS` random rows (missing
        values, counts, amounts, ratios), each scored as a one-row DataFrame; else None (the
        pyfunc is then called as it is)."""
        estimator = getattr(python_model, "estimator", None)
        if (getattr(python_model, "model_type", None) != "xgboost" or not hasattr(estimator, "predict_proba")
                or not hasattr(estimator, "get_booster") or not callable(getattr(python_model, "reason_codes", None))):
            return None
        import pandas as pd

        columns = tuple(python_model.feature_columns)
        rng = np.random.default_rng(seed)
        scale = rng.choice([1.0, 10.0, 200.0, 86_400.0], size=len(columns))
        try:
            one_row = cls(estimator, columns)
            with one_thread():
                for _ in range(_CHECK_ROWS):
                    values = [None if rng.random() < 0.15 else
                              (int(rng.integers(0, 30)) if rng.random() < 0.3 else float(rng.random() * s))
                              for s in scale]
                    features = dict(zip(columns, values, strict=True))
                    frame = pd.DataFrame([features], columns=list(columns))
                    expected = float(python_model.predict(None, frame)[0])
                    codes = python_model.reason_codes(frame, len(columns)).iloc[0]
                    expected_reasons = [(codes[f"reason_{i}"], float(codes[f"reason_{i}_contribution"]))
                                        for i in range(1, len(columns) + 1)]
                    probability, reasons = one_row.score(features, len(columns))
                    same = probability == expected or (np.isnan(probability) and np.isnan(expected))
                    if not same or reasons != expected_reasons:
                        log.warning("the one-row path differs from the pyfunc on %s; serving through the pyfunc",
                                    features)
                        return None
        except Exception as exc:  # noqa: BLE001 (an estimator this path does not know: use the pyfunc)
            log.warning("no one-row path for this model (%s: %s); serving through the pyfunc", type(exc).__name__, exc)
            return None
        return one_row

    def score(self, features: dict[str, Any], k: int) -> tuple[float, list[tuple[str, float]]]:
        """``(probability, [(feature, contribution), ...])`` of one row: ``features`` maps every feature
        column to a number or None (missing); the ``k`` largest contributions (log-odds), largest first."""
        x = np.array([[np.nan if features[c] is None else features[c] for c in self.feature_columns]], dtype="float64")
        probability = float(np.asarray(self.estimator.predict_proba(x)[:, 1], dtype="float64")[0])
        matrix = self._dmatrix(x, missing=np.nan, feature_names=self.booster.feature_names, nthread=1)
        contributions = np.asarray(self.booster.predict(matrix, pred_contribs=True), dtype="float64")[0, :-1]
        order = np.argsort(-contributions, kind="stable")[:k]
        return probability, [(self.feature_columns[j], float(contributions[j])) for j in order]


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version.

    Attributes:
        name: registered model name; version: its version (string).
        python_model: the unwrapped :class:`fraud_mlops.lifecycle.training.FraudProbabilityModel`
            (``predict`` gives the fraud probability, ``reason_codes`` the top contributions).
        threshold: decision threshold in [0, 1] (the version's ``decision_threshold`` tag);
        alert_budget: cards per day the threshold was set for; threshold_source: where it came from.
        loaded_at: when it was loaded (UTC).
        one_row: its :class:`OneRowModel` (XGBoost), or None: score through ``python_model``.
    """

    name: str
    version: str
    python_model: Any
    threshold: float
    alert_budget: int
    threshold_source: str
    loaded_at: dt.datetime
    one_row: OneRowModel | None = None


class ChampionWatcher:
    """Keeps the current ``@champion`` of ``model_name`` loaded.

    Args:
        model_name: the registered model (MLflow must already point at its registry:
            :func:`fraud_mlops.lifecycle.tracking.configure_mlflow`).
        poll_seconds: how often the background thread re-checks the alias (> 0).
    """

    def __init__(self, model_name: str, poll_seconds: float = 30.0):
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds}")
        self.model_name = model_name
        self.poll_seconds = float(poll_seconds)
        self._current: ServedModel | None = None
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> ServedModel | None:
        """The model to score with now, or None while there is no champion."""
        return self._current

    @property
    def last_error(self) -> str | None:
        """Why the last check found no usable champion (None after a successful one)."""
        return self._last_error

    def refresh(self) -> bool:
        """Resolve the alias and load its version when it changed; returns True when a model was swapped in.

        A failed load keeps the previous model serving (logged, in :attr:`last_error`).
        """
        with self._lock:  # one refresh at a time; requests never wait on this lock
            try:
                version = champion_version(self.model_name)
            except ChampionNotFoundError as exc:
                self._last_error = str(exc)
                return False
            except Exception as exc:  # noqa: BLE001 (registry unreachable, any client error): keep serving
                self._last_error = f"cannot resolve @{CHAMPION_ALIAS}: {type(exc).__name__}: {exc}"
                log.warning(self._last_error)
                return False
            current = self._current
            if current is not None and current.version == version:
                self._last_error = None
                return False
            try:
                python_model = load_pyfunc(f"models:/{self.model_name}/{version}").unwrap_python_model()
                threshold, budget, source = decision_for(self.model_name, version, None, None)
            except Exception as exc:  # noqa: BLE001 (a broken version must not stop the watcher)
                self._last_error = f"cannot load {self.model_name} v{version}: {exc}"
                log.error(self._last_error)
                return False
            self._current = ServedModel(self.model_name, version, python_model, threshold, budget, source,
                                        dt.datetime.now(dt.UTC), OneRowModel.for_model(python_model))
            self._last_error = None
            log.info("serving %s v%s (threshold %.6f, %s)", self.model_name, version, threshold, source)
            return True

    def start(self) -> None:
        """Load the champion now (if any) and start the background re-checks."""
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background re-checks."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
