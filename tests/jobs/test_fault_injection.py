"""Crash safety: a job killed at any point and run again leaves what an uninterrupted run leaves.

Every job runs through the ``fraud-mlops`` CLI in a child process, on 8 days of the shipped landing
files thinned to every fourth transaction (about 19,000 rows). ``BUNDLEKIT_FAULT_AT`` makes the child
die with ``os._exit(137)``, as ``kill -9`` would, at a named point
(:func:`bundlekit.task_runtime.fault_point`):

* ``before:silver`` (ingestion): bronze and its checkpoint written, silver not started;
* ``after_write:gold_transaction_features`` or ``after_write:gold_daily_fraud_summary``, whichever
  comes first (ingestion, inside gold): one of gold's two tables written, the other not;
* ``after:train`` (training): the candidate registered as ``challenger``, not validated;
* ``promote:after_tags`` (training, inside promote): the promotion tags set, ``champion`` not moved;
* ``after_write:predictions`` (batch_scoring): predictions merged, the result not reported;
* ``after_write:monitoring_metrics`` (monitoring): metrics written, the task values not published.

One child process is one ``kill -9``: each runs its job again after the previous child died (and
then may go on to the next job until its own fault point). A clean lakehouse gets the four jobs once,
uninterrupted, in the first child. Afterwards the Delta tables must hold the same rows (columns that
record when or in which run a row was written aside) and the registry the same aliases on an
identically trained model; versions registered by a killed training run are left without alias and
without ``promotion_status=promoted``. Promotion's own resumption (a re-run of the promote task after a
kill on either side of the ``champion`` alias move, and a re-run after a completed promotion) is
checked in-process on a registry without Spark.

Cost: every child starts a JVM, so the children run with the JIT's quick tier only
(``JAVA_TOOL_OPTIONS``), which halves the start of a short-lived local Spark.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from bundlekit.task_runtime import FAULT_ENV, FAULT_EXIT_STATUS
from fraud_mlops.lifecycle import gate

from ..conftest import REPO_ROOT, SHIPPED_LANDING

DAYS = [f"2018-07-{d:02d}" for d in range(1, 9)]
CATALOG, SCHEMA = "fraud_dev", "fraud"  # the dev target's defaults
MODEL = f"{CATALOG}.{SCHEMA}.fraud_detector"
TRAINING = {"train_start": "2018-07-02", "train_end": "2018-07-04", "delay_days": "1", "test_days": "2",
            "n_folds": "0", "backtest_weeks": "0", "n_estimators": "20", "min_average_precision": "0",
            "min_roc_auc": "0"}
SCORING = {"score_start": "2018-07-08", "score_end": "2018-07-08"}
MONITORING = {"window_start": "2018-07-08", "window_end": "2018-07-08", "label_delay_days": "0",
              "min_average_precision": "0", "psi_alert_threshold": "100", "psi_retrain_threshold": "100"}
PARAMS = {"ingestion": {}, "training": TRAINING, "batch_scoring": SCORING, "monitoring": MONITORING}
#: Columns that record when, or in which run, a row was written: they differ between any two runs.
VOLATILE = {"_ingested_at", "_ingestion_run_id", "ingestion_run_id", "ingested_at", "processed_at",
            "_quarantined_at", "scored_at", "computed_at", "monitoring_run_id"}
INGESTION_TABLES = ("bronze_transactions", "bronze_ingestion_log", "silver_transactions",
                    "silver_transactions_quarantine", "silver_processed_files")
GOLD_TABLES = ("gold_transaction_features", "gold_daily_fraud_summary")
#: Runs the steps given as JSON, ``[[lakehouse, job, fault point or null], ...]``, through the
#: fraud-mlops CLI one after the other in this process; stops at the first job that fails.
DRIVER = (
    "import json, os, sys\n"
    "from fraud_mlops.cli import main\n"
    "root, landing, params, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])\n"
    "for lakehouse, job, fault in steps:\n"
    "    os.environ['FRAUD_MLOPS_LOCAL_ROOT'] = lakehouse\n"
    "    os.environ.pop('BUNDLEKIT_FAULT_AT', None)\n"
    "    if fault:\n"
    "        os.environ['BUNDLEKIT_FAULT_AT'] = fault\n"
    "    args = ['run', job, '--bundle-root', root, '--var', 'landing_path=' + landing]\n"
    "    for key, value in params[job].items():\n"
    "        args += ['--param', f'{key}={value}']\n"
    "    status = main(args)\n"
    "    if status:\n"
    "        sys.exit(status)\n"
)
#: The JVM options of the children: only the JIT's quick tier and the serial collector (a short-lived
#: local Spark on little data starts in about half the time).
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

# Seven child processes, each starting its own Spark: about three minutes on 2 cores. `make test` leaves
# them out to stay fast; `make test-faults` (and CI, .ci/run) runs them.
pytestmark = [
    pytest.mark.fault_injection,
    pytest.mark.skipif(not SHIPPED_LANDING.is_dir(), reason="the shipped landing slice is missing"),
]


# ------------------------------------------------------------------------------------ helpers
def _thin_landing(folder: Path) -> Path:
    """Every fourth transaction of :data:`DAYS` as landing files (fixed gzip header and mtime), plus
    two rows for the quarantine in the third file: a duplicate transaction and an amount that is no
    number."""
    folder.mkdir(parents=True)
    for i, day in enumerate(DAYS):
        with gzip.open(SHIPPED_LANDING / f"{day}.csv.gz", "rt", encoding="utf-8") as fh:
            header, *rows = fh.read().splitlines()
        kept = [header] + [r for r in rows if int(r.split(",", 1)[0]) % 4 == 0]
        if i == 2:
            fields = kept[1].split(",")
            kept += [kept[1], ",".join([str(int(fields[0]) + 1), *fields[1:4], "abc", *fields[5:]])]
        target = folder / f"{day}.csv.gz"
        with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(("\n".join(kept) + "\n").encode("utf-8"))
        os.utime(target, (1_530_403_200 + i, 1_530_403_200 + i))
    return folder


Step = tuple[Path, str, str | None]


def _run(landing: Path, steps: list[Step]) -> tuple[int, str]:
    """Run ``steps`` (lakehouse, job, fault point or None; jobs with :data:`PARAMS`) in one child
    process; returns its exit status and output. A step with a fault point dies there."""
    env = {k: v for k, v in os.environ.items() if k not in (FAULT_ENV, "BUNDLEKIT_LOCK_DIR")}
    env.update(SPARK_MASTER="local[1]", SPARK_SHUFFLE_PARTITIONS="2", SPARK_DRIVER_MEMORY="1g",
               MLFLOW_DISABLE_TELEMETRY="true", PYTHONUNBUFFERED="1",
               JAVA_TOOL_OPTIONS=f"{env.get('JAVA_TOOL_OPTIONS', '')} {QUICK_JVM}".strip())
    plan = json.dumps([[str(lakehouse), job, fault] for lakehouse, job, fault in steps])
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(REPO_ROOT), str(landing), json.dumps(PARAMS), plan],
        env=env, cwd=landing.parent, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _crash(landing: Path, steps: list[Step]) -> str:
    """Run ``steps``; the last one must die at its fault point (one of them, when it names several).
    Returns the child's output."""
    fault = steps[-1][2] or ""
    status, output = _run(landing, steps)
    assert status == FAULT_EXIT_STATUS, f"expected a kill at {fault}, got status {status}:\n{output[-4000:]}"
    assert any(f"bundlekit: fault injected at {point}" in output for point in fault.split(","))
    return output


def _table_path(lakehouse: Path, table: str) -> Path:
    return lakehouse / CATALOG / SCHEMA / table


def _rows(lakehouse: Path, table: str) -> pd.DataFrame | None:
    """The table's rows without :data:`VOLATILE` columns, in a canonical order (None: no table)."""
    from deltalake import DeltaTable

    path = _table_path(lakehouse, table)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    frame = DeltaTable(str(path)).to_pandas()
    frame = frame[[c for c in frame.columns if c not in VOLATILE]]
    frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
    return frame.sort_values(list(frame.columns), kind="mergesort", ignore_index=True)


def _registry(lakehouse: Path) -> MlflowClient:
    uri = f"sqlite:///{lakehouse / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}


def _tags(client: MlflowClient, version: str) -> dict[str, str]:
    return dict(client.get_model_version(MODEL, version).tags)


def _with_champion_as(frame: pd.DataFrame, champion: str) -> pd.DataFrame:
    """``model_version`` of the champion replaced by ``"champion"`` (version numbers differ when a
    killed training run registered a version first); any other version stays and fails a comparison."""
    return frame.assign(model_version=frame["model_version"].where(frame["model_version"] != champion, "champion"))


# ------------------------------------------------------------------------------------ the two lakehouses
@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    return _thin_landing(tmp_path_factory.mktemp("landing") / "transactions")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, landing) -> dict[str, Any]:
    """Two lakehouses: ``clean``, where each job ran once, uninterrupted, and ``killed``, where every
    job was killed (ingestion and training twice) and run again. ``observed`` holds what each kill
    left behind, before the next run."""
    clean = tmp_path_factory.mktemp("clean") / "lakehouse"
    lakehouse = tmp_path_factory.mktemp("killed") / "lakehouse"
    seen: dict[str, Any] = {}
    uninterrupted: list[Step] = [(clean, job, None) for job in ("ingestion", "training", "batch_scoring", "monitoring")]

    _crash(landing, [*uninterrupted, (lakehouse, "ingestion", "before:silver")])
    seen["before:silver"] = {t: _rows(lakehouse, t) is not None for t in (*INGESTION_TABLES, *GOLD_TABLES)}

    # Between gold's two writes, in whichever order gold makes them.
    _crash(landing, [(lakehouse, "ingestion", ",".join(f"after_write:{t}" for t in GOLD_TABLES))])
    seen["gold"] = {t: _rows(lakehouse, t) is not None for t in GOLD_TABLES}

    _crash(landing, [(lakehouse, "ingestion", None), (lakehouse, "training", "after:train")])
    client = _registry(lakehouse)
    seen["after:train"] = {"aliases": _aliases(client), "status": _tags(client, "1").get("validation_status")}

    _crash(landing, [(lakehouse, "training", "promote:after_tags")])
    seen["promote:after_tags"] = {"aliases": _aliases(client), "tags": _tags(client, "2")}

    _crash(landing, [(lakehouse, "training", None), (lakehouse, "batch_scoring", "after_write:predictions")])
    predictions = _rows(lakehouse, "predictions")
    seen["after_write:predictions"] = {"aliases": _aliases(client),
                                       "rows": None if predictions is None else len(predictions)}

    output = _crash(landing, [(lakehouse, "batch_scoring", None),
                              (lakehouse, "monitoring", "after_write:monitoring_metrics")])
    score_line = next(line for line in output.splitlines() if line.startswith("[score] {"))
    seen["scoring again"] = json.loads(score_line[len("[score] "):])
    seen["after_write:monitoring_metrics"] = _rows(lakehouse, "monitoring_metrics") is not None

    status, output = _run(landing, [(lakehouse, "monitoring", None)])
    assert status == 0, output[-4000:]
    return {"clean": clean, "killed": lakehouse, "observed": seen}


# ------------------------------------------------------------------------------------ the tests
def test_each_kill_left_a_partial_run(runs):
    seen = runs["observed"]
    # Killed between bronze and silver: bronze and its log exist, nothing after them.
    assert seen["before:silver"] == {
        "bronze_transactions": True, "bronze_ingestion_log": True, "silver_transactions": False,
        "silver_transactions_quarantine": False, "silver_processed_files": False,
        "gold_transaction_features": False, "gold_daily_fraud_summary": False}
    # Killed inside gold, after its first write: one of its tables is written.
    assert sorted(seen["gold"].values()) == [False, True]
    # Killed after train: v1 is the challenger, never validated.
    assert seen["after:train"] == {"aliases": {"challenger": "1"}, "status": "pending"}
    # Killed between the promotion tags and the alias move: the tags are there, the champion is not.
    assert seen["promote:after_tags"]["aliases"] == {"challenger": "2"}
    assert seen["promote:after_tags"]["tags"]["promotion_status"] == "promoted"
    # Killed after the predictions merge: the training re-run promoted its own candidate (v3).
    assert seen["after_write:predictions"]["aliases"] == {"champion": "3"} and seen["after_write:predictions"]["rows"]
    # The scoring re-run found every prediction in place: nothing inserted or rewritten.
    again = seen["scoring again"]
    assert again["rows_scored"] > 0 and again["inserted"] == again["updated"] == 0
    assert seen["after_write:monitoring_metrics"]


@pytest.mark.parametrize("table", INGESTION_TABLES)
def test_bronze_and_silver_tables_equal_a_clean_run(runs, table):
    expected, got = _rows(runs["clean"], table), _rows(runs["killed"], table)
    assert expected is not None and len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)


def test_gold_tables_equal_a_clean_run(runs):
    for table in GOLD_TABLES:
        expected, got = _rows(runs["clean"], table), _rows(runs["killed"], table)
        assert expected is not None and len(expected) > 0
        assert got is not None, f"{table} is missing"
        pd.testing.assert_frame_equal(got, expected)


def test_registry_equals_a_clean_run(runs):
    clean_client, killed_client = _registry(runs["clean"]), _registry(runs["killed"])
    assert _aliases(clean_client) == {"champion": "1"}
    aliases = _aliases(killed_client)
    assert set(aliases) == {"champion"}  # no challenger left over, no half-set alias
    champion = aliases["champion"]
    # The champion is the same model: same training parameters and metrics, same gate outcome.
    runs = {name: c.get_run(c.get_model_version(MODEL, v).run_id).data
            for name, c, v in (("clean", clean_client, "1"), ("killed", killed_client, champion))}
    assert runs["killed"].params == runs["clean"].params
    assert runs["killed"].metrics == runs["clean"].metrics

    def stable(tags: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in tags.items() if k not in ("validation_run_id", "promoted_at")}

    assert stable(_tags(killed_client, champion)) == stable(_tags(clean_client, "1"))
    # What the killed training runs registered is left without alias and is not marked promoted.
    others = [mv for mv in killed_client.search_model_versions(f"name='{MODEL}'") if str(mv.version) != champion]
    assert sorted(str(mv.version) for mv in others) == ["1", "2"]
    assert {str(mv.version): mv.tags.get("promotion_status") for mv in others} == {"1": None, "2": "superseded"}


@pytest.mark.parametrize("table", ["predictions", "monitoring_metrics"])
def test_predictions_and_monitoring_equal_a_clean_run(runs, table):
    champion = _aliases(_registry(runs["killed"]))["champion"]
    expected = _with_champion_as(_rows(runs["clean"], table), "1")
    assert len(expected) > 0
    got = _with_champion_as(_rows(runs["killed"], table), champion)
    pd.testing.assert_frame_equal(got, expected)


# ------------------------------------------------------------------------------------ promotion alone
class Killed(BaseException):
    """Raised by the patched fault point: ends promote_challenger where a kill would."""


def test_promotion_is_resumed_by_a_rerun_and_a_completed_one_is_left_alone(tmp_path, monkeypatch):
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.platform.config import LakehouseConfig

    configure_mlflow(LakehouseConfig("fraud_test", "fraud", "delta-rs", tmp_path), "/fraud/test-promotion")
    client = MlflowClient()
    name = "fraud_promotion_model"
    client.create_registered_model(name)

    def candidate(validated_against: str) -> str:
        version = str(client.create_model_version(name, source=str(tmp_path / "model")).version)
        gate.register_challenger(name, version, client=client)
        for key, value in {"validation_status": "passed", "validation_reasons": "fine",
                           "validation_champion_version": validated_against}.items():
            client.set_model_version_tag(name, version, key, value)
        return version

    def kill_at(point: str | None) -> None:
        def fault_point(*names: str) -> None:
            if point in names:
                raise Killed(point)

        monkeypatch.setattr(gate, "fault_point", fault_point)

    def aliases() -> dict[str, str]:
        return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}

    # Killed after the tags, before the alias move: nothing promoted yet; the re-run promotes.
    v1 = candidate("none")
    kill_at("promote:after_tags")
    with pytest.raises(Killed):
        gate.promote_challenger(name, client=client)
    assert aliases() == {"challenger": v1}
    kill_at(None)
    resumed = gate.promote_challenger(name, client=client)
    assert resumed["promoted"] and resumed["champion_version"] == v1 and aliases() == {"champion": v1}
    # A re-run after a completed promotion changes nothing.
    before = {"aliases": aliases(), "tags": client.get_model_version(name, v1).tags}
    again = gate.promote_challenger(name, client=client)
    assert not again["promoted"] and "nothing to promote" in again["reasons"][0]
    assert {"aliases": aliases(), "tags": client.get_model_version(name, v1).tags} == before

    # Killed after the alias move, before the challenger alias went: promoted; the re-run tidies up.
    v2 = candidate(v1)
    kill_at("promote:after_champion_alias")
    with pytest.raises(Killed):
        gate.promote_challenger(name, client=client)
    assert aliases() == {"champion": v2, "challenger": v2}
    kill_at(None)
    tidied = gate.promote_challenger(name, client=client)
    assert tidied["promoted"] and tidied["previous_champion_version"] == v1
    assert "interrupted promotion" in tidied["reasons"][-1]
    assert aliases() == {"champion": v2}

    # Killed after the alias move, then the whole job re-run: the new candidate takes the challenger
    # alias from the champion, which keeps promotion_status=promoted.
    v3 = candidate(v2)
    kill_at("promote:after_champion_alias")
    with pytest.raises(Killed):
        gate.promote_challenger(name, client=client)
    kill_at(None)
    v4 = str(client.create_model_version(name, source=str(tmp_path / "model")).version)
    gate.register_challenger(name, v4, client=client)
    assert aliases() == {"champion": v3, "challenger": v4}
    assert client.get_model_version(name, v3).tags["promotion_status"] == "promoted"

    # An interrupted promotion that is never resumed: the next challenger supersedes it.
    v5 = candidate(v3)
    kill_at("promote:after_tags")
    with pytest.raises(Killed):
        gate.promote_challenger(name, client=client)
    kill_at(None)
    v6 = str(client.create_model_version(name, source=str(tmp_path / "model")).version)
    gate.register_challenger(name, v6, client=client)
    assert aliases() == {"champion": v3, "challenger": v6}
    tags = client.get_model_version(name, v5).tags
    assert tags["promotion_status"] == "superseded" and f"v{v6} replaced it" in tags["promotion_reasons"]
