"""Real-time scoring as a Databricks App: the entry point the App runs (``resources/serving.yml``).

The App runs ``python -m fraud_mlops.serving.databricks_app``. It serves the same FastAPI app as
``fraud-mlops serve`` (:func:`fraud_mlops.serving.app.create_app`) with uvicorn on the port the
platform gives (``DATABRICKS_APP_PORT``), on all interfaces (the Apps proxy forwards to it).

Configuration, all from the environment (the bundle's ``config.env`` of the app sets the first five):

``FRAUD_MLOPS_CATALOG``, ``FRAUD_MLOPS_SCHEMA``
    the target's Unity Catalog catalog and schema; the online store is the PostgreSQL database named
    like the catalog, its tables in the schema named like the schema (:mod:`fraud_mlops.online.store`).
``FRAUD_MLOPS_MODEL_NAME``
    the three-level name of the registered model whose ``@champion`` is served.
``FRAUD_MLOPS_LAKEBASE_INSTANCE``
    the Lakebase database instance of the store (its OAuth credential is asked for it).
``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``
    ``databricks`` and ``databricks-uc`` on Databricks (honoured by the scorer).
``FRAUD_MLOPS_POLL_SECONDS`` (default 30), ``FRAUD_MLOPS_LABEL_DELAY_DAYS`` (default 7)
    how often the ``@champion`` alias is re-checked; the features' label delay.
``DATABRICKS_APP_PORT`` (default 8000)
    set by the platform.

Where the store is: with ``FRAUD_MLOPS_ONLINE_STORE`` set (a local server: tests, a laptop), that
server. In a Databricks App with a database resource the platform sets ``PGHOST``, ``PGPORT``,
``PGUSER`` (the app's service principal), ``PGDATABASE`` and ``PGSSLMODE`` but no password: every
new connection then logs in with a fresh Lakebase OAuth credential of the app's service principal
(``generate_database_credential`` for ``FRAUD_MLOPS_LAKEBASE_INSTANCE``, through the SDK's default
authentication, i.e. the app's ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``), over TLS.

Before any model exists (the first deploy of a new environment) the App starts all the same: the
champion watcher finds no ``@champion`` alias, ``/score`` and ``/health`` answer 503 (``no champion``),
and the version the training job promotes is loaded within ``FRAUD_MLOPS_POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from fraud_mlops.online.postgres import ONLINE_STORE_ENV
from fraud_mlops.online.store import LAKEBASE_INSTANCE_ENV, OnlineStoreLocation

__all__ = ["AppSettings", "build_app", "main", "store_location"]

log = logging.getLogger("fraud_mlops.serving.databricks_app")

CATALOG_ENV = "FRAUD_MLOPS_CATALOG"
SCHEMA_ENV = "FRAUD_MLOPS_SCHEMA"
MODEL_NAME_ENV = "FRAUD_MLOPS_MODEL_NAME"
POLL_SECONDS_ENV = "FRAUD_MLOPS_POLL_SECONDS"
LABEL_DELAY_ENV = "FRAUD_MLOPS_LABEL_DELAY_DAYS"
#: The port a Databricks App must listen on (set by the platform).
APP_PORT_ENV = "DATABRICKS_APP_PORT"


@dataclass(frozen=True)
class AppSettings:
    """What the App serves and where, read from the environment by :meth:`from_env`.

    Attributes:
        catalog, schema: the target's catalog and schema (the store's database and schema).
        model_name: the registered model whose ``@champion`` is served.
        lakebase_instance: the Lakebase instance of the store (empty off Databricks).
        poll_seconds: how often the ``@champion`` alias is re-checked.
        label_delay_days: the features' label delay D.
        port: the port to listen on.
    """

    catalog: str
    schema: str
    model_name: str
    lakebase_instance: str = ""
    poll_seconds: float = 30.0
    label_delay_days: int = 7
    port: int = 8000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """The settings of this process.

        Raises:
            ValueError: a required variable is missing, or a number is not one.
        """
        env = os.environ if environ is None else environ
        missing = [name for name in (CATALOG_ENV, SCHEMA_ENV, MODEL_NAME_ENV) if not env.get(name, "").strip()]
        if missing:
            raise ValueError(f"missing environment variable(s) {', '.join(missing)} (the bundle's app config sets "
                             f"them, see resources/serving.yml)")
        try:
            return cls(catalog=env[CATALOG_ENV].strip(), schema=env[SCHEMA_ENV].strip(),
                       model_name=env[MODEL_NAME_ENV].strip(),
                       lakebase_instance=env.get(LAKEBASE_INSTANCE_ENV, "").strip(),
                       poll_seconds=float(env.get(POLL_SECONDS_ENV) or 30.0),
                       label_delay_days=int(env.get(LABEL_DELAY_ENV) or 7),
                       port=int(env.get(APP_PORT_ENV) or 8000))
        except ValueError as exc:
            raise ValueError(f"bad number in the app's environment: {exc}") from None


def store_location(settings: AppSettings, environ: Mapping[str, str] | None = None) -> OnlineStoreLocation:
    """The online store this App uses (see the module docstring).

    Raises:
        OnlineStoreUnavailableError: nothing says where the store is.
        ValueError: ``PGHOST`` is set but no Lakebase instance is named (no way to get a password).
    """
    import psycopg

    env = os.environ if environ is None else environ
    if env.get(ONLINE_STORE_ENV) or not env.get("PGHOST"):
        return OnlineStoreLocation.for_target(settings.catalog, settings.schema, settings.lakebase_instance)
    if not settings.lakebase_instance:
        raise ValueError(f"PGHOST is set (a Databricks App database resource) but {LAKEBASE_INSTANCE_ENV} is not: "
                         f"the app cannot ask for its Lakebase credential")
    conninfo = psycopg.conninfo.make_conninfo(host=env["PGHOST"], port=env.get("PGPORT") or "5432",
                                              user=env.get("PGUSER") or env.get("DATABRICKS_CLIENT_ID", ""))
    return OnlineStoreLocation(conninfo, settings.catalog, settings.schema, settings.lakebase_instance)


def build_app(settings: AppSettings, environ: Mapping[str, str] | None = None):
    """The FastAPI app of ``settings``: :func:`fraud_mlops.serving.app.build_scorer` (MLflow pointed at the
    registry, the process's ``MLFLOW_*`` variables winning; the store's tables created when missing; a connection pool;
    the ``@champion`` watcher, started with the app) on the store of :func:`store_location`.

    Raises:
        OnlineStoreUnavailableError: the store cannot be reached to create its tables.
    """
    from fraud_mlops.serving.app import build_scorer, create_app

    scorer = build_scorer(settings.catalog, settings.schema, settings.model_name,
                          poll_seconds=settings.poll_seconds, label_delay_days=settings.label_delay_days,
                          location=store_location(settings, environ))
    return create_app(scorer)


def main() -> int:
    """Serve until stopped. Exit status 2 when the environment is incomplete or the store unreachable."""
    import uvicorn

    from fraud_mlops.online.store import OnlineStoreUnavailableError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = AppSettings.from_env()
        app = build_app(settings)
    except (ValueError, OnlineStoreUnavailableError) as exc:
        log.error("cannot start real-time scoring: %s", exc)
        return 2
    log.info("serving @champion of %s from the online store %s.%s on port %d", settings.model_name,
             settings.catalog, settings.schema, settings.port)
    uvicorn.run(app, host="0.0.0.0", port=settings.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
