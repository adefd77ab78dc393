"""The GitHub Actions workflows, linted offline (actionlint, the GitHub workflow JSON schema) and held to
the delivery rules: one test command, one Databricks CLI pin, pinned actions, OIDC, concurrency per target.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
CLI_ACTION = GITHUB / "actions" / "setup-databricks-cli" / "action.yml"
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is a dev dependency (pip install -e '.[dev]')")
    return found


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # 'on' stays a string


def _workflow(name: str) -> dict:
    return _load(GITHUB / "workflows" / name)


def _steps(doc: dict):
    for job_key, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_key, job, step


def _uses(doc: dict) -> list[str]:
    out = [step["uses"] for _, _, step in _steps(doc) if "uses" in step]
    out += [job["uses"] for job in (doc.get("jobs") or {}).values() if "uses" in job]
    out += [step["uses"] for step in (doc.get("runs") or {}).get("steps") or [] if "uses" in step]
    return out


def test_the_expected_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"checks.yml", "pull-request.yml", "staging.yml", "release.yml"}


# --------------------------------------------------------------------------------------------------
# Offline linting


def test_actionlint_passes():
    result = _run([_tool("actionlint"), "-shellcheck=", "-pyflakes=", "-no-color", *map(str, WORKFLOWS)], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_workflow_schema():
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                             *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr
    for schema, files in (("vendor.github-actions", [CLI_ACTION]), ("vendor.dependabot", [GITHUB / "dependabot.yml"])):
        result = _run([_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)])
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_broken_workflow(tmp_path):
    """The two linters are not vacuous: a bad `needs` (actionlint) and an unknown key (schema) fail."""
    shutil.copytree(GITHUB, tmp_path / ".github")
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.write_text(broken.read_text().replace("needs: [checks, tag-on-main]", "needs: [checks, tag-on-mian]"))
    result = _run([_tool("actionlint"), "-shellcheck=", "-pyflakes=", "-no-color", str(broken)], cwd=tmp_path)
    assert result.returncode != 0 and "tag-on-mian" in result.stdout
    bad_key = tmp_path / ".github" / "workflows" / "staging.yml"
    bad_key.write_text(bad_key.read_text().replace("    timeout-minutes: 180\n", "    timeout-minutez: 180\n"))
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad_key)])
    assert result.returncode != 0


# --------------------------------------------------------------------------------------------------
# Delivery rules


def test_every_action_is_pinned_to_a_commit():
    for path in [*WORKFLOWS, CLI_ACTION]:
        for uses in _uses(_load(path)):
            if uses.startswith("./"):
                assert (REPO_ROOT / uses).exists(), f"{path.name}: {uses} does not exist"
                continue
            assert SHA_PIN.match(uses), f"{path.name}: {uses} is not pinned to a 40-hex commit SHA"


def test_the_databricks_cli_is_pinned_in_one_place():
    action = _load(CLI_ACTION)
    setup = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("databricks/setup-cli@")]
    assert len(setup) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", setup[0]["with"]["version"])
    for path in WORKFLOWS:
        text = path.read_text()
        assert "databricks/setup-cli" not in text, f"{path.name} installs the CLI itself"
        doc = _load(path)
        for job_key, job in (doc.get("jobs") or {}).items():
            steps = job.get("steps") or []
            runs_cli = [i for i, s in enumerate(steps) if re.search(r"(^|\s)databricks\s", s.get("run", ""))]
            if not runs_cli:
                continue
            setup_at = [i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/setup-databricks-cli"]
            assert setup_at and setup_at[0] < runs_cli[0], f"{path.name}:{job_key} runs databricks before setting it up"


def test_the_test_command_is_the_readmes_and_ci_run():
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    assert "make test" in (REPO_ROOT / "README.md").read_text()
    runs = [s.get("run", "") for _, _, s in _steps(_workflow("checks.yml"))]
    assert "make test" in runs and "make lint" in runs and "make wheel" in runs and "make validate" in runs
    assert not any("pytest" in r for r in runs), "the workflow must call the README's command, not its own"
    for name in ("pull-request.yml", "staging.yml", "release.yml"):
        assert _workflow(name)["jobs"]["checks"]["uses"] == "./.github/workflows/checks.yml"


def test_databricks_auth_is_oidc_and_no_token_is_used():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "DATABRICKS_TOKEN" not in text and "secrets." not in text, path.name
        for job_key, job in (_load(path).get("jobs") or {}).items():
            env = job.get("env") or {}
            if "DATABRICKS_HOST" in env:
                assert env["DATABRICKS_AUTH_TYPE"] == "github-oidc", f"{path.name}:{job_key}"
                assert job["permissions"]["id-token"] == "write", f"{path.name}:{job_key}"


def test_pull_requests_validate_staging_and_prod_when_configured():
    doc = _workflow("pull-request.yml")
    assert list(doc["on"]) == ["pull_request"]
    job = doc["jobs"]["workspace-validate"]
    assert job["strategy"]["matrix"]["target"] == ["staging", "prod"]
    steps = job["steps"]
    assert "::notice" in steps[0]["run"] and "configured=false" in steps[0]["run"]
    validate = steps[-1]
    assert validate["run"] == 'databricks bundle validate -t "$TARGET"'
    assert validate["if"] == "steps.credentials.outputs.configured == 'true'"
    assert "environment" not in job  # pull requests never touch the deployment environments


def test_merge_to_main_deploys_staging_and_runs_the_integration_path():
    doc = _workflow("staging.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    assert doc["concurrency"] == {"group": "databricks-deploy-staging", "cancel-in-progress": "false"}
    job = doc["jobs"]["deploy-staging"]
    assert job["environment"] == "staging" and job["needs"] == "checks"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    deploy = runs.index("databricks bundle deploy -t staging")
    jobs_run = [r.split()[-1] for r in runs if r.startswith("databricks bundle run -t staging ")]
    assert jobs_run == ["ingestion", "training", "batch_scoring"]
    assert all(runs.index(f"databricks bundle run -t staging {j}") > deploy for j in jobs_run)
    assert not any("--no-wait" in r for r in runs)  # each run is waited on and fails the workflow


def test_release_deploys_prod_from_a_tag_through_an_approved_environment():
    doc = _workflow("release.yml")
    assert doc["on"] == {"push": {"tags": ["v*.*.*"]}}
    assert doc["concurrency"] == {"group": "databricks-deploy-prod", "cancel-in-progress": "false"}
    job = doc["jobs"]["deploy-prod"]
    assert job["environment"] == "prod"
    assert set(job["needs"]) == {"checks", "tag-on-main"}
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert "databricks bundle deploy -t prod" in runs
    assert job["env"]["BUNDLE_VAR_prod_service_principal"] == "${{ vars.PROD_RUN_AS_SERVICE_PRINCIPAL }}"
    assert "merge-base --is-ancestor" in doc["jobs"]["tag-on-main"]["steps"][-1]["run"]


def test_each_target_has_its_own_deployment_concurrency_group():
    groups = {}
    for path in WORKFLOWS:
        doc = _load(path)
        text = path.read_text()
        for target in ("staging", "prod"):
            if f"databricks bundle deploy -t {target}" in text:
                groups.setdefault(target, set()).add(doc["concurrency"]["group"])
    assert groups == {"staging": {"databricks-deploy-staging"}, "prod": {"databricks-deploy-prod"}}


def test_readme_lists_every_variable_the_workflows_read():
    readme = (REPO_ROOT / "README.md").read_text()
    read = set()
    for path in WORKFLOWS:
        read |= set(re.findall(r"vars\.([A-Z_]+)", path.read_text()))
    assert read
    for name in sorted(read):
        assert f"`{name}`" in readme, f"README does not document the variable {name}"
