"""``fraud-mlops``: run the bundle's jobs locally, list them, start the demo or the MLflow UI.

Examples::

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

Exit status: 0 success, 1 a job failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraud_mlops.bundle import Bundle, BundleError, find_bundle_root, load_bundle
from fraud_mlops.config import DEFAULT_LOCAL_ROOT, LOCAL_ROOT_ENV
from fraud_mlops.runner import RunnerError, job_parameter_defaults, run_job, task_type
from fraud_mlops.validate import validate_targets

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_CONFIG_ERROR = 2


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _add_bundle_options(p: argparse.ArgumentParser, *, target_help: str | None = None) -> None:
    p.add_argument("--target", "-t", default=None,
                   help=target_help or "bundle target (default: the target marked default: true, i.e. dev)")
    p.add_argument("--var", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                   help="set a bundle variable, as `databricks bundle ... --var` (repeatable)")
    p.add_argument("--bundle-root", type=Path, default=None, metavar="PATH",
                   help="folder holding databricks.yml (default: search upward from the working directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraud-mlops",
        description="Run the card-fraud bundle jobs locally (the same databricks.yml Databricks deploys).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_run = sub.add_parser("run", help="run a bundle job locally, in-process",
                           description="Run a job of databricks.yml locally: its tasks run in this process "
                                       "in dependency order with the job's parameters.")
    p_run.add_argument("job", help="job key under resources.jobs (see `fraud-mlops jobs`)")
    p_run.add_argument("--param", "-p", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                       help="override a job parameter (repeatable)")
    _add_bundle_options(p_run)
    p_run.add_argument("--output-json", type=Path, default=None, metavar="PATH",
                       help="also write the run result as JSON to PATH")
    p_run.set_defaults(func=cmd_run)

    p_jobs = sub.add_parser("jobs", help="list the bundle's jobs, tasks, schedules and parameters")
    _add_bundle_options(p_jobs)
    p_jobs.add_argument("--json", action="store_true", help="print the resolved job definitions as JSON")
    p_jobs.set_defaults(func=cmd_jobs)

    p_val = sub.add_parser(
        "validate", help="check the bundle offline for every target (or --target T), like `databricks bundle validate`",
        description="Validate databricks.yml and resources/*.yml without a workspace: resource fields against the "
                    "databricks-bundles typed classes, variables, wheel entry points and paths, task graphs and "
                    "job parameters, Quartz schedules, the prod rules (production mode, run_as a service "
                    "principal, group permissions) and secret-looking literals in any YAML file. Every problem "
                    "names the file and the key. Exit status 2 when any target has a problem.")
    p_val.add_argument("--target", "-t", action="append", default=[], metavar="TARGET",
                       help="target to validate (repeatable; default: every target in databricks.yml)")
    p_val.add_argument("--var", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                       help="set a bundle variable, as `databricks bundle validate --var` (repeatable)")
    p_val.add_argument("--bundle-root", type=Path, default=None, metavar="PATH",
                       help="folder holding databricks.yml (default: search upward from the working directory)")
    p_val.set_defaults(func=cmd_validate)

    p_demo = sub.add_parser("demo", help="run the end-to-end local demo (fraud_mlops.demo)",
                            description="Run the end-to-end local demo; the arguments go to fraud_mlops.demo.")
    p_demo.add_argument("demo_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="arguments for the demo (see `fraud-mlops demo --help`)")
    p_demo.set_defaults(func=cmd_demo)

    p_ui = sub.add_parser("mlflow-ui", help="start the MLflow UI on the local tracking store")
    p_ui.add_argument("--port", type=int, default=5000)
    p_ui.add_argument("--host", default="127.0.0.1")
    p_ui.add_argument("--print-only", action="store_true", help="print the command instead of running it")
    p_ui.add_argument("--bundle-root", type=Path, default=None, metavar="PATH",
                      help="bundle folder whose .lakehouse holds mlflow.db (default: search upward)")
    p_ui.set_defaults(func=cmd_mlflow_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fraud-mlops`` console script; returns the exit status."""
    parser = build_parser()
    arg_list = list(sys.argv[1:] if argv is None else argv)
    if arg_list[:1] == ["demo"]:
        # Everything after "demo" belongs to fraud_mlops.demo (argparse would claim options like --help).
        args = argparse.Namespace(func=cmd_demo, demo_args=arg_list[1:])
    else:
        args = parser.parse_args(arg_list)
    try:
        return int(args.func(args) or 0)
    except (BundleError, RunnerError) as exc:
        print(f"fraud-mlops: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


# --------------------------------------------------------------------------------------------------
# Helpers


def _bundle_root(args: argparse.Namespace) -> Path:
    if getattr(args, "bundle_root", None) is not None:
        given = args.bundle_root.resolve()
        return given.parent if given.is_file() else given
    return find_bundle_root()


def _load(args: argparse.Namespace) -> Bundle:
    return load_bundle(_bundle_root(args), args.target, dict(args.var))


def local_root(bundle_root: Path | None) -> Path:
    """The local lakehouse folder: ``$FRAUD_MLOPS_LOCAL_ROOT``, else ``<bundle root>/.lakehouse``."""
    if os.environ.get(LOCAL_ROOT_ENV):
        return Path(os.environ[LOCAL_ROOT_ENV]).resolve()
    base = bundle_root if bundle_root is not None else Path.cwd()
    return (base / DEFAULT_LOCAL_ROOT).resolve()


def prepare_local_env(bundle_root: Path | None) -> Path:
    """Set the environment of a local run: the lakehouse root (unless set) and MLflow telemetry off."""
    root = local_root(bundle_root)
    os.environ.setdefault(LOCAL_ROOT_ENV, str(root))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return root


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_run(args: argparse.Namespace) -> int:
    bundle = _load(args)
    bundle.job(args.job)  # unknown job: error before anything else
    root = prepare_local_env(bundle.root)
    print(f"fraud-mlops: bundle {bundle.name} target {bundle.target} (mode {bundle.mode or 'default'}), "
          f"local lakehouse {root}", flush=True)
    result = run_job(bundle, args.job, dict(args.param), log=lambda line: print(line, flush=True))
    if args.output_json is not None:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    if not result.ok:
        failed = ", ".join(result.failed_tasks) or "-"
        skipped = ", ".join(result.skipped_tasks) or "-"
        print(f"fraud-mlops: job {args.job} FAILED (failed: {failed}; skipped: {skipped})", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


def _describe_task(task: dict[str, Any]) -> str:
    ttype = task_type(task)
    if ttype == "python_wheel_task":
        pwt = task[ttype]
        what = f"{pwt.get('entry_point')} ({', '.join(pwt.get('named_parameters') or {})})"
    elif ttype == "condition_task":
        c = task[ttype]
        what = f"if {c.get('left')} {c.get('op')} {c.get('right')}"
    elif ttype == "run_job_task":
        what = f"run job {task[ttype].get('job_id')}"
    else:
        what = ttype
    deps = []
    for d in task.get("depends_on") or []:
        deps.append(d["task_key"] + (f"={d['outcome']}" if d.get("outcome") is not None else ""))
    after = f"  after {', '.join(deps)}" if deps else ""
    return f"{task['task_key']:<14} {ttype:<18} {what}{after}"


def cmd_jobs(args: argparse.Namespace) -> int:
    bundle = _load(args)
    if args.json:
        print(json.dumps(bundle.jobs, indent=2, default=str))
        return EXIT_OK
    print(f"bundle {bundle.name}, target {bundle.target} (mode {bundle.mode or 'default'}), root {bundle.root}")
    for key, job in bundle.jobs.items():
        print()
        print(f"{key}: {job.get('name', key)}   [{bundle.source_of('resources.jobs.' + key).relative_to(bundle.root)}]")
        sched = job.get("schedule")
        if sched:
            print(f"  schedule:   {sched.get('quartz_cron_expression')} {sched.get('timezone_id', '')} "
                  f"({sched.get('pause_status', 'UNPAUSED')})")
        print("  parameters:")
        for name, default in job_parameter_defaults(job).items():
            print(f"    {name} = {default!r}")
        print("  tasks:")
        for task in job.get("tasks") or []:
            print(f"    {_describe_task(task)}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    reports = validate_targets(_bundle_root(args), args.target or None, dict(args.var))
    if not reports:
        print("fraud-mlops: databricks.yml declares no targets", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    failed = 0
    for report in reports:
        if report.ok and report.bundle is not None:
            jobs = report.bundle.jobs
            print(f"bundle {report.bundle.name} target {report.target}: OK "
                  f"({len(jobs)} jobs: {', '.join(jobs)}; mode {report.bundle.mode or 'default'})")
            continue
        failed += 1
        print(f"target {report.target}: {len(report.problems)} problem(s)", file=sys.stderr)
        for problem in report.problems:
            print(f"  [{problem.check}] {problem}", file=sys.stderr)
    return EXIT_CONFIG_ERROR if failed else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        root: Path | None = _bundle_root(args)
    except BundleError:
        root = None
    prepare_local_env(root)
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
    try:
        bundle_root: Path | None = _bundle_root(args)
    except BundleError:
        bundle_root = None
    root = local_root(bundle_root)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
