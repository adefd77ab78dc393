"""The demo through Spark Connect against the demo on a classic session, in one run.

Runs ``fraud-mlops demo`` twice on the same landing folder, each into its own empty lakehouse: once
on a classic local session, once with ``SPARK_REMOTE=local[2]`` (pyspark's own Spark Connect server,
the way serverless jobs and Databricks Connect run Python). Prints the wall time of each demo step
in both modes and their ratio (Connect / classic; the classic run is the reference), then compares
the figures the two runs produced: tables, model metrics, gate decisions, scoring and monitoring.
Exits 1 when a figure differs, so CI can run it as the check that both modes give the same results.
By default both demos run with ``--quick`` (one validation fold, one candidate per model type, no
ablation or backtest): the Spark and MLflow paths are the same as the full demo's, in a third of
the time; ``--full`` runs the full model selection in both.

    .venv/bin/python benchmarks/bench_connect_vs_classic.py [--landing data/transactions] [--full] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Keys of the demo summary that are results (everything but paths and timings).
RESULT_KEYS = ("tables", "ingestion", "training", "second_candidate", "scoring", "monitoring")
#: Keys inside results that differ between any two runs by nature (ids, versions of MLflow runs).
VOLATILE = {"candidate_run_id", "run_id", "validation_run_id", "model_uri", "candidate_model_uri", "git_commit",
            "selection_run_id", "latency_ms_p50", "latency_ms_p99"}


def run_demo(landing: Path, lakehouse: Path, spark_remote: str | None, demo_args: list[str]) -> dict[str, Any]:
    """Run the demo into ``lakehouse`` and return its summary (``demo-summary.json``)."""
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    env["FRAUD_MLOPS_LOCAL_ROOT"] = str(lakehouse)
    if spark_remote:
        env["SPARK_REMOTE"] = spark_remote
    mode = f"SPARK_REMOTE={spark_remote}" if spark_remote else "classic"
    print(f"--- demo, {mode} -> {lakehouse}", flush=True)
    cli = str(Path(sys.executable).parent / "fraud-mlops")
    # each demo gets a throw-away PostgreSQL server for its online store (started and stopped around it)
    cmd = [cli, "online-store", "run", "--", cli, "demo", "--landing", str(landing), *demo_args]
    done = subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"demo ({mode}) failed with status {done.returncode}")
    return json.loads((lakehouse / "demo-summary.json").read_text(encoding="utf-8"))


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two summaries differ (floats compared to 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in VOLATILE:
                continue
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'classic' if key in a else 'connect'}")
            else:
                out += differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, default=REPO / "data" / "transactions")
    parser.add_argument("--remote", default="local[2]", help="SPARK_REMOTE of the Connect run (default local[2])")
    parser.add_argument("--keep", action="store_true", help="keep the two lakehouses (printed)")
    parser.add_argument("--full", action="store_true", help="the full model selection (default: demo --quick)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    try:
        demo_args = [] if args.full else ["--quick"]
        classic = run_demo(args.landing.resolve(), work / "classic", None, demo_args)
        connect = run_demo(args.landing.resolve(), work / "connect", args.remote, demo_args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'demo step':<75} {'classic s':>9} {'connect s':>9} {'ratio':>6}")
    for step, seconds in classic["step_seconds"].items():
        other = connect["step_seconds"].get(step, float("nan"))
        print(f"{step:<75} {seconds:9.1f} {other:9.1f} {other / seconds:6.2f}")
    total_a, total_b = classic["wall_time_s"], connect["wall_time_s"]
    print(f"{'whole demo':<75} {total_a:9.1f} {total_b:9.1f} {total_b / total_a:6.2f}")
    diffs = [d for key in RESULT_KEYS for d in differences(classic.get(key), connect.get(key), key)]
    if diffs:
        print("\nRESULTS DIFFER between classic and Spark Connect:\n  " + "\n  ".join(diffs), file=sys.stderr)
        return 1
    m = classic["training"]["test_metrics"]["xgboost"]
    print(f"\nsame results in both modes ({len(RESULT_KEYS)} sections compared): XGBoost AP "
          f"{m['average_precision']:.3f}, ROC AUC {m['roc_auc']:.3f}, card precision@100 "
          f"{m['card_precision_top_100']:.3f}; {classic['scoring']['rows_scored']:,} rows scored")
    if args.keep:
        print(f"lakehouses kept under {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
