"""The bundle definition (databricks.yml + resources/*.yml) and its offline loader. No Spark."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from fraud_mlops.bundle import BundleError, find_bundle_root, load_bundle
from fraud_mlops.jobspec import dynamic_references
from fraud_mlops.runner import check_job, job_parameter_defaults

REPO_ROOT = Path(__file__).resolve().parents[1]
PROD_VARS = {"prod_service_principal": "11111111-2222-3333-4444-555555555555", "alert_email": "oncall@example.com"}
JOBS = ("ingestion", "training", "batch_scoring", "monitoring")

# The contract with fraud_mlops.tasks: each task gets exactly these named parameters.
EXPECTED_NAMED_PARAMETERS = {
    ("ingestion", "bronze"): ("fraud-bronze", ["catalog", "schema", "landing_path", "file_pattern"]),
    ("ingestion", "silver"): ("fraud-silver", ["catalog", "schema"]),
    ("ingestion", "gold"): ("fraud-gold", ["catalog", "schema", "label_delay_days"]),
    ("training", "train"): ("fraud-train", [
        "catalog", "schema", "experiment_name", "model_name", "train_start", "train_end", "delay_days",
        "test_days", "candidate_model", "n_estimators", "max_depth", "learning_rate", "seed"]),
    ("training", "validate"): ("fraud-validate", [
        "catalog", "schema", "experiment_name", "model_name", "min_average_precision", "min_roc_auc",
        "max_ap_degradation"]),
    ("training", "promote"): ("fraud-promote", ["catalog", "schema", "model_name"]),
    ("batch_scoring", "score"): ("fraud-score", [
        "catalog", "schema", "model_name", "score_start", "score_end", "decision_threshold"]),
    ("monitoring", "monitor"): ("fraud-monitor", [
        "catalog", "schema", "model_name", "window_start", "window_end", "psi_alert_threshold",
        "psi_retrain_threshold", "min_average_precision", "fail_on_alert", "label_delay_days"]),
}


def _load(target: str, overrides: dict[str, str] | None = None, **kw):
    return load_bundle(REPO_ROOT, target, overrides or {}, env={}, user_name="alice@example.com", **kw)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


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
    assert b.config["run_as"] == {"service_principal_name": PROD_VARS["prod_service_principal"]}
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


def test_every_job_has_cluster_libraries_notifications_schedule():
    b = _load("dev")
    for job in b.jobs.values():
        assert job["max_concurrent_runs"] == 1
        assert job["email_notifications"]["on_failure"] == [b.variables["alert_email"]]
        sched = job["schedule"]
        assert sched["timezone_id"] == "UTC" and sched["quartz_cron_expression"]
        assert job["tags"]["project"] == "fraud-mlops"
        clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
        for c in clusters.values():
            assert c["spark_version"] == "15.4.x-cpu-ml-scala2.12"
        for task in job["tasks"]:
            if "python_wheel_task" in task:
                assert task["libraries"] == [{"whl": "../dist/*.whl"}]
                assert task["job_cluster_key"] in clusters
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
        assert pwt["named_parameters"] == {n: f"{{{{job.parameters.{n}}}}}" for n in names}
        seen.add((job_key, task_key))
    wheel_tasks = {(k, t["task_key"]) for k, j in b.jobs.items() for t in j["tasks"] if "python_wheel_task" in t}
    assert wheel_tasks == seen


def test_entry_points_exist_in_pyproject_scripts():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    b = _load("dev")
    used = [t["python_wheel_task"]["entry_point"] for j in b.jobs.values() for t in j["tasks"]
            if "python_wheel_task" in t]
    assert used
    for ep in used:
        assert ep in scripts, f"{ep} is not in [project.scripts]"
        assert scripts[ep].startswith("fraud_mlops.tasks:")


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
        "comment": b.resources["registered_models"]["fraud_detector"]["comment"]}
    assert b.resources["experiments"]["fraud_detector"]["name"] == "/Shared/fraud-mlops/staging/fraud-detector"
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
        experiment = b.resources["experiments"]["fraud_detector"]
        assert experiments.MlflowExperiment.from_dict(experiment).as_dict() == experiment


# --------------------------------------------------------------------------------------------------
# The loader, on small bundles


MINIMAL = """\
bundle:
  name: mini
include:
  - resources/*.yml
variables:
  catalog:
    description: c
  schema:
    default: s_${var.catalog}
  full:
    default: ${var.catalog}.${var.schema}.${bundle.name}
  who:
    default: ${workspace.current_user.userName}
targets:
  one:
    default: true
    variables:
      catalog: c1
  two:
    mode: production
    variables:
      catalog: c2
      schema: {default: s2}
    resources:
      jobs:
        j:
          max_concurrent_runs: 3
          tasks:
            - task_key: a
              python_wheel_task:
                entry_point: ep-two
"""

JOB = """\
resources:
  jobs:
    j:
      name: "[${bundle.target}] j ${var.full}"
      max_concurrent_runs: 1
      parameters:
        - name: catalog
          default: ${var.catalog}
      tasks:
        - task_key: a
          python_wheel_task:
            package_name: pkg
            entry_point: ep
            named_parameters:
              catalog: "{{job.parameters.catalog}}"
        - task_key: b
          depends_on: [{task_key: a}]
          run_job_task:
            job_id: ${resources.jobs.j.id}
          description: "${resources.experiments.e.name} / ${workspace.file_path}"
  experiments:
    e:
      name: /x/${var.schema}
"""


def test_minimal_bundle_resolution(tmp_path):
    root = _write(tmp_path, {"databricks.yml": MINIMAL, "resources/job.yml": JOB})
    b = load_bundle(root, None, {}, env={}, user_name="bob@corp.com")
    assert b.target == "one" and b.mode is None
    assert b.variables == {"catalog": "c1", "schema": "s_c1", "full": "c1.s_c1.mini", "who": "bob@corp.com"}
    job = b.job("j")
    assert job["name"] == "[one] j c1.s_c1.mini"
    assert job["parameters"] == [{"name": "catalog", "default": "c1"}]
    task_b = job["tasks"][1]
    assert task_b["run_job_task"]["job_id"] == "${resources.jobs.j.id}"  # deploy-time: kept
    assert b.job_id_ref(task_b["run_job_task"]["job_id"]) == "j"
    assert task_b["description"] == "/x/s_c1 / /Workspace/Users/bob@corp.com/.bundle/mini/one/files"


def test_target_overrides_merge_variables_resources_and_mode(tmp_path):
    root = _write(tmp_path, {"databricks.yml": MINIMAL, "resources/job.yml": JOB})
    b = load_bundle(root, "two", {"catalog": "cli"}, env={"BUNDLE_VAR_catalog": "env"})
    assert b.mode == "production"
    assert b.variables["catalog"] == "cli"  # --var beats BUNDLE_VAR_ beats the target
    assert b.variables["schema"] == "s2"
    job = b.job("j")
    assert job["max_concurrent_runs"] == 3
    assert len(job["tasks"]) == 2  # merged by task_key, not appended
    assert job["tasks"][0]["python_wheel_task"] == {
        "package_name": "pkg", "entry_point": "ep-two", "named_parameters": {"catalog": "{{job.parameters.catalog}}"}}
    b_env = load_bundle(root, "two", {}, env={"BUNDLE_VAR_catalog": "env"})
    assert b_env.variables["catalog"] == "env"


def test_variable_overrides_file(tmp_path):
    root = _write(tmp_path, {
        "databricks.yml": MINIMAL, "resources/job.yml": JOB,
        ".databricks/bundle/one/variable-overrides.json": '{"schema": "from_file"}',
    })
    assert load_bundle(root, "one", {}, env={}).variables["schema"] == "from_file"


def test_undeclared_variable_reference_names_file_and_key(tmp_path):
    bad = JOB.replace("default: ${var.catalog}", "default: ${var.nope}")
    root = _write(tmp_path, {"databricks.yml": MINIMAL, "resources/job.yml": bad})
    with pytest.raises(BundleError) as err:
        load_bundle(root, "one", {}, env={})
    msg = str(err.value)
    assert "resources/job.yml" in msg
    assert "resources.jobs.j.parameters[0].default" in msg
    assert "undeclared variable 'nope'" in msg


def test_variable_without_value_for_target(tmp_path):
    text = MINIMAL.replace("      catalog: c1\n", "")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": JOB})
    with pytest.raises(BundleError, match=r"databricks.yml: variable catalog: no value for target 'one'"):
        load_bundle(root, "one", {}, env={})
    assert load_bundle(root, "one", {"catalog": "given"}, env={}).variables["schema"] == "s_given"


def test_target_assigning_undeclared_variable(tmp_path):
    text = MINIMAL.replace("      catalog: c1\n", "      catalog: c1\n      typo: x\n")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": JOB})
    with pytest.raises(BundleError, match=r"targets.one.variables.typo: variable 'typo' is assigned"):
        load_bundle(root, "one", {}, env={})


def test_circular_variables(tmp_path):
    text = MINIMAL.replace("default: s_${var.catalog}", "default: ${var.full}")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": JOB})
    with pytest.raises(BundleError, match="circular reference"):
        load_bundle(root, "one", {}, env={})


def test_duplicate_resource_across_files(tmp_path):
    root = _write(tmp_path, {"databricks.yml": MINIMAL, "resources/a.yml": JOB, "resources/b.yml": JOB})
    with pytest.raises(BundleError, match=r"resources/b.yml: resources.jobs.j: already defined in resources/a.yml"):
        load_bundle(root, "one", {}, env={})


def test_unknown_resource_reference(tmp_path):
    bad = JOB.replace("${resources.jobs.j.id}", "${resources.jobs.missing.id}")
    root = _write(tmp_path, {"databricks.yml": MINIMAL, "resources/job.yml": bad})
    with pytest.raises(BundleError, match="resources.jobs.missing, which is not defined"):
        load_bundle(root, "one", {}, env={})


def test_lookup_variable_needs_a_value_locally(tmp_path):
    text = MINIMAL.replace("  who:\n", "  sp:\n    lookup:\n      service_principal: deployer\n  who:\n")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": JOB})
    with pytest.raises(BundleError, match="lookup variable"):
        load_bundle(root, "one", {}, env={})
    assert load_bundle(root, "one", {"sp": "abc"}, env={}).variables["sp"] == "abc"


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(BundleError, match="no databricks.yml"):
        load_bundle(tmp_path, None, {}, env={})
    _write(tmp_path, {"databricks.yml": "bundle: [unclosed\n"})
    with pytest.raises(BundleError, match="invalid YAML"):
        load_bundle(tmp_path, None, {}, env={})
