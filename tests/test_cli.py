"""The fraud-mlops and bundlekit commands, with fake entry points (no Spark, no MLflow)."""

from __future__ import annotations

import json
import os
import sys
import types

import pytest

from bundlekit import cli as bundlekit_cli
from bundlekit import runner
from bundlekit.runner import SUCCESS
from fraud_mlops import cli

from .bundlekit.fake_entry_points import FakeEntryPoints
from .conftest import REPO_ROOT


@pytest.fixture()
def fake_resolver(monkeypatch):
    fakes = FakeEntryPoints()
    monkeypatch.setattr(runner, "resolve_entry_point", fakes)
    return fakes


def test_cli_run_success_sets_local_env(fake_resolver, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FRAUD_MLOPS_LOCAL_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    out_json = tmp_path / "result.json"
    rc = cli.main(["run", "batch_scoring", "--bundle-root", str(REPO_ROOT), "--param", "score_start=2018-06-19",
                   "--var", "schema=demo", "--output-json", str(out_json)])
    assert rc == 0
    assert fake_resolver.argv("fraud-score")[:2] == ["--catalog=fraud_dev", "--schema=demo"]
    assert "--score_start=2018-06-19" in fake_resolver.argv("fraud-score")
    assert os.environ["FRAUD_MLOPS_LOCAL_ROOT"] == str(REPO_ROOT / ".lakehouse")
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert json.loads(out_json.read_text())["tasks"]["score"]["status"] == SUCCESS
    assert "[batch_scoring] SUCCESS  score" in capsys.readouterr().out


def test_cli_run_keeps_a_given_local_root(fake_resolver, monkeypatch, tmp_path):
    monkeypatch.setenv("FRAUD_MLOPS_LOCAL_ROOT", str(tmp_path / "lh"))
    assert cli.main(["run", "ingestion", "--bundle-root", str(REPO_ROOT)]) == 0
    assert os.environ["FRAUD_MLOPS_LOCAL_ROOT"] == str(tmp_path / "lh")


def test_cli_exit_codes(fake_resolver, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT / "src")  # bundle root found by searching upward
    fake_resolver.behaviours["fraud-silver"] = lambda argv: 1 / 0
    assert cli.main(["run", "ingestion"]) == 1
    err = capsys.readouterr().err
    assert "job ingestion FAILED (failed: silver; skipped: gold)" in err
    assert cli.main(["run", "ingestion", "--param", "nope=1"]) == 2
    assert "no parameter(s) 'nope'" in capsys.readouterr().err
    assert cli.main(["run", "nope"]) == 2
    assert cli.main(["run", "ingestion", "--target", "prod"]) == 2
    assert "prod_service_principal" in capsys.readouterr().err
    fake_resolver.behaviours.clear()
    assert cli.main(["run", "ingestion", "--target", "prod", "--var", "prod_service_principal=sp",
                     "--var", "alert_email=a@b.c"]) == 0
    assert "--catalog=fraud_prod" in fake_resolver.calls[-1][1]


def test_cli_jobs_and_validate(capsys):
    assert cli.main(["jobs", "--bundle-root", str(REPO_ROOT), "--target", "staging"]) == 0
    out = capsys.readouterr().out
    assert "ingestion: [staging] fraud-ingestion" in out
    assert "retrain        run_job_task" in out
    assert "fraud-bronze (catalog, schema, landing_path, file_pattern)  [job cluster: etl]" in out
    assert cli.main(["jobs", "--bundle-root", str(REPO_ROOT), "--target", "dev"]) == 0
    assert "fraud-score (catalog, schema, model_name, score_start, score_end, decision_threshold)  [serverless: default]" in (
        capsys.readouterr().out)
    assert "0 0 2 * * ? UTC (PAUSED)" in out
    assert cli.main(["jobs", "--bundle-root", str(REPO_ROOT), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"ingestion", "training", "batch_scoring", "monitoring"}
    assert cli.main(["validate", "--bundle-root", str(REPO_ROOT), "--target", "staging"]) == 0
    assert "target staging: OK (4 jobs" in capsys.readouterr().out


def test_cli_demo_calls_demo_main_lazily(monkeypatch):
    received: list[list[str]] = []
    fake_demo = types.ModuleType("fraud_mlops.demo")
    fake_demo.main = lambda args: received.append(args) or 0
    monkeypatch.setitem(sys.modules, "fraud_mlops.demo", fake_demo)
    import fraud_mlops
    monkeypatch.setattr(fraud_mlops, "demo", fake_demo, raising=False)
    assert cli.main(["demo", "--days", "3", "--fast"]) == 0
    assert received == [["--days", "3", "--fast"]]


def test_cli_mlflow_ui_print_only(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FRAUD_MLOPS_LOCAL_ROOT", str(tmp_path))
    assert cli.main(["mlflow-ui", "--print-only", "--port", "5055"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db --host 127.0.0.1 --port 5055"


def test_bundlekit_command_runs_any_bundle_without_the_fraud_set_up(fake_resolver, monkeypatch, capsys):
    monkeypatch.delenv("FRAUD_MLOPS_LOCAL_ROOT", raising=False)
    rc = bundlekit_cli.main(["run", "ingestion", "--bundle-root", str(REPO_ROOT), "--var", "schema=demo"])
    assert rc == 0
    assert fake_resolver.order == ["fraud-bronze", "fraud-silver", "fraud-gold"]
    assert "FRAUD_MLOPS_LOCAL_ROOT" not in os.environ  # the lakehouse set-up is fraud-mlops's, not the toolkit's
    out = capsys.readouterr().out
    assert out.startswith("bundlekit: bundle fraud-mlops target dev (mode development)\n")
    assert bundlekit_cli.main(["run", "nope", "--bundle-root", str(REPO_ROOT)]) == bundlekit_cli.EXIT_CONFIG_ERROR
    assert "bundlekit: error:" in capsys.readouterr().err
