"""Policies: a bundle opts into stricter rules with ``bundlekit-policy.yml``; each rule breaks once.

The bundles here are small and valid for the CLI (no compatibility problem); each case adds one
thing the ``production`` policy refuses, and the problem must name that rule, file and key. Without
the policy the same bundle passes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bundlekit import cli, policy
from bundlekit.policy import POLICY_FILE_NAME, PolicyError, read_policy_file
from bundlekit.validate import validate_bundle, validate_targets

USER = "deployer@example.com"
SP = "6f1c2f4e-2a4b-4f3a-9a6b-0c1d2e3f4a5b"

BASE = f"""\
bundle: {{name: t}}
resources:
  jobs:
    j:
      name: j
      email_notifications: {{on_failure: [oncall@example.com]}}
      max_concurrent_runs: 1
      job_clusters:
        - job_cluster_key: c
          new_cluster: {{spark_version: 15.4.x-scala2.12, num_workers: 1, node_type_id: i3.xlarge}}
      tasks:
        - task_key: a
          job_cluster_key: c
          notebook_task: {{notebook_path: /Workspace/Shared/nb}}
targets:
  dev: {{mode: development, default: true}}
  prod:
    mode: production
    workspace: {{root_path: /Workspace/Users/{USER}/.bundle/t}}
    run_as: {{service_principal_name: {SP}}}
    permissions: [{{level: CAN_RUN, group_name: operators}}]
"""
POLICY = "policy: production\nproduction_targets: [prod]\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def errors(folder: Path, target: str = "dev", **kwargs):
    return validate_bundle(folder, target, {}, env={}, user_name=USER, **kwargs).errors


def test_the_base_bundle_passes_with_and_without_the_policy(tmp_path):
    write(tmp_path, {"databricks.yml": BASE, POLICY_FILE_NAME: POLICY})
    for target in ("dev", "prod"):
        report = validate_bundle(tmp_path, target, {}, env={}, user_name=USER)
        assert report.problems == [] and report.policy.name == "production", "\n".join(map(str, report.problems))


#: ``(rule, edit of BASE (old, new), target, expected file and key)``: one break per policy rule.
BREAKS = [
    ("production-target", ("  prod:\n    mode: production\n", "  prod:\n    mode: development\n"), "prod",
     ("databricks.yml", "targets.prod.mode")),
    ("production-target", (f"    run_as: {{service_principal_name: {SP}}}\n", f"    run_as: {{user_name: {USER}}}\n"),
     "prod", ("databricks.yml", "targets.prod.run_as.user_name")),
    ("failure-notifications", ("      email_notifications: {on_failure: [oncall@example.com]}\n", ""), "dev",
     ("databricks.yml", "resources.jobs.j.email_notifications")),
    ("pinned-runtimes", ("spark_version: 15.4.x-scala2.12", "spark_version: latest"), "dev",
     ("databricks.yml", "resources.jobs.j.job_clusters[0].new_cluster.spark_version")),
    ("include-matches", ("bundle: {name: t}\n", "bundle: {name: t}\ninclude: [resources/*.yml]\n"), "dev",
     ("databricks.yml", "include[0]")),
    ("local-libraries", ("          job_cluster_key: c\n", ("          job_cluster_key: c\n"
                         "          libraries: [{whl: ./wheels/missing.whl}]\n")), "dev",
     ("databricks.yml", "resources.jobs.j.tasks[0].libraries[0].whl")),
    ("job-references", ("notebook_task: {notebook_path: /Workspace/Shared/nb}",
                        "notebook_task: {notebook_path: /Workspace/Shared/nb, base_parameters: {d: '{{job.parameters.day}}'}}"),
     "dev", ("databricks.yml", "resources.jobs.j.tasks[0].notebook_task.base_parameters.d")),
    ("concurrency", ("max_concurrent_runs: 1", "max_concurrent_runs: 0"), "dev",
     ("databricks.yml", "resources.jobs.j.max_concurrent_runs")),
    ("wheel-tasks", ("          notebook_task: {notebook_path: /Workspace/Shared/nb}\n",
                     ("          python_wheel_task: {package_name: pkg, entry_point: missing}\n"
                     "          libraries: [{whl: ./dist/*.whl}]\n")), "dev",
     ("databricks.yml", "resources.jobs.j.tasks[0].python_wheel_task.entry_point")),
]
PYPROJECT = '[project]\nname = "pkg"\nversion = "0.1"\n[project.scripts]\nmain = "pkg.main:run"\n'


@pytest.mark.parametrize(("rule", "edit", "target", "where"), BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKS)])
def test_each_policy_rule_breaks_once(tmp_path, rule, edit, target, where):
    old, new = edit
    assert old in BASE
    write(tmp_path, {"databricks.yml": BASE.replace(old, new), POLICY_FILE_NAME: POLICY, "pyproject.toml": PYPROJECT,
                     "src/pkg/main.py": "def run():\n    pass\n"})
    found = errors(tmp_path, target)
    assert [(p.rule, p.file, p.key) for p in found] == [(rule, *where)], "\n".join(map(str, found))
    assert found[0].line > 0
    assert errors(tmp_path, target, policy=None) == []  # the CLI and the APIs have nothing against it


def test_every_policy_rule_is_broken_by_a_test():
    tested = {b[0] for b in BREAKS} | {"no-literal-secrets"}  # secrets: test_no_literal_secrets below
    assert set(policy.RULES) - tested == set()


def test_no_literal_secrets(tmp_path):
    token = "dapi" + "0123456789abcdef" * 2
    write(tmp_path, {"databricks.yml": BASE, POLICY_FILE_NAME: POLICY,
                     ".github/workflows/ci.yml": f"env:\n  DATABRICKS_TOKEN: {token}\n"})
    found = errors(tmp_path)
    assert [(p.rule, p.file, p.key) for p in found] == [
        ("no-literal-secrets", ".github/workflows/ci.yml", "env.DATABRICKS_TOKEN")]
    assert token not in found[0].message


def test_wheel_entry_points_from_poetry(tmp_path):
    poetry = '[tool.poetry]\nname = "pkg"\nversion = "0.1"\n[tool.poetry.scripts]\nmain = "pkg.main:run"\n'
    job = BASE.replace("          notebook_task: {notebook_path: /Workspace/Shared/nb}\n",
                       "          python_wheel_task: {package_name: pkg, entry_point: main}\n"
                       "          libraries: [{whl: ./dist/*.whl}]\n")
    write(tmp_path, {"databricks.yml": job, POLICY_FILE_NAME: POLICY, "pyproject.toml": poetry,
                     "src/pkg/main.py": "def run():\n    pass\n"})
    assert errors(tmp_path) == []


def test_a_production_target_of_another_name(tmp_path):
    live = BASE.replace("  prod:\n", "  live:\n")
    write(tmp_path, {"databricks.yml": live, POLICY_FILE_NAME: POLICY})
    assert [(p.rule, p.key) for p in errors(tmp_path)] == [("production-target", "targets")]
    write(tmp_path, {POLICY_FILE_NAME: "policy: production\nproduction_targets: [live]\n"})
    assert errors(tmp_path) == []
    assert errors(tmp_path, policy=None) == []  # the production rules are the policy's, not the CLI's


def test_strict_turns_warnings_into_errors_and_waivers_stay_warnings(tmp_path):
    unknown = BASE.replace("      max_concurrent_runs: 1\n", "      max_concurrent_runs: 1\n      colour: blue\n")
    write(tmp_path, {"databricks.yml": unknown, POLICY_FILE_NAME: POLICY})
    report = validate_bundle(tmp_path, "dev", {}, env={}, user_name=USER)
    assert report.ok and [p.severity for p in report.warnings] == ["warning"]  # policy not strict
    assert not validate_bundle(tmp_path, "dev", {}, env={}, user_name=USER, strict=True).ok
    write(tmp_path, {POLICY_FILE_NAME: POLICY + "strict: true\n"})
    assert [p.key for p in errors(tmp_path)] == ["resources.jobs.j.colour"]
    write(tmp_path, {POLICY_FILE_NAME: POLICY + "strict: true\nwaive:\n  - rule: schema\n"
                                                "    key: resources.jobs.j.colour\n    reason: a tag, moved next week\n"})
    report = validate_bundle(tmp_path, "dev", {}, env={}, user_name=USER)
    assert report.ok
    assert [(p.severity, p.waived) for p in report.problems] == [("warning", "a tag, moved next week")]
    assert "[waived: a tag, moved next week]" in str(report.problems[0])


def test_disable_leaves_a_rule_out(tmp_path):
    write(tmp_path, {"databricks.yml": BASE.replace("max_concurrent_runs: 1", "max_concurrent_runs: 0"),
                     POLICY_FILE_NAME: POLICY + "disable: [concurrency]\n"})
    assert errors(tmp_path) == []


@pytest.mark.parametrize(("text", "message"), [
    ("policy: lenient\n", "unknown policy 'lenient'"),
    ("policy: production\nstrictness: high\n", "unknown setting strictness"),
    ("policy: production\nproduction_targets: prod-ish: x\n", "bundlekit-policy.yml:2:"),
    ("policy: production\ndisable: [no-such-rule]\n", "disable must list rules"),
    ("policy: production\nwaive: [{rule: schema, key: x}]\n", "waive[0]: give rule, key and reason"),
    ("- production\n", "must be a mapping"),
])
def test_an_invalid_policy_file_is_a_problem_not_a_traceback(tmp_path, text, message):
    write(tmp_path, {"databricks.yml": BASE, POLICY_FILE_NAME: text})
    with pytest.raises(PolicyError, match=message.replace("[", r"\[")):
        read_policy_file(tmp_path / POLICY_FILE_NAME)
    report = validate_bundle(tmp_path, "dev", {}, env={}, user_name=USER)
    assert [(p.check, p.file) for p in report.errors] == [("policy", POLICY_FILE_NAME)]
    assert message in report.errors[0].message


def test_the_command_chooses_the_policy(tmp_path, capsys):
    write(tmp_path, {"databricks.yml": BASE.replace("max_concurrent_runs: 1", "max_concurrent_runs: 0")})
    root = ["--bundle-root", str(tmp_path)]
    assert cli.main(["validate", *root]) == cli.EXIT_OK  # no policy file: compatibility only
    assert "policy" not in capsys.readouterr().out
    assert cli.main(["validate", *root, "--policy", "production"]) == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "error [jobs] databricks.yml:" in err and "max_concurrent_runs is 0" in err
    write(tmp_path, {POLICY_FILE_NAME: POLICY})
    assert cli.main(["validate", *root, "--policy", "none"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["validate", *root, "--output", "json"]) == cli.EXIT_CONFIG_ERROR
    out = capsys.readouterr().out
    assert '"rule": "concurrency"' in out and '"line":' in out and '"policy": "production"' in out


def test_a_bundle_without_targets_is_validated_for_its_default_target(tmp_path):
    write(tmp_path, {"databricks.yml": "bundle: {name: t}\nresources:\n  jobs:\n    j: {name: j}\n"})
    reports = validate_targets(tmp_path, None, {}, env={}, user_name=USER)
    assert [(r.target, r.ok) for r in reports] == [("default", True)]
