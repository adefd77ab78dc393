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
    assert ("fraud-score (catalog, schema, model_name, score_start, score_end, decision_threshold, alert_budget, "
            "shadow)  [serverless: default]") in (
        capsys.readouterr().out)
    assert "0 0 2 * * ? UTC (PAUSED)" in out
    assert cli.main(["jobs", "--bundle-root", str(REPO_ROOT), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"ingestion", "training", "batch_scoring", "monitoring",
                                                        "online_features"}
    assert cli.main(["validate", "--bundle-root", str(REPO_ROOT), "--target", "staging"]) == 0
    assert "target staging: OK (5 jobs" in capsys.readouterr().out


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


@pytest.fixture()
def fake_landing(monkeypatch, tmp_path):
    """``landing`` commands against stand-ins of the bronze library (no Spark): records the calls."""
    from fraud_mlops.medallion import bronze
    from fraud_mlops.platform import session

    monkeypatch.setenv("FRAUD_MLOPS_LOCAL_ROOT", str(tmp_path / "lh"))
    monkeypatch.setattr(session, "get_spark", lambda *a, **k: "no-spark")
    calls: list[dict] = []

    def acknowledge(lakehouse, file, reason, by, landing_path=None):
        calls.append({"catalog": lakehouse.config.catalog, "schema": lakehouse.config.schema, "file": file,
                      "reason": reason, "by": by, "landing_path": landing_path})
        if file == "good.csv.gz":
            raise bronze.FileNotRejectedError("good.csv.gz is ingested, not rejected: only a rejected file ...")
        return {"source_file": f"{landing_path}/{file}", "error": "EOFError: cut", "acknowledged_by": by,
                "ingested_at": "2018-08-01 02:00:00", "note": reason}

    statuses = [
        {"source_file": "/l/b.csv.gz", "status": "ingested", "rows": 1234, "error": None, "note": None,
         "acknowledged_by": None, "attempts": 0, "last_at": "t1"},
        {"source_file": "/l/a.csv.gz", "status": "rejected", "rows": 0, "error": "EOFError: cut", "note": None,
         "acknowledged_by": None, "attempts": 3, "last_at": "t2"},
        {"source_file": "/l/c.csv", "status": "empty", "rows": 0, "error": None, "note": "header only: no rows",
         "acknowledged_by": None, "attempts": 0, "last_at": "t3"},
    ]
    monkeypatch.setattr(bronze, "acknowledge_rejected_file", acknowledge)
    monkeypatch.setattr(bronze, "landing_status", lambda lakehouse: statuses)
    return calls


def test_cli_landing_reject_uses_the_target_and_refuses_what_is_not_rejected(fake_landing, capsys):
    from bundlekit.loader import local_user_name

    rc = cli.main(["landing", "reject", "a.csv.gz", "--reason", "resent as a-v2.csv.gz", "--target", "staging",
                   "--var", "landing_path=/Volumes/x/y/landing", "--bundle-root", str(REPO_ROOT)])
    assert rc == 0
    assert fake_landing == [{"catalog": "fraud_staging", "schema": "fraud", "file": "a.csv.gz",
                             "reason": "resent as a-v2.csv.gz", "by": local_user_name(),
                             "landing_path": "/Volumes/x/y/landing"}]
    assert "acknowledged /Volumes/x/y/landing/a.csv.gz (error: EOFError: cut)" in capsys.readouterr().out
    assert cli.main(["landing", "reject", "good.csv.gz", "--reason", "x", "--bundle-root", str(REPO_ROOT)]) == 2
    assert "fraud-mlops: error: good.csv.gz is ingested, not rejected" in capsys.readouterr().err
    assert fake_landing[-1]["landing_path"] == "/Volumes/fraud_dev/fraud/landing/transactions"  # dev default
    with pytest.raises(SystemExit) as exited:
        cli.main(["landing", "reject", "a.csv.gz", "--bundle-root", str(REPO_ROOT)])
    assert exited.value.code == 2 and "--reason" in capsys.readouterr().err
    assert cli.main(["landing", "reject", "a.csv.gz", "--reason", "x", "--target", "nope",
                     "--bundle-root", str(REPO_ROOT)]) == 2
    assert "unknown target 'nope'" in capsys.readouterr().err
    assert len(fake_landing) == 2


def test_cli_landing_status_lists_rejected_files_first(fake_landing, capsys):
    assert cli.main(["landing", "status", "--bundle-root", str(REPO_ROOT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fraud_dev.fraud.bronze_ingestion_log (landing /Volumes/fraud_dev/fraud/landing/transactions): 3 file(s)"
    assert lines[1:] == [
        "  rejected      /l/a.csv.gz  EOFError: cut (3 attempt(s), last t2)",
        "  empty         /l/c.csv  header only: no rows",
        "  ingested      /l/b.csv.gz  1,234 rows",
        "  1 rejected, 0 acknowledged, 1 empty, 1 ingested",
    ]
    assert cli.main(["landing", "status", "--json", "--bundle-root", str(REPO_ROOT)]) == 0
    assert [f["status"] for f in json.loads(capsys.readouterr().out)] == ["ingested", "rejected", "empty"]
