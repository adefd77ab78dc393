"""The model the endpoint serves: ``@champion`` with its recorded decision threshold, reloaded when the
alias moves, without dropping a request.

A :class:`ChampionWatcher` resolves the alias, loads that version and swaps it in as one immutable
:class:`ServedModel`; each request takes the current one once, so a request in flight finishes on the
model it started with while the next one gets the new champion. A background thread re-checks the
alias every ``poll_seconds``. Until a champion exists (the first deploy of a fresh environment) the
endpoint answers 503 and keeps checking.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from fraud_mlops.lifecycle.registry import (
    CHAMPION_ALIAS,
    ChampionNotFoundError,
    champion_version,
    decision_for,
    load_pyfunc,
)

log = logging.getLogger("fraud_mlops.serving.model")

__all__ = ["ChampionWatcher", "ServedModel"]


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
    """

    name: str
    version: str
    python_model: Any
    threshold: float
    alert_budget: int
    threshold_source: str
    loaded_at: dt.datetime


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
                                        dt.datetime.now(dt.UTC))
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
