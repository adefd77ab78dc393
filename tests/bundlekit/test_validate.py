"""The offline bundle validator: passes on our bundle, and fails on broken copies of it naming file and key.

Each test copies the repository's bundle (databricks.yml, resources/, pyproject.toml, src/, notebooks/)
to a temporary folder, breaks one thing, and checks that validation reports exactly that problem.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from bundlekit.validate import POLICY_FILE_NAME, Problem, secret_problems, validate_bundle, validate_targets
from fraud_mlops import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
PROD_VARS = {"prod_service_principal": "11111111-2222-3333-4444-555555555555", "alert_email": "oncall@example.com"}
FAKE_PAT = "dapi" + "0123456789abcdef" * 2  # assembled, so that this file holds no token-shaped literal


class BundleCopy:
    """A copy of the repository's bundle in a temporary folder, to break on purpose."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("databricks.yml", "pyproject.toml", POLICY_FILE_NAME):
            shutil.copy2(REPO_ROOT / name, root / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        for folder in ("resources", "src", "notebooks", "dashboards"):
            shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)
        # the real-time scoring App's source folder, without the source the deploy copies into it
        shutil.copytree(REPO_ROOT / "serving_app", root / "serving_app",
                        ignore=shutil.ignore_patterns("fraud-mlops", ".*"))

    def edit(self, name: str, old: str, new: str, count: int = 1) -> None:
        path = self.root / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) >= count, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")

    def problems(self, target: str = "dev", overrides: dict[str, str] | None = None) -> list[Problem]:
        """The problems of the copy for ``target``, with the repository's policy, less those the policy
        waives (bundlekit-policy.yml: the key two resources share, until it is renamed)."""
        if overrides is None and target == "prod":
            overrides = PROD_VARS
        report = validate_bundle(self.root, target, overrides or {}, env={}, user_name="alice@example.com")
        return [p for p in report.problems if not p.waived]


@pytest.fixture
def bundle(tmp_path) -> BundleCopy:
    return BundleCopy(tmp_path)


def only(problems: list[Problem], check: str) -> Problem:
    """The single problem of the run, which must come from ``check``."""
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0].check == check, str(problems[0])
    return problems[0]


# --------------------------------------------------------------------------------------------------
# Our bundle


@pytest.mark.parametrize("target", ["dev", "staging", "prod"])
def test_our_bundle_is_valid_for_every_target(target):
    report = validate_bundle(REPO_ROOT, target, PROD_VARS if target == "prod" else {}, env={})
    assert report.ok, "\n".join(map(str, report.problems))
    assert set(report.bundle.jobs) == {"ingestion", "training", "batch_scoring", "monitoring", "online_features"}


def test_prod_grants_jobs_to_the_operators_group_and_the_run_as_principal():
    report = validate_bundle(REPO_ROOT, "prod", PROD_VARS, env={})
    assert report.bundle.config["permissions"] == [
        {"level": "CAN_RUN", "group_name": "fraud-mlops-operators"},
        {"level": "CAN_MANAGE", "service_principal_name": PROD_VARS["prod_service_principal"]},
    ]
    # run_as job by job (resources/prod_identity.yml): the CLI refuses the quality monitor under a
    # top-level run_as of another identity than the deploying one
    assert "run_as" not in report.bundle.config
    sp = {"service_principal_name": PROD_VARS["prod_service_principal"]}
    assert {key: job["run_as"] for key, job in report.bundle.jobs.items()} == dict.fromkeys(report.bundle.jobs, sp)
    assert report.bundle.resources["alerts"]["monitoring_breach"]["run_as"] == sp


def test_the_copy_used_below_is_valid_too(bundle):
    for target in ("dev", "staging", "prod"):
        assert bundle.problems(target) == []


def test_validate_every_target_by_default(bundle):
    reports = validate_targets(bundle.root, None, PROD_VARS, env={})
    assert [r.target for r in reports] == ["dev", "staging", "prod"]
    assert all(r.ok for r in reports)


def test_cli_validate_passes_and_fails_with_file_and_key(bundle, capsys):
    root = str(bundle.root)
    prod_vars = [a for k, v in PROD_VARS.items() for a in ("--var", f"{k}={v}")]
    assert cli.main(["validate", "--bundle-root", root, *prod_vars]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "target dev: OK" in out and "target staging: OK" in out and "target prod: OK" in out

    bundle.edit("resources/ingestion_job.yml", "            - task_key: silver\n", "            - task_key: silverr\n")
    assert cli.main(["validate", "--bundle-root", root, "--target", "staging"]) == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "error [jobs] resources/ingestion_job.yml:57:15: resources.jobs.ingestion.tasks[2].depends_on[0].task_key:" in err
    assert "unknown task 'silverr'" in err


def test_prod_without_deploy_time_values_names_the_variables(bundle):
    problem = only(bundle.problems("prod", overrides={}), "load")
    assert "databricks.yml" in str(problem)
    assert "alert_email, prod_service_principal: no value for target 'prod'" in str(problem)


# --------------------------------------------------------------------------------------------------
# schema: unknown fields and wrong types (databricks-bundles typed classes)


def test_unknown_job_field(bundle):
    bundle.edit("resources/training_job.yml", "      max_concurrent_runs: 1\n", "      max_concurent_runs: 1\n")
    problem = only(bundle.problems(), "schema")
    assert (problem.file, problem.key) == ("resources/training_job.yml", "resources.jobs.training.max_concurent_runs")
    assert problem.message.startswith("unknown field: max_concurent_runs (not a field of Job)")
    assert "did you mean 'max_concurrent_runs'" in problem.message
    assert problem.severity == "error"  # the policy is strict: the CLI's warnings fail
    report = validate_bundle(bundle.root, "dev", {}, env={}, policy=None)
    assert [(p.key, p.severity) for p in report.problems if p.check == "schema"] == [
        ("resources.jobs.training.max_concurent_runs", "warning")]  # the CLI's own verdict: a warning
    assert report.errors == []  # compatibility alone: the CLI accepts the rest of the bundle


def test_unknown_field_deep_in_a_task(bundle):
    bundle.edit("resources/training_job.yml", "        - task_key: validate\n          depends_on:\n"
                "            - task_key: train\n",
                "        - task_key: validate\n          depends_on:\n            - task_key: train\n"
                "              outcom: \"true\"\n")
    problem = only(bundle.problems(), "schema")
    assert problem.key == "resources.jobs.training.tasks[1].depends_on[0].outcom"
    assert "not a field of TaskDependency" in problem.message


def test_wrong_type(bundle):
    bundle.edit("resources/training_job.yml", "      timeout_seconds: 14400\n", "      timeout_seconds: four hours\n")
    problem = only(bundle.problems(), "schema")
    assert (problem.file, problem.key) == ("resources/training_job.yml", "resources.jobs.training.timeout_seconds")
    assert "four hours" in problem.message


def test_wrong_enum_value_in_a_nested_mapping(bundle):
    bundle.edit("resources/ingestion_job.yml", "pause_status: ${var.schedule_pause_status}", "pause_status: SOMETIMES")
    problem = only(bundle.problems(), "schema")
    assert problem.key == "resources.jobs.ingestion.schedule.pause_status"
    assert problem.message == 'invalid value "SOMETIMES" for enum field. Valid values are [PAUSED UNPAUSED]'


def test_unknown_field_of_the_registered_model(bundle):
    bundle.edit("resources/model.yml", "      comment:", "      comments:")
    problem = only(bundle.problems(), "schema")
    assert (problem.file, problem.key) == ("resources/model.yml", "resources.registered_models.fraud_detector.comments")


def test_unknown_target_field_and_resource_type(bundle):
    bundle.edit("databricks.yml", "    mode: development\n", "    mode: development\n    workspce: {}\n")
    problem = only(bundle.problems(), "schema")
    line = (bundle.root / "databricks.yml").read_text().splitlines().index("    workspce: {}") + 1
    assert (problem.file, problem.key, problem.line) == ("databricks.yml", "targets.dev.workspce", line)
    assert "did you mean 'workspace'" in problem.message
    bundle.edit("databricks.yml", "    workspce: {}\n", "")
    bundle.edit("resources/model.yml", "  registered_models:", "  registered_model:")
    problems = bundle.problems()
    assert any(p.key == "resources.registered_model" and "not a resource type the pinned CLI knows" in p.message
               and "did you mean 'registered_models'" in p.message for p in problems)


# --------------------------------------------------------------------------------------------------
# variables


def test_undeclared_variable(bundle):
    bundle.edit("resources/ingestion_job.yml", "default: ${var.landing_path}", "default: ${var.landing_dir}")
    problem = only(bundle.problems(), "load")
    assert (problem.file, problem.key) == ("resources/ingestion_job.yml", "resources.jobs.ingestion.parameters[2].default")
    assert problem.line > 0 and str(problem).startswith(f"resources/ingestion_job.yml:{problem.line}:")
    assert "undeclared variable 'landing_dir'" in problem.message


def test_variable_without_a_value_for_the_target(bundle):
    bundle.edit("databricks.yml", "      catalog: fraud_staging\n", "")
    assert bundle.problems("dev") == []
    problem = only(bundle.problems("staging"), "load")
    assert "databricks.yml: variable catalog: no value for target 'staging'" in str(problem)


def test_unknown_variable_field(bundle):
    bundle.edit("databricks.yml", "  catalog:\n    description:", "  catalog:\n    descripton:")
    problem = only(bundle.problems(), "schema")
    assert (problem.file, problem.key) == ("databricks.yml", "variables.catalog.descripton")
    assert "did you mean 'description'" in problem.message


# --------------------------------------------------------------------------------------------------
# wheel entry points, files and notebooks


def test_entry_point_the_wheel_does_not_define(bundle):
    bundle.edit("resources/ingestion_job.yml", "entry_point: fraud-bronze", "entry_point: fraud-bronz")
    problem = only(bundle.problems(), "wheel")
    assert (problem.file, problem.key) == (
        "resources/ingestion_job.yml", "resources.jobs.ingestion.tasks[0].python_wheel_task.entry_point")
    assert "the fraud-mlops wheel defines no entry point 'fraud-bronz'" in problem.message
    assert "fraud-bronze" in problem.message  # the ones it does define


def test_entry_point_whose_function_does_not_exist(bundle):
    bundle.edit("pyproject.toml", 'fraud-gold = "fraud_mlops.jobs.ingestion:gold"', 'fraud-gold = "fraud_mlops.jobs.ingestion:gold_v2"')
    problem = only(bundle.problems(), "wheel")
    assert problem.key == "resources.jobs.ingestion.tasks[2].python_wheel_task.entry_point"
    assert "fraud_mlops.jobs.ingestion defines no 'gold_v2'" in problem.message


def test_package_the_bundle_does_not_build(bundle):
    bundle.edit("resources/batch_scoring_job.yml", "package_name: fraud_mlops", "package_name: fraud_mlop")
    problem = only(bundle.problems(), "wheel")
    assert problem.key == "resources.jobs.batch_scoring.tasks[0].python_wheel_task.package_name"
    assert "'fraud_mlop' is not a wheel this bundle builds (builds: fraud-mlops)" in problem.message


NOTEBOOK_TASK = """\
        - task_key: explore
          depends_on:
            - task_key: gold
          notebook_task:
            notebook_path: {path}
"""  # no compute: a notebook task without any runs on serverless notebook compute


def test_notebook_path_must_exist(bundle):
    job = "resources/ingestion_job.yml"
    text = (bundle.root / job).read_text()
    (bundle.root / job).write_text(text + NOTEBOOK_TASK.format(path="../notebooks/explore_features.py"))
    assert bundle.problems() == []  # the notebook exists (explore_features.py)
    assert bundle.problems("staging") == []
    (bundle.root / job).write_text(text + NOTEBOOK_TASK.format(path="../notebooks/explore_fetaures.py"))
    problem = only(bundle.problems(), "paths")
    assert (problem.file, problem.key) == ("resources/ingestion_job.yml",
                                           "resources.jobs.ingestion.tasks[3].notebook_task.notebook_path")
    assert problem.message == "notebook ../notebooks/explore_fetaures.py not found"
    # The pinned CLI wants the file's extension in a local notebook path (mutator/translate_paths.go).
    (bundle.root / job).write_text(text + NOTEBOOK_TASK.format(path="../notebooks/explore_features"))
    problem = only(bundle.problems(), "paths")
    assert "Did you mean '../notebooks/explore_features.py'?" in problem.message


def test_python_file_and_wheel_library_paths_must_exist(bundle):
    bundle.edit("resources/ingestion_job.yml", "          python_wheel_task:\n            package_name: fraud_mlops\n"
                "            entry_point: fraud-bronze\n",
                "          spark_python_task:\n            python_file: ../src/fraud_mlops/bronze_job.py\n")
    bundle.edit("resources/ingestion_job.yml", "              landing_path: \"{{job.parameters.landing_path}}\"\n"
                "              file_pattern: \"{{job.parameters.file_pattern}}\"\n", "")
    bundle.edit("resources/ingestion_job.yml", "            named_parameters:\n"
                "              catalog: \"{{job.parameters.catalog}}\"\n"
                "              schema: \"{{job.parameters.schema}}\"\n", "            parameters: []\n")
    # The classic variant (staging, prod) installs the wheel as a task library, set in databricks.yml:
    # a relative path there resolves against the bundle root.
    bundle.edit("databricks.yml", "{task_key: train, job_cluster_key: ml, libraries: [{whl: ./dist/*.whl}]}",
                "{task_key: train, job_cluster_key: ml, libraries: [{whl: ./wheels/*.whl}]}")
    problems = bundle.problems("staging")
    assert {(p.check, p.file, p.key) for p in problems} == {
        ("paths", "resources/ingestion_job.yml", "resources.jobs.ingestion.tasks[0].spark_python_task.python_file"),
        ("paths", "databricks.yml", "resources.jobs.training.tasks[0].libraries[0].whl"),
    }, "\n".join(map(str, problems))
    whl = next(p for p in problems if p.key.endswith("whl"))
    assert "wheel './wheels/*.whl' does not exist (resolved against ./: wheels/*.whl)" in whl.message
    assert "a whl artifact builds into dist" in whl.message
    assert {p.key for p in bundle.problems("dev")} == {  # dev is serverless: its wheel is fine
        "resources.jobs.ingestion.tasks[0].spark_python_task.python_file"}


# --------------------------------------------------------------------------------------------------
# task graph and job parameters


def test_depends_on_unknown_task(bundle):
    bundle.edit("resources/training_job.yml", "            - task_key: validate\n", "            - task_key: validation\n")
    problem = only(bundle.problems(), "jobs")
    assert (problem.file, problem.key) == ("resources/training_job.yml",
                                           "resources.jobs.training.tasks[2].depends_on[0].task_key")
    assert "task 'promote' depends on unknown task 'validation' (tasks of this job: train, validate, promote)" in (
        problem.message)


def test_dependency_cycle(bundle):
    bundle.edit("resources/ingestion_job.yml", "        - task_key: bronze\n",
                "        - task_key: bronze\n          depends_on:\n            - task_key: gold\n")
    problem = only(bundle.problems(), "jobs")
    assert (problem.file, problem.key) == ("resources/ingestion_job.yml", "resources.jobs.ingestion.tasks")
    assert "dependency cycle: " in problem.message
    assert {"bronze", "silver", "gold"} <= set(problem.message.replace(" -> ", " ").split())


def test_task_reads_an_undeclared_job_parameter(bundle):
    bundle.edit("resources/batch_scoring_job.yml", '"{{job.parameters.decision_threshold}}"',
                '"{{job.parameters.threshold}}"')
    problem = only(bundle.problems(), "jobs")
    assert problem.file == "resources/batch_scoring_job.yml"
    assert problem.key == "resources.jobs.batch_scoring.tasks[0].python_wheel_task.named_parameters.decision_threshold"
    assert "job parameter 'threshold' is not declared" in problem.message


def test_run_job_task_passes_a_parameter_the_job_does_not_declare(bundle):
    bundle.edit("resources/monitoring_job.yml", "            job_parameters:\n",
                "            job_parameters:\n              learning_rte: \"0.1\"\n")
    problem = only(bundle.problems(), "jobs")
    assert problem.key == "resources.jobs.monitoring.tasks[2].run_job_task.job_parameters.learning_rte"
    assert "job 'training' declares no parameter 'learning_rte'" in problem.message


def test_reference_to_a_task_that_is_not_upstream(bundle):
    bundle.edit("resources/monitoring_job.yml", "{{tasks.monitor.values.retrain}}", "{{tasks.retrain.values.retrain}}")
    problem = only(bundle.problems(), "jobs")
    assert problem.key == "resources.jobs.monitoring.tasks[1].condition_task.left"
    assert "task 'retrain' is not upstream of this task" in problem.message


def test_a_bad_enum_value_is_reported_once(bundle):
    bundle.edit("resources/monitoring_job.yml", "          run_if: ALL_DONE\n", "          run_if: SOMETIMES\n")
    problem = only(bundle.problems(), "schema")  # jobspec finds it too; one report per key
    assert problem.key == "resources.jobs.monitoring.tasks[1].run_if"
    assert 'invalid value "SOMETIMES" for enum field. Valid values are [ALL_DONE ALL_FAILED' in problem.message


# --------------------------------------------------------------------------------------------------
# schedules


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 0 2 * * *", "'?'"),          # day-of-month and day-of-week both set
    ("0 2 * * *", "field"),          # a Unix (5-field) cron
    ("0 0 25 * * ?", "out of range"),
])
def test_invalid_quartz_cron(bundle, cron, expected):
    bundle.edit("resources/ingestion_job.yml", '"0 0 2 * * ?"', f'"{cron}"')
    problem = only(bundle.problems(), "schedule")
    assert (problem.file, problem.key) == ("resources/ingestion_job.yml",
                                           "resources.jobs.ingestion.schedule.quartz_cron_expression")
    assert f"invalid Quartz cron expression '{cron}'" in problem.message and expected in problem.message


def test_unknown_time_zone(bundle):
    bundle.edit("resources/training_job.yml", "        timezone_id: UTC\n", "        timezone_id: Mars/Olympus\n")
    problem = only(bundle.problems(), "schedule")
    assert problem.key == "resources.jobs.training.schedule.timezone_id"


# --------------------------------------------------------------------------------------------------
# production target


def test_prod_must_be_in_production_mode(bundle):
    bundle.edit("databricks.yml", "    mode: production\n", "    mode: development\n")
    problem = only(bundle.problems("prod"), "production")
    assert (problem.file, problem.key) == ("databricks.yml", "targets.prod.mode")
    assert "must be 'production'" in problem.message
    bundle.edit("databricks.yml", "    mode: development\n    variables:\n      catalog: fraud_prod",
                "    variables:\n      catalog: fraud_prod")
    assert only(bundle.problems("prod"), "production").key == "targets.prod.mode"


def test_prod_must_run_as_a_service_principal(bundle):
    bundle.edit("resources/prod_identity.yml", "        monitoring:\n          run_as: *prod_run_as\n", "")
    problem = only(bundle.problems("prod"), "production")
    assert (problem.file, problem.key) == ("databricks.yml", "targets.prod.run_as")
    assert "service principal" in problem.message and "no run_as on job(s) 'monitoring'" in problem.message


def test_prod_may_run_as_a_service_principal_with_a_top_level_run_as(bundle):
    """The other form the policy accepts: a top-level run_as (here without the quality monitor, which the
    CLI refuses under a run_as of another identity)."""
    (bundle.root / "resources" / "prod_identity.yml").unlink()
    (bundle.root / "resources" / "quality_monitor.yml").unlink()
    (bundle.root / "resources" / "serving.yml").unlink()  # apps are refused likewise
    catalog = bundle.root / "resources" / "unity_catalog.yml"  # ... and the app's schema grant goes with it
    lines = catalog.read_text().splitlines()
    app_grant = {i for i, line in enumerate(lines) if "resources.apps.fraud_scoring" in line}
    catalog.write_text("\n".join(line for i, line in enumerate(lines)
                                 if i not in app_grant and i - 1 not in app_grant) + "\n")
    bundle.edit("databricks.yml", "    # The operators group runs and watches the jobs",
                "    run_as:\n      service_principal_name: ${var.prod_service_principal}\n"
                "    # The operators group runs and watches the jobs")
    assert bundle.problems("prod") == []
    bundle.edit("databricks.yml", "    run_as:\n      service_principal_name: ${var.prod_service_principal}\n",
                "    run_as:\n      user_name: alice@example.com\n")
    problem = only(bundle.problems("prod"), "production")
    assert (problem.file, problem.key) == ("databricks.yml", "targets.prod.run_as.user_name")
    assert "run as a person ('alice@example.com')" in problem.message


def test_prod_must_not_run_as_a_person(bundle):
    bundle.edit("resources/prod_identity.yml", "          run_as: *prod_run_as\n        batch_scoring:",
                "          run_as: {user_name: alice@example.com}\n        batch_scoring:")
    problem = only(bundle.problems("prod"), "production")
    assert (problem.file, problem.key) == ("resources/prod_identity.yml", "resources.jobs.training.run_as.user_name")
    assert "job 'training' run as a person ('alice@example.com')" in problem.message


def test_prod_service_principal_must_not_be_empty(bundle):
    problems = bundle.problems("prod", {**PROD_VARS, "prod_service_principal": "  "})
    jobs = validate_bundle(bundle.root, "prod", PROD_VARS, env={}).bundle.jobs
    assert {p.key for p in problems if p.check == "production"} == {
        f"resources.jobs.{job}.run_as.service_principal_name" for job in jobs}
    assert all("is empty" in p.message for p in problems if p.check == "production")


def test_a_top_level_run_as_of_another_identity_refuses_the_quality_monitor(bundle):
    """Why prod names run_as job by job: the CLI's run_as rule (run_as.go) refuses quality monitors when
    the bundle runs as another identity than the deploying one."""
    bundle.edit("databricks.yml", "    # The operators group runs and watches the jobs",
                "    run_as:\n      service_principal_name: ${var.prod_service_principal}\n"
                "    # The operators group runs and watches the jobs")
    refused = {p.key: p for p in bundle.problems("prod") if p.check == "run_as"}
    assert "resources.quality_monitors" in refused
    assert "do not support a setting a run_as" in refused["resources.quality_monitors"].message


def test_prod_job_permissions_go_to_a_group_not_a_person(bundle):
    bundle.edit("databricks.yml", "    permissions:\n      - level: CAN_RUN\n        group_name: ${var.operators_group}\n"
                "    # Classic job clusters", "    # Classic job clusters")
    bundle.edit("databricks.yml", "group_name: ${var.operators_group}", "user_name: bob@example.com")
    problems = bundle.problems("prod")
    assert {(p.check, p.key) for p in problems} == {("production", "permissions[0].user_name"),
                                                    ("production", "targets.prod.permissions")}
    assert all(p.file == "databricks.yml" for p in problems)
    assert "'bob@example.com' is a person" in next(p.message for p in problems if p.key.endswith("user_name"))


def test_a_bundle_without_prod_target_is_reported(bundle):
    text = (bundle.root / "databricks.yml").read_text()
    (bundle.root / "databricks.yml").write_text(text[: text.index("\n  prod:")] + "\n")
    for path in (bundle.root / "resources").glob("*.yml"):  # files that add to the prod target
        data = yaml.safe_load(path.read_text())
        if "prod" in ((data or {}).get("targets") or {}):
            del data["targets"]["prod"]
            path.write_text(yaml.safe_dump(data, sort_keys=False))
    problem = only(bundle.problems("dev"), "production")
    assert problem.key == "targets" and "no production target" in problem.message


# --------------------------------------------------------------------------------------------------
# secrets


def test_token_literal_in_a_bundle_file(bundle):
    bundle.edit("resources/training_job.yml", "        component: training\n",
                f"        component: training\n        DATABRICKS_TOKEN: {FAKE_PAT}\n")
    problem = only(bundle.problems(), "secrets")
    assert (problem.file, problem.key) == ("resources/training_job.yml", "resources.jobs.training.tags.DATABRICKS_TOKEN")
    assert "Databricks personal access token" in problem.message
    assert FAKE_PAT not in problem.message  # never echoed


def test_secrets_in_any_yaml_file_of_the_repository(bundle):
    bundle.write(".github/workflows/deploy.yml", f"""\
        on: push
        jobs:
          deploy:
            runs-on: ubuntu-latest
            env:
              DATABRICKS_HOST: https://example.cloud.databricks.com
              DATABRICKS_CLIENT_SECRET: Xk29dk3L0qPzVb7wQe1
              ARCHIVE_URL: https://deploy:hunter2pass@files.example.com/a.tgz
            steps:
              - run: echo {FAKE_PAT}
        """)
    problems = bundle.problems()
    assert all(p.check == "secrets" and p.file == ".github/workflows/deploy.yml" for p in problems)
    assert {p.key for p in problems} == {"jobs.deploy.env.DATABRICKS_CLIENT_SECRET", "jobs.deploy.env.ARCHIVE_URL",
                                         "jobs.deploy.steps[0].run"}, "\n".join(map(str, problems))


def test_references_and_names_are_not_secrets(tmp_path):
    (tmp_path / "ok.yml").write_text(textwrap.dedent("""\
        env:
          DATABRICKS_CLIENT_SECRET: ${{ secrets.DATABRICKS_CLIENT_SECRET }}
          DATABRICKS_TOKEN: ""
        spark_conf:
          fs.azure.account.key.acct.dfs.core.windows.net: "{{secrets/fraud/storage-key}}"
          password: ${var.db_password}
        secret_scope: fraud-secrets
        token_audience: https://token.actions.githubusercontent.com
        client_id: 6f1c2f4e-2a4b-4f3a-9a6b-0c1d2e3f4a5b
        description: the access token is read from a secret scope
        """))
    assert secret_problems(tmp_path) == []


def test_secret_scan_skips_virtualenvs_and_build_output(tmp_path):
    for folder in (".venv/lib", "dist", ".lakehouse/x", "node_modules/y"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.yml").write_text(f"token: {FAKE_PAT}\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "x.yaml").write_text(f"token: {FAKE_PAT}\n")
    assert [(p.file, p.key) for p in secret_problems(tmp_path)] == [(".github/x.yaml", "token")]


# --------------------------------------------------------------------------------------------------
# compute: one kind per task, declared clusters and environments, serverless rules, the wheel installed
# (dev is serverless, staging and prod use classic job clusters: databricks.yml)


def test_dev_is_serverless_and_staging_prod_are_classic(bundle):
    for target, kind in (("dev", "environment_key"), ("staging", "job_cluster_key"), ("prod", "job_cluster_key")):
        report = validate_bundle(bundle.root, target, PROD_VARS if target == "prod" else {}, env={})
        assert report.ok, "\n".join(map(str, report.problems))
        tasks = report.bundle.jobs["training"]["tasks"]
        assert all(kind in t for t in tasks), target


def test_a_task_with_two_kinds_of_compute(bundle):
    # The job file gives the task a job cluster while dev's override makes it serverless: a target's
    # override adds to the task, it does not replace its compute.
    bundle.edit("resources/training_job.yml", "        - task_key: train\n",
                "        - task_key: train\n          job_cluster_key: ml\n")
    problems = bundle.problems("dev")
    assert all(p.check == "compute" for p in problems), "\n".join(map(str, problems))
    by_key = {p.key: p for p in problems}
    assert set(by_key) == {"resources.jobs.training.tasks[0].environment_key",
                           "resources.jobs.training.tasks[0].job_cluster_key"}
    two = by_key["resources.jobs.training.tasks[0].environment_key"]
    assert two.file == "databricks.yml"
    assert ("task 'train' has two kinds of compute, job_cluster_key (set in resources/training_job.yml) and "
            "environment_key (set in databricks.yml); give it exactly one") in two.message
    undeclared = by_key["resources.jobs.training.tasks[0].job_cluster_key"]
    assert undeclared.file == "resources/training_job.yml"
    assert "job cluster 'ml', which resources.jobs.training.job_clusters does not declare (declared: none)" in (
        undeclared.message)


def test_a_wheel_task_without_compute(bundle):
    bundle.edit("databricks.yml", "            - {task_key: score, environment_key: default}\n", "")
    problem = only(bundle.problems("dev"), "compute")
    assert (problem.file, problem.key) == ("resources/batch_scoring_job.yml", "resources.jobs.batch_scoring.tasks[0]")
    assert ("Missing required cluster or environment settings: task 'score' (python_wheel_task) needs one of "
            "job_cluster_key") in problem.message
    assert bundle.problems("staging") == []


def test_undeclared_job_cluster_and_environment(bundle):
    bundle.edit("databricks.yml", "{task_key: score, job_cluster_key: scoring,", "{task_key: score, job_cluster_key: score,")
    for target in ("staging", "prod"):  # prod refers to staging's classic block
        problem = only(bundle.problems(target), "compute")
        assert (problem.file, problem.key) == ("databricks.yml", "resources.jobs.batch_scoring.tasks[0].job_cluster_key")
        assert ("task 'score' uses job cluster 'score', which resources.jobs.batch_scoring.job_clusters does not "
                "declare (declared: scoring)") in problem.message
    bundle.edit("databricks.yml", "{task_key: monitor, environment_key: default}",
                "{task_key: monitor, environment_key: serverless}")
    problem = only(bundle.problems("dev"), "compute")
    assert (problem.file, problem.key) == ("databricks.yml", "resources.jobs.monitoring.tasks[0].environment_key")
    assert ("task 'monitor' uses environment 'serverless', which resources.jobs.monitoring.environments does not "
            "declare (declared: default)") in problem.message


ENVIRONMENT_IN_JOB_FILE = """\
      environments:
        - environment_key: default
          spec:
            environment_version: "5"
            dependencies:
              - ../dist/*.whl
      tasks:
"""


def test_environment_declared_twice_the_cli_appends_environments(bundle):
    # A target's environments are appended to the job's (the CLI merges tasks and job clusters by key,
    # not environments): the same key in the job file and in dev's override is declared twice.
    bundle.edit("resources/monitoring_job.yml", "      tasks:\n", ENVIRONMENT_IN_JOB_FILE)
    problem = only(bundle.problems("dev"), "compute")
    assert (problem.file, problem.key) == ("databricks.yml", "resources.jobs.monitoring.environments[1].environment_key")
    assert ("environment 'default' is declared twice in job (first as resources.jobs.monitoring.environments[0] "
            "in resources/monitoring_job.yml)") in problem.message
    assert "appended" in problem.message


def test_job_cluster_declared_twice_is_merged_as_the_cli_merges_it(bundle):
    # The CLI merges job clusters (and tasks, job parameters) that share a key into one
    # (resourcemutator/merge_job_clusters.go): not an error, unlike environments (appended, see above).
    bundle.edit("databricks.yml", "            - job_cluster_key: scoring\n              new_cluster: *job_cluster\n",
                "            - job_cluster_key: scoring\n              new_cluster: *job_cluster\n"
                "            - job_cluster_key: scoring\n              new_cluster: {num_workers: 3}\n")
    assert bundle.problems("staging") == []
    report = validate_bundle(bundle.root, "staging", {}, env={})
    clusters = report.bundle.jobs["batch_scoring"]["job_clusters"]
    assert [c["job_cluster_key"] for c in clusters] == ["scoring"]
    assert clusters[0]["new_cluster"]["num_workers"] == 3


def test_serverless_task_takes_no_libraries(bundle):
    bundle.edit("resources/batch_scoring_job.yml", "        - task_key: score\n",
                "        - task_key: score\n          libraries:\n            - pypi: {package: xgboost-cpu}\n")
    problem = only(bundle.problems("dev"), "compute")
    assert (problem.file, problem.key) == ("resources/batch_scoring_job.yml", "resources.jobs.batch_scoring.tasks[0].libraries")
    assert ("task 'score' runs on serverless (environment_key 'default'), where a task takes no libraries: put "
            "them in the environment's dependencies (resources.jobs.batch_scoring.environments[0].spec.dependencies)"
            ) in problem.message
    assert bundle.problems("staging") == []  # on a job cluster a task library is fine


def test_condition_task_takes_no_compute(bundle):
    bundle.edit("databricks.yml", "            - {task_key: monitor, environment_key: default}",
                "            - {task_key: retrain_check, environment_key: default}\n"
                "            - {task_key: monitor, environment_key: default}")
    problem = only(bundle.problems("dev"), "compute")
    assert (problem.file, problem.key) == ("databricks.yml", "resources.jobs.monitoring.tasks[1].environment_key")
    assert "task 'retrain_check' is a condition_task, which runs no code and takes no compute" in problem.message


def test_environment_needs_a_version(bundle):
    bundle.edit("databricks.yml", '                environment_version: "5"', "                # no version")
    problems = bundle.problems("dev")
    assert {(p.check, p.file, p.key) for p in problems} == {  # one environment, used by every job
        ("compute", "databricks.yml", f"resources.jobs.{job}.environments[0].spec")
        for job in ("ingestion", "training", "batch_scoring", "monitoring", "online_features")}, "\n".join(map(str, problems))
    assert "environment 'default' has no environment_version: set spec.environment_version" in problems[0].message


def test_serverless_environment_must_install_the_wheel(bundle):
    bundle.edit("databricks.yml", "                  - ./dist/*.whl", "                  # no wheel")
    problems = bundle.problems("dev")
    assert {(p.check, p.file, p.key) for p in problems} == {
        ("wheel", "databricks.yml", f"resources.jobs.{job}.environments[0].spec.dependencies")
        for job in ("ingestion", "training", "batch_scoring", "monitoring", "online_features")}, "\n".join(map(str, problems))
    problem = next(p for p in problems if ".training." in p.key)
    assert ("task 'train' runs the fraud-mlops wheel on serverless (environment 'default'), but the environment's "
            "spec.dependencies do not install it: add the wheel the bundle builds, './dist/*.whl' (relative to "
            "databricks.yml)") == problem.message


def test_serverless_wheel_path_resolves_against_the_file_that_declares_it(bundle):
    # ../dist is right in resources/*.yml but outside the bundle in databricks.yml.
    bundle.edit("databricks.yml", "                  - ./dist/*.whl", "                  - ../dist/*.whl")
    problems = bundle.problems("dev")
    assert {(p.check, p.key) for p in problems} == {
        ("paths", f"resources.jobs.{job}.environments[0].spec.dependencies[0]")
        for job in ("ingestion", "training", "batch_scoring", "monitoring", "online_features")}, "\n".join(map(str, problems))
    assert "wheel '../dist/*.whl' does not exist (resolved against ./:" in problems[0].message
    assert "a whl artifact builds into dist" in problems[0].message


def test_a_dependency_the_cli_takes_for_a_local_path(bundle):
    # The CLI treats an environment dependency that is not name[extras] + version specifiers (here an
    # environment marker) as a file to upload.
    bundle.edit("databricks.yml", "                  - xgboost-cpu>=3.0,<4",
                "                  - \"xgboost-cpu>=3.0,<4; python_version>='3.12'\"")
    problems = bundle.problems("dev")
    assert {(p.check, p.file, p.key) for p in problems} == {
        ("paths", "databricks.yml", f"resources.jobs.{job}.environments[0].spec.dependencies[1]")
        for job in ("ingestion", "training", "batch_scoring", "monitoring", "online_features")}, "\n".join(map(str, problems))
    assert "treats an environment dependency that is not a plain requirement" in problems[0].message


def test_classic_task_must_install_the_wheel(bundle):
    bundle.edit("databricks.yml", "{task_key: promote, job_cluster_key: ml, libraries: [{whl: ./dist/*.whl}]}",
                "{task_key: promote, job_cluster_key: ml}")
    problem = only(bundle.problems("prod"), "wheel")
    assert (problem.file, problem.key) == ("databricks.yml", "resources.jobs.training.tasks[2].job_cluster_key")
    assert ("task 'promote' runs the fraud-mlops wheel on a cluster (job_cluster_key) but does not install it: add "
            "libraries: [{whl: ./dist/*.whl}] to the task (relative to databricks.yml)") == problem.message


# --------------------------------------------------------------------------------------------------
# include patterns


def test_include_that_matches_no_file(bundle):
    bundle.edit("databricks.yml", "  - resources/*.yml\n", "  - resource/*.yml\n")
    problems = bundle.problems("prod")
    include = [p for p in problems if p.key.startswith("include")]
    assert [(p.check, p.file, p.key) for p in include] == [("paths", "databricks.yml", "include[0]")]
    assert "include pattern 'resource/*.yml' matches no file" in include[0].message
    assert "would delete" in include[0].message


def test_include_of_a_file_that_does_not_exist(bundle):
    bundle.edit("databricks.yml", "  - resources/*.yml\n", "  - resources/*.yml\n  - resources/alert.yml\n")
    problem = only(bundle.problems(), "load")
    assert (problem.file, problem.key) == ("databricks.yml", "include")
    assert "resources/alert.yml does not match any file" in problem.message


# --------------------------------------------------------------------------------------------------
# limits: timeouts, concurrency, retries


@pytest.mark.parametrize(("file", "old", "new", "key", "expected"), [
    ("resources/training_job.yml", "      timeout_seconds: 14400\n", "      timeout_seconds: -1\n",
     "resources.jobs.training.timeout_seconds", "timeout_seconds is -1: must be 0 (no timeout)"),
    ("resources/ingestion_job.yml", "      max_concurrent_runs: 1\n", "      max_concurrent_runs: 0\n",
     "resources.jobs.ingestion.max_concurrent_runs", "max_concurrent_runs is 0: must be at least 1"),
    ("resources/batch_scoring_job.yml", "        - task_key: score\n",
     "        - task_key: score\n          timeout_seconds: -60\n",
     "resources.jobs.batch_scoring.tasks[0].timeout_seconds", "timeout_seconds is -60: must be 0 (no timeout)"),
    ("resources/monitoring_job.yml", "        - task_key: monitor\n",
     "        - task_key: monitor\n          max_retries: -2\n",
     "resources.jobs.monitoring.tasks[0].max_retries", "max_retries is -2: must be -1 (retry without limit)"),
])
def test_negative_timeouts_concurrency_and_retries(bundle, file, old, new, key, expected):
    bundle.edit(file, old, new)
    problem = only(bundle.problems(), "jobs")
    assert (problem.file, problem.key) == (file, key)
    assert expected in problem.message


def test_unlimited_retries_and_no_timeout_are_fine(bundle):
    bundle.edit("resources/monitoring_job.yml", "        - task_key: monitor\n",
                "        - task_key: monitor\n          max_retries: -1\n          timeout_seconds: 0\n")
    assert bundle.problems() == []


# --------------------------------------------------------------------------------------------------
# The dashboard, the SQL alert, the quality monitor, the schema and the volume: each broken once with an
# unknown field (the databricks-bundles class of its type) and once with a bad reference


NEW_RESOURCE_CASES = [
    # (file, old, new, target, check, key, message)
    ("resources/dashboard.yml", "      embed_credentials: false\n", "      embed_credentials: false\n      dataset_catalogue: x\n",
     "dev", "schema", "resources.dashboards.fraud_monitoring.dataset_catalogue", "did you mean 'dataset_catalog'"),
    ("resources/dashboard.yml", "dataset_schema: ${var.schema}", "dataset_schema: ${resources.schemas.nope.name}",
     "dev", "load", "resources.dashboards.fraud_monitoring.dataset_schema", "resources.schemas.nope, which is not defined"),
    ("resources/alerts.yml", "        empty_result_state: OK", "        empty_result: OK",
     "staging", "schema", "resources.alerts.monitoring_breach.evaluation.empty_result", "not a field of AlertV2Evaluation"),
    ("resources/alerts.yml", "            - user_email: ${var.alert_email}", "            - user_email: ${var.alert_mail}",
     "staging", "load", "resources.alerts.monitoring_breach.evaluation.notification.subscriptions[0].user_email",
     "undeclared variable 'alert_mail'"),
    ("resources/quality_monitor.yml", "            label_col: label\n", "            label_col: label\n            label_delay: 7\n",
     "prod", "schema", "resources.quality_monitors.fraud_inference_log.inference_log.label_delay",
     "not a field of MonitorInferenceLog"),
    ("resources/quality_monitor.yml", "table_name: ${var.catalog}.${resources.schemas.fraud.name}",
     "table_name: ${var.catalog}.${resources.schemas.nope.name}", "staging", "load",
     "resources.quality_monitors.fraud_inference_log.table_name", "resources.schemas.nope, which is not defined"),
    ("resources/unity_catalog.yml", "          comment: Card-fraud", "          owner: someone\n          comment: Card-fraud",
     "staging", "schema", "resources.schemas.fraud.owner", "not a field of Schema"),
    ("resources/unity_catalog.yml", "            - principal: ${var.operators_group}\n              privileges: [USE_SCHEMA, SELECT]\n",
     "            - principal: ${var.operator_group}\n              privileges: [USE_SCHEMA, SELECT]\n",
     "staging", "load", "resources.schemas.fraud.grants[0].principal", "undeclared variable 'operator_group'"),
    ("resources/unity_catalog.yml", "          volume_type: MANAGED\n", "          volume_kind: MANAGED\n",
     "prod", "schema", "resources.volumes.landing.volume_kind", "not a field of Volume"),
    ("resources/unity_catalog.yml", "schema_name: ${resources.schemas.fraud.name}", "schema_name: ${resources.schemas.nope.name}",
     "prod", "load", "resources.volumes.landing.schema_name", "resources.schemas.nope, which is not defined"),
]


@pytest.mark.parametrize(("file", "old", "new", "target", "check", "key", "message"), NEW_RESOURCE_CASES,
                         ids=[f"{c[0].split('/')[1][:-4]}-{c[4]}" for c in NEW_RESOURCE_CASES])
def test_each_new_resource_broken_once(bundle, file, old, new, target, check, key, message):
    bundle.edit(file, old, new)
    problem = only(bundle.problems(target), check)
    assert (problem.file, problem.key) == (file, key) and message in problem.message, str(problem)


def test_cli_validate_reports_a_broken_new_resource(bundle, capsys):
    bundle.edit("resources/quality_monitor.yml", "            label_col: label\n", "            label_column: label\n")
    assert cli.main(["validate", "--bundle-root", str(bundle.root), "--target", "staging"]) == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "resources/quality_monitor.yml" in err and "inference_log.label_column" in err and "did you mean 'label_col'" in err


def test_a_grant_privilege_must_be_a_unity_catalog_privilege(bundle):
    bundle.edit("resources/unity_catalog.yml", "privileges: [READ_VOLUME, WRITE_VOLUME]", "privileges: [READ_VOLUME, WRITE]")
    problem = only(bundle.problems("prod"), "schema")
    assert problem.key == "resources.volumes.landing.grants[0].privileges[1]" and 'invalid value "WRITE"' in problem.message


@pytest.mark.parametrize(("content", "message"), [
    (None, "failed to read serialized dashboard from file_path ../dashboards/fraud_monitoring.lvdash.json"),
    ("{not json", "is not a valid dashboard: not JSON"),
    ('{"datasets": {}, "pages": []}', "datasets must be a list"),
])
def test_the_dashboard_file_must_exist_and_hold_a_dashboard(bundle, content, message):
    path = bundle.root / "dashboards" / "fraud_monitoring.lvdash.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content, encoding="utf-8")
    problem = only(bundle.problems("dev"), "resources")
    assert problem.rule == "dashboard-files" and problem.key == "resources.dashboards.fraud_monitoring.file_path"
    assert problem.file == "resources/dashboard.yml" and message in problem.message


def test_the_dashboard_file_resolves_against_the_file_that_names_it(bundle):
    bundle.edit("resources/dashboard.yml", "../dashboards/fraud_monitoring.lvdash.json", "dashboards/fraud_monitoring.lvdash.json")
    assert only(bundle.problems("dev"), "resources").rule == "dashboard-files"


# --------------------------------------------------------------------------------------------------
# Real-time scoring (resources/serving.yml): the App, the Lakebase instance and its database catalog, each
# broken once with an unknown field or a bad value (the databricks-bundles class of its type) and once
# with a bad reference


SERVING_CASES = [
    # (old, new, target, check, key, message)
    ("      source_code_path: ../serving_app\n", "      source_code_path: ../serving_app\n      compute: MEDIUM\n",
     "dev", "schema", "resources.apps.fraud_scoring.compute", "unknown field: compute (not a field of App)"),
    ("              database:\n                instance_name: ${var.lakebase_instance}",
     "              databse:\n                instance_name: ${var.lakebase_instance}",
     "dev", "schema", "resources.apps.fraud_scoring.resources[0].databse", "did you mean 'database'"),
    ("permission: CAN_CONNECT_AND_CREATE", "permission: CAN_CONNECT", "dev", "schema",
     "resources.apps.fraud_scoring.resources[0].database.permission", 'invalid value "CAN_CONNECT"'),
    ("          - level: CAN_USE\n              group_name", "          - level: CAN_QUERY\n              group_name",
     "staging", "schema", "resources.apps.fraud_scoring.permissions[0].level", 'invalid value "CAN_QUERY"'),
    ("value: ${var.model_name}", "value: ${var.model}", "dev", "load",
     "resources.apps.fraud_scoring.config.env[2].value", "undeclared variable 'model'"),
    ("source_code_path: ../serving_app", "source_code_path: ../serving", "dev", "paths",
     "resources.apps.fraud_scoring.source_code_path", "directory ../serving not found"),
    ("          capacity: CU_1\n", "          capacity: CU_1\n          size: small\n", "prod", "schema",
     "resources.database_instances.online_store.size", "not a field of DatabaseInstance"),
    ("${resources.apps.fraud_scoring.service_principal_client_id}", "${resources.apps.scoring.service_principal_client_id}",
     "staging", "load", "resources.database_instances.online_store.permissions[0].service_principal_name",
     "resources.apps.scoring, which is not defined"),
    ("create_database_if_not_exists: true", "create_database: true", "staging", "schema",
     "resources.database_catalogs.online_store_catalog.create_database", "not a field of DatabaseCatalog"),
    ("database_instance_name: ${resources.database_instances.online_store.name}",
     "database_instance_name: ${resources.database_instances.online.name}", "prod", "load",
     "resources.database_catalogs.online_store_catalog.database_instance_name",
     "resources.database_instances.online, which is not defined"),
    ("database_name: ${resources.database_catalogs.online_store_catalog.database_name}",
     "database_name: ${resources.database_catalogs.online_store.database_name}", "staging", "load",
     "resources.apps.fraud_scoring.resources[0].database.database_name",
     "resources.database_catalogs.online_store, which is not defined"),
]


@pytest.mark.parametrize(("old", "new", "target", "check", "key", "message"), SERVING_CASES,
                         ids=[f"{c[4].split('.')[1]}-{c[3]}-{i}" for i, c in enumerate(SERVING_CASES)])
def test_each_serving_resource_broken_once(bundle, old, new, target, check, key, message):
    bundle.edit("resources/serving.yml", old, new)
    problem = only(bundle.problems(target), check)
    assert (problem.file, problem.key) == ("resources/serving.yml", key) and message in problem.message, str(problem)


def test_the_app_source_folder_must_exist(bundle):
    """The CLI translates source_code_path to the uploaded folder; a folder that is not there is an error."""
    shutil.rmtree(bundle.root / "serving_app")
    problem = only(bundle.problems("staging"), "paths")
    assert problem.key == "resources.apps.fraud_scoring.source_code_path" and "not found" in problem.message


def test_apps_refuse_a_top_level_run_as_of_another_identity(bundle):
    """Apps run as their own service principal (run_as.go): a prod-wide run_as would refuse them too, as it
    refuses the quality monitor; hence prod names run_as job by job."""
    (bundle.root / "resources" / "quality_monitor.yml").unlink()
    bundle.edit("databricks.yml", "    # The operators group runs and watches the jobs",
                "    run_as:\n      service_principal_name: ${var.prod_service_principal}\n"
                "    # The operators group runs and watches the jobs")
    problem = only(bundle.problems("prod"), "run_as")
    assert problem.key == "resources.apps" and "apps do not support a setting a run_as" in problem.message
