"""The Databricks App of real-time scoring (resources/serving.yml): its entry point, its environment
(serving_app/), and the step that puts the project's source into it.

The entry point runs here as the App runs it, ``python -m fraud_mlops.serving.databricks_app`` in a child
process with the platform's ``DATABRICKS_APP_PORT``, against a real PostgreSQL store and a fresh MLflow
registry: it starts before any model exists (the first deploy of a new environment) and answers 503
"no champion", then serves the version promoted while it runs. What only Databricks has (the Apps
runtime, Lakebase's OAuth login, Unity Catalog) is not exercised; the Lakebase connection settings are
checked as values.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.online.postgres import ONLINE_STORE_ENV, free_port
from fraud_mlops.online.store import OnlineStoreLocation
from fraud_mlops.serving import databricks_app, stage_app
from fraud_mlops.serving.databricks_app import AppSettings, store_location

from ..lifecycle.synthetic_gold import make_gold_pdf, mlflow_store_config

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "serving_app"
APP_ENV = {"FRAUD_MLOPS_CATALOG": "fraud_app_tests", "FRAUD_MLOPS_SCHEMA": "entry",
           "FRAUD_MLOPS_MODEL_NAME": "fraud_app_test_model"}


# --------------------------------------------------------------------------------------------------
# Settings and the store's location


def test_settings_come_from_the_environment():
    settings = AppSettings.from_env({**APP_ENV, "FRAUD_MLOPS_LAKEBASE_INSTANCE": "fraud-online-prod",
                                     "DATABRICKS_APP_PORT": "8123", "FRAUD_MLOPS_POLL_SECONDS": "5"})
    assert settings == AppSettings("fraud_app_tests", "entry", "fraud_app_test_model", "fraud-online-prod", 5.0, 7, 8123)
    assert AppSettings.from_env(APP_ENV).port == 8000 and AppSettings.from_env(APP_ENV).poll_seconds == 30.0
    with pytest.raises(ValueError, match="FRAUD_MLOPS_SCHEMA, FRAUD_MLOPS_MODEL_NAME"):
        AppSettings.from_env({"FRAUD_MLOPS_CATALOG": "c"})
    with pytest.raises(ValueError, match="bad number"):
        AppSettings.from_env({**APP_ENV, "DATABRICKS_APP_PORT": "http"})


def test_in_an_app_the_store_is_the_database_resource_with_a_lakebase_credential(monkeypatch):
    """The platform's PG* variables name host, port and role, but no password: the location carries the
    instance, so that every connection logs in with a fresh OAuth credential, over TLS."""
    import fraud_mlops.online.store as store_module

    env = {**APP_ENV, "FRAUD_MLOPS_LAKEBASE_INSTANCE": "fraud-online-prod", "PGHOST": "instance-1.database.example.com",
           "PGPORT": "5432", "PGUSER": "6f3c1a4e-0000-4000-8000-000000000001", "PGDATABASE": "fraud_app_tests",
           "PGSSLMODE": "require"}
    location = store_location(AppSettings.from_env(env), env)
    assert (location.database, location.schema, location.lakebase_instance) == ("fraud_app_tests", "entry",
                                                                                "fraud-online-prod")
    assert "host=instance-1.database.example.com" in location.conninfo and "port=5432" in location.conninfo
    assert "user=6f3c1a4e-0000-4000-8000-000000000001" in location.conninfo and "password" not in location.conninfo
    seen = {}
    monkeypatch.setattr(store_module, "_lakebase_token", lambda instance: f"token-for-{instance}")
    monkeypatch.setattr(store_module.psycopg.Connection, "connect",
                        classmethod(lambda cls, conninfo="", **kw: seen.update(conninfo=conninfo, **kw)))
    location.connect()
    assert (seen["password"], seen["sslmode"], seen["dbname"]) == ("token-for-fraud-online-prod", "require",
                                                                   "fraud_app_tests")


def test_pghost_without_an_instance_is_refused_and_a_local_server_wins(monkeypatch):
    with pytest.raises(ValueError, match="FRAUD_MLOPS_LAKEBASE_INSTANCE"):
        store_location(AppSettings.from_env(APP_ENV), {**APP_ENV, "PGHOST": "h"})
    monkeypatch.setenv(ONLINE_STORE_ENV, "postgresql://postgres@127.0.0.1:5999/postgres")
    location = store_location(AppSettings.from_env(APP_ENV), {**APP_ENV, "PGHOST": "h",
                                                             ONLINE_STORE_ENV: os.environ[ONLINE_STORE_ENV]})
    assert location.conninfo.endswith(":5999/postgres") and location.lakebase_instance == ""


# --------------------------------------------------------------------------------------------------
# The entry point, as the App runs it


def _register_champion(train_pdf, model_name: str) -> str:
    import mlflow
    from mlflow.tracking import MlflowClient

    from fraud_mlops.lifecycle.thresholds import DECISION_THRESHOLD_TAG
    from fraud_mlops.lifecycle.training import XGBOOST, FraudProbabilityModel, _log_pyfunc, fit_estimator

    estimator, _ = fit_estimator(XGBOOST, {"n_estimators": 10, "max_depth": 3}, train_pdf)
    with mlflow.start_run():
        info = _log_pyfunc(FraudProbabilityModel(estimator, model_type=XGBOOST), None, None, model_name)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(model_name, version, DECISION_THRESHOLD_TAG, "0.5")
    client.set_registered_model_alias(model_name, "champion", version)
    return version


def _wait_for(url: str, process: subprocess.Popen, status: int, timeout: float = 120.0) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the app exited with {process.returncode}"
        try:
            answer = requests.get(url, timeout=5)
            if answer.status_code == status:
                return answer
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer {status} within {timeout} s"
        time.sleep(0.3)


def test_the_app_starts_before_any_model_exists_then_serves_the_promoted_champion(online_store_url, tmp_path_factory):
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    location = OnlineStoreLocation(online_store_url, APP_ENV["FRAUD_MLOPS_CATALOG"], APP_ENV["FRAUD_MLOPS_SCHEMA"])
    location.ensure_database()
    with location.connect(autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {location.schema} CASCADE")
    config = mlflow_store_config(tmp_path_factory, "app-mlflow")
    configure_mlflow(config, "app-exp")  # an empty registry: the first deploy of a new environment
    port = free_port()
    env = {**os.environ, **APP_ENV, ONLINE_STORE_ENV: online_store_url, "DATABRICKS_APP_PORT": str(port),
           "FRAUD_MLOPS_POLL_SECONDS": "0.5", "MLFLOW_TRACKING_URI": config.mlflow_tracking_uri(),
           "MLFLOW_REGISTRY_URI": config.mlflow_registry_uri()}
    env.pop("PGHOST", None)
    process = subprocess.Popen([sys.executable, "-m", "fraud_mlops.serving.databricks_app"], env=env,
                               cwd=tmp_path_factory.mktemp("app-cwd"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    tx = {"TRANSACTION_ID": 91001, "TX_DATETIME": "2018-05-10 09:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 3,
          "TX_AMOUNT": 42.5}
    try:
        health = _wait_for(f"{url}/health", process, 503).json()
        assert health["status"] == "no_champion" and health["store"] == "ok" and health["model"] is None
        refused = requests.post(f"{url}/score", json=tx, timeout=10)
        assert refused.status_code == 503 and "champion" in refused.json()["error"]
        train = make_gold_pdf([dt.date(2018, 5, 9) - dt.timedelta(days=i) for i in range(4)], 120, seed=5)
        version = _register_champion(train, APP_ENV["FRAUD_MLOPS_MODEL_NAME"])
        assert _wait_for(f"{url}/health", process, 200).json()["model"]["version"] == version
        answer = requests.post(f"{url}/score", json=tx, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == version and answer.json()["decision_threshold"] == 0.5
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "serving @champion of fraud_app_test_model" in output, output


def test_the_entry_point_exits_2_when_the_environment_is_incomplete():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_MLOPS_")}
    done = subprocess.run([sys.executable, "-m", "fraud_mlops.serving.databricks_app"], check=False, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "FRAUD_MLOPS_CATALOG" in done.stderr


# --------------------------------------------------------------------------------------------------
# The App's environment (serving_app/) and the source the deploy copies into it


def test_stage_copies_the_project_source_and_replaces_the_previous_copy(tmp_path):
    (tmp_path / "app").mkdir()
    old = tmp_path / "app" / stage_app.STAGED_DIR / "src" / "gone.py"
    old.parent.mkdir(parents=True)
    old.write_text("stale")
    target = stage_app.stage(REPO_ROOT, tmp_path / "app")
    assert not old.exists()
    assert (target / "pyproject.toml").read_bytes() == (REPO_ROOT / "pyproject.toml").read_bytes()
    assert (target / "src" / "fraud_mlops" / "serving" / "databricks_app.py").is_file()
    assert (target / "src" / "bundlekit" / "task_runtime.py").is_file()  # fraud_mlops imports bundlekit
    assert not list(target.rglob("__pycache__")) and not list(target.rglob("*.egg-info"))
    assert stage_app.main(["--root", str(tmp_path / "nowhere")]) == 2


def _dependencies(project: dict) -> set[tuple[str, str, str, str]]:
    """A project's requirements (optional ones with their ``extra`` marker), as uv records them."""
    out = set()
    for extra, reqs in [(None, project["dependencies"]), *project.get("optional-dependencies", {}).items()]:
        for text in reqs:
            req = Requirement(text)
            marker = f"extra == '{extra}'" if extra else ""
            out.add((req.name.lower(), str(req.specifier), ",".join(sorted(req.extras)), marker))
    return out


def test_the_app_lock_matches_the_project_dependencies_and_versions():
    """serving_app/uv.lock must be re-made when the project's dependencies change (the App installs with
    ``uv``, which refuses a stale lock), and its pins are the project's own uv.lock's."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    app = tomllib.loads((APP_DIR / "pyproject.toml").read_text())
    lock = tomllib.loads((APP_DIR / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    locked = packages["fraud-mlops"]
    assert locked["source"] == {"directory": stage_app.STAGED_DIR}
    assert app["tool"]["uv"]["sources"]["fraud-mlops"] == {"path": stage_app.STAGED_DIR}
    recorded = {(r["name"], str(Requirement(f"x{r.get('specifier', '')}").specifier), ",".join(sorted(r.get("extras", []))),
                 r.get("marker", "")) for r in locked["metadata"]["requires-dist"]}
    assert recorded == _dependencies(project), "serving_app/uv.lock is stale: see serving_app/pyproject.toml"
    assert app["project"]["requires-python"] == lock["requires-python"] == "==3.12.*"
    assert set(app["project"]["dependencies"]) == {"fraud-mlops", "xgboost-cpu>=3.0,<4"}
    # the App's pins are the versions the tests run with (the project's uv.lock)
    project_lock = {}
    for p in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]:
        project_lock.setdefault(p["name"], set()).add(p["version"])
    for pin in app["tool"]["uv"]["constraint-dependencies"]:
        name, version = pin.split("==")
        assert version in project_lock[name], f"{pin}: the project's uv.lock has {sorted(project_lock[name])}"
        assert packages[name]["version"] == version, name


def test_the_staged_source_is_ignored_by_git_and_uploaded_by_the_bundle():
    from bundlekit.loader import load_bundle

    assert "fraud-mlops/" in (APP_DIR / ".gitignore").read_text().splitlines()
    bundle = load_bundle(REPO_ROOT, "staging", {}, env={}, user_name="alice@example.com")
    assert bundle.config["sync"]["include"] == ["serving_app/**"]
    assert bundle.config["artifacts"]["serving_app"]["build"] == "python src/fraud_mlops/serving/stage_app.py"
    assert databricks_app.__name__ == bundle.resources["apps"]["fraud_scoring"]["config"]["command"][-1]
