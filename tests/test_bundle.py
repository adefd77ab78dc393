"""This repository's bundle (databricks.yml + resources/*.yml), loaded offline. No Spark."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from bundlekit.jobspec import dynamic_references
from bundlekit.loader import BundleError, find_bundle_root, git_details, load_bundle
from bundlekit.runner import check_job, job_parameter_defaults

REPO_ROOT = Path(__file__).resolve().parents[1]
PROD_VARS = {"prod_service_principal": "11111111-2222-3333-4444-555555555555", "alert_email": "oncall@example.com"}
JOBS = ("ingestion", "training", "batch_scoring", "monitoring", "online_features")
RUNTIME_OF_RECORD = "18.x-cpu-ml-scala2.13"  # Databricks Runtime 18 LTS ML
WHEEL = "./dist/*.whl"  # the whl artifact's output, relative to databricks.yml (where compute is set)
SERVERLESS_ENVIRONMENT = {
    "environment_key": "default",
    "spec": {"environment_version": "5", "dependencies": [WHEEL, "xgboost-cpu>=3.0,<4"]},
}
COMPUTE_KEYS = ("job_cluster_key", "environment_key", "existing_cluster_id", "new_cluster", "libraries")

# The contract with fraud_mlops.jobs: each task gets exactly these named parameters.
EXPECTED_NAMED_PARAMETERS = {
    ("ingestion", "bronze"): ("fraud-bronze", ["catalog", "schema", "landing_path", "file_pattern"]),
    ("ingestion", "silver"): ("fraud-silver", ["catalog", "schema"]),
    ("ingestion", "gold"): ("fraud-gold", ["catalog", "schema", "label_delay_days"]),
    ("training", "train"): ("fraud-train", [
        "catalog", "schema", "experiment_name", "model_name", "train_start", "train_end", "train_days", "delay_days",
        "test_days", "known_compromised_days", "candidate_model", "n_folds", "search_space", "n_random", "n_jobs",
        "ablation", "backtest_weeks", "backtest_start", "threshold_method", "alert_budget", "cost_missed_fraud",
        "cost_false_alert", "n_estimators", "max_depth", "learning_rate", "seed", "git_commit"]),
    ("training", "validate"): ("fraud-validate", [
        "catalog", "schema", "experiment_name", "model_name", "min_average_precision", "min_roc_auc",
        "max_ap_degradation", "min_shadow_days", "delay_days"]),
    ("training", "promote"): ("fraud-promote", ["catalog", "schema", "model_name"]),
    ("batch_scoring", "score"): ("fraud-score", [
        "catalog", "schema", "model_name", "score_start", "score_end", "decision_threshold", "alert_budget",
        "shadow"]),
    ("monitoring", "monitor"): ("fraud-monitor", [
        "catalog", "schema", "model_name", "window_start", "window_end", "psi_alert_threshold",
        "psi_retrain_threshold", "min_average_precision", "fail_on_alert", "label_delay_days",
        "max_alerts_over_budget"]),
    ("online_features", "publish"): ("fraud-publish-online", [
        "catalog", "schema", "publish_start", "publish_end", "lakebase_instance", "label_delay_days"]),
}
# Named parameters set at deploy time (bundle values), not from job parameters.
DEPLOY_TIME_NAMED_PARAMETERS = {("training", "train"): {"git_commit": "${bundle.git.commit}"}}


def _load(target: str, overrides: dict[str, str] | None = None, **kw):
    return load_bundle(REPO_ROOT, target, overrides or {}, env={}, user_name="alice@example.com", **kw)


# --------------------------------------------------------------------------------------------------
# Our bundle


@pytest.mark.parametrize(
    ("target", "catalog", "mode", "pause"),
    [("dev", "fraud_dev", "development", "PAUSED"),
     ("staging", "fraud_staging", None, "PAUSED"),
     ("prod", "fraud_prod", "production", "UNPAUSED")],
)
def test_bundle_loads_for_each_target(target, catalog, mode, pause):
    b = _load(target, PROD_VARS if target == "prod" else None)
    assert b.name == "fraud-mlops"
    assert b.target == target
    assert b.mode == mode
    assert set(b.jobs) == set(JOBS)
    assert b.variables["catalog"] == catalog
    assert b.variables["landing_path"] == f"/Volumes/{catalog}/fraud/landing/transactions"
    assert b.variables["model_name"] == f"{catalog}.fraud.fraud_detector"
    assert b.variables["experiment_name"] == f"/Shared/fraud-mlops/{target}/fraud-detector"
    for job in b.jobs.values():
        assert job["name"].startswith(f"[{target}] fraud-")
        assert job["schedule"]["pause_status"] == pause
        defaults = job_parameter_defaults(job)
        assert defaults["catalog"] == catalog
        assert defaults["schema"] == "fraud"
        assert "${" not in str(job).replace("${resources.jobs.training.id}", "")


def test_default_target_is_dev():
    assert load_bundle(REPO_ROOT, None, {}, env={}).target == "dev"


def test_prod_runs_as_service_principal_and_needs_deploy_time_values():
    with pytest.raises(BundleError) as err:
        _load("prod")
    assert "prod_service_principal" in str(err.value) and "alert_email" in str(err.value)
    assert "databricks.yml" in str(err.value) and "--var" in str(err.value)
    b = _load("prod", PROD_VARS)
    assert "run_as" not in b.config  # named job by job (resources/prod_identity.yml), see test_validate
    assert all(job["run_as"] == {"service_principal_name": PROD_VARS["prod_service_principal"]} for job in b.jobs.values())
    assert b.config["workspace"]["root_path"].endswith("/.bundle/fraud-mlops/prod")
    assert b.jobs["ingestion"]["email_notifications"]["on_failure"] == ["oncall@example.com"]
    # BUNDLE_VAR_<name> works like --var
    env = {f"BUNDLE_VAR_{k}": v for k, v in PROD_VARS.items()}
    assert load_bundle(REPO_ROOT, "prod", {}, env=env).variables["alert_email"] == "oncall@example.com"


def test_dev_alert_email_is_the_current_user():
    b = _load("dev")
    assert b.jobs["training"]["email_notifications"]["on_failure"] == ["alice@example.com"]
    assert "run_as" not in b.config


def test_variable_overrides_flow_into_dependent_variables_and_jobs():
    b = _load("staging", {"catalog": "sandbox", "schema": "fraud_x"})
    assert b.variables["landing_path"] == "/Volumes/sandbox/fraud_x/landing/transactions"
    assert b.variables["model_name"] == "sandbox.fraud_x.fraud_detector"
    defaults = job_parameter_defaults(b.jobs["ingestion"])
    assert defaults["landing_path"] == "/Volumes/sandbox/fraud_x/landing/transactions"
    assert job_parameter_defaults(b.jobs["training"])["model_name"] == "sandbox.fraud_x.fraud_detector"
    assert b.resources["registered_models"]["fraud_detector"]["catalog_name"] == "sandbox"


def test_undeclared_override_is_an_error():
    with pytest.raises(BundleError, match="not declared"):
        _load("dev", {"no_such_variable": "x"})


def test_unknown_target_and_unknown_job():
    with pytest.raises(BundleError, match="unknown target 'qa'.*dev, staging, prod"):
        _load("qa")
    with pytest.raises(BundleError, match="unknown job 'nope'.*ingestion"):
        _load("dev").job("nope")


def test_every_job_has_notifications_schedule_and_the_wheel():
    b = _load("dev")
    for job in b.jobs.values():
        assert job["max_concurrent_runs"] == 1
        assert job["email_notifications"]["on_failure"] == [b.variables["alert_email"]]
        sched = job["schedule"]
        assert sched["timezone_id"] == "UTC" and sched["quartz_cron_expression"]
        assert job["tags"]["project"] == "fraud-mlops"
        for task in job["tasks"]:
            if "python_wheel_task" in task:
                assert task["python_wheel_task"]["package_name"] == "fraud_mlops"
    crons = {k: j["schedule"]["quartz_cron_expression"] for k, j in b.jobs.items()}
    assert crons["ingestion"] == "0 0 2 * * ?"
    assert crons["batch_scoring"] == "0 0 4 * * ?"
    assert crons["monitoring"] == "0 0 6 * * ?"


def test_tasks_get_exactly_the_agreed_named_parameters():
    b = _load("dev")
    seen = set()
    for (job_key, task_key), (entry_point, names) in EXPECTED_NAMED_PARAMETERS.items():
        task = next(t for t in b.jobs[job_key]["tasks"] if t["task_key"] == task_key)
        pwt = task["python_wheel_task"]
        assert pwt["entry_point"] == entry_point
        assert list(pwt["named_parameters"]) == names
        deploy_time = DEPLOY_TIME_NAMED_PARAMETERS.get((job_key, task_key), {})
        assert pwt["named_parameters"] == {
            n: b.config["bundle"]["git"]["commit"] if deploy_time.get(n) == "${bundle.git.commit}"
            else f"{{{{job.parameters.{n}}}}}" for n in names}
        seen.add((job_key, task_key))
    wheel_tasks = {(k, t["task_key"]) for k, j in b.jobs.items() for t in j["tasks"] if "python_wheel_task" in t}
    assert wheel_tasks == seen


def test_training_records_the_deployed_git_commit():
    """``git_commit`` of the train task is ``${bundle.git.commit}``: the CLI fills in the deploying
    checkout's commit, the local loader the repository's HEAD (empty outside a git checkout)."""
    raw = yaml.safe_load((REPO_ROOT / "resources" / "training_job.yml").read_text())
    train = raw["resources"]["jobs"]["training"]["tasks"][0]
    assert train["python_wheel_task"]["named_parameters"]["git_commit"] == "${bundle.git.commit}"
    assert "git_commit" not in {p["name"] for p in raw["resources"]["jobs"]["training"]["parameters"]}
    for target in ("dev", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        task = b.jobs["training"]["tasks"][0]
        assert task["python_wheel_task"]["named_parameters"]["git_commit"] == git_details(REPO_ROOT)["commit"]


# --------------------------------------------------------------------------------------------------
# Compute: serverless in dev, classic job clusters on the runtime of record in staging and prod


def _wheel_tasks(job):
    return [t for t in job["tasks"] if "python_wheel_task" in t]


def test_job_files_hold_no_compute():
    """Compute is chosen per target in databricks.yml; resources/ has one definition of each job."""
    for key in JOBS:
        job = yaml.safe_load((REPO_ROOT / "resources" / f"{key}_job.yml").read_text())["resources"]["jobs"][key]
        assert "job_clusters" not in job and "environments" not in job
        for task in job["tasks"]:
            assert not set(task) & set(COMPUTE_KEYS), (key, task["task_key"])


def test_runtime_of_record_is_dbr_18_lts_ml():
    b = _load("staging")
    assert b.variables["spark_version"] == RUNTIME_OF_RECORD
    raw = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
    assert "Databricks Runtime 18 LTS ML" in raw["variables"]["spark_version"]["description"]


def test_dev_runs_on_serverless():
    b = _load("dev")
    for key, job in b.jobs.items():
        assert job["environments"] == [SERVERLESS_ENVIRONMENT], key
        assert "job_clusters" not in job, key
        assert _wheel_tasks(job)
        for task in _wheel_tasks(job):
            assert task["environment_key"] == "default", (key, task["task_key"])
            assert "libraries" not in task and "job_cluster_key" not in task, (key, task["task_key"])
        # The wheel dependency is written in databricks.yml, so it resolves against the bundle root.
        assert b.source_of(f"resources.jobs.{key}.environments[0].spec.dependencies[0]") == REPO_ROOT / "databricks.yml"
        assert (REPO_ROOT / WHEEL).parent == REPO_ROOT / "dist"


@pytest.mark.parametrize("target", ["staging", "prod"])
def test_staging_and_prod_run_on_classic_job_clusters_of_the_runtime_of_record(target):
    b = _load(target, PROD_VARS if target == "prod" else None)
    for key, job in b.jobs.items():
        assert "environments" not in job, key
        clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
        assert len(clusters) == 1, key
        for cluster in clusters.values():
            assert cluster == {"spark_version": RUNTIME_OF_RECORD, "node_type_id": "i3.xlarge", "num_workers": 1,
                               "data_security_mode": "SINGLE_USER", "custom_tags": {"project": "fraud-mlops"}}
        for i, task in enumerate(job["tasks"]):
            if "python_wheel_task" not in task:
                continue
            assert task["job_cluster_key"] in clusters, (key, task["task_key"])
            assert task["libraries"] == [{"whl": WHEEL}], (key, task["task_key"])
            assert "environment_key" not in task
            assert b.source_of(f"resources.jobs.{key}.tasks[{i}].libraries[0].whl") == REPO_ROOT / "databricks.yml"


def test_staging_runs_exactly_the_compute_prod_runs():
    staging, prod = _load("staging"), _load("prod", PROD_VARS)
    for key in JOBS:
        assert staging.jobs[key]["job_clusters"] == prod.jobs[key]["job_clusters"]
        assert staging.jobs[key]["tasks"] == prod.jobs[key]["tasks"]


@pytest.mark.parametrize("target", ["dev", "staging", "prod"])
def test_condition_and_run_job_tasks_get_no_compute(target):
    b = _load(target, PROD_VARS if target == "prod" else None)
    tasks = {t["task_key"]: t for t in b.jobs["monitoring"]["tasks"]}
    for name in ("retrain_check", "retrain"):
        assert not set(tasks[name]) & set(COMPUTE_KEYS), (target, name)


def test_entry_points_exist_in_pyproject_scripts_in_the_module_of_their_job():
    """Each job's tasks run entry points of ``fraud_mlops.jobs.<job key>``: one module per job."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    b = _load("dev")
    used = [(key, t["python_wheel_task"]["entry_point"]) for key, j in b.jobs.items() for t in j["tasks"]
            if "python_wheel_task" in t]
    assert used
    for job_key, ep in used:
        assert ep in scripts, f"{ep} is not in [project.scripts]"
        assert scripts[ep].startswith(f"fraud_mlops.jobs.{job_key}:"), (job_key, scripts[ep])


def test_every_job_parameter_reference_is_declared():
    b = _load("dev")
    for key, job in b.jobs.items():
        declared = set(job_parameter_defaults(job))
        for task in job["tasks"]:
            for ref in dynamic_references(task):
                if ref.startswith("job.parameters."):
                    assert ref.split(".", 2)[2] in declared, f"{key}.{task['task_key']}: {ref}"
        assert check_job(job, key) == []


def test_monitoring_triggers_training_on_retrain_value():
    tasks = {t["task_key"]: t for t in _load("dev").jobs["monitoring"]["tasks"]}
    assert tasks["retrain_check"]["depends_on"] == [{"task_key": "monitor"}]
    assert tasks["retrain_check"]["condition_task"] == {
        "op": "EQUAL_TO", "left": "{{tasks.monitor.values.retrain}}", "right": "true"}
    assert tasks["retrain"]["depends_on"] == [{"task_key": "retrain_check", "outcome": "true"}]
    assert tasks["retrain"]["run_job_task"]["job_id"] == "${resources.jobs.training.id}"


def test_model_and_experiment_resources():
    b = _load("staging")
    assert b.resources["registered_models"]["fraud_detector"] == {
        "catalog_name": "fraud_staging", "schema_name": "fraud", "name": "fraud_detector",
        "comment": b.resources["registered_models"]["fraud_detector"]["comment"],
        # the real-time scoring App reads the champion (resources/serving.yml)
        "grants": [{"principal": "${resources.apps.fraud_scoring.service_principal_client_id}",
                    "privileges": ["EXECUTE"]}]}
    assert b.resources["experiments"]["fraud_detector_experiment"]["name"] == "/Shared/fraud-mlops/staging/fraud-detector"
    assert b.source_of("resources.jobs.training").name == "training_job.yml"
    assert b.source_of("resources.registered_models.fraud_detector").name == "model.yml"


def test_find_bundle_root_searches_upward():
    assert find_bundle_root(REPO_ROOT / "src" / "fraud_mlops") == REPO_ROOT


def test_typed_resource_classes_accept_our_resources():
    """The databricks-bundles typed classes reject unknown fields and wrong types (optional dependency)."""
    bundles_jobs = pytest.importorskip("databricks.bundles.jobs")
    registered_models = pytest.importorskip("databricks.bundles.registered_models")
    experiments = pytest.importorskip("databricks.bundles.experiments")
    for target in ("dev", "staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        for key, job in b.jobs.items():
            assert bundles_jobs.Job.from_dict(job).as_dict() == job, f"{target}: {key}"
        model = b.resources["registered_models"]["fraud_detector"]
        assert registered_models.RegisteredModel.from_dict(model).as_dict() == model
        experiment = b.resources["experiments"]["fraud_detector_experiment"]
        assert experiments.MlflowExperiment.from_dict(experiment).as_dict() == experiment


# --------------------------------------------------------------------------------------------------
# Unity Catalog schema and volume, dashboard, SQL alert, quality monitor


def test_the_schema_and_volume_are_bundle_owned_in_staging_and_prod_only():
    """In development mode the CLI prefixes a bundle-owned schema's name (dev_<user>_fraud) while the jobs
    read ${var.schema}: dev has no schema resource (its schema is made by hand); staging and prod own theirs,
    unprefixed, and it is the very schema the jobs, the volume and the quality monitor use."""
    dev = _load("dev")
    assert dev.mode == "development"
    assert not {"schemas", "volumes", "quality_monitors"} & set(dev.resources)
    for target in ("staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        catalog, schema = b.variables["catalog"], b.variables["schema"]
        assert b.mode != "development"
        fraud = b.resources["schemas"]["fraud"]
        assert (fraud["catalog_name"], fraud["name"]) == (catalog, schema)
        assert fraud["lifecycle"] == {"prevent_destroy": True}
        landing = b.resources["volumes"]["landing"]
        assert (landing["catalog_name"], landing["schema_name"], landing["volume_type"]) == (catalog, schema, "MANAGED")
        assert b.variables["landing_path"].startswith(f"/Volumes/{catalog}/{schema}/{landing['name']}/")
        for job in b.jobs.values():
            params = job_parameter_defaults(job)
            assert (params["catalog"], params["schema"]) == (catalog, schema)
        grants = {g["principal"]: g["privileges"] for g in fraud["grants"]}
        assert grants["fraud-mlops-operators"] == ["USE_SCHEMA", "SELECT"]
        assert all(g["principal"] for g in fraud["grants"] + landing["grants"])  # no empty principal
        # the real-time scoring App's service principal reads the champion from the schema
        app = "${resources.apps.fraud_scoring.service_principal_client_id}"
        assert grants[app] == ["USE_SCHEMA"]
        if target == "prod":
            assert grants[PROD_VARS["prod_service_principal"]] == ["ALL_PRIVILEGES", "MANAGE"]
        else:  # the deploying principal owns it and runs the jobs
            assert set(grants) == {"fraud-mlops-operators", app}


def test_the_quality_monitor_watches_the_inference_log():
    from fraud_mlops.lifecycle.inference_log import INFERENCE_LOG_COLUMNS
    from fraud_mlops.platform.config import INFERENCE_LOG

    for target in ("staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        catalog, schema = b.variables["catalog"], b.variables["schema"]
        monitor = b.resources["quality_monitors"]["fraud_inference_log"]
        assert monitor["table_name"] == f"{catalog}.{schema}.{INFERENCE_LOG}"
        assert monitor["output_schema_name"] == f"{catalog}.{schema}"
        log = monitor["inference_log"]
        assert log["problem_type"] == "PROBLEM_TYPE_CLASSIFICATION" and log["granularities"] == ["1 day"]
        assert INFERENCE_LOG_COLUMNS[log["timestamp_col"]] == "timestamp"
        assert INFERENCE_LOG_COLUMNS[log["model_id_col"]] == "string"
        # prediction and label of one type, as the monitor requires
        assert INFERENCE_LOG_COLUMNS[log["prediction_col"]] == INFERENCE_LOG_COLUMNS[log["label_col"]] == "int"
        assert monitor["notifications"]["on_failure"]["email_addresses"] == [b.variables["alert_email"]]


def test_the_dashboard_and_the_alert_in_every_target():
    for target in ("dev", "staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        catalog, schema = b.variables["catalog"], b.variables["schema"]
        dashboard = b.resources["dashboards"]["fraud_monitoring"]
        assert (dashboard["dataset_catalog"], dashboard["dataset_schema"]) == (catalog, schema)
        assert dashboard["embed_credentials"] is False
        alert = b.resources["alerts"]["monitoring_breach"]
        assert f"FROM {catalog}.{schema}.monitoring_metrics" in alert["query_text"]
        assert alert["evaluation"]["notification"]["subscriptions"] == [{"user_email": b.variables["alert_email"]}]
        assert alert["schedule"]["pause_status"] == ("UNPAUSED" if target == "prod" else "PAUSED")
        # the warehouse is a lookup by name: the CLI resolves it at deploy time; no job uses it
        assert b.lookup_variables == ("warehouse_id",)
        assert dashboard["warehouse_id"] == alert["warehouse_id"] == "${var.warehouse_id}"
        assert all(check_job(job) == [] for job in b.jobs.values())
    # operators can read the dashboard in staging and prod (the bundle's CAN_RUN does not reach dashboards)
    staging = _load("staging").resources["dashboards"]["fraud_monitoring"]
    assert staging["permissions"] == [{"level": "CAN_READ", "group_name": "fraud-mlops-operators"}]


def _typed_classes_accept(classes: dict) -> None:
    """Every resource of each type, in every target, round-trips through its databricks-bundles class
    (an unknown field would be dropped), and every type occurs in some target."""
    seen = set()
    for target in ("dev", "staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        for rtype, cls in classes.items():
            for key, definition in (b.resources.get(rtype) or {}).items():
                assert cls.from_dict(definition).as_dict() == definition, f"{target}: {rtype}.{key}"
                seen.add(rtype)
    assert seen == set(classes)


def test_typed_classes_accept_the_new_resources():
    from databricks.bundles.alerts import Alert
    from databricks.bundles.dashboards import Dashboard
    from databricks.bundles.quality_monitors import QualityMonitor
    from databricks.bundles.schemas import Schema
    from databricks.bundles.volumes import Volume

    classes = {"dashboards": Dashboard, "alerts": Alert, "quality_monitors": QualityMonitor, "schemas": Schema,
               "volumes": Volume}
    _typed_classes_accept(classes)


# --------------------------------------------------------------------------------------------------
# Real-time scoring on Databricks (resources/serving.yml): a Databricks App over the Lakebase online store

APP_NAME = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"  # Apps: lowercase letters, digits and hyphens, at most 30 characters
LAKEBASE_CAPACITIES = ("CU_1", "CU_2", "CU_4", "CU_8")


def test_the_scoring_app_serves_what_the_jobs_write_in_every_target():
    """The App's settings are the jobs' own: the catalog, schema and model batch scoring uses, the Lakebase
    instance the online_features job publishes to, and the store's database named like the catalog."""
    import re

    for target in ("dev", "staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        app = b.resources["apps"]["fraud_scoring"]
        assert re.match(APP_NAME, app["name"]) and len(app["name"]) <= 30, app["name"]
        # development mode prefixes no App name: each developer's App carries their domain-friendly name
        assert app["name"] == ("fraud-dev-alice" if target == "dev" else f"fraud-scoring-{target}")
        scoring = job_parameter_defaults(b.job("batch_scoring"))
        publish = job_parameter_defaults(b.job("online_features"))
        env = {e["name"]: e["value"] for e in app["config"]["env"]}
        assert env == {
            "FRAUD_MLOPS_CATALOG": scoring["catalog"], "FRAUD_MLOPS_SCHEMA": scoring["schema"],
            "FRAUD_MLOPS_MODEL_NAME": scoring["model_name"], "FRAUD_MLOPS_LAKEBASE_INSTANCE": publish["lakebase_instance"],
            "FRAUD_MLOPS_POLL_SECONDS": "30", "MLFLOW_TRACKING_URI": "databricks", "MLFLOW_REGISTRY_URI": "databricks-uc"}
        assert publish["catalog"] == scoring["catalog"] and publish["schema"] == scoring["schema"]
        [resource] = app["resources"]
        assert resource["database"] == {"instance_name": publish["lakebase_instance"], "database_name": scoring["catalog"],
                                        "permission": "CAN_CONNECT_AND_CREATE"}
        assert app["config"]["command"] == ["python", "-m", "fraud_mlops.serving.databricks_app"]
        assert app["source_code_path"] == "../serving_app" and b.source_of("resources.apps.fraud_scoring").name == "serving.yml"
    # the module the App runs, and its environment: uv (pyproject.toml + uv.lock, no requirements.txt)
    import fraud_mlops.serving.databricks_app as entry

    assert callable(entry.main)
    folder = REPO_ROOT / "serving_app"
    assert (folder / "pyproject.toml").is_file() and (folder / "uv.lock").is_file()
    assert not (folder / "requirements.txt").exists() and not (folder / "app.yaml").exists()


def test_the_lakebase_instance_and_catalog_are_bundle_owned_in_staging_and_prod_only():
    """dev shares one instance made by hand (as it shares its schema); staging and prod own theirs, created
    before the App that names them, and keep them (prevent_destroy: the store holds the endpoint's log)."""
    dev = _load("dev")
    assert not {"database_instances", "database_catalogs"} & set(dev.resources)
    for target in ("staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        catalog = b.variables["catalog"]
        instance = b.resources["database_instances"]["online_store"]
        assert instance["name"] == b.variables["lakebase_instance"] == f"fraud-online-{target}"
        assert instance["capacity"] in LAKEBASE_CAPACITIES and instance["lifecycle"] == {"prevent_destroy": True}
        store_catalog = b.resources["database_catalogs"]["online_store_catalog"]
        assert store_catalog["name"] == f"{catalog}_online" != catalog  # a catalog of its own, next to the Lakehouse's
        assert (store_catalog["database_instance_name"], store_catalog["database_name"]) == (instance["name"], catalog)
        assert store_catalog["create_database_if_not_exists"] is True
        app = b.resources["apps"]["fraud_scoring"]
        assert {"level": "CAN_USE", "group_name": "fraud-mlops-operators"} in app["permissions"]
        # the App's service principal: may ask for its Lakebase credential, and reads the champion
        sp = "${resources.apps.fraud_scoring.service_principal_client_id}"
        assert {"level": "CAN_USE", "service_principal_name": sp} in instance["permissions"]
        assert {"principal": sp, "privileges": ["EXECUTE"]} in b.resources["registered_models"]["fraud_detector"]["grants"]


def test_typed_classes_accept_the_serving_resources():
    from databricks.bundles.apps import App
    from databricks.bundles.database_catalogs import DatabaseCatalog
    from databricks.bundles.database_instances import DatabaseInstance

    classes = {"apps": App, "database_instances": DatabaseInstance, "database_catalogs": DatabaseCatalog}
    _typed_classes_accept(classes)


def test_the_local_runner_runs_jobs_only_the_app_and_lakebase_are_not_run_locally():
    for target in ("dev", "staging", "prod"):
        b = _load(target, PROD_VARS if target == "prod" else None)
        assert set(b.jobs) == set(JOBS)
        assert all(check_job(job) == [] for job in b.jobs.values())
        with pytest.raises(BundleError):
            b.job("fraud_scoring")
