"""The local job runner, with fake entry points (no Spark, no MLflow)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bundlekit import cli
from bundlekit import task_runtime as runtime
from bundlekit.loader import BundleError, load_bundle
from bundlekit.runner import (
    EXCLUDED,
    FAILED,
    SKIPPED,
    SUCCESS,
    RunnerError,
    evaluate_condition,
    resolve_entry_point,
    run_job,
)

from .fake_entry_points import FakeEntryPoints

REPO_ROOT = Path(__file__).resolve().parents[2]


def _repo_bundle(target: str = "dev", **overrides: str):
    return load_bundle(REPO_ROOT, target, overrides, env={}, user_name="alice@example.com")


def _mini_bundle(tmp_path: Path, jobs_yaml: str, target: str = "t"):
    (tmp_path / "databricks.yml").write_text(textwrap.dedent("""\
        bundle:
          name: mini
        include: [resources/*.yml]
        targets:
          t:
            default: true
        """), encoding="utf-8")
    (tmp_path / "resources").mkdir(exist_ok=True)
    (tmp_path / "resources" / "jobs.yml").write_text(textwrap.dedent(jobs_yaml), encoding="utf-8")
    return load_bundle(tmp_path, target, {}, env={})


def _wheel(key: str, ep: str, deps: list[str] | None = None, **named: str) -> str:
    lines = [f"        - task_key: {key}"]
    if deps:
        lines.append("          depends_on: [" + ", ".join(f"{{task_key: {d}}}" for d in deps) + "]")
    lines += ["          python_wheel_task:", "            package_name: pkg", f"            entry_point: {ep}"]
    if named:
        lines.append("            named_parameters:")
        lines += [f"              {k}: \"{v}\"" for k, v in named.items()]
    return "\n".join(lines) + "\n"


def _job(name: str, tasks: str, params: dict[str, str] | None = None) -> str:
    text = f"    {name}:\n      name: {name}\n"
    if params:
        text += "      parameters:\n" + "".join(
            f"        - name: {k}\n          default: \"{v}\"\n" for k, v in params.items())
    return text + "      tasks:\n" + tasks


def _jobs(*jobs: str) -> str:
    return "resources:\n  jobs:\n" + "".join(jobs)


def _quiet(lines: list[str] | None = None):
    return (lambda line: lines.append(line)) if lines is not None else (lambda line: None)


# --------------------------------------------------------------------------------------------------
# Our jobs, with fake entry points


def test_ingestion_runs_in_order_with_exactly_the_declared_parameters():
    fakes = FakeEntryPoints()
    lines: list[str] = []
    result = run_job(_repo_bundle(), "ingestion", {"file_pattern": "2018-*.csv.gz"},
                     resolve_entry_point=fakes, log=_quiet(lines))
    assert result.ok and result.status == SUCCESS
    assert fakes.order == ["fraud-bronze", "fraud-silver", "fraud-gold"]
    assert fakes.task_keys == ["bronze", "silver", "gold"]
    assert fakes.argv("fraud-bronze") == [
        "--catalog=fraud_dev", "--schema=fraud",
        "--landing_path=/Volumes/fraud_dev/fraud/landing/transactions", "--file_pattern=2018-*.csv.gz"]
    assert fakes.argv("fraud-silver") == ["--catalog=fraud_dev", "--schema=fraud"]
    assert fakes.argv("fraud-gold") == ["--catalog=fraud_dev", "--schema=fraud", "--label_delay_days=7"]
    assert [t.status for t in result.tasks.values()] == [SUCCESS] * 3
    assert result.tasks["bronze"].result == {"entry_point": "fraud-bronze", "n_args": 4}
    assert result.parameters["file_pattern"] == "2018-*.csv.gz"
    assert any("START    bronze: fraud-bronze --catalog=fraud_dev" in line for line in lines)
    assert any(line.startswith("[ingestion] SUCCESS  gold in ") for line in lines)
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict))["tasks"]["gold"]["status"] == SUCCESS


def test_training_parameters_and_target():
    fakes = FakeEntryPoints()
    result = run_job(_repo_bundle("staging"), "training", {"n_estimators": 50},
                     resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["fraud-train", "fraud-validate", "fraud-promote"]
    train = fakes.argv("fraud-train")
    assert "--n_estimators=50" in train and "--catalog=fraud_staging" in train
    assert "--experiment_name=/Shared/fraud-mlops/staging/fraud-detector" in train
    assert "--model_name=fraud_staging.fraud.fraud_detector" in train
    assert "--train_start=" in train
    assert fakes.argv("fraud-validate")[-5:] == [
        "--min_average_precision=0.3", "--min_roc_auc=0.75", "--max_ap_degradation=0.02", "--min_shadow_days=0",
        "--delay_days=7"]
    assert fakes.argv("fraud-promote") == [
        "--catalog=fraud_staging", "--schema=fraud", "--model_name=fraud_staging.fraud.fraud_detector"]


def test_unknown_job_parameter_is_an_error_before_anything_runs():
    fakes = FakeEntryPoints()
    with pytest.raises(RunnerError, match=r"no parameter\(s\) 'n_trees'.*n_estimators"):
        run_job(_repo_bundle(), "training", {"n_trees": "5"}, resolve_entry_point=fakes, log=_quiet())
    assert fakes.calls == []
    with pytest.raises(BundleError, match="unknown job"):
        run_job(_repo_bundle(), "nope", resolve_entry_point=fakes, log=_quiet())


def _monitor_setting(retrain: Any):
    def monitor(argv):
        runtime.set_task_value("retrain", retrain)
        runtime.set_task_value("max_psi", 0.31)
        return {"retrain": retrain}
    return monitor


def test_monitoring_retrain_value_triggers_training_job():
    fakes = FakeEntryPoints({"fraud-monitor": _monitor_setting(True)})
    result = run_job(_repo_bundle(), "monitoring", {"catalog": "other_cat"},
                     resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["fraud-monitor", "fraud-train", "fraud-validate", "fraud-promote"]
    assert result.tasks["monitor"].values == {"retrain": True, "max_psi": 0.31}
    check = result.tasks["retrain_check"]
    assert check.status == SUCCESS and check.outcome == "true"
    assert check.result == {"left": "true", "op": "EQUAL_TO", "right": "true", "outcome": "true"}
    retrain = result.tasks["retrain"]
    assert retrain.status == SUCCESS
    assert retrain.result["job_key"] == "training" and retrain.result["ok"] is True
    # the job_parameters of the run_job_task reach the training job
    assert "--catalog=other_cat" in fakes.argv("fraud-train")
    assert "--model_name=fraud_dev.fraud.fraud_detector" in fakes.argv("fraud-promote")
    assert retrain.result["parameters"]["catalog"] == "other_cat"
    assert retrain.result["parameters"]["n_estimators"] == "100" and retrain.result["parameters"]["n_folds"] == "4"


def test_monitoring_without_retrain_excludes_the_retrain_task():
    fakes = FakeEntryPoints({"fraud-monitor": _monitor_setting(False)})
    result = run_job(_repo_bundle(), "monitoring", resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["fraud-monitor"]
    assert result.tasks["retrain_check"].outcome == "false"
    assert result.tasks["retrain"].status == EXCLUDED
    assert "outcome is 'false', needs 'true'" in result.tasks["retrain"].reason


def test_alert_that_fails_monitor_still_triggers_retraining():
    """fail_on_alert=true: monitor publishes retrain=true, then fails; retrain_check runs anyway
    (run_if ALL_DONE), the training job runs, and the monitoring job is reported failed."""

    def monitor(argv):
        runtime.set_task_value("retrain", "true")
        raise RuntimeError("monitoring alert: score PSI 0.31 > 0.2")

    fakes = FakeEntryPoints({"fraud-monitor": monitor})
    result = run_job(_repo_bundle(), "monitoring", {"fail_on_alert": "true"}, resolve_entry_point=fakes,
                     log=_quiet())
    assert not result.ok and result.failed_tasks == ["monitor"]
    assert "--fail_on_alert=true" in fakes.argv("fraud-monitor")
    assert result.tasks["retrain_check"].outcome == "true"
    assert result.tasks["retrain"].status == SUCCESS
    assert fakes.order == ["fraud-monitor", "fraud-train", "fraud-validate", "fraud-promote"]


def test_missing_task_value_fails_the_condition():
    fakes = FakeEntryPoints()  # monitor sets no task value
    result = run_job(_repo_bundle(), "monitoring", resolve_entry_point=fakes, log=_quiet())
    assert not result.ok
    assert result.tasks["retrain_check"].status == FAILED
    assert "did not set task value 'retrain'" in result.tasks["retrain_check"].error
    assert result.tasks["retrain"].status == SKIPPED
    assert result.failed_tasks == ["retrain_check"] and result.skipped_tasks == ["retrain"]


def test_failing_task_fails_job_and_skips_dependants():
    def boom(argv):
        raise RuntimeError("landing folder is empty")

    fakes = FakeEntryPoints({"fraud-bronze": boom})
    lines: list[str] = []
    result = run_job(_repo_bundle(), "ingestion", resolve_entry_point=fakes, log=_quiet(lines))
    assert not result.ok and result.status == FAILED
    assert fakes.order == ["fraud-bronze"]
    bronze = result.tasks["bronze"]
    assert bronze.status == FAILED
    assert bronze.error == "RuntimeError: landing folder is empty"
    assert "Traceback" in bronze.traceback
    assert result.tasks["silver"].status == SKIPPED
    assert result.tasks["gold"].status == SKIPPED
    assert "upstream bronze failed" in result.tasks["silver"].reason
    assert "upstream silver skipped" in result.tasks["gold"].reason
    assert any("FAILED   bronze" in line and "landing folder is empty" in line for line in lines)
    assert any("run " in line and "FAILED in" in line for line in lines)


def test_failed_nested_job_fails_the_run_job_task():
    def bad_validate(argv):
        raise ValueError("candidate below min_average_precision")

    fakes = FakeEntryPoints({"fraud-monitor": _monitor_setting(True), "fraud-validate": bad_validate})
    result = run_job(_repo_bundle(), "monitoring", resolve_entry_point=fakes, log=_quiet())
    assert not result.ok
    retrain = result.tasks["retrain"]
    assert retrain.status == FAILED
    assert "job 'training'" in retrain.error and "validate FAILED" in retrain.error
    assert retrain.result["tasks"]["promote"]["status"] == SKIPPED


def test_task_values_are_scoped_per_run():
    runtime.LOCAL_TASK_VALUES.clear()
    runtime.LOCAL_TASK_VALUES["stale"] = {"retrain": True}
    runtime.CURRENT_TASK_KEY[0] = "local"
    seen: dict[str, Any] = {}

    def train(argv):
        seen["values_in_child"] = {k: dict(v) for k, v in runtime.LOCAL_TASK_VALUES.items()}
        runtime.set_task_value("run_id", "abc")
        return {}

    fakes = FakeEntryPoints({"fraud-monitor": _monitor_setting(True), "fraud-train": train})
    result = run_job(_repo_bundle(), "monitoring", resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert seen["values_in_child"] == {}  # the nested training run starts with no values
    assert result.tasks["retrain"].result["tasks"]["train"]["values"] == {"run_id": "abc"}
    # the caller's values and task key are restored afterwards
    assert runtime.LOCAL_TASK_VALUES == {"stale": {"retrain": True}}
    assert runtime.CURRENT_TASK_KEY[0] == "local"
    runtime.LOCAL_TASK_VALUES.clear()


# --------------------------------------------------------------------------------------------------
# Runner semantics on small jobs


def test_topological_order_follows_depends_on_not_file_order(tmp_path):
    tasks = (_wheel("d", "ep-d", ["b", "c"]) + _wheel("c", "ep-c", ["a"]) + _wheel("b", "ep-b", ["a"])
             + _wheel("a", "ep-a"))
    b = _mini_bundle(tmp_path, _jobs(_job("diamond", tasks)))
    fakes = FakeEntryPoints()
    result = run_job(b, "diamond", resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["ep-a", "ep-c", "ep-b", "ep-d"]  # ties: file order (c before b)
    assert list(result.tasks) == ["a", "c", "b", "d"]


def test_cycle_detection(tmp_path):
    tasks = _wheel("a", "ep-a", ["c"]) + _wheel("b", "ep-b", ["a"]) + _wheel("c", "ep-c", ["b"]) + _wheel("z", "z")
    b = _mini_bundle(tmp_path, _jobs(_job("loop", tasks)))
    fakes = FakeEntryPoints()
    with pytest.raises(RunnerError, match=r"dependency cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        run_job(b, "loop", resolve_entry_point=fakes, log=_quiet())
    assert fakes.calls == []


def test_unknown_dependency_and_duplicate_keys(tmp_path):
    tasks = _wheel("a", "ep-a", ["ghost"]) + _wheel("a", "ep-a2")
    b = _mini_bundle(tmp_path, _jobs(_job("bad", tasks)))
    with pytest.raises(RunnerError) as err:
        run_job(b, "bad", resolve_entry_point=FakeEntryPoints(), log=_quiet())
    assert "unknown task 'ghost'" in str(err.value) and "'a' is used twice" in str(err.value)


def test_undeclared_job_parameter_reference_is_rejected(tmp_path):
    tasks = _wheel("a", "ep-a", catalog="{{job.parameters.catalog}}", other="{{job.parameters.missing}}")
    b = _mini_bundle(tmp_path, _jobs(_job("refs", tasks, {"catalog": "c"})))
    with pytest.raises(RunnerError, match="job parameter 'missing' is not declared"):
        run_job(b, "refs", resolve_entry_point=FakeEntryPoints(), log=_quiet())


def test_task_value_reference_must_be_upstream(tmp_path):
    tasks = _wheel("a", "ep-a") + _wheel("b", "ep-b", x="{{tasks.a.values.k}}")
    b = _mini_bundle(tmp_path, _jobs(_job("refs", tasks)))
    with pytest.raises(RunnerError, match="task 'a' is not upstream"):
        run_job(b, "refs", resolve_entry_point=FakeEntryPoints(), log=_quiet())


def test_unsupported_task_type(tmp_path):
    jobs = _jobs(_job("nb", "        - task_key: n\n          notebook_task: {notebook_path: ./x.py}\n"))
    b = _mini_bundle(tmp_path, jobs)
    with pytest.raises(RunnerError, match="notebook_task is not supported"):
        run_job(b, "nb", resolve_entry_point=FakeEntryPoints(), log=_quiet())


def test_dynamic_value_references(tmp_path):
    tasks = _wheel("a", "ep-a", day="{{job.start_time.iso_date}}", run="{{job.run_id}}",
                   target="{{bundle.target}}", me="{{task.name}}", name="{{ job.name }}")
    tasks += _wheel("b", "ep-b", ["a"], v="{{tasks.a.values.n}}", state="{{tasks.a.result_state}}",
                    flag="{{tasks.a.values.flag}}", obj="{{tasks.a.values.obj}}")

    def ep_a(argv):
        runtime.set_task_value("n", 3)
        runtime.set_task_value("flag", False)
        runtime.set_task_value("obj", {"k": [1]})
        return {}

    b = _mini_bundle(tmp_path, _jobs(_job("dyn", tasks)))
    fakes = FakeEntryPoints({"ep-a": ep_a})
    result = run_job(b, "dyn", resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    a = dict(arg[2:].split("=", 1) for arg in fakes.argv("ep-a"))
    assert a["day"] == result.start_time[:10]
    assert a["run"] == str(result.run_id)
    assert a["target"] == "t" and a["me"] == "a" and a["name"] == "dyn"
    assert fakes.argv("ep-b") == ["--v=3", "--state=success", "--flag=false", '--obj={"k": [1]}']


def test_condition_outcomes_and_run_if(tmp_path):
    jobs = _jobs(_job("cond", textwrap.indent(textwrap.dedent("""\
        - task_key: check
          condition_task: {op: GREATER_THAN, left: "{{job.parameters.score}}", right: "0.5"}
        - task_key: when_true
          depends_on: [{task_key: check, outcome: "true"}]
          python_wheel_task: {package_name: pkg, entry_point: ep-true}
        - task_key: when_false
          depends_on: [{task_key: check, outcome: "false"}]
          python_wheel_task: {package_name: pkg, entry_point: ep-false}
        - task_key: after_true
          depends_on: [{task_key: when_true}]
          python_wheel_task: {package_name: pkg, entry_point: ep-after}
        - task_key: always
          depends_on: [{task_key: when_true}, {task_key: when_false}]
          run_if: AT_LEAST_ONE_SUCCESS
          python_wheel_task: {package_name: pkg, entry_point: ep-always}
        """), "        "), {"score": "0.7"}))
    b = _mini_bundle(tmp_path, jobs)
    fakes = FakeEntryPoints()
    result = run_job(b, "cond", resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["ep-true", "ep-after", "ep-always"]
    assert result.tasks["when_false"].status == EXCLUDED

    fakes = FakeEntryPoints()
    result = run_job(b, "cond", {"score": "0.2"}, resolve_entry_point=fakes, log=_quiet())
    assert result.ok
    assert fakes.order == ["ep-false", "ep-always"]
    assert result.tasks["when_true"].status == EXCLUDED
    assert result.tasks["after_true"].status == EXCLUDED  # dependants of excluded tasks are excluded

    result = run_job(b, "cond", {"score": "high"}, resolve_entry_point=FakeEntryPoints(), log=_quiet())
    assert not result.ok
    assert "not a number" in result.tasks["check"].error


def test_run_if_all_done_runs_after_a_failure(tmp_path):
    tasks = _wheel("a", "ep-a") + _wheel("cleanup", "ep-cleanup", ["a"]).replace(
        "          python_wheel_task:", "          run_if: ALL_DONE\n          python_wheel_task:")
    b = _mini_bundle(tmp_path, _jobs(_job("j", tasks)))

    def fail(argv):
        raise SystemExit(3)

    fakes = FakeEntryPoints({"ep-a": fail})
    result = run_job(b, "j", resolve_entry_point=fakes, log=_quiet())
    assert fakes.order == ["ep-a", "ep-cleanup"]
    assert result.tasks["a"].status == FAILED and "exited with status 3" in result.tasks["a"].error
    assert result.tasks["cleanup"].status == SUCCESS
    assert not result.ok


def test_run_job_task_recursion_is_refused(tmp_path):
    jobs = _jobs(_job("selfish", "        - task_key: again\n          run_job_task:\n"
                                 "            job_id: ${resources.jobs.selfish.id}\n"))
    b = _mini_bundle(tmp_path, jobs)
    result = run_job(b, "selfish", resolve_entry_point=FakeEntryPoints(), log=_quiet())
    assert not result.ok
    assert "recursively" in result.tasks["again"].error


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [("EQUAL_TO", "true", "true", True), ("EQUAL_TO", "12.0", "12", False), ("NOT_EQUAL", "a", "b", True),
     ("GREATER_THAN", "0.3", "0.25", True), ("GREATER_THAN_OR_EQUAL", "12.0", "12", True),
     ("LESS_THAN", "1", "2", True), ("LESS_THAN_OR_EQUAL", "3", "2", False)],
)
def test_evaluate_condition(op, left, right, expected):
    assert evaluate_condition(op, left, right) is expected


def test_default_resolver_uses_installed_metadata():
    assert resolve_entry_point("fraud_mlops", "bundlekit") is cli.main
    with pytest.raises(RunnerError, match="no entry point 'fraud-nope'.*fraud-bronze"):
        resolve_entry_point("fraud_mlops", "fraud-nope")
    with pytest.raises(RunnerError, match="not installed"):
        resolve_entry_point("surely_not_installed_pkg", "x")


def test_a_lookup_variable_blocks_only_the_jobs_that_use_it(tmp_path):
    """A ``lookup`` (a SQL warehouse by name ...) is resolved by the CLI against a workspace: locally a
    job that does not use it runs, and one that does is refused before anything runs, naming --var."""
    (tmp_path / "databricks.yml").write_text(textwrap.dedent("""\
        bundle: {name: mini}
        include: [resources/*.yml]
        variables:
          warehouse_id: {lookup: {warehouse: Starter}}
        targets:
          t: {default: true}
        """), encoding="utf-8")
    (tmp_path / "resources").mkdir()
    jobs = _job("plain", _wheel("a", "ep-a")) + _job("sql", _wheel("b", "ep-b", warehouse="${var.warehouse_id}"))
    (tmp_path / "resources" / "jobs.yml").write_text(textwrap.dedent("resources:\n  jobs:\n" + jobs), encoding="utf-8")
    fake = FakeEntryPoints()
    bundle = load_bundle(tmp_path, None, {}, env={})
    assert run_job(bundle, "plain", resolve_entry_point=fake, log=lambda line: None).ok
    with pytest.raises(BundleError, match=r"job 'sql' uses the lookup variable\(s\) warehouse_id.*--var warehouse_id="):
        run_job(bundle, "sql", resolve_entry_point=fake, log=lambda line: None)
    assert [c[0] for c in fake.calls] == ["ep-a"]
    given = load_bundle(tmp_path, None, {"warehouse_id": "abc123"}, env={})
    assert run_job(given, "sql", resolve_entry_point=fake, log=lambda line: None).ok
    assert fake.calls[-1][1] == ["--warehouse=abc123"]
