"""``fraud-mlops``: run the bundle's jobs locally, list them, validate the bundle, start the demo or
the MLflow UI.

The bundle commands (``run``, ``jobs``, ``validate``) are :mod:`bundlekit.cli`'s; this CLI adds the
local lakehouse set-up before a run, ``demo`` and ``mlflow-ui``. Examples::

    fraud-mlops jobs                                   # jobs, tasks, schedules, parameters (dev)
    fraud-mlops run ingestion                          # the dev ingestion job, in-process
    fraud-mlops run training --param n_estimators=50 --param seed=7
    fraud-mlops run batch_scoring --target staging --var schema=fraud_test
    fraud-mlops run monitoring --target prod \\
        --var prod_service_principal=<application-id> --var alert_email=<address>
    fraud-mlops validate                               # check the bundle offline, every target
    fraud-mlops validate --target prod --var prod_service_principal=<application-id> --var alert_email=<address>
    fraud-mlops demo [demo arguments ...]
    fraud-mlops mlflow-ui --port 5000
    fraud-mlops landing status                         # landing files: ingested, empty, rejected, acknowledged
    fraud-mlops landing reject 2018-08-01.csv.gz --reason "resent as 2018-08-01-v2.csv.gz"
    fraud-mlops compare-scores datarobot.csv --name datarobot --score-column tx_fraud_1_PREDICTION
    fraud-mlops report                                 # one HTML page: tables, quarantine, models, monitoring
    fraud-mlops online-store start                     # the local PostgreSQL of the online feature store
    fraud-mlops online-store run -- pytest tests/online  # a throw-away server around a command

Exit status: 0 success, 1 a job failed, 2 a configuration or usage error (``online-store status``: 1
when the server is not running; ``online-store run``: its command's status).

``landing`` works on the target's ``bronze_ingestion_log`` (catalog, schema and landing path are the
``ingestion`` job's parameters for the target, ``--var`` applied); docs/runbook-landing.md says when
to use it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bundlekit.cli import (
    EXIT_CONFIG_ERROR,
    EXIT_JOB_FAILED,
    EXIT_OK,
    add_bundle_commands,
    add_bundle_root_option,
    bundle_root,
    dispatch,
)
from bundlekit.loader import Bundle, BundleError, load_bundle, local_user_name
from bundlekit.runner import job_parameter_defaults
from fraud_mlops.online.postgres import DEFAULT_PORT as ONLINE_STORE_PORT
from fraud_mlops.online.postgres import ONLINE_STORE_ENV
from fraud_mlops.platform.config import BRONZE_INGESTION_LOG, DEFAULT_LOCAL_ROOT, LOCAL_ROOT_ENV

if TYPE_CHECKING:
    from fraud_mlops.online.postgres import LocalPostgres
    from fraud_mlops.platform.lakehouse import Lakehouse

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_JOB_FAILED", "EXIT_OK", "build_parser", "main"]

PROG = "fraud-mlops"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the card-fraud bundle jobs locally (the same databricks.yml Databricks deploys).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_bundle_commands(sub, PROG, before_run=_before_run)

    p_demo = sub.add_parser("demo", help="run the end-to-end local demo (fraud_mlops.demo)",
                            description="Run the end-to-end local demo; the arguments go to fraud_mlops.demo.")
    p_demo.add_argument("demo_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="arguments for the demo (see `fraud-mlops demo --help`)")
    p_demo.set_defaults(func=cmd_demo)

    p_ui = sub.add_parser("mlflow-ui", help="start the MLflow UI on the local tracking store")
    p_ui.add_argument("--port", type=int, default=5000)
    p_ui.add_argument("--host", default="127.0.0.1")
    p_ui.add_argument("--print-only", action="store_true", help="print the command instead of running it")
    add_bundle_root_option(p_ui)
    p_ui.set_defaults(func=cmd_mlflow_ui)

    p_landing = sub.add_parser(
        "landing", help="landing files of the ingestion job: their status, acknowledging a rejected one",
        description="Work on the target's bronze_ingestion_log (see docs/runbook-landing.md).")
    landing_sub = p_landing.add_subparsers(dest="landing_command", required=True, metavar="ACTION")
    p_status = landing_sub.add_parser("status", help="list the landing files by status "
                                                     "(rejected, acknowledged, ingested, empty)")
    _add_target_options(p_status)
    p_status.add_argument("--json", action="store_true", help="print the statuses as JSON")
    p_status.set_defaults(func=cmd_landing_status)
    p_reject = landing_sub.add_parser(
        "reject", help="acknowledge a rejected landing file: runs no longer fail on it nor read it again",
        description="Acknowledge the rejection of a landing file (it stays out of bronze). Only a file that is "
                    "rejected now can be acknowledged; a corrected file under a new name is ingested normally.")
    p_reject.add_argument("file", help="the file's name, or its path as logged (see `landing status`)")
    p_reject.add_argument("--reason", required=True, help="why the file is given up (recorded in the log)")
    _add_target_options(p_reject)
    p_reject.set_defaults(func=cmd_landing_reject)

    p_compare = sub.add_parser(
        "compare-scores", help="judge another system's scores (a CSV export) beside the champion, day by day",
        description="Compare the scores of another system (for example a DataRobot deployment's batch prediction "
                    "export) with the champion's on the same labelled transactions: average precision and card "
                    "precision@100 per day and pooled. Every row of the file is compared or rejected with a "
                    "reason; nothing is written to any table (docs/migrating-from-datarobot.md).")
    p_compare.add_argument("file", help="CSV with a header row (a folder of such files works too)")
    p_compare.add_argument("--id-column", default="transaction_id", help="column of the transaction id")
    p_compare.add_argument("--score-column", default="score", help="column of the fraud probability in [0, 1]")
    p_compare.add_argument("--name", default="external", help="what to call the other system (default external)")
    p_compare.add_argument("--window-start", type=dt.date.fromisoformat, default=None, help="first day compared")
    p_compare.add_argument("--window-end", type=dt.date.fromisoformat, default=None,
                           help="'today' for the label delay (default: the latest gold day)")
    p_compare.add_argument("--label-delay-days", type=int, default=7, help="days until a label is known (default 7)")
    p_compare.add_argument("--rejected-csv", default=None, help="write the rejected rows and their reasons here")
    p_compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _add_target_options(p_compare)
    p_compare.set_defaults(func=cmd_compare_scores)

    p_report = sub.add_parser(
        "report", help="write one self-contained HTML page with the pipeline's state and charts",
        description="Write the HTML report (tables and row counts, quarantine, model versions with aliases and "
                    "metrics, alerts against the budget, the latest monitoring with charts) for the target.")
    p_report.add_argument("--output", default=None, help="where to write it (default <lakehouse>/report.html)")
    _add_target_options(p_report)
    p_report.set_defaults(func=cmd_report)

    p_serve = sub.add_parser(
        "serve", help="real-time scoring: the @champion behind a local REST endpoint (POST /score, GET /health)",
        description="Serve the target's @champion over HTTP: POST /score takes one transaction (the landing "
                    "columns TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT) and answers the "
                    "fraud probability, the decision at the alert-budget threshold, the reason codes and the "
                    f"model version; features come from the online store (${ONLINE_STORE_ENV}; make serve "
                    "starts it). The model is reloaded when the alias moves.")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--poll-seconds", type=float, default=30.0,
                         help="how often the @champion alias is re-checked (default 30)")
    _add_target_options(p_serve)
    p_serve.set_defaults(func=cmd_serve)

    p_replay = sub.add_parser(
        "replay", help="replay landing files through a fresh endpoint and compare with batch scoring (no skew)",
        description="Publish silver up to the day before START into <schema>_replay of the online store, serve "
                    "the @champion on a free local port, send every transaction of [START, END] from the landing "
                    "folder in time order over HTTP and compare each answer with the predictions table (the batch "
                    "scoring job's score of the same transaction, to 1e-6). Exits 1 when any differs.")
    p_replay.add_argument("--landing", default="data/transactions", help="landing folder (default data/transactions)")
    p_replay.add_argument("--start", type=dt.date.fromisoformat, required=True, help="first day replayed")
    p_replay.add_argument("--end", type=dt.date.fromisoformat, required=True, help="last day replayed")
    p_replay.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _add_target_options(p_replay)
    p_replay.set_defaults(func=cmd_replay)

    p_store = sub.add_parser(
        "online-store", help="the local PostgreSQL server of the online feature store: start, stop, status, run",
        description="Manage the local PostgreSQL server of the online feature store (Lakebase's local stand-in), "
                    f"by default in <lakehouse>/postgres on port {ONLINE_STORE_PORT}. start prints its URL "
                    f"and the line `export {ONLINE_STORE_ENV}=<url>`; status exits 0 when it runs, 1 when not.")
    store_sub = p_store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    for action, help_text in (("start", "start the server (initdb on first use); idempotent"),
                              ("stop", "stop the server (fast shutdown); idempotent"),
                              ("status", "say whether the server runs, and its URL")):
        p_action = store_sub.add_parser(action, help=help_text)
        _add_online_store_options(p_action, "<lakehouse>/postgres", str(ONLINE_STORE_PORT))
        p_action.set_defaults(func=cmd_online_store)
    p_store_run = store_sub.add_parser(
        "run", help=f"run a command with {ONLINE_STORE_ENV} set, the server started before and stopped after",
        description="Start the server (by default a throw-away one in a fresh temporary folder, on a free port), "
                    f"run COMMAND with {ONLINE_STORE_ENV} set to its URL, stop the server again (also when the "
                    "command fails or is interrupted; a server that was already running is left running) and "
                    "exit with the command's status.")
    _add_online_store_options(p_store_run, "a fresh temporary folder, removed afterwards",
                              f"a free one; with --data-dir {ONLINE_STORE_PORT}")
    p_store_run.add_argument("run_command", nargs=argparse.REMAINDER, metavar="COMMAND",
                             help="the command and its arguments (after --)")
    p_store_run.set_defaults(func=cmd_online_store_run)
    return parser


def _add_online_store_options(p: argparse.ArgumentParser, default_dir: str, default_port: str) -> None:
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR", help=f"the data folder (default {default_dir})")
    p.add_argument("--port", type=int, default=None, metavar="N",
                   help=f"TCP port on 127.0.0.1 (default {default_port}; 0: a free one)")
    add_bundle_root_option(p)


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", "-t", default=None, help="bundle target (default: the target marked default: true)")
    p.add_argument("--var", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                   help="set a bundle variable, e.g. --var landing_path=... (repeatable)")
    add_bundle_root_option(p)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fraud-mlops`` console script; returns the exit status."""
    arg_list = list(sys.argv[1:] if argv is None else argv)
    if arg_list[:1] == ["demo"]:
        # Everything after "demo" belongs to fraud_mlops.demo (argparse would claim options like --help).
        args = argparse.Namespace(func=cmd_demo, demo_args=arg_list[1:])
    else:
        args = build_parser().parse_args(arg_list)
    return dispatch(args, PROG)


def local_root(root: Path | None) -> Path:
    """The local lakehouse folder: ``$FRAUD_MLOPS_LOCAL_ROOT``, else ``<bundle root>/.lakehouse``."""
    if os.environ.get(LOCAL_ROOT_ENV):
        return Path(os.environ[LOCAL_ROOT_ENV]).resolve()
    base = root if root is not None else Path.cwd()
    return (base / DEFAULT_LOCAL_ROOT).resolve()


def prepare_local_env(root: Path | None) -> Path:
    """Set the environment of a local run: the lakehouse root (unless set), MLflow telemetry off, and
    the folder of the job locks (``BUNDLEKIT_LOCK_DIR``, ``<lakehouse>/.locks``)."""
    lakehouse_root = local_root(root)
    os.environ.setdefault(LOCAL_ROOT_ENV, str(lakehouse_root))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # One local run of a job at a time per lakehouse, as max_concurrent_runs: 1 on Databricks
    # (bundlekit.runner locks <lakehouse>/.locks/<bundle>-<target>-<job>.lock; queue enabled: wait).
    os.environ.setdefault("BUNDLEKIT_LOCK_DIR", str(lakehouse_root / ".locks"))
    return lakehouse_root


def _before_run(bundle: Bundle) -> str:
    return f"local lakehouse {prepare_local_env(bundle.root)}"


def _optional_bundle_root(args: argparse.Namespace) -> Path | None:
    try:
        return bundle_root(args)
    except BundleError:
        return None


def cmd_demo(args: argparse.Namespace) -> int:
    prepare_local_env(_optional_bundle_root(args))
    from fraud_mlops import demo

    demo_args = list(args.demo_args)
    if demo_args[:1] == ["--"]:
        demo_args = demo_args[1:]
    status = demo.main(demo_args)
    return int(status or 0)


def mlflow_ui_command(root: Path, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """``python -m mlflow ui`` on the local sqlite tracking store under ``root``."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--host", host, "--port", str(port)]


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    root = local_root(_optional_bundle_root(args))
    cmd = mlflow_ui_command(root, args.host, args.port)
    printable = "mlflow " + " ".join(cmd[3:])
    print(printable, flush=True)
    if args.print_only:
        return EXIT_OK
    if not (root / "mlflow.db").exists():
        print(f"fraud-mlops: note: {root / 'mlflow.db'} does not exist yet (run a training job first)",
              file=sys.stderr)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true")}
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return EXIT_OK


def ingestion_target(args: argparse.Namespace, job: str = "ingestion") -> tuple[dict[str, str], Lakehouse]:
    """The ``job``'s (``ingestion`` by default) parameter values for ``--target`` with ``--var`` applied (``catalog``,
    ``schema``, ``landing_path`` ...: what a run of the job gets without ``--param``), and the tables
    of that catalog and schema, with the local lakehouse set up as for ``run``.

    Raises:
        BundleError: the bundle cannot be loaded for the target.
    """
    from fraud_mlops.platform.config import LakehouseConfig
    from fraud_mlops.platform.lakehouse import Lakehouse
    from fraud_mlops.platform.session import get_spark

    bundle = load_bundle(bundle_root(args), args.target, dict(args.var))
    params = job_parameter_defaults(bundle.job(job))
    prepare_local_env(bundle.root)
    return params, Lakehouse(get_spark(), LakehouseConfig.from_env(params["catalog"], params["schema"]))


def cmd_landing_status(args: argparse.Namespace) -> int:
    from fraud_mlops.medallion.bronze import landing_status

    params, lakehouse = ingestion_target(args)
    files = landing_status(lakehouse)
    if args.json:
        print(json.dumps(files, indent=2, default=str))
        return EXIT_OK
    log_name = lakehouse.ref(BRONZE_INGESTION_LOG).full_name
    print(f"{log_name} (landing {params['landing_path']}): {len(files)} file(s)")
    order = {"rejected": 0, "acknowledged": 1, "empty": 2, "ingested": 3}
    for f in sorted(files, key=lambda f: (order.get(f["status"], 9), f["source_file"])):
        detail = {
            "rejected": f"{f['error']} ({f['attempts']} attempt(s), last {f['last_at']})",
            "acknowledged": f"by {f['acknowledged_by']} at {f['last_at']}: {f['note']} (error was: {f['error']})",
            "empty": f["note"] or "",
        }.get(f["status"], f"{f['rows']:,} rows" + (f"; {f['note']}" if f["note"] else ""))
        print(f"  {f['status']:<13} {f['source_file']}  {detail}")
    counts = {s: sum(1 for f in files if f["status"] == s) for s in order}
    print("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return EXIT_OK


def cmd_landing_reject(args: argparse.Namespace) -> int:
    from fraud_mlops.medallion.bronze import acknowledge_rejected_file

    params, lakehouse = ingestion_target(args)
    try:
        row = acknowledge_rejected_file(lakehouse, args.file, args.reason, local_user_name(), params["landing_path"])
    except ValueError as exc:  # FileNotRejectedError, or a blank reason
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(f"acknowledged {row['source_file']} (error: {row['error']}) by {row['acknowledged_by']} "
          f"at {row['ingested_at']}: {row['note']}")
    print("the ingestion job no longer fails on this file nor reads it again; "
          "land a corrected file under a new name to ingest its rows")
    return EXIT_OK


def cmd_compare_scores(args: argparse.Namespace) -> int:
    from fraud_mlops.lifecycle.external_scores import (
        check_external_scores,
        compare_with_champion,
        comparison_report,
        read_external_scores,
    )
    from fraud_mlops.lifecycle.scoring import champion_version
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.platform.config import GOLD_FEATURES

    params, lakehouse = ingestion_target(args, "batch_scoring")
    configure_mlflow(lakehouse.config)
    model_name = params["model_name"]
    try:
        version = champion_version(model_name)
        raw = read_external_scores(lakehouse.spark, args.file, id_column=args.id_column, score_column=args.score_column)
        accepted, rejected = check_external_scores(raw, lakehouse.read(GOLD_FEATURES))
        accepted, rejected = accepted.cache(), rejected.cache()
        daily = compare_with_champion(lakehouse, model_name, version, accepted, name=args.name,
                                      window_start=args.window_start, window_end=args.window_end,
                                      label_delay_days=args.label_delay_days)
    except (LookupError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    report = {"model_name": model_name, "champion_version": version, "name": args.name,
              **comparison_report(accepted, rejected, daily)}
    if args.rejected_csv:
        rejected.toPandas().to_csv(args.rejected_csv, index=False)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    print(f"{args.file}: {report['rows_in']:,} rows, {report['rows_accepted']:,} accepted, "
          f"{report['rows_rejected']:,} rejected {report['rejected_by_reason'] or ''}")
    pooled, name = report["pooled"], args.name
    print(f"compared on {pooled['n_transactions']:,} labelled transactions scored by both, {pooled['n_days']} days "
          f"({pooled['first_day']}..{pooled['last_day']}), {pooled['n_frauds']:,} frauds:")
    print(f"  {'day':<10} {'n':>7} {'frauds':>6}  {'champion AP':>11} {name + ' AP':>14}  {'champion CP@100':>15} "
          f"{name + ' CP@100':>16}")
    for r in report["daily"]:
        print(f"  {r['tx_date']:<10} {r['n_transactions']:>7,} {r['n_frauds']:>6}  {r['champion_average_precision']:>11.3f}"
              f" {r[f'{name}_average_precision']:>14.3f}  {r['champion_card_precision_top_100']:>15.3f}"
              f" {r[f'{name}_card_precision_top_100']:>16.3f}")
    print(f"  {'pooled':<10} {pooled['n_transactions']:>7,} {pooled['n_frauds']:>6}  "
          f"{pooled['champion_average_precision']:>11.3f} {pooled[f'{name}_average_precision']:>14.3f}  "
          f"{pooled['champion_card_precision_top_100']:>15.3f} {pooled[f'{name}_card_precision_top_100']:>16.3f}")
    print(f"champion: {model_name} v{version}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from fraud_mlops.lifecycle.tracking import configure_mlflow
    from fraud_mlops.reporting.html_report import report_summary, write_report

    params, lakehouse = ingestion_target(args, "monitoring")
    configure_mlflow(lakehouse.config)
    output = Path(args.output) if args.output else local_root(bundle_root(args)) / "report.html"
    path = write_report(lakehouse, params["model_name"], output)
    summary = report_summary(path.read_text(encoding="utf-8"))
    print(f"report: {path.resolve()} ({summary['charts']} charts; {', '.join(summary['sections'])})")
    return EXIT_OK


def _online_store(args: argparse.Namespace) -> LocalPostgres:
    from fraud_mlops.online.postgres import LocalPostgres

    data_dir = args.data_dir or local_root(_optional_bundle_root(args)) / "postgres"
    return LocalPostgres(data_dir, port=ONLINE_STORE_PORT if args.port is None else args.port)


def cmd_online_store(args: argparse.Namespace) -> int:
    from fraud_mlops.online.postgres import PostgresError

    server = _online_store(args)
    try:
        if args.store_command == "start":
            was_running = server.is_running()
            url = server.start()
            print(url)
            print(f"export {ONLINE_STORE_ENV}={url}")
            print(f"online store: {'already running' if was_running else 'started'} (data {server.data_dir}, "
                  f"log {server.log_file})", file=sys.stderr)
        elif args.store_command == "stop":
            running = server.is_running()
            server.stop()
            print(f"online store: {'stopped' if running else 'not running'} (data {server.data_dir})")
        else:
            port = server.running_port()
            if port is None:
                print(f"online store: not running (data {server.data_dir})")
                return EXIT_JOB_FAILED
            server.port = port
            print(f"online store: running at {server.url} (data {server.data_dir}, log {server.log_file})")
    except PostgresError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return EXIT_OK


def cmd_online_store_run(args: argparse.Namespace) -> int:
    import signal
    import tempfile

    from fraud_mlops.online.postgres import LocalPostgres, PostgresError

    command = list(args.run_command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(f"{PROG}: error: online-store run needs a command (after --)", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    temporary = args.data_dir is None
    if temporary:
        server = LocalPostgres(tempfile.mkdtemp(prefix="fraud-mlops-pg-"), port=args.port or 0)
    else:
        server = _online_store(args)
    was_running = server.is_running()
    try:
        url = server.start()
        print(f"online store: {url} (data {server.data_dir}{', running before' if was_running else ''})", flush=True)
        proc = subprocess.Popen(command, env={**os.environ, ONLINE_STORE_ENV: url})
        # Ctrl-C reaches the command from the terminal; this process waits for it, then stops the server.
        # A termination request is passed on to the command.
        previous = {sig: signal.signal(sig, handler) for sig, handler in (
            (signal.SIGINT, lambda *_: None),
            (signal.SIGTERM, lambda sig, _: proc.send_signal(sig)),
            (signal.SIGHUP, lambda sig, _: proc.send_signal(sig)))}
        try:
            code = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code if code >= 0 else 128 - code
    except PostgresError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except OSError as exc:  # the command cannot be started
        print(f"{PROG}: error: {command[0]}: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    finally:
        try:
            if not was_running:
                server.stop()
        finally:
            if temporary:
                import shutil

                shutil.rmtree(server.data_dir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def cmd_serve(args: argparse.Namespace) -> int:
    from fraud_mlops.serving.app import build_scorer, create_app, scorer_summary
    from fraud_mlops.serving.server import serve_forever

    bundle = load_bundle(bundle_root(args), args.target, dict(args.var))
    params = job_parameter_defaults(bundle.job("batch_scoring"))
    store_params = job_parameter_defaults(bundle.job("online_features"))
    prepare_local_env(bundle.root)
    scorer = build_scorer(params["catalog"], params["schema"], params["model_name"],
                          poll_seconds=args.poll_seconds, lakebase_instance=store_params.get("lakebase_instance", ""))
    scorer.watcher.refresh()
    print(f"serving {json.dumps(scorer_summary(scorer))} on http://{args.host}:{args.port} "
          "(POST /score, GET /health; Ctrl-C stops)", flush=True)
    serve_forever(create_app(scorer), args.host, args.port)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from fraud_mlops.serving.replay import replay_against_batch

    params, lakehouse = ingestion_target(args, "batch_scoring")
    result = replay_against_batch(
        lakehouse, params["model_name"], args.landing, args.start, args.end,
        progress=lambda done, total: print(f"  {done}/{total} transactions replayed", flush=True))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"replayed {result['n_requests']} transactions of {result['days'][0]}..{result['days'][1]}: "
              f"{result['n_ok']} answered, {result['n_compared']} compared with batch scoring, "
              f"max |difference| {result['max_abs_difference']}, {result['n_over_tolerance']} over 1e-6, "
              f"{result['n_decisions_differ']} decisions differ; latency p50 {result['latency_ms_p50']:.2f} ms, "
              f"p99 {result['latency_ms_p99']:.2f} ms (one client, one request at a time)")
    return EXIT_OK if result["equal"] else EXIT_JOB_FAILED

