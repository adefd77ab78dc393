"""Which session and which backend each configuration selects (offline: nothing connects)."""

from __future__ import annotations

import pytest

from fraud_mlops.platform import config as C
from fraud_mlops.platform.session import (
    CLASSIC_LOCAL,
    DATABRICKS_CONNECT,
    DATABRICKS_RUNTIME,
    SPARK_CONNECT,
    SessionConfigError,
    is_spark_connect,
    select_session,
)

PROFILES = """\
[dev-cluster]
host = https://dev.example.cloud.databricks.com
auth_type = databricks-cli
cluster_id = 0101-120000-abcdefgh

[dev-serverless]
host = https://dev.example.cloud.databricks.com
serverless_compute_id = auto

[no-compute]
host = https://dev.example.cloud.databricks.com
"""


@pytest.fixture()
def cfg(tmp_path):
    path = tmp_path / "databrickscfg"
    path.write_text(PROFILES, encoding="utf-8")
    return {"DATABRICKS_CONFIG_FILE": str(path)}


def test_local_sessions():
    assert select_session({}, connect_installed=False).kind == CLASSIC_LOCAL
    assert select_session({"SPARK_MASTER": "local[2]"}, connect_installed=False).remote == "local[2]"
    choice = select_session({"SPARK_REMOTE": "local[2]"}, connect_installed=False)
    assert (choice.kind, choice.remote, choice.is_connect) == (SPARK_CONNECT, "local[2]", True)


def test_inside_a_databricks_runtime_the_runtime_session_wins():
    env = {"DATABRICKS_RUNTIME_VERSION": "client.5.1", "SPARK_REMOTE": "local[2]"}
    assert select_session(env, connect_installed=True).kind == DATABRICKS_RUNTIME


def test_databricks_connect_from_a_profile_cluster_or_serverless(cfg):
    cluster = select_session({**cfg, "DATABRICKS_CONFIG_PROFILE": "dev-cluster"}, connect_installed=True)
    assert cluster.kind == DATABRICKS_CONNECT and cluster.is_connect
    assert cluster.remote == "https://dev.example.cloud.databricks.com cluster 0101-120000-abcdefgh"
    serverless = select_session({**cfg, "DATABRICKS_CONFIG_PROFILE": "dev-serverless"}, connect_installed=True)
    assert serverless.remote == "https://dev.example.cloud.databricks.com serverless"
    # Environment variables come before the profile, as in the Databricks SDK.
    env = {**cfg, "DATABRICKS_CONFIG_PROFILE": "no-compute", "DATABRICKS_SERVERLESS_COMPUTE_ID": "auto"}
    assert select_session(env, connect_installed=True).remote.endswith(" serverless")
    env = {"DATABRICKS_HOST": "https://h.example.com", "DATABRICKS_CLUSTER_ID": "c-1",
           "DATABRICKS_CONFIG_FILE": cfg["DATABRICKS_CONFIG_FILE"]}
    assert select_session(env, connect_installed=True).remote == "https://h.example.com cluster c-1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABRICKS_CONFIG_PROFILE": "no-compute"},
         "needs compute on https://dev.example.cloud.databricks.com: set DATABRICKS_CLUSTER_ID"),
        ({"DATABRICKS_CONFIG_PROFILE": "missing"}, "has no profile [missing]"),
        ({}, "needs a workspace: set DATABRICKS_HOST"),
        ({"DATABRICKS_CONFIG_PROFILE": "dev-cluster", "DATABRICKS_SERVERLESS_COMPUTE_ID": "auto"},
         "both a cluster"),
        ({"DATABRICKS_CONFIG_PROFILE": "no-compute", "DATABRICKS_SERVERLESS_COMPUTE_ID": "yes"}, "must be 'auto'"),
    ],
)
def test_incomplete_databricks_connect_configuration_names_the_missing_setting(cfg, env, message):
    with pytest.raises(SessionConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        select_session({**cfg, **env}, connect_installed=True)


def test_backend_and_mlflow_follow_the_session(monkeypatch, tmp_path):
    monkeypatch.delenv(C.BACKEND_ENV, raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setenv(C.LOCAL_ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(C, "databricks_connect_installed", lambda: False)
    local = C.LakehouseConfig.from_env("fraud_dev", "fraud")
    assert local.backend == "delta-rs" and local.mlflow_tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setattr(C, "databricks_connect_installed", lambda: True)  # a laptop on a workspace
    remote = C.LakehouseConfig.from_env("fraud_dev", "fraud")
    assert remote.backend == "spark" and remote.local_root is None
    assert (remote.mlflow_tracking_uri(), remote.mlflow_registry_uri()) == ("databricks", "databricks-uc")
    assert remote.mlflow_artifact_root() is None


def test_the_test_session_is_the_mode_the_suite_runs_in(spark):
    import os

    assert is_spark_connect(spark) == bool(os.environ.get("SPARK_REMOTE"))
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
