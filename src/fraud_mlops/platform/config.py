"""Where things live, per target: the one module that maps logical table names to storage.

On Databricks (Unity Catalog) a table is ``catalog.schema.table``. Locally the same name maps to a
folder ``<local_root>/<catalog>/<schema>/<table>`` holding a Delta table written by delta-rs, so the
local lakehouse mirrors the Unity Catalog layout. Unity Catalog volumes
(``/Volumes/<catalog>/<schema>/<volume>/...``) map to ``<local_root>/<catalog>/<schema>/<volume>/...``.

No task builds a path itself: it asks :class:`LakehouseConfig` for a :class:`TableRef`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from bundlekit.task_runtime import on_databricks

__all__ = ["LakehouseConfig", "TableRef", "databricks_connect_installed", "on_databricks", "uses_workspace"]

#: Environment variable naming the folder that holds the local lakehouse.
LOCAL_ROOT_ENV = "FRAUD_MLOPS_LOCAL_ROOT"
#: Environment variable forcing the table backend: ``spark`` (Spark's own Delta) or ``delta-rs``.
BACKEND_ENV = "FRAUD_MLOPS_TABLE_BACKEND"
#: Default local root, relative to the working directory (the repository root when run by the CLI).
DEFAULT_LOCAL_ROOT = ".lakehouse"

# Logical table names of the pipeline. Tasks refer to tables only through these constants.
BRONZE_TRANSACTIONS = "bronze_transactions"
BRONZE_INGESTION_LOG = "bronze_ingestion_log"
SILVER_TRANSACTIONS = "silver_transactions"
SILVER_QUARANTINE = "silver_transactions_quarantine"
SILVER_PROCESSED_FILES = "silver_processed_files"  # the silver checkpoint: rows in/out per bronze file
GOLD_FEATURES = "gold_transaction_features"
GOLD_DAILY_SUMMARY = "gold_daily_fraud_summary"
PREDICTIONS = "predictions"
#: Scores of the ``challenger`` on the same transactions (shadow mode): read by monitoring and the gate only.
PREDICTIONS_SHADOW = "predictions_shadow"
MONITORING_METRICS = "monitoring_metrics"
#: The champion's decisions per transaction with the label once it is known (null until then): the table
#: the Lakehouse Monitoring inference-log monitor watches (``resources/quality_monitor.yml``). Written by
#: the monitoring job (:mod:`fraud_mlops.lifecycle.inference_log`).
INFERENCE_LOG = "inference_log"


def databricks_connect_installed() -> bool:
    """True when ``databricks-connect`` is installed (it provides ``databricks.connect``): this process
    then works against a Databricks workspace from outside it (``make connect-setup``)."""
    try:
        return importlib.util.find_spec("databricks.connect") is not None
    except (ImportError, ValueError):
        return False


def uses_workspace() -> bool:
    """True when tables and MLflow are the workspace's: inside a Databricks Runtime, or through
    Databricks Connect. Otherwise everything is local (delta-rs folders, sqlite MLflow)."""
    return on_databricks() or databricks_connect_installed()


@dataclass(frozen=True)
class TableRef:
    """A table's Unity Catalog name and, locally, its Delta folder."""

    catalog: str
    schema: str
    name: str
    local_root: Path | None

    @property
    def full_name(self) -> str:
        """``catalog.schema.table``, as Unity Catalog names it."""
        return f"{self.catalog}.{self.schema}.{self.name}"

    @property
    def path(self) -> Path:
        """The local Delta folder ``<local_root>/<catalog>/<schema>/<table>``.

        Raises:
            ValueError: when the reference has no local root (a Unity Catalog table).
        """
        if self.local_root is None:
            raise ValueError(f"{self.full_name} is a Unity Catalog table; it has no local path")
        return self.local_root / self.catalog / self.schema / self.name


@dataclass(frozen=True)
class LakehouseConfig:
    """Catalog, schema and backend of one target.

    Attributes:
        catalog: Unity Catalog catalog (``fraud_dev``, ``fraud_staging``, ``fraud_prod`` ...).
        schema: schema inside the catalog.
        backend: ``"spark"`` to use Spark's own Delta and the metastore (Databricks, or any cluster
            with the Delta JARs), ``"delta-rs"`` for local folders written by delta-rs.
        local_root: folder of the local lakehouse (``delta-rs`` backend only).
    """

    catalog: str
    schema: str
    backend: str = "delta-rs"
    local_root: Path | None = None

    @classmethod
    def from_env(cls, catalog: str, schema: str) -> LakehouseConfig:
        """Build the config for this process: Spark's Delta (Unity Catalog) on Databricks and through
        Databricks Connect, delta-rs elsewhere.

        ``FRAUD_MLOPS_TABLE_BACKEND`` overrides the choice; ``FRAUD_MLOPS_LOCAL_ROOT`` sets the local
        folder (default ``./.lakehouse``).
        """
        backend = os.environ.get(BACKEND_ENV) or ("spark" if uses_workspace() else "delta-rs")
        if backend not in ("spark", "delta-rs"):
            raise ValueError(f"{BACKEND_ENV} must be 'spark' or 'delta-rs', got {backend!r}")
        root = None
        if backend == "delta-rs":
            root = Path(os.environ.get(LOCAL_ROOT_ENV, DEFAULT_LOCAL_ROOT)).resolve()
        return cls(catalog=catalog, schema=schema, backend=backend, local_root=root)

    def table(self, name: str) -> TableRef:
        """The reference of logical table ``name`` in this target's catalog and schema."""
        return TableRef(self.catalog, self.schema, name, self.local_root)

    def resolve_path(self, path: str) -> str:
        """Map a Unity Catalog volume path to the local mirror; other paths pass through.

        ``/Volumes/c/s/v/x`` becomes ``<local_root>/c/s/v/x`` on the delta-rs backend; on Databricks
        the path is returned unchanged. Relative local paths are made absolute.
        """
        if self.backend == "delta-rs" and path.startswith("/Volumes/"):
            assert self.local_root is not None
            return str(self.local_root / path[len("/Volumes/"):])
        if self.backend == "delta-rs" and "://" not in path:
            return str(Path(path).resolve())
        return path

    def mlflow_tracking_uri(self) -> str:
        """``databricks`` (the workspace's tracking server, also through Databricks Connect, with the same
        profile); ``sqlite:///<local_root>/mlflow.db`` locally."""
        if self.backend == "spark" and uses_workspace():
            return "databricks"
        root = self.local_root or Path(DEFAULT_LOCAL_ROOT).resolve()
        return f"sqlite:///{root / 'mlflow.db'}"

    def mlflow_registry_uri(self) -> str:
        """``databricks-uc`` (Unity Catalog models) on Databricks and through Databricks Connect; the
        sqlite store locally."""
        if self.backend == "spark" and uses_workspace():
            return "databricks-uc"
        return self.mlflow_tracking_uri()

    def mlflow_artifact_root(self) -> str | None:
        """Local folder for MLflow artifacts (``<local_root>/mlartifacts``); None on a workspace."""
        if self.backend == "spark" and uses_workspace():
            return None
        root = self.local_root or Path(DEFAULT_LOCAL_ROOT).resolve()
        return (root / "mlartifacts").as_uri()
