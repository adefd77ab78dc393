"""The offline bundle loader on small bundles: includes, targets, variables, references. No Spark."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from bundlekit.loader import BundleError, git_details, load_bundle, lookup_references


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
        load_bundle(root, "one", {}, env={}, lookups="error")
    assert load_bundle(root, "one", {"sp": "abc"}, env={}, lookups="error").variables["sp"] == "abc"
    kept = load_bundle(root, "one", {}, env={})  # the default: kept, listed, a job using it is refused
    assert kept.lookup_variables == ("sp",) and kept.variables["sp"] == "${var.sp}"
    assert load_bundle(root, "one", {"sp": "abc"}, env={}).lookup_variables == ()
    with pytest.raises(ValueError, match="lookups must be"):
        load_bundle(root, "one", {}, env={}, lookups="ignore")


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(BundleError, match="no databricks.yml"):
        load_bundle(tmp_path, None, {}, env={})
    _write(tmp_path, {"databricks.yml": "bundle: [unclosed\n"})
    with pytest.raises(BundleError, match="invalid YAML"):
        load_bundle(tmp_path, None, {}, env={})


# --------------------------------------------------------------------------------------------------
# Compute overrides: what the CLI merges by key and what it appends


COMPUTE_TARGETS = """\
bundle:
  name: mini
include:
  - resources/*.yml
targets:
  serverless:
    default: true
    resources:
      jobs:
        j:
          environments:
            - environment_key: default
              spec:
                environment_version: "5"
                dependencies: [./dist/*.whl]
          tasks:
            - {task_key: a, environment_key: default}
  classic:
    resources:
      jobs:
        j:
          job_clusters:
            - job_cluster_key: main
              new_cluster: {num_workers: 2}
          tasks:
            - {task_key: a, job_cluster_key: main, libraries: [{whl: ./dist/*.whl}]}
"""

COMPUTE_JOB = """\
resources:
  jobs:
    j:
      environments:
        - environment_key: default
          spec: {environment_version: "4"}
      job_clusters:
        - job_cluster_key: main
          new_cluster: {num_workers: 1, spark_version: x}
      tasks:
        - task_key: a
          libraries: [{pypi: {package: six}}]
          python_wheel_task: {package_name: pkg, entry_point: ep}
        - task_key: b
          depends_on: [{task_key: a}]
          condition_task: {op: EQUAL_TO, left: "1", right: "1"}
"""


def test_target_merges_tasks_and_job_clusters_by_key_but_appends_environments_and_libraries(tmp_path):
    root = _write(tmp_path, {"databricks.yml": COMPUTE_TARGETS, "resources/job.yml": COMPUTE_JOB})
    serverless = load_bundle(root, "serverless", {}, env={}).job("j")
    assert [e["spec"]["environment_version"] for e in serverless["environments"]] == ["4", "5"]  # appended
    assert [t["task_key"] for t in serverless["tasks"]] == ["a", "b"]  # merged by task_key
    assert serverless["tasks"][0]["environment_key"] == "default"

    classic = load_bundle(root, "classic", {}, env={})
    job = classic.job("j")
    assert job["job_clusters"] == [{"job_cluster_key": "main", "new_cluster": {"num_workers": 2, "spark_version": "x"}}]
    assert job["tasks"][0]["libraries"] == [{"pypi": {"package": "six"}}, {"whl": "./dist/*.whl"}]  # concatenated
    assert "job_cluster_key" not in job["tasks"][1]
    # Which file set what: a target's values resolve relative paths against databricks.yml.
    assert classic.source_of("resources.jobs.j.tasks[0].libraries[1].whl") == root / "databricks.yml"
    assert classic.source_of("resources.jobs.j.tasks[0].libraries[0]") == root / "resources" / "job.yml"
    assert classic.source_of("resources.jobs.j.tasks[0].job_cluster_key") == root / "databricks.yml"
    assert classic.source_of("resources.jobs.j.tasks[0].python_wheel_task") == root / "resources" / "job.yml"
    assert classic.source_of("resources.jobs.j.job_clusters[0].new_cluster.num_workers") == root / "databricks.yml"
    assert classic.source_of("resources.jobs.j.job_clusters[0].new_cluster.spark_version") == root / "resources" / "job.yml"
    assert load_bundle(root, "serverless", {}, env={}).source_of("resources.jobs.j.environments[1]") == (
        root / "databricks.yml")


def test_yaml_anchors_share_one_compute_block_between_targets(tmp_path):
    text = COMPUTE_TARGETS.replace("      jobs:\n        j:\n          environments:",
                                   "      jobs: &serverless\n        j:\n          environments:")
    text += "  other:\n    resources:\n      jobs: *serverless\n"
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": COMPUTE_JOB})
    assert load_bundle(root, "other", {}, env={}).job("j") == load_bundle(root, "serverless", {}, env={}).job("j")


def test_a_null_override_keeps_the_definition(tmp_path):
    text = COMPUTE_TARGETS.replace("          tasks:\n            - {task_key: a, environment_key: default}\n",
                                   "          tasks:\n")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": COMPUTE_JOB})
    assert [t["task_key"] for t in load_bundle(root, "serverless", {}, env={}).job("j")["tasks"]] == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# include patterns


def test_include_glob_that_matches_nothing_is_listed_and_a_missing_file_is_an_error(tmp_path):
    text = MINIMAL.replace("  - resources/*.yml\n", "  - resources/*.yml\n  - resource/*.yml\n")
    root = _write(tmp_path, {"databricks.yml": text, "resources/job.yml": JOB})
    b = load_bundle(root, "one", {}, env={})
    assert b.unmatched_includes == ("resource/*.yml",)
    assert "j" in b.jobs
    _write(tmp_path, {"databricks.yml": MINIMAL.replace("  - resources/*.yml\n", "  - resources/jobs.yml\n")})
    with pytest.raises(BundleError, match=r"databricks.yml: include: resources/jobs.yml does not match any file"):
        load_bundle(root, "one", {}, env={})


# --------------------------------------------------------------------------------------------------
# bundle.git: from the checkout holding the bundle, as the CLI at deploy time


GIT_BUNDLE = """\
bundle:
  name: mini
variables:
  commit:
    default: ${bundle.git.commit}
  branch:
    default: ${bundle.git.branch}
  origin:
    default: ${bundle.git.origin_url}
"""


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
                           *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def outside_git(tmp_path, monkeypatch):
    """``tmp_path`` where git does not look above it for a repository."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    return tmp_path


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_bundle_git_values_come_from_the_checkout(outside_git):
    repo = outside_git / "repo"
    root = _write(repo / "bundles" / "mini", {"databricks.yml": GIT_BUNDLE})
    _git(repo, "init", "-q", "-b", "feature")
    _git(repo, "remote", "add", "origin", "https://user:s3cr3t@git.example.com/team/mini.git")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    b = load_bundle(root, None, {}, env={})
    assert b.variables == {"commit": head, "branch": "feature", "origin": "https://git.example.com/team/mini.git"}
    assert b.config["bundle"]["git"] == {
        "commit": head, "branch": "feature", "origin_url": "https://git.example.com/team/mini.git",
        "inferred": True, "actual_branch": "feature", "bundle_root_path": "bundles/mini"}
    # A configured branch wins (as in the CLI), the actual branch is still recorded.
    _write(root, {"databricks.yml": GIT_BUNDLE.replace("  name: mini\n", "  name: mini\n  git:\n    branch: main\n")})
    git = load_bundle(root, None, {}, env={}).config["bundle"]["git"]
    assert (git["branch"], git["actual_branch"], git["commit"]) == ("main", "feature", head)
    assert "inferred" not in git


def test_bundle_git_values_are_empty_outside_a_checkout_or_without_git(outside_git, monkeypatch):
    root = _write(outside_git, {"databricks.yml": GIT_BUNDLE})
    expected = {"commit": "", "branch": "", "origin": ""}
    assert load_bundle(root, None, {}, env={}).variables == expected
    assert git_details(root) == dict.fromkeys(("commit", "branch", "origin_url", "actual_branch", "bundle_root_path"), "")
    monkeypatch.setenv("PATH", str(outside_git / "no-such-bin"))
    assert load_bundle(root, None, {}, env={}).variables == expected


# --------------------------------------------------------------------------------------------------
# As the pinned CLI reads a bundle (YAML 1.2, variables, targets split over files, merges)


def test_yaml_is_read_as_yaml_1_2(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: y}
        resources:
          jobs:
            j:
              tags: {on: yes, day: 2024-01-01, hex: 0x1f, flag: true}
        """})
    tags = load_bundle(root, None, {}, env={}).job("j")["tags"]
    assert tags == {"on": "yes", "day": "2024-01-01", "hex": 31, "flag": True}


@pytest.mark.parametrize(("text", "message"), [
    ("bundle: {name: y}\nresources:\n  jobs:\n    1: {name: j}\n", r"databricks.yml:4:5: resources.jobs.1: the key '1' is read as a YAML int"),
    ("bundle: {name: y}\na: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n", r"databricks.yml:6:3: c: duplicate YAML merge key"),
    ("bundle: {name: y}\nx: &x [*x]\n", r"recursive anchor"),
    ("bundle: {name: y\n", r"databricks.yml:2:1: invalid YAML"),
])
def test_yaml_the_cli_refuses_names_file_line_and_column(tmp_path, text, message):
    root = _write(tmp_path, {"databricks.yml": text})
    with pytest.raises(BundleError, match=message):
        load_bundle(root, None, {}, env={})


def test_variables_as_the_cli_assigns_them(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: v}
        variables:
          emails: {description: addresses}
          fixed: {value: set-here}
          cluster: {type: complex, default: {num_workers: 1}}
          nothing:
            default:
        targets:
          dev:
            default: true
            variables:
              emails: [a@example.com]
              nothing: given
        """})
    b = load_bundle(root, None, [], env={})
    assert b.variables["emails"] == ["a@example.com"]  # a list without type: complex, as the CLI allows
    assert b.variables["fixed"] == "set-here"
    with pytest.raises(BundleError, match="variable has already been assigned value: set-here"):
        load_bundle(root, None, [("fixed", "other")], env={})
    with pytest.raises(BundleError, match="setting variables of complex type via --var flag is not supported"):
        load_bundle(root, None, {"cluster": "x"}, env={})
    with pytest.raises(BundleError, match="failed to assign two to nothing: variable has already been assigned value: one"):
        load_bundle(root, None, [("nothing", "one"), ("nothing", "two")], env={})
    (root / "databricks.yml").write_text((root / "databricks.yml").read_text().replace("      nothing: given\n", ""))
    with pytest.raises(BundleError, match="variable nothing: no value for target 'dev'"):  # a null default is none
        load_bundle(root, None, {}, env={})


def test_lookups_are_an_error_locally_and_kept_for_validation(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: l}
        variables:
          wh: {lookup: {warehouse: Starter}}
        resources:
          jobs:
            j: {name: "on ${var.wh}"}
        """})
    with pytest.raises(BundleError, match="lookup variable"):
        load_bundle(root, None, {}, env={}, lookups="error")
    b = load_bundle(root, None, {}, env={}, lookups="keep")
    assert b.job("j")["name"] == "on ${var.wh}" and b.variables["wh"] == "${var.wh}"
    assert lookup_references(b, b.job("j")) == ["wh"] and lookup_references(b, {"x": "${var.other}"}) == []


def test_unknown_sections_and_references_are_left_alone(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: u}
        definitions:
          name: ${var.undeclared}
        resources:
          jobs:
            j:
              name: "${something.else} ${resources.jobs.j.no_such_field} ${artifacts.a.path}"
        """})
    b = load_bundle(root, None, {}, env={})
    assert "definitions" not in b.config
    assert b.job("j")["name"] == "${something.else} ${resources.jobs.j.no_such_field} ${artifacts.a.path}"


def test_a_target_declared_in_several_files_attributes_each_value_to_its_file(tmp_path):
    root = _write(tmp_path, {
        "databricks.yml": """\
            bundle: {name: t}
            include: [resources/*.yml, overrides.yml]
            targets:
              dev: {default: true}
            """,
        "resources/job.yml": """\
            resources:
              jobs:
                j:
                  tasks:
                    - task_key: a
                      spark_python_task: {python_file: ../src/a.py}
            """,
        "overrides.yml": """\
            targets:
              dev:
                resources:
                  jobs:
                    j:
                      tasks:
                        - task_key: a
                          spark_python_task: {python_file: ./src/b.py}
            """})
    b = load_bundle(root, None, {}, env={})
    assert b.job("j")["tasks"][0]["spark_python_task"]["python_file"] == "./src/b.py"
    assert b.source_of("resources.jobs.j.tasks[0].spark_python_task.python_file").name == "overrides.yml"
    assert b.source_of("resources.jobs.j").name == "job.yml"


def test_merging_values_of_different_kinds(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: m}
        variables:
          tasks: {type: complex, default: [{task_key: a}]}
        resources:
          clusters:
            c: {num_workers: 1}
          jobs:
            j: {tasks: "${var.tasks}"}
        targets:
          dropped:
            resources:
              clusters:
                c: a string where a cluster belongs
          conflict:
            resources:
              jobs:
                j: {tasks: [{task_key: b}]}
        """})
    b = load_bundle(root, "dropped", {}, env={})
    assert b.resources["clusters"]["c"] == {"num_workers": 1}  # the CLI drops the target's value, warning
    assert [w[1] for w in b.warnings] == ["resources.clusters.c"]
    with pytest.raises(BundleError, match="cannot merge string with sequence"):
        load_bundle(root, "conflict", {}, env={})


def test_items_that_share_a_key_merge_when_asked(tmp_path):
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: k}
        resources:
          jobs:
            j:
              tasks:
                - {task_key: a, max_retries: 1}
                - {task_key: a, timeout_seconds: 5}
        """})
    assert len(load_bundle(root, None, {}, env={}).job("j")["tasks"]) == 2  # the runner reports the duplicate
    merged = load_bundle(root, None, {}, env={}, merge_keyed_lists=True).job("j")["tasks"]
    assert merged == [{"task_key": "a", "max_retries": 1, "timeout_seconds": 5}]  # as the CLI deploys it


def test_a_schema_name_reference_is_the_name_the_cli_deploys(tmp_path):
    """In development mode the CLI deploys a schema (a registered model, a serving endpoint) as
    dev_<user>_<name>, and ${resources.schemas.<key>.name} is that deployed name; elsewhere it is the
    name as written, unless presets.name_prefix says otherwise."""
    root = _write(tmp_path, {"databricks.yml": """\
        bundle: {name: s}
        resources:
          schemas:
            fraud: {catalog_name: c, name: fraud}
          registered_models:
            model: {catalog_name: c, schema_name: "${resources.schemas.fraud.name}", name: detector}
          jobs:
            j:
              name: j
              parameters:
                - {name: schema, default: "${resources.schemas.fraud.name}"}
                - {name: model, default: "${resources.registered_models.model.name}"}
                - {name: catalog, default: "${resources.schemas.fraud.catalog_name}"}
        targets:
          dev: {default: true, mode: development}
          staging: {}
          ci: {presets: {name_prefix: "[ci] "}}
        """})

    def params(target, **kw):
        b = load_bundle(root, target, {}, env={}, user_name="first.last@corp.com", **kw)
        return {p["name"]: p["default"] for p in b.job("j")["parameters"]}, b

    dev, b = params("dev")
    assert dev == {"schema": "dev_first_last_fraud", "model": "dev_first_last_detector", "catalog": "c"}
    assert b.resources["registered_models"]["model"]["schema_name"] == "dev_first_last_fraud"
    assert params("staging")[0] == {"schema": "fraud", "model": "detector", "catalog": "c"}
    assert params("ci")[0]["schema"] == "ci_fraud"
    (root / "databricks.yml").write_text((root / "databricks.yml").read_text()
                                         + "experimental: {skip_name_prefix_for_schema: true}\n")
    assert params("dev")[0] == {"schema": "fraud", "model": "dev_first_last_detector", "catalog": "c"}


def test_name_prefixes_are_normalised_as_the_cli_normalises_them():
    from bundlekit.loader import normalise_name_prefix

    assert normalise_name_prefix("[dev lennart] ") == "dev_lennart_"
    assert normalise_name_prefix("[dev-lennart@company.com]") == "dev_lennart_company_com_"
    assert normalise_name_prefix("[ci]") == "ci_"
    assert normalise_name_prefix("team__x ") == "team_x"
