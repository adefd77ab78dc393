"""The local end-to-end demo: the bundle's jobs, run in sequence on the shipped transactions.

Nothing here defines a job: each step is ``runner.run_job`` on a job of ``databricks.yml`` for the
chosen target, with parameters passed as a user would with ``fraud-mlops run JOB --param k=v``. The
steps:

1. **ingestion** over the landing folder (bronze -> silver -> gold);
2. **training** on the Fraud Detection Handbook's split (train 2018-07-25..2018-07-31, 7-day delay,
   test 2018-08-08..2018-08-14): XGBoost candidate + logistic-regression baseline, validation gate,
   promotion;
3. **training** again with the logistic-regression baseline as the candidate, to show the gate
   judging a second model against the champion (it is promoted only if it is not worse);
4. **batch_scoring** of the days after the test window with ``@champion``;
5. **monitoring** of the same days: PSI drift against the training window, AP, card precision.

It ends with a summary (printed and written as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bundlekit.loader import find_bundle_root, load_bundle
from bundlekit.runner import JobRunResult, run_job
from fraud_mlops.platform import config as C

HANDBOOK_SPLIT = {"train_start": "2018-07-25", "train_end": "2018-07-31", "delay_days": "7", "test_days": "7"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fraud-mlops demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--landing", default="data/transactions",
                   help="folder of daily transaction files (default: the slice the repository ships)")
    p.add_argument("--target", default="dev", help="bundle target whose variables are used (default dev)")
    p.add_argument("--keep", action="store_true",
                   help="keep the existing local lakehouse (default: start from an empty one)")
    p.add_argument("--summary-json", default=None, help="where to write the summary (default <lakehouse>/demo-summary.json)")
    p.add_argument("--train-start", default=HANDBOOK_SPLIT["train_start"])
    p.add_argument("--train-end", default=HANDBOOK_SPLIT["train_end"])
    p.add_argument("--delay-days", default=HANDBOOK_SPLIT["delay_days"])
    p.add_argument("--test-days", default=HANDBOOK_SPLIT["test_days"])
    p.add_argument("--score-start", default="2018-08-15", help="first day scored and monitored")
    p.add_argument("--score-end", default="2018-08-31", help="last day scored and monitored")
    p.add_argument("--skip-second-candidate", action="store_true",
                   help="do not run the second training (baseline as candidate) that exercises the gate")
    return p


def _step(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(3, 70 - len(title)), flush=True)


def _task_result(run: JobRunResult, task: str) -> dict[str, Any]:
    t = run.tasks.get(task)
    return t.result if t is not None and isinstance(t.result, dict) else {}


def _require(run: JobRunResult, job: str) -> None:
    if not run.ok:
        failed = {k: run.tasks[k].error for k in run.failed_tasks}
        raise SystemExit(f"demo: job {job} failed: {failed}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 on success (a failing job ends it with a non-zero status)."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    root = find_bundle_root()
    landing = Path(args.landing).expanduser().resolve()
    if not landing.is_dir():
        raise SystemExit(f"demo: landing folder {landing} does not exist")
    local_root = Path(os.environ.get(C.LOCAL_ROOT_ENV, root / C.DEFAULT_LOCAL_ROOT)).resolve()
    os.environ[C.LOCAL_ROOT_ENV] = str(local_root)
    if not args.keep and local_root.exists():
        print(f"demo: starting from an empty local lakehouse (removing {local_root}; --keep to keep it)")
        shutil.rmtree(local_root)
    local_root.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(root, args.target, {"landing_path": str(landing)})
    files = sorted(p.name for p in landing.iterdir() if p.is_file() and ".csv" in p.name)
    print(f"demo: target {bundle.target}, landing {landing} ({len(files)} files"
          + (f", {files[0]} .. {files[-1]}" if files else "") + f"), lakehouse {local_root}", flush=True)
    log = lambda line: print(line, flush=True)
    timings: dict[str, float] = {}

    def job(name: str, params: dict[str, str], title: str) -> JobRunResult:
        _step(title)
        t0 = time.perf_counter()
        run = run_job(bundle, name, params, log=log)
        timings[title] = round(time.perf_counter() - t0, 1)
        _require(run, name)
        return run

    ingestion = job("ingestion", {}, "1/5 ingestion: landing -> bronze -> silver -> gold")
    split = {"train_start": args.train_start, "train_end": args.train_end,
             "delay_days": args.delay_days, "test_days": args.test_days}
    training = job("training", split, "2/5 training: XGBoost candidate + LR baseline, gate, promotion")
    second = None
    if not args.skip_second_candidate:
        second = job("training", {**split, "candidate_model": "logistic_regression"},
                     "3/5 training: the LR baseline as a second candidate against the champion")
    scoring = job("batch_scoring", {"score_start": args.score_start, "score_end": args.score_end},
                  "4/5 batch scoring with @champion")
    monitoring = job("monitoring", {"window_start": args.score_start, "window_end": args.score_end},
                     "5/5 monitoring: drift and quality")

    summary = build_summary(bundle, local_root, landing, len(files), ingestion, training, second, scoring, monitoring)
    summary["step_seconds"] = timings
    summary["wall_time_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.summary_json) if args.summary_json else local_root / "demo-summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print_summary(summary, out)
    return 0


def _table_counts(catalog: str, schema: str) -> dict[str, int]:
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark

    lakehouse = Lakehouse(get_spark(), LakehouseConfig.from_env(catalog, schema))
    names = [C.BRONZE_INGESTION_LOG, C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE,
             C.SILVER_PROCESSED_FILES, C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY, C.PREDICTIONS, C.MONITORING_METRICS]
    return {lakehouse.ref(n).full_name: lakehouse.count(n) for n in names}


def _gate(run: JobRunResult) -> dict[str, Any]:
    train, validate, promote = (_task_result(run, t) for t in ("train", "validate", "promote"))
    return {
        "candidate_model": train.get("candidate_model"),
        "registered_version": train.get("registered_version"),
        "window": train.get("window"),
        "test_metrics": {k: v.get("metrics") for k, v in (train.get("models") or {}).items()},
        "validation": {
            "status": validate.get("validation_status"),
            "challenger_version": validate.get("challenger_version"),
            "challenger_metrics": validate.get("challenger_metrics"),
            "champion_version": validate.get("champion_version"),
            "champion_metrics": validate.get("champion_metrics"),
            "test_window": [validate.get("test_start"), validate.get("test_end")],
        },
        "promoted": promote.get("promoted"),
        "champion_version_after": promote.get("champion_version"),
        "reasons": promote.get("reasons") or validate.get("reasons"),
    }


def build_summary(bundle, local_root: Path, landing: Path, n_files: int, ingestion: JobRunResult,
                  training: JobRunResult, second: JobRunResult | None, scoring: JobRunResult,
                  monitoring: JobRunResult) -> dict[str, Any]:
    """Collect the figures of the demo's job runs into one JSON-able dict."""
    catalog = str(bundle.variables["catalog"])
    schema = str(bundle.variables["schema"])
    bronze, silver, gold = (_task_result(ingestion, t) for t in ("bronze", "silver", "gold"))
    mon = _task_result(monitoring, "monitor")
    score = _task_result(scoring, "score")
    retrain = monitoring.tasks.get("retrain")
    return {
        "target": bundle.target,
        "landing": str(landing),
        "landing_files": n_files,
        "lakehouse": str(local_root),
        "model_name": bundle.variables["model_name"],
        "tables": _table_counts(catalog, schema),
        "ingestion": {
            "files_ingested": bronze.get("files_ingested"),
            "files_failed": bronze.get("files_rejected"),  # rejected landing files (the run then fails)
            "files_empty": len(bronze.get("files_empty") or []),
            "rescued_columns": bronze.get("rescued_columns") or {},
            "rows_ingested": bronze.get("rows_ingested"),
            "rows_silver": silver.get("rows_silver"),
            "rows_quarantined": silver.get("rows_quarantined"),
            "quarantined_by_rule": silver.get("quarantined_by_rule"),
            "gold_recomputed": [gold.get("recomputed_from"), gold.get("recomputed_to")],
        },
        "training": _gate(training),
        "second_candidate": _gate(second) if second is not None else None,
        "scoring": {k: score.get(k) for k in ("score_start", "score_end", "rows_scored", "inserted", "updated",
                                              "flagged", "model_version", "decision_threshold")},
        "monitoring": {
            **{k: mon.get(k) for k in ("window_start", "window_end", "reference_start", "reference_end",
                                       "n_transactions", "n_labeled", "label_delay_days", "score_psi", "max_feature_psi", "max_feature_psi_column",
                                       "average_precision", "card_precision_top_100", "fraud_rate", "alert",
                                       "retrain", "reasons")},
            "retraining_triggered": bool(retrain is not None and retrain.status == "SUCCESS"),
        },
        "mlflow_ui": f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri sqlite:///{local_root / 'mlflow.db'}",
    }


def print_summary(s: dict[str, Any], path: Path) -> None:
    """Print the summary for a person."""
    _step("summary")
    print(f"landing: {s['landing']} ({s['landing_files']} files); lakehouse: {s['lakehouse']}")
    print("tables (rows):")
    for name, n in s["tables"].items():
        print(f"  {name:<55} {n:>10,}")
    ing = s["ingestion"]
    print(f"ingestion: {ing['rows_ingested']:,} rows from {ing['files_ingested']} files -> silver {ing['rows_silver']:,}"
          f" + quarantined {ing['rows_quarantined']:,} {ing['quarantined_by_rule'] or ''};"
          f" unreadable files: {len(ing['files_failed'] or [])}")
    for label, gate in (("training", s["training"]), ("second candidate", s["second_candidate"])):
        if not gate:
            continue
        w = gate.get("window") or {}
        print(f"{label}: candidate {gate['candidate_model']} v{gate['registered_version']}, train "
              f"{w.get('train_start')}..{w.get('train_end')}, test {w.get('test_start')}..{w.get('test_end')}")
        for model, m in (gate["test_metrics"] or {}).items():
            if m:
                print(f"  {model:<20} AP {_fmt(m.get('average_precision'))}  ROC AUC {_fmt(m.get('roc_auc'))}"
                      f"  card precision@100 {_fmt(m.get('card_precision_top_100'))}")
        v = gate["validation"]
        champ = v.get("champion_metrics")
        print(f"  gate: challenger v{v.get('challenger_version')} AP {_fmt((v.get('challenger_metrics') or {}).get('average_precision'))}"
              + (f" vs champion v{v.get('champion_version')} AP {_fmt(champ.get('average_precision'))}" if champ else " (no champion yet)"))
        verdict = "PROMOTED to champion" if gate["promoted"] else "NOT promoted (stays challenger)"
        print(f"  -> {verdict}: {'; '.join(gate['reasons'] or [])}")
    sc = s["scoring"]
    print(f"scoring: {sc['rows_scored']:,} rows {sc['score_start']}..{sc['score_end']} with champion v{sc['model_version']}"
          f" ({sc['flagged']:,} flagged at threshold {sc['decision_threshold']}; inserted {sc['inserted']:,}, updated {sc['updated']:,})")
    mo = s["monitoring"]
    quality = (
        f"AP {_fmt(mo['average_precision'])}, card precision@100 {_fmt(mo['card_precision_top_100'])},"
        f" fraud rate {mo['fraud_rate']:.2%}"
        if mo["fraud_rate"] is not None
        else "no labels known yet"
    )
    print(f"monitoring {mo['window_start']}..{mo['window_end']} vs training {mo['reference_start']}..{mo['reference_end']}:"
          f" score PSI {_fmt(mo['score_psi'])}, max feature PSI {_fmt(mo['max_feature_psi'])}"
          f" ({mo['max_feature_psi_column']}), {quality}")
    print(f"  quality on {mo['n_labeled']:,} of {mo['n_transactions']:,} rows: those whose labels are known"
          f" (at least {mo['label_delay_days']} days old)")
    print(f"  alert: {mo['alert']}, retrain: {mo['retrain']}" + (f" ({'; '.join(mo['reasons'])})" if mo['reasons'] else "")
          + (", retraining job triggered" if mo["retraining_triggered"] else ""))
    print(f"wall time: {s['wall_time_s']} s  {s['step_seconds']}")
    print(f"summary JSON: {path}")
    print(f"MLflow UI on these runs: {s['mlflow_ui']}  (or: make mlflow-ui)")
