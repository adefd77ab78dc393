"""The offline bundle loader on small bundles: includes, targets, variables, references. No Spark."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bundlekit.loader import BundleError, load_bundle


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


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
