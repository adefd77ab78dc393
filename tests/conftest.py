"""Shared fixtures: one local SparkSession for the whole test run, a temporary lakehouse, the
online store's PostgreSQL server."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("SPARK_MASTER", "local[2]")
os.environ.setdefault("SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("SPARK_DRIVER_MEMORY", "2g")
# Local job locks of in-process runs go to a folder of this test session, not the repository's lakehouse.
os.environ.setdefault("BUNDLEKIT_LOCK_DIR", tempfile.mkdtemp(prefix="bundlekit-locks-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_LANDING = REPO_ROOT / "data" / "transactions"


@pytest.fixture(scope="session")
def spark():
    from fraud_mlops.platform.session import get_spark

    session = get_spark("fraud-mlops-tests")
    yield session


@pytest.fixture(scope="session")
def online_store_url():
    """The URL of a real PostgreSQL server for the online store: ``$FRAUD_MLOPS_ONLINE_STORE`` (the
    server ``make test`` starts), else one this session starts in a temporary folder on a free port
    and stops at its end (``pytest`` run directly)."""
    from fraud_mlops.online.postgres import ONLINE_STORE_ENV, temporary_postgres

    if os.environ.get(ONLINE_STORE_ENV):
        yield os.environ[ONLINE_STORE_ENV]
        return
    with temporary_postgres() as server:
        yield server.url


@pytest.fixture()
def lakehouse(spark, tmp_path, monkeypatch):
    """A :class:`Lakehouse` on the delta-rs backend in a fresh temporary folder."""
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse

    root = tmp_path / "lakehouse"
    monkeypatch.setenv("FRAUD_MLOPS_LOCAL_ROOT", str(root))
    monkeypatch.delenv("FRAUD_MLOPS_TABLE_BACKEND", raising=False)
    return Lakehouse(spark, LakehouseConfig.from_env("fraud_test", "fraud"))
