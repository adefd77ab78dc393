"""Against a real workspace, through Databricks Connect (skipped unless one is configured).

Run them from the Databricks Connect environment with a dev workspace and a scratch schema the
identity may write to::

    make connect-setup
    export DATABRICKS_CONFIG_PROFILE=<profile>            # with cluster_id or serverless_compute_id = auto
    export FRAUD_MLOPS_TEST_CATALOG=fraud_dev FRAUD_MLOPS_TEST_SCHEMA=fraud_it
    .venv-connect/bin/python -m pytest -m workspace tests/workspace

They write one small Delta table (``<catalog>.<schema>.connect_it_<random>``) through the Spark
backend of the table layer (delta-spark's ``DeltaTable`` API), read it back, and drop it.
"""

from __future__ import annotations

import os
import uuid

import pytest

from fraud_mlops.platform.config import databricks_connect_installed

pytestmark = pytest.mark.workspace


def _skip_reason() -> str | None:
    if not databricks_connect_installed():
        return "databricks-connect is not installed (make connect-setup, then run with .venv-connect/bin/python)"
    from fraud_mlops.platform.session import SessionConfigError, select_session

    try:
        select_session()
    except SessionConfigError as exc:
        return f"no workspace configured: {exc}"
    if not (os.environ.get("FRAUD_MLOPS_TEST_CATALOG") and os.environ.get("FRAUD_MLOPS_TEST_SCHEMA")):
        return "set FRAUD_MLOPS_TEST_CATALOG and FRAUD_MLOPS_TEST_SCHEMA to a scratch schema"
    return None


SKIP = _skip_reason()


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_tables_round_trip_through_the_spark_backend_on_the_workspace():
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark, is_spark_connect

    spark = get_spark("fraud-mlops-workspace-test")
    assert is_spark_connect(spark)
    config = LakehouseConfig.from_env(os.environ["FRAUD_MLOPS_TEST_CATALOG"], os.environ["FRAUD_MLOPS_TEST_SCHEMA"])
    assert config.backend == "spark"
    lakehouse = Lakehouse(spark, config)
    name = f"connect_it_{uuid.uuid4().hex[:8]}"
    try:
        first = spark.createDataFrame([(1, 0.1), (2, 0.2)], "transaction_id long, score double")
        lakehouse.overwrite(name, first)
        assert lakehouse.count(name) == 2 and lakehouse.version(name) == 0
        update = spark.createDataFrame([(2, 0.9), (3, 0.3)], "transaction_id long, score double")
        assert lakehouse.merge(name, update, ["transaction_id"], "s.score <> t.score") == {"inserted": 1, "updated": 1}
        assert lakehouse.read(name, version=0).count() == 2
        assert sorted(r["score"] for r in lakehouse.read(name).collect()) == [0.1, 0.3, 0.9]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {lakehouse.ref(name).full_name}")
