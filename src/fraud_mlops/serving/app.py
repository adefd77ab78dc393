"""The REST endpoint of real-time scoring (FastAPI), started by ``fraud-mlops serve``.

Routes:

``POST /score``
    body: one transaction as JSON with the landing file's columns known at authorization time,
    ``TRANSACTION_ID`` (int >= 0), ``TX_DATETIME`` (``"YYYY-MM-DD HH:MM:SS"``, local time),
    ``CUSTOMER_ID`` (int >= 0), ``TERMINAL_ID`` (int >= 0), ``TX_AMOUNT`` (number >= 0, currency
    units); ``TX_TIME_SECONDS`` and ``TX_TIME_DAYS`` may be sent and are ignored (the features use
    ``TX_DATETIME``). Any other field (the labels ``TX_FRAUD``, ``TX_FRAUD_SCENARIO`` above all) is
    refused. 200: the answer of :meth:`fraud_mlops.serving.scorer.TransactionScorer.score`.
    422: ``{"errors": [{"field", "message"}]}``, one entry per bad field. 409: the id was scored
    before with other values. 503: no champion yet, or the online store is down (nothing written).
``GET /health``
    200 when a champion is loaded and the store answers, else 503; the body says which.

The same app runs locally (uvicorn) and as a Databricks App (see ``resources/serving.yml``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraud_mlops.online.store import OnlineStore, OnlineStoreLocation, OnlineStoreUnavailableError
from fraud_mlops.serving.model import ChampionWatcher
from fraud_mlops.serving.scorer import (
    TX_DATETIME_FORMAT,
    NoChampionError,
    ScoringConflictError,
    ScoringSettings,
    TransactionScorer,
)

log = logging.getLogger("fraud_mlops.serving.app")

__all__ = ["TransactionRequest", "build_scorer", "create_app"]

_BIGINT = 2**63 - 1


class TransactionRequest(BaseModel):
    """The body of ``POST /score`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    TRANSACTION_ID: int = Field(ge=0, le=_BIGINT)
    TX_DATETIME: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
    CUSTOMER_ID: int = Field(ge=0, le=_BIGINT)
    TERMINAL_ID: int = Field(ge=0, le=_BIGINT)
    TX_AMOUNT: float = Field(ge=0, allow_inf_nan=False)
    TX_TIME_SECONDS: int | None = None
    TX_TIME_DAYS: int | None = None

    @field_validator("TX_DATETIME")
    @classmethod
    def _parseable(cls, value: str) -> str:
        try:
            dt.datetime.strptime(value, TX_DATETIME_FORMAT)
        except ValueError as exc:
            raise ValueError(f"not a valid date and time: {exc}") from None
        return value


def _errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        field = ".".join(loc) or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field (the request takes TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, " \
                      "TX_AMOUNT; labels are never sent for scoring)"
        elif error.get("type") == "missing":
            message = "required field is missing"
        out.append({"field": field, "message": message})
    return out


def create_app(scorer: TransactionScorer) -> FastAPI:
    """The FastAPI app over ``scorer``; its lifespan starts and stops the champion watcher.

    Args:
        scorer: the request scorer (its watcher is started when the app starts).

    Returns:
        The app (serve it with uvicorn).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scorer.watcher.start()
        try:
            yield
        finally:
            scorer.watcher.stop()

    app = FastAPI(title="fraud-mlops real-time scoring", version="1", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"errors": _errors(exc)})

    @app.post("/score")
    def score(body: TransactionRequest) -> JSONResponse:
        request = body.model_dump(include={"TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"})
        try:
            return JSONResponse(scorer.score(request))
        except ScoringConflictError as exc:
            return JSONResponse(status_code=409, content={"error": str(exc)})
        except NoChampionError as exc:
            return JSONResponse(status_code=503, content={"error": f"no champion model to score with: {exc}"},
                                headers={"Retry-After": "30"})
        except OnlineStoreUnavailableError as exc:
            log.error("%s", exc)
            return JSONResponse(status_code=503, content={"error": "the online feature store is unavailable; "
                                                          "nothing was scored or recorded"},
                                headers={"Retry-After": "5"})

    @app.get("/health")
    def health() -> JSONResponse:
        state = scorer.health()
        return JSONResponse(status_code=200 if state["status"] == "ok" else 503, content=state)

    return app


def build_scorer(catalog: str, schema: str, model_name: str, *, poll_seconds: float = 30.0,
                 lakebase_instance: str = "", pool_size: int = 8, label_delay_days: int = 7,
                 location: OnlineStoreLocation | None = None) -> TransactionScorer:
    """The scorer of a target: MLflow pointed at its registry, its online store opened (database and
    tables created when missing), the ``@champion`` watcher (not started; the app starts it).

    ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` in the environment win over the target's default
    (a Databricks App sets them to ``databricks``/``databricks-uc``). ``location`` overrides where the
    store is (default :meth:`OnlineStoreLocation.for_target`; the Databricks App passes its own).

    Raises:
        OnlineStoreUnavailableError: no store is configured, or it cannot be reached to create the tables.
    """
    import mlflow

    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.platform.config import LakehouseConfig

    if os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI", os.environ["MLFLOW_TRACKING_URI"]))
    else:
        configure_mlflow(LakehouseConfig.from_env(catalog, schema))
    location = location or OnlineStoreLocation.for_target(catalog, schema, lakebase_instance)
    location.ensure_database()
    store = OnlineStore(location.schema)
    with location.connect() as conn:
        store.create_tables(conn)
    pool = location.pool(min_size=2, max_size=pool_size)
    return TransactionScorer(pool, store, ChampionWatcher(model_name, poll_seconds),
                             ScoringSettings(label_delay_days=label_delay_days))


def scorer_summary(scorer: TransactionScorer) -> dict[str, Any]:
    """What ``fraud-mlops serve`` prints at start: the model and the store."""
    model = scorer.watcher.current()
    return {"model": None if model is None else f"{model.name} v{model.version}",
            "decision_threshold": None if model is None else model.threshold,
            "store_schema": scorer.store.schema}
