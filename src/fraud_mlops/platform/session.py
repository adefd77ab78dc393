"""The Spark session of this process, and which kind it is.

Four kinds, chosen from the environment (:func:`select_session`), so that the same task code runs
everywhere:

``databricks-runtime``
    inside a Databricks Runtime (job cluster, serverless job, notebook): the session the runtime
    made. On serverless compute that is a Spark Connect session.
``databricks-connect``
    ``databricks-connect`` is installed (``make connect-setup``, ``.venv-connect``): a
    ``DatabricksSession`` on a workspace, from the standard Databricks configuration:
    ``DATABRICKS_CONFIG_PROFILE`` (a profile of ``~/.databrickscfg``) or ``DATABRICKS_HOST`` with
    its authentication, then ``DATABRICKS_CLUSTER_ID`` (classic compute) or
    ``DATABRICKS_SERVERLESS_COMPUTE_ID=auto`` (serverless), from the environment or the profile.
``spark-connect``
    ``SPARK_REMOTE`` is set (pyspark's standard switch): a Spark Connect session. With
    ``SPARK_REMOTE=local[2]`` pyspark starts its own local Connect server, which is how this
    repository proves offline that its code runs under Spark Connect, as on serverless and
    Databricks Connect.
``classic-local``
    otherwise: a classic ``local[*]`` session (``SPARK_MASTER`` overrides the master).

Every kind gets the session time zone UTC, so that the naive timestamps of the landing files are
never shifted.
"""

from __future__ import annotations

import configparser
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from fraud_mlops.platform.config import databricks_connect_installed, on_databricks

DATABRICKS_RUNTIME = "databricks-runtime"
DATABRICKS_CONNECT = "databricks-connect"
SPARK_CONNECT = "spark-connect"
CLASSIC_LOCAL = "classic-local"


class SessionConfigError(RuntimeError):
    """The environment asks for a session it does not configure completely (the message names the
    missing setting)."""


@dataclass(frozen=True)
class SessionChoice:
    """Which session :func:`get_spark` builds: ``kind`` (one of the four kinds above) and where it
    connects (``remote``: the Spark Connect URL, or the Databricks host and compute, or the master)."""

    kind: str
    remote: str

    @property
    def is_connect(self) -> bool:
        """True when the Python code talks to Spark through Spark Connect (Databricks Connect,
        ``SPARK_REMOTE``); on a Databricks Runtime it depends on the compute (serverless is)."""
        return self.kind in (DATABRICKS_CONNECT, SPARK_CONNECT)


def _profile_settings(env: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """The profile named by ``DATABRICKS_CONFIG_PROFILE`` (or ``DEFAULT`` when the file has one) and
    its settings from ``DATABRICKS_CONFIG_FILE`` (default ``~/.databrickscfg``).

    Raises:
        SessionConfigError: a profile is named but the file does not define it.
    """
    path = Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()
    parser = configparser.ConfigParser(default_section="__none__")
    if path.is_file():
        parser.read(path, encoding="utf-8")
    named = env.get("DATABRICKS_CONFIG_PROFILE")
    if named:
        if not parser.has_section(named):
            raise SessionConfigError(
                f"DATABRICKS_CONFIG_PROFILE={named!r}, but {path} has no profile [{named}] "
                "(create it with `databricks auth login --profile {named}` or `databricks configure`)"
            )
        return named, dict(parser[named])
    if parser.has_section("DEFAULT"):
        return "DEFAULT", dict(parser["DEFAULT"])
    return None, {}


def databricks_connect_target(env: Mapping[str, str] | None = None) -> str:
    """Where Databricks Connect would connect: ``<host> cluster <id>`` or ``<host> serverless``.

    Checks what can be checked offline, in the order the Databricks SDK reads it (environment
    variables first, then the profile): a workspace host, and exactly one kind of compute.

    Raises:
        SessionConfigError: no host; neither a cluster nor serverless; both; a serverless value
            other than ``auto``; a profile that does not exist.
    """
    env = os.environ if env is None else env
    profile, settings = _profile_settings(env)
    where = f"profile [{profile}]" if profile else "no profile (~/.databrickscfg has none)"

    def setting(env_name: str, key: str) -> str | None:
        return env.get(env_name) or settings.get(key) or None

    host = setting("DATABRICKS_HOST", "host")
    if not host:
        raise SessionConfigError(
            f"Databricks Connect needs a workspace: set DATABRICKS_HOST (with its authentication) or "
            f"DATABRICKS_CONFIG_PROFILE to a profile with a host; found {where}")
    cluster = setting("DATABRICKS_CLUSTER_ID", "cluster_id")
    serverless = setting("DATABRICKS_SERVERLESS_COMPUTE_ID", "serverless_compute_id")
    if serverless is not None and serverless != "auto":
        raise SessionConfigError(f"DATABRICKS_SERVERLESS_COMPUTE_ID / serverless_compute_id must be 'auto', "
                                 f"got {serverless!r}")
    if cluster and serverless:
        raise SessionConfigError(
            "Databricks Connect: both a cluster (DATABRICKS_CLUSTER_ID / cluster_id) and serverless "
            "(DATABRICKS_SERVERLESS_COMPUTE_ID / serverless_compute_id) are set; keep one")
    if not cluster and not serverless:
        raise SessionConfigError(
            f"Databricks Connect needs compute on {host}: set DATABRICKS_CLUSTER_ID=<cluster id> (classic) or "
            f"DATABRICKS_SERVERLESS_COMPUTE_ID=auto (serverless), or cluster_id / serverless_compute_id = auto "
            f"in the profile; found {where}")
    return f"{host} cluster {cluster}" if cluster else f"{host} serverless"


def select_session(env: Mapping[str, str] | None = None, *, connect_installed: bool | None = None) -> SessionChoice:
    """Which session :func:`get_spark` builds in this environment, without starting anything.

    Args:
        env: the environment variables (default ``os.environ``).
        connect_installed: whether ``databricks-connect`` is installed (default: look it up).

    Raises:
        SessionConfigError: Databricks Connect is installed but not configured completely
            (see :func:`databricks_connect_target`).
    """
    env = os.environ if env is None else env
    if env.get("DATABRICKS_RUNTIME_VERSION"):
        return SessionChoice(DATABRICKS_RUNTIME, f"Databricks Runtime {env['DATABRICKS_RUNTIME_VERSION']}")
    if databricks_connect_installed() if connect_installed is None else connect_installed:
        return SessionChoice(DATABRICKS_CONNECT, databricks_connect_target(env))
    if env.get("SPARK_REMOTE"):
        return SessionChoice(SPARK_CONNECT, env["SPARK_REMOTE"])
    return SessionChoice(CLASSIC_LOCAL, env.get("SPARK_MASTER", "local[*]"))


def is_spark_connect(spark: SparkSession) -> bool:
    """True when ``spark`` is a Spark Connect session (serverless, Databricks Connect, ``SPARK_REMOTE``)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _quiet_classic_logs(spark: SparkSession) -> None:
    """Classic sessions only: only errors from the JVM's log4j. A Spark Connect session has no
    SparkContext (its server logs on its side), so there is nothing to set."""
    if not is_spark_connect(spark):
        spark.sparkContext.setLogLevel("ERROR")


#: Settings of the local JVM, fixed when it starts (classic session, or pyspark's local Connect server).
_STATIC_CONFIGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Dlog4j.rootLogger=ERROR",
}


def _local_configs(connect: bool) -> dict[str, str]:
    """Settings of a local session: few shuffle partitions, Arrow transfers, no UI.

    Spark Connect always moves data as Arrow, so it has no Arrow switches."""
    configs = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8"),
        "spark.default.parallelism": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY", "6g"),
        **_STATIC_CONFIGS,
    }
    if not connect:
        configs["spark.sql.execution.arrow.pyspark.enabled"] = "true"
        configs["spark.sql.execution.arrow.pyspark.fallback.enabled"] = "false"
    return configs


def get_spark(app_name: str = "fraud-mlops") -> SparkSession:
    """Return this process's Spark session (see :func:`select_session` for which), with the
    session time zone UTC.

    An active session (a notebook's, a test's) is returned as it is, time zone set.

    Raises:
        SessionConfigError: Databricks Connect is installed but its configuration is incomplete.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    choice = select_session()
    if choice.kind == DATABRICKS_RUNTIME or on_databricks():
        spark = SparkSession.builder.getOrCreate()
    elif choice.kind == DATABRICKS_CONNECT:
        from databricks.connect import DatabricksSession  # type: ignore[import-not-found]

        spark = DatabricksSession.builder.getOrCreate()  # reads the configuration checked above
    else:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        connect = choice.kind == SPARK_CONNECT
        builder = SparkSession.builder.appName(app_name)
        builder = builder.remote(choice.remote) if connect else builder.master(choice.remote)
        for key, value in _local_configs(connect).items():
            builder = builder.config(key, value)
        with warnings.catch_warnings():
            # pyspark starts its local Connect server with every setting, then sets them again on the
            # session, where the JVM's (driver memory, UI, Java options) cannot change: it warns, harmlessly.
            warnings.filterwarnings("ignore", message="Failed to set spark\\.(driver|ui)\\.", category=UserWarning)
            spark = builder.getOrCreate()
        _quiet_classic_logs(spark)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark
