"""The local end-to-end demo: the bundle's jobs, run in sequence on the shipped transactions.

Nothing here defines a job: each step is ``runner.run_job`` on a job of ``databricks.yml`` for the
chosen target, with parameters passed as a user would with ``fraud-mlops run JOB --param k=v``. The
steps:

1. **ingestion** over the landing folder (bronze -> silver -> gold);
2. **training** on the Fraud Detection Handbook's test week (2018-08-08..2018-08-14, 7-day delay):
   prequential model selection on the four weeks before it (Handbook ch. 5), the feature ablation,
   a 4-week backtest, the XGBoost candidate refitted on the 56 days to 2018-07-31 with its
   alert-budget threshold, the logistic-regression baseline, the validation gate and promotion;
3. **training** again with the logistic-regression baseline as the candidate, to show the gate
   judging a second model against the champion (it is promoted only if it is not worse; when it is
   not, it stays the challenger and is scored in shadow);
4. **batch_scoring** of the days after the test window with ``@champion`` (alert budget, reason
   codes) and ``@challenger`` in shadow;
5. **monitoring** of the same days: PSI drift against the training window, AP, card precision,
   alerts per day against the budget, and the shadow comparison.

It ends with a summary (printed and written as JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

HANDBOOK_SPLIT = {"train_end": "2018-07-31", "delay_days": "7", "test_days": "7"}
#: The backtest's first test week: the week after the last validation week (no overlap with selection).
BACKTEST_START = "2018-08-01"
#: ``--quick``: one fold, one XGBoost and one LR candidate, no ablation or backtest (for checks that
#: compare two runs, such as benchmarks/bench_connect_vs_classic.py).
QUICK_TRAINING = {
    "n_folds": "1", "ablation": "false", "backtest_weeks": "0",
    "search_space": '{"xgboost": {"max_depth": [4], "n_estimators": [100], "learning_rate": [0.05]}, '
                    '"logistic_regression": {"C": [1.0]}}',
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fraud-mlops demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--landing", default="data/transactions",
                   help="folder of daily transaction files (default: the 153 days the repository ships)")
    p.add_argument("--target", default="dev", help="bundle target whose variables are used (default dev)")
    p.add_argument("--keep", action="store_true",
                   help="keep the existing local lakehouse (default: start from an empty one)")
    p.add_argument("--summary-json", default=None, help="where to write the summary (default <lakehouse>/demo-summary.json)")
    p.add_argument("--train-start", default="", help="first training day (default: train_days before --train-end)")
    p.add_argument("--train-end", default=HANDBOOK_SPLIT["train_end"])
    p.add_argument("--train-days", default="56", help="days of training history (default 56)")
    p.add_argument("--backtest-start", default=BACKTEST_START, help="first test day of the 4-week backtest")
    p.add_argument("--quick", action="store_true",
                   help="one validation fold and one candidate per model type, no ablation or backtest")
    p.add_argument("--delay-days", default=HANDBOOK_SPLIT["delay_days"])
    p.add_argument("--test-days", default=HANDBOOK_SPLIT["test_days"])
    p.add_argument("--score-start", default="2018-08-15", help="first day scored and monitored")
    p.add_argument("--score-end", default="2018-08-31", help="last day scored and monitored")
    p.add_argument("--replay-days", type=int, default=1,
                   help="last scored days replayed through the REST endpoint and compared with batch scoring "
                        "(default 1; 0 skips real-time scoring)")
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
        print(f"demo: starting from an empty local lakehouse (removing {local_root}, but for the online store's "
              "postgres/; --keep to keep it)")
        for child in local_root.iterdir():
            if child.name == "postgres":
                continue  # the data folder of the online store's PostgreSQL server, running during make demo
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    local_root.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(root, args.target, {"landing_path": str(landing)})
    if not args.keep and args.replay_days > 0:
        reset_online_store(str(bundle.variables["catalog"]), str(bundle.variables["schema"]))
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

    ingestion = job("ingestion", {}, "1/6 ingestion: landing -> bronze -> silver -> gold")
    split = {"train_start": args.train_start, "train_end": args.train_end, "train_days": args.train_days,
             "delay_days": args.delay_days, "test_days": args.test_days}
    selection = {"backtest_start": args.backtest_start, "backtest_weeks": "4"}
    if args.quick:
        selection = dict(QUICK_TRAINING)
    training = job("training", {**split, **selection},
                   "2/6 training: prequential selection, XGBoost candidate + LR baseline, gate, promotion")
    second = None
    if not args.skip_second_candidate:
        lr_only = {"search_space": '{"logistic_regression": {"C": [1.0]}}', "ablation": "false",
                   "backtest_weeks": "0", "n_folds": "1" if args.quick else "4"}
        second = job("training", {**split, "candidate_model": "logistic_regression", **lr_only},
                     "3/6 training: the LR baseline as a second candidate against the champion")
    scoring = job("batch_scoring", {"score_start": args.score_start, "score_end": args.score_end},
                  "4/6 batch scoring with @champion (and @challenger in shadow)")
    monitoring = job("monitoring", {"window_start": args.score_start, "window_end": args.score_end},
                     "5/6 monitoring: drift and quality")
    realtime = None
    if args.replay_days > 0:
        realtime = real_time_scoring(bundle, job, landing, dt.date.fromisoformat(args.score_end), args.replay_days,
                                     timings)

    summary = build_summary(bundle, local_root, landing, len(files), ingestion, training, second, scoring, monitoring)
    summary["real_time"] = realtime
    summary["step_seconds"] = timings
    summary["wall_time_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.summary_json) if args.summary_json else local_root / "demo-summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print_summary(summary, out)
    report = write_demo_report(bundle, local_root)
    print(f"HTML report: {report}  (open it in a browser; `fraud-mlops report` writes it again)")
    return 0


def write_demo_report(bundle, local_root: Path) -> Path:
    """Write the HTML report of the demo's lakehouse (:mod:`fraud_mlops.reporting.html_report`)."""
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark
    from fraud_mlops.reporting.html_report import write_report

    config = LakehouseConfig.from_env(str(bundle.variables["catalog"]), str(bundle.variables["schema"]))
    configure_mlflow(config)
    lakehouse = Lakehouse(get_spark(), config)
    return write_report(lakehouse, str(bundle.variables["model_name"]), local_root / "report.html").resolve()


def _table_counts(catalog: str, schema: str) -> dict[str, int]:
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark

    lakehouse = Lakehouse(get_spark(), LakehouseConfig.from_env(catalog, schema))
    names = [C.BRONZE_INGESTION_LOG, C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE,
             C.SILVER_PROCESSED_FILES, C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY, C.PREDICTIONS, C.MONITORING_METRICS,
             C.INFERENCE_LOG]
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
        "selection": train.get("selection"),
        "decision": train.get("decision"),
    }


def _top_flagged(catalog: str, schema: str, start: str | None, end: str | None, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` highest-scored flagged predictions of the scored range, with their reason codes."""
    if start is None or end is None:
        return []
    from pyspark.sql import functions as F

    from fraud_mlops.lifecycle.explain import reason_columns
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark

    lakehouse = Lakehouse(get_spark(), LakehouseConfig.from_env(catalog, schema))
    columns = ["transaction_id", "tx_date", "customer_id", "score", "card_daily_rank", *reason_columns()]
    rows = (lakehouse.read(C.PREDICTIONS).where(F.col("tx_date").between(start, end) & (F.col("decision") == 1))
            .orderBy(F.col("score").desc(), "transaction_id").select(*columns).limit(n).collect())
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.asDict().items()} for r in rows]


def reset_online_store(catalog: str, schema: str) -> None:
    """Empty the target's online store (the demo starts from nothing; the server keeps its data)."""
    from fraud_mlops.online.store import (
        OnlineStore,
        OnlineStoreLocation,
        OnlineStoreUnavailableError,
        connection,
    )

    try:
        location = OnlineStoreLocation.for_target(catalog, schema)
        location.ensure_database()
    except OnlineStoreUnavailableError as exc:
        raise SystemExit(f"demo: {exc}\n(make demo starts the online store; or pass --replay-days 0)") from exc
    with connection(location) as conn:
        OnlineStore(location.schema).drop(conn)


def real_time_scoring(bundle, job, landing: Path, last_day: dt.date, days: int,
                      timings: dict[str, float]) -> dict[str, Any]:
    """Publish the online store (the online_features job), then replay the last ``days`` scored days
    through the REST endpoint and compare every answer with the batch score; returns the figures and
    one example answer."""
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark
    from fraud_mlops.serving.replay import replay_against_batch

    publish = _task_result(job("online_features", {}, "6/6 real-time scoring: publish the online store, replay "
                                                       "through the REST endpoint"), "publish")
    start = last_day - dt.timedelta(days=days - 1)
    lakehouse = Lakehouse(get_spark(), LakehouseConfig.from_env(str(bundle.variables["catalog"]),
                                                                str(bundle.variables["schema"])))
    t0 = time.perf_counter()
    parity = replay_against_batch(lakehouse, str(bundle.variables["model_name"]), landing, start, last_day,
                                  progress=lambda done, total: print(f"  replayed {done:,}/{total:,}", flush=True))
    timings["replay"] = round(time.perf_counter() - t0, 1)
    if not parity["equal"]:
        raise SystemExit(f"demo: the REST endpoint's scores differ from batch scoring: {parity}")
    return {"publish": {k: publish.get(k) for k in ("window", "rows", "counts")}, **parity}


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
        "scoring": {
            **{k: score.get(k) for k in ("score_start", "score_end", "rows_scored", "inserted", "updated", "flagged",
                                         "card_alerts", "alerts_per_day", "alert_budget", "model_version",
                                         "decision_threshold", "threshold_source", "shadow")},
            "top_flagged": _top_flagged(catalog, schema, score.get("score_start"), score.get("score_end")),
        },
        "monitoring": {
            **{k: mon.get(k) for k in ("window_start", "window_end", "reference_start", "reference_end",
                                       "n_transactions", "n_labeled", "label_delay_days", "score_psi", "max_feature_psi", "max_feature_psi_column",
                                       "average_precision", "card_precision_top_100", "fraud_rate", "alert",
                                       "retrain", "reasons", "alerts_per_day_mean", "alerts_per_day_max",
                                       "alert_budget", "precision_within_budget", "precision_flagged", "shadow")},
            "retraining_triggered": bool(retrain is not None and retrain.status == "SUCCESS"),
        },
        "mlflow_ui": f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri sqlite:///{local_root / 'mlflow.db'}",
    }


def _print_selection(selection: dict[str, Any] | None, decision: dict[str, Any] | None) -> None:
    if selection:
        folds = selection.get("folds") or []
        span = f"{folds[-1]['validation_start']}..{folds[0]['validation_end']}" if folds else "?"
        print(f"  selection: {selection.get('n_candidates')} candidates x {len(folds)} prequential folds"
              f" (validation {span})")
        for model, chosen in (selection.get("selected") or {}).items():
            print(f"    {model:<20} {chosen.get('params')}: validation CP@100"
                  f" {_fmt(chosen.get('mean_card_precision_top_100'))} AP {_fmt(chosen.get('mean_average_precision'))}")
        for row in selection.get("ablation") or []:
            print(f"    ablation {row['features']:<32} CP@100 {_fmt(row['mean_card_precision_top_100'])}"
                  f" AP {_fmt(row['mean_average_precision'])} ({row['delta_average_precision']:+.4f} AP)")
        bt = selection.get("backtest")
        if bt:
            weeks = bt.get("weeks") or []
            print(f"    backtest {len(weeks)} weeks {weeks[0]['test_start']}..{weeks[-1]['test_end']}:"
                  f" AP {bt['mean_average_precision']:.3f} +/- {bt['std_average_precision']:.3f},"
                  f" ROC AUC {bt['mean_roc_auc']:.3f} +/- {bt['std_roc_auc']:.3f},"
                  f" CP@100 {bt['mean_card_precision_top_100']:.3f} +/- {bt['std_card_precision_top_100']:.3f}")
    if decision:
        print(f"  decision threshold {_fmt(decision.get('decision_threshold'))} ({decision.get('method')},"
              f" {decision.get('alert_budget')} cards/day, from {decision.get('source')})")


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
        _print_selection(gate.get("selection"), gate.get("decision"))
    sc = s["scoring"]
    print(f"scoring: {sc['rows_scored']:,} rows {sc['score_start']}..{sc['score_end']} with champion v{sc['model_version']}"
          f" ({sc['flagged']:,} flagged at threshold {_fmt(sc['decision_threshold'])}; inserted {sc['inserted']:,},"
          f" updated {sc['updated']:,})")
    if sc.get("alerts_per_day") is not None:
        print(f"  alerts: {sc['alerts_per_day']} cards/day against a budget of {sc.get('alert_budget')}"
              f" (threshold from {sc.get('threshold_source')})")
    for row in sc.get("top_flagged") or []:
        reasons = ", ".join(f"{row[f'reason_{i}']} {row[f'reason_{i}_contribution']:+.2f}"
                            for i in (1, 2, 3) if row.get(f"reason_{i}"))
        print(f"  tx {row['transaction_id']} ({row['tx_date']}, card {row['customer_id']}) score {row['score']:.3f}:"
              f" {reasons}")
    shadow = sc.get("shadow")
    if shadow:
        print(f"  shadow: challenger v{shadow['model_version']} scored the same {shadow['rows_scored']:,} rows into"
              f" {shadow['predictions_table']} ({shadow.get('alerts_per_day')} cards/day at {_fmt(shadow['decision_threshold'])})")
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
    if mo.get("alerts_per_day_mean") is not None:
        print(f"  alerts per day: mean {_fmt(mo['alerts_per_day_mean'])}, max {mo['alerts_per_day_max']}"
              f" (budget {mo['alert_budget']}); precision within budget {_fmt(mo.get('precision_within_budget'))},"
              f" of flagged cards {_fmt(mo.get('precision_flagged'))}")
    sh = mo.get("shadow")
    if sh:
        print(f"  shadow, {sh.get('n_days')} labelled days: champion v{sh.get('champion_version')} AP"
              f" {_fmt(sh.get('champion_average_precision'))} CP@100 {_fmt(sh.get('champion_card_precision_top_100'))}"
              f" | challenger v{sh.get('challenger_version')} AP {_fmt(sh.get('challenger_average_precision'))}"
              f" CP@100 {_fmt(sh.get('challenger_card_precision_top_100'))}")
    print(f"  alert: {mo['alert']}, retrain: {mo['retrain']}" + (f" ({'; '.join(mo['reasons'])})" if mo['reasons'] else "")
          + (", retraining job triggered" if mo["retraining_triggered"] else ""))
    rt = s.get("real_time")
    if rt:
        print(f"real-time scoring: online store published {rt['publish']['window'][0]}..{rt['publish']['window'][1]}"
              f" ({rt['publish']['counts']['customer_transactions']:,} customer transactions); replayed "
              f"{rt['n_requests']:,} transactions of {rt['days'][0]}..{rt['days'][1]} through POST /score in time order:")
        print(f"  {rt['n_compared']:,} answers compared with batch scoring: max |difference| "
              f"{rt['max_abs_difference']:.1e}, {rt['n_decisions_differ']} decisions differ; latency p50 "
              f"{rt['latency_ms_p50']:.1f} ms, p99 {rt['latency_ms_p99']:.1f} ms (one request at a time)")
        print("  serve it: make serve, then curl (README, Real-time scoring)")
    print(f"wall time: {s['wall_time_s']} s  {s['step_seconds']}")
    print(f"summary JSON: {path}")
    print(f"MLflow UI on these runs: {s['mlflow_ui']}  (or: make mlflow-ui)")
