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

Exit status: 0 success, 1 a job failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bundlekit.cli import (
    EXIT_CONFIG_ERROR,
    EXIT_JOB_FAILED,
    EXIT_OK,
    add_bundle_commands,
    add_bundle_root_option,
    bundle_root,
    dispatch,
)
from bundlekit.loader import Bundle, BundleError
from fraud_mlops.platform.config import DEFAULT_LOCAL_ROOT, LOCAL_ROOT_ENV

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
    return parser


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
    """Set the environment of a local run: the lakehouse root (unless set) and MLflow telemetry off."""
    lakehouse_root = local_root(root)
    os.environ.setdefault(LOCAL_ROOT_ENV, str(lakehouse_root))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
