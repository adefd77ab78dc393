"""The bundle commands: run a bundle's jobs locally, list them, validate the bundle offline.

``bundlekit`` is this module's console script; a project's own CLI adds these commands to its parser
with :func:`add_bundle_commands` (``fraud-mlops`` does, with its local lakehouse set-up). Examples::

    bundlekit jobs                                   # jobs, tasks, schedules, parameters (default target)
    bundlekit run ingestion --param x=1 --var schema=test
    bundlekit validate --target prod --var some_variable=value

Exit status: 0 success, 1 a job failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bundlekit.loader import Bundle, BundleError, find_bundle_root, load_bundle
from bundlekit.runner import RunnerError, job_parameter_defaults, run_job, task_type
from bundlekit.validate import AUTO, validate_targets

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_CONFIG_ERROR = 2

#: Called with the loaded bundle before a local run; returns a note for the run's first line (or None).
BeforeRun = Callable[[Bundle], "str | None"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _add_bundle_options(p: argparse.ArgumentParser, *, target_help: str | None = None) -> None:
    p.add_argument("--target", "-t", default=None,
                   help=target_help or "bundle target (default: the target marked default: true)")
    p.add_argument("--var", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                   help="set a bundle variable, as `databricks bundle ... --var` (repeatable)")
    add_bundle_root_option(p)


def add_bundle_root_option(p: argparse.ArgumentParser) -> None:
    """Add ``--bundle-root PATH`` (the folder holding ``databricks.yml``) to a command."""
    p.add_argument("--bundle-root", type=Path, default=None, metavar="PATH",
                   help="folder holding databricks.yml (default: search upward from the working directory)")


def add_bundle_commands(sub: Any, prog: str, before_run: BeforeRun | None = None) -> None:
    """Add the ``run``, ``jobs`` and ``validate`` commands to a parser's sub-parsers.

    Args:
        sub: what ``ArgumentParser.add_subparsers`` returned.
        prog: the program name, for messages.
        before_run: called with the bundle before ``run`` runs a job (for example to set up local
            storage); the string it returns is printed on the run's first line.
    """
    p_run = sub.add_parser("run", help="run a bundle job locally, in-process",
                           description="Run a job of databricks.yml locally: its tasks run in this process "
                                       "in dependency order with the job's parameters.")
    p_run.add_argument("job", help=f"job key under resources.jobs (see `{prog} jobs`)")
    p_run.add_argument("--param", "-p", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                       help="override a job parameter (repeatable)")
    _add_bundle_options(p_run)
    p_run.add_argument("--output-json", type=Path, default=None, metavar="PATH",
                       help="also write the run result as JSON to PATH")
    p_run.set_defaults(func=cmd_run, prog=prog, before_run=before_run)

    p_jobs = sub.add_parser("jobs", help="list the bundle's jobs, tasks, schedules and parameters")
    _add_bundle_options(p_jobs)
    p_jobs.add_argument("--json", action="store_true", help="print the resolved job definitions as JSON")
    p_jobs.set_defaults(func=cmd_jobs, prog=prog)

    p_val = sub.add_parser(
        "validate", help="check the bundle offline for every target (or --target T), like `databricks bundle validate`",
        description="Validate databricks.yml and its includes without a workspace. Compatibility (every bundle): "
                    "what the pinned Databricks CLI's `bundle validate` checks (its errors are errors, its "
                    "warnings warnings) and what the Jobs and Unity Catalog APIs would refuse at deploy time. "
                    "Policy (opt-in, bundlekit-policy.yml next to databricks.yml, or --policy NAME): stricter "
                    "rules such as a production target running as a service principal and no literal secrets. "
                    "Every problem names file:line:column and the key. Exit status 2 when any target has an "
                    "error; warnings pass unless --strict (or the policy's strict: true).")
    p_val.add_argument("--target", "-t", action="append", default=[], metavar="TARGET",
                       help="target to validate (repeatable; default: every target in databricks.yml)")
    p_val.add_argument("--var", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                       help="set a bundle variable, as `databricks bundle validate --var` (repeatable; a name "
                            "given twice is an error, as in the CLI)")
    p_val.add_argument("--policy", default=None, metavar="NAME",
                       help="policy to apply: a name (production), or none for compatibility only (default: "
                            "the bundle's bundlekit-policy.yml, if it has one)")
    p_val.add_argument("--strict", action="store_true", help="treat warnings as errors, as `bundle validate --strict`")
    p_val.add_argument("--output", "-o", choices=("text", "json"), default="text",
                       help="text (default) or json: every problem with severity, file, line, column and key")
    add_bundle_root_option(p_val)
    p_val.set_defaults(func=cmd_validate, prog=prog)


def build_parser(prog: str = "bundlekit") -> argparse.ArgumentParser:
    """The ``bundlekit`` parser: ``run``, ``jobs`` and ``validate``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Run and validate a Databricks Asset Bundle's jobs locally, without a workspace.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_bundle_commands(sub, prog)
    return parser


def dispatch(args: argparse.Namespace, prog: str) -> int:
    """Run the command ``args.func``; a bundle or runner error prints ``<prog>: error: ...`` and
    returns :data:`EXIT_CONFIG_ERROR`."""
    try:
        return int(args.func(args) or 0)
    except (BundleError, RunnerError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bundlekit`` console script; returns the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return dispatch(args, "bundlekit")


# --------------------------------------------------------------------------------------------------
# Helpers


def bundle_root(args: argparse.Namespace) -> Path:
    """The folder of ``--bundle-root`` (a ``databricks.yml`` given as a file means its folder), else
    the nearest folder upward from the working directory that holds ``databricks.yml``.

    Raises:
        BundleError: no ``--bundle-root`` and no ``databricks.yml`` found upward.
    """
    if getattr(args, "bundle_root", None) is not None:
        given = args.bundle_root.resolve()
        return given.parent if given.is_file() else given
    return find_bundle_root()


def _load(args: argparse.Namespace) -> Bundle:
    return load_bundle(bundle_root(args), args.target, dict(args.var))


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_run(args: argparse.Namespace) -> int:
    bundle = _load(args)
    bundle.job(args.job)  # unknown job: error before anything else
    note = args.before_run(bundle) if args.before_run is not None else None
    print(f"{args.prog}: bundle {bundle.name} target {bundle.target} (mode {bundle.mode or 'default'})"
          + (f", {note}" if note else ""), flush=True)
    result = run_job(bundle, args.job, dict(args.param), log=lambda line: print(line, flush=True))
    if args.output_json is not None:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    if not result.ok:
        failed = ", ".join(result.failed_tasks) or "-"
        skipped = ", ".join(result.skipped_tasks) or "-"
        print(f"{args.prog}: job {args.job} FAILED (failed: {failed}; skipped: {skipped})", file=sys.stderr)
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
    return f"{task['task_key']:<14} {ttype:<18} {what}{after}{_describe_compute(task)}"


def _describe_compute(task: dict[str, Any]) -> str:
    """Where the task runs on Databricks (ignored by local runs): ``  [serverless: default]`` ..."""
    if task.get("environment_key"):
        return f"  [serverless: {task['environment_key']}]"
    if task.get("job_cluster_key"):
        return f"  [job cluster: {task['job_cluster_key']}]"
    if task.get("existing_cluster_id"):
        return f"  [cluster: {task['existing_cluster_id']}]"
    return "  [new cluster]" if task.get("new_cluster") else ""


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
    """Validate every target (or ``--target``s): problems named by file:line:column and key, errors
    fail (exit 2), warnings are printed and pass (unless ``--strict`` or the bundle's policy says so)."""
    policy = args.policy if args.policy is not None else AUTO
    reports = validate_targets(bundle_root(args), args.target or None, list(args.var), policy=policy,
                               strict=args.strict)
    if args.output == "json":
        print(json.dumps([{"target": r.target, "ok": r.ok, "policy": r.policy.name if r.policy else None,
                           "problems": [p.as_dict() for p in r.problems]} for r in reports], indent=2))
        return EXIT_OK if all(r.ok for r in reports) else EXIT_CONFIG_ERROR
    failed = 0
    for report in reports:
        policy_note = f"; policy {report.policy.name}" if report.policy else ""
        warnings = report.warnings
        if report.ok and report.bundle is not None:
            jobs = report.bundle.jobs
            note = f"; {len(warnings)} warning(s)" if warnings else ""
            print(f"bundle {report.bundle.name} target {report.target}: OK "
                  f"({len(jobs)} jobs: {', '.join(jobs)}; mode {report.bundle.mode or 'default'}{policy_note}{note})")
            for problem in warnings:
                print(f"  warning [{problem.check}] {problem}")
            continue
        failed += 1
        print(f"target {report.target}: {len(report.errors)} error(s), {len(warnings)} warning(s){policy_note}",
              file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem.severity} [{problem.check}] {problem}", file=sys.stderr)
    return EXIT_CONFIG_ERROR if failed else EXIT_OK
