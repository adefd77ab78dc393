"""Run a bundle job locally, in-process, the way Databricks Jobs would run it.

:func:`run_job` takes a job of a resolved :class:`~bundlekit.loader.Bundle` and:

* resolves the job parameters: the YAML ``parameters`` defaults, overridden by ``params``
  (an unknown parameter is an error, as in ``databricks bundle run --params``);
* checks the task graph before running anything: duplicate or unknown ``depends_on`` keys, cycles,
  unsupported task types, ``{{job.parameters.x}}`` of undeclared parameters,
  ``{{tasks.t.values.k}}`` of tasks that are not upstream (:class:`RunnerError`);
* runs the tasks one at a time in dependency order (topological, ties in file order):

  - ``python_wheel_task``: ``named_parameters`` become ``--key=value`` arguments after dynamic value
    references are substituted; the entry point is looked up by name in the installed distribution
    (``importlib.metadata``, the wheel's ``[project.scripts]``) and called with that argv;
  - ``condition_task``: evaluated locally (``==``/``!=`` compare strings, ``>`` ... compare numbers,
    as Databricks does); its outcome is ``"true"`` or ``"false"``;
  - ``run_job_task``: ``job_id: ${resources.jobs.<key>.id}`` runs that bundle job recursively with
    the task's ``job_parameters``;

* applies ``depends_on`` ``outcome`` and ``run_if`` (default ``ALL_SUCCESS``): a task whose
  condition outcome does not match is ``EXCLUDED`` (and so are its dependants); a task downstream of
  a failure is ``SKIPPED`` (upstream failed); a failed task fails the job.

Task values: a task publishes values with :func:`bundlekit.task_runtime.set_task_value`, which stores
them in :data:`bundlekit.task_runtime.LOCAL_TASK_VALUES` under :data:`~bundlekit.task_runtime.CURRENT_TASK_KEY`.
The runner sets ``CURRENT_TASK_KEY[0]`` before each task, starts every job run with empty values, and
restores the caller's values after a nested (``run_job_task``) run.

Dynamic value references understood (see Databricks "dynamic value references"):
``{{job.id}}``, ``{{job.name}}``, ``{{job.run_id}}``, ``{{job.repair_count}}``, ``{{job.trigger.type}}``,
``{{job.parameters.<name>}}``, ``{{job.start_time.<arg>}}`` and ``{{job.trigger.time.<arg>}}`` (arg:
``iso_date``, ``iso_datetime``, ``timestamp_ms``, ``year``, ``month``, ``day``, ``hour``, ``minute``,
``second``, ``iso_weekday``, ``is_weekday``), ``{{task.name}}``, ``{{task.run_id}}``,
``{{task.execution_count}}``, ``{{tasks.<task>.values.<key>}}``, ``{{tasks.<task>.result_state}}``,
``{{tasks.<task>.error_code}}``, ``{{tasks.<task>.run_id}}``, ``{{tasks.<task>.execution_count}}``,
``{{workspace.id}}``, ``{{workspace.url}}`` and, locally only, ``{{bundle.target}}``.

Tasks run sequentially in this process (Databricks may run independent tasks in parallel); compute
settings (job clusters, libraries) are ignored locally.

One run at a time: with a lock folder (``lock_dir``, else ``$BUNDLEKIT_LOCK_DIR``) a job whose
``max_concurrent_runs`` is 1 (also when unset: the Databricks default) runs under an exclusive
``fcntl.flock`` on ``<lock_dir>/<bundle>-<target>-<job>.lock`` (:func:`job_lock`), so two local runs
of the same job never overlap, across processes: with ``queue: {enabled: true}`` the second run waits
for the first, otherwise it is refused with a :class:`RunnerError` naming the job and the run that
holds the lock. A ``run_job_task`` takes the lock of the job it runs. The kernel drops the lock when
its process ends, however it ends (``kill -9`` included), so a crashed run never blocks the next one.

Crash tests: the runner calls :func:`bundlekit.task_runtime.fault_point` with ``before:<task>`` and
``before:<job>.<task>`` just before a task runs and ``after:<task>`` / ``after:<job>.<task>`` just
after it ran; these do nothing unless ``$BUNDLEKIT_FAULT_AT`` names them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib
import importlib.metadata
import json
import os
import re
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from bundlekit import task_runtime as runtime
from bundlekit.jobspec import (
    CONDITION_OPS,
    DYNAMIC_REF_RE,
    job_problems,
    parse_static_reference,
    render,
    task_type,
    topological_order,
)
from bundlekit.jobspec import job_parameter_defaults as _job_parameter_defaults
from bundlekit.loader import Bundle, BundleError, lookup_references

SUCCESS = "SUCCESS"
FAILED = "FAILED"
#: Not run because an upstream task failed (Databricks: "Upstream failed").
SKIPPED = "SKIPPED"
#: Not run because a condition outcome did not match, or the task is disabled (Databricks: "Excluded").
EXCLUDED = "EXCLUDED"

SUPPORTED_TASK_TYPES = ("python_wheel_task", "condition_task", "run_job_task")
#: Deepest chain of ``run_job_task`` runs the runner follows.
MAX_NESTING = 5

EntryPointResolver = Callable[[str, str], Callable[..., Any]]
Log = Callable[[str], Any]

#: Environment variable holding the lock folder :func:`run_job` uses when it is given none (unset or
#: empty: no locking). ``fraud-mlops`` sets it to ``<local lakehouse>/.locks``.
LOCK_DIR_ENV = "BUNDLEKIT_LOCK_DIR"


class RunnerError(ValueError):
    """The job cannot be run as asked: bad parameters, a bad task graph, an unresolvable entry point."""


class TaskFailure(RuntimeError):
    """A task failed for a reason other than an exception in its own code (bad reference, exit code)."""


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class TaskRunResult:
    """What happened to one task.

    Attributes:
        task_key: the task.
        task_type: ``python_wheel_task``, ``condition_task`` or ``run_job_task``.
        status: ``SUCCESS``, ``FAILED``, ``SKIPPED`` (upstream failed) or ``EXCLUDED``.
        duration_s: wall-clock seconds the task ran (0 when it did not run).
        result: the entry point's result dict, the condition evaluation, or the nested job's result.
        error: ``"ExceptionType: message"`` when the task failed.
        traceback: the formatted traceback of a failure in the task's code.
        outcome: ``"true"``/``"false"`` for a condition task.
        argv: the arguments a python_wheel_task was called with.
        values: task values the task published.
        reason: why a task was skipped or excluded.
    """

    task_key: str
    task_type: str
    status: str
    duration_s: float = 0.0
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    outcome: str | None = None
    argv: list[str] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def ran(self) -> bool:
        return self.status in (SUCCESS, FAILED)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_key": self.task_key,
            "task_type": self.task_type,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
        }
        for name in ("result", "error", "traceback", "outcome", "argv", "reason"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.values:
            out["values"] = self.values
        return out


@dataclass
class JobRunResult:
    """The outcome of one local job run; ``tasks`` is ordered as the tasks were considered."""

    job_key: str
    job_name: str
    target: str
    run_id: int
    parameters: dict[str, str]
    start_time: str
    duration_s: float = 0.0
    tasks: dict[str, TaskRunResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no task failed (skipped-because-upstream-failed implies a failure)."""
        return not any(t.status in (FAILED, SKIPPED) for t in self.tasks.values())

    @property
    def status(self) -> str:
        return SUCCESS if self.ok else FAILED

    @property
    def failed_tasks(self) -> list[str]:
        return [k for k, t in self.tasks.items() if t.status == FAILED]

    @property
    def skipped_tasks(self) -> list[str]:
        return [k for k, t in self.tasks.items() if t.status == SKIPPED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_key": self.job_key,
            "job_name": self.job_name,
            "target": self.target,
            "run_id": self.run_id,
            "status": self.status,
            "ok": self.ok,
            "start_time": self.start_time,
            "duration_s": round(self.duration_s, 3),
            "parameters": dict(self.parameters),
            "tasks": {k: t.to_dict() for k, t in self.tasks.items()},
            "failed_tasks": self.failed_tasks,
            "skipped_tasks": self.skipped_tasks,
        }


# --------------------------------------------------------------------------------------------------
# Entry points


def resolve_entry_point(package_name: str, entry_point: str) -> Callable[..., Any]:
    """The callable a ``python_wheel_task`` runs: entry point ``entry_point`` of distribution ``package_name``.

    Looks in the installed distribution's metadata (``console_scripts`` first, then any group), as
    Databricks does for a wheel; like Databricks, falls back to attribute ``entry_point`` of module
    ``package_name``.

    Raises:
        RunnerError: the distribution is not installed or has no such entry point.
    """
    try:
        dist = importlib.metadata.distribution(package_name)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        matches = [ep for ep in dist.entry_points if ep.name == entry_point]
        matches.sort(key=lambda ep: ep.group != "console_scripts")
        if matches:
            try:
                return matches[0].load()
            except (ImportError, AttributeError) as exc:
                raise RunnerError(
                    f"entry point {entry_point!r} of {package_name!r} ({matches[0].value}) cannot be "
                    f"loaded: {type(exc).__name__}: {exc}"
                ) from exc
    if entry_point.isidentifier():
        try:
            module = importlib.import_module(package_name)
        except ImportError:
            module = None
        if module is not None and callable(getattr(module, entry_point, None)):
            return getattr(module, entry_point)
    if dist is None:
        raise RunnerError(
            f"package {package_name!r} is not installed in this environment, so entry point {entry_point!r} "
            f"cannot be found; install the project (pip install -e .)"
        )
    known = sorted(ep.name for ep in dist.entry_points)
    raise RunnerError(
        f"distribution {package_name!r} has no entry point {entry_point!r} (known: {', '.join(known)}); "
        f"add it to [project.scripts] in pyproject.toml and reinstall (pip install -e .)"
    )


# --------------------------------------------------------------------------------------------------
# Static checks


def job_parameter_defaults(job: Mapping[str, Any]) -> dict[str, str]:
    """``{name: default}`` of the job's ``parameters`` (defaults as strings).

    Raises:
        RunnerError: a parameter has no name.
    """
    try:
        return _job_parameter_defaults(job)
    except ValueError as exc:
        raise RunnerError(str(exc)) from None


def plan_job(job: Mapping[str, Any], job_key: str = "job") -> list[dict[str, Any]]:
    """The job's tasks in the order the runner runs them, after checking the task graph.

    The checks are :func:`bundlekit.jobspec.job_problems` (the ones the offline bundle validator
    makes) plus one of the local runner's own: every task type must be one it can run.

    Raises:
        RunnerError: no tasks, duplicate or missing task keys, unknown ``depends_on`` keys, a
            dependency cycle, an unsupported task type or ``run_if``, a bad dynamic value reference.
    """
    problems = [message for _, message in job_problems(job)]
    for task in job.get("tasks") or []:
        ttype = task_type(task) if isinstance(task, dict) else "unknown"
        if ttype not in SUPPORTED_TASK_TYPES and ttype != "unknown":
            problems.append(f"task {task.get('task_key')!r}: {ttype} is not supported by the local runner "
                            f"(supported: {', '.join(SUPPORTED_TASK_TYPES)})")
    if problems:
        raise RunnerError(f"job {job_key!r}: " + "; ".join(problems))
    by_key = {task["task_key"]: task for task in job["tasks"]}
    return [by_key[k] for k in topological_order(job)]


def check_job(job: Mapping[str, Any], job_key: str = "job") -> list[str]:
    """Problems :func:`plan_job` finds, as a list (empty when the job is runnable)."""
    try:
        plan_job(job, job_key)
    except RunnerError as exc:
        return [str(exc)]
    return []


# --------------------------------------------------------------------------------------------------
# One run at a time


def max_concurrent_runs(job: Mapping[str, Any]) -> int:
    """The job's ``max_concurrent_runs``; 1 when unset (the Databricks default).

    Raises:
        RunnerError: the value is not a positive integer.
    """
    value = job.get("max_concurrent_runs", 1)
    try:
        runs = int(value)
    except (TypeError, ValueError):
        runs = 0
    if runs < 1 or isinstance(value, bool):
        raise RunnerError(f"max_concurrent_runs must be a positive integer, got {value!r}")
    return runs


def queue_enabled(job: Mapping[str, Any]) -> bool:
    """True when the job sets ``queue: {enabled: true}`` (a boolean or the string ``"true"``)."""
    queue = job.get("queue")
    enabled = queue.get("enabled") if isinstance(queue, Mapping) else None
    return enabled is True or (isinstance(enabled, str) and enabled.strip().lower() == "true")


def lock_file(lock_dir: Path | str, bundle_name: str, target: str, job_key: str) -> Path:
    """``<lock_dir>/<bundle name>-<target>-<job>.lock``; characters other than letters, digits,
    ``.``, ``_`` and ``-`` in the three names become ``_``."""
    def safe(part: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", str(part)) or "_"

    return Path(lock_dir) / f"{safe(bundle_name)}-{safe(target)}-{safe(job_key)}.lock"


def default_lock_dir() -> Path | None:
    """``$BUNDLEKIT_LOCK_DIR`` as a path, or None when it is unset or empty."""
    value = os.environ.get(LOCK_DIR_ENV, "").strip()
    return Path(value) if value else None


def lock_holder(path: Path) -> str:
    """Who holds the lock file ``path``, from what its holder wrote into it: ``pid 123 on host h,
    run 456 started 2026-01-01T00:00:00+00:00``; ``an unknown run`` when the file is empty or unreadable
    (its holder has not written it yet)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return (f"pid {info['pid']} on host {info['host']}, run {info['run_id']} "
                f"started {info['started_at']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown run"


@contextlib.contextmanager
def job_lock(lock_dir: Path | str | None, bundle: Bundle, job_key: str, job: Mapping[str, Any], run_id: int,
             *, log: Log = print, prefix: str = "") -> Iterator[Path | None]:
    """Hold the job's run lock while the block runs (as ``max_concurrent_runs: 1`` does on Databricks).

    Nothing is locked (the block gets None) when ``lock_dir`` is None or the job allows more than one
    concurrent run. Otherwise the lock is an exclusive ``fcntl.flock`` on :func:`lock_file`, taken
    without blocking first; when another run (any process on this machine) holds it, the job's
    ``queue.enabled`` decides: true logs ``waiting for the running <job> run (queue enabled)`` and
    waits as long as that run lasts, false refuses. The holder writes its pid, host, run id and start
    time (UTC) into the file as JSON, for the message of a refused or waiting run, and empties it on
    release. The file itself is never deleted (deleting a lock file races with its next taker); the
    kernel releases the lock when the holding process ends, even by ``kill -9``.

    Args:
        lock_dir: folder of the lock files (created when missing), or None for no locking.
        bundle: the bundle (its ``name`` and ``target`` name the lock).
        job_key: the job's key.
        job: the job's resolved definition (``max_concurrent_runs``, ``queue``).
        run_id: the run that takes the lock (recorded in the file).
        log: receives the waiting line.
        prefix: put before the logged line (the runner's ``[job]`` prefix).

    Yields:
        The lock file's path, or None when nothing is locked.

    Raises:
        RunnerError: another run holds the lock and the job's queue is disabled (the message names the
            job, the holder and the lock file), or ``max_concurrent_runs`` is not a positive integer.
        OSError: the lock folder cannot be created or the file opened.
    """
    if lock_dir is None or max_concurrent_runs(job) != 1:
        yield None
        return
    path = lock_file(lock_dir, bundle.name, bundle.target, job_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(path)
            if not queue_enabled(job):
                raise RunnerError(
                    f"job {job_key!r} (target {bundle.target}) is already running: {holder} holds {path}; "
                    f"the job allows one run at a time (max_concurrent_runs: 1) and its queue is disabled, "
                    f"so this run is refused; run it again when that run has ended"
                ) from None
            log(f"{prefix} waiting for the running {job_key} run (queue enabled): {holder} holds {path}")
            t0 = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            log(f"{prefix} lock {path.name} taken after waiting {time.perf_counter() - t0:.1f}s")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id, "job": job_key,
                "bundle": bundle.name, "target": bundle.target,
                "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# Running


def _time_arg(when: dt.datetime, arg: str) -> str:
    if arg == "iso_date":
        return when.date().isoformat()
    if arg == "iso_datetime":
        return when.isoformat(timespec="milliseconds")
    if arg == "timestamp_ms":
        return str(int(when.timestamp() * 1000))
    if arg in ("year", "month", "day", "hour", "minute", "second"):
        return str(getattr(when, arg))
    if arg == "iso_weekday":
        return str(when.isoweekday())
    if arg == "is_weekday":
        return "true" if when.isoweekday() <= 5 else "false"
    raise KeyError(arg)


class _RunContext:
    def __init__(self, bundle: Bundle, job_key: str, job: Mapping[str, Any], params: dict[str, str],
                 run_id: int, start: dt.datetime, trigger: str, lock_dir: Path | None = None) -> None:
        self.bundle = bundle
        self.lock_dir = lock_dir
        self.job_key = job_key
        self.job = job
        self.params = params
        self.run_id = run_id
        self.start = start
        self.trigger = trigger
        self.results: dict[str, TaskRunResult] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.current_task: str | None = None
        self.task_run_ids: dict[str, int] = {}


def _static_value(ref: str, ctx: _RunContext) -> str:
    """References that do not depend on other tasks. Raises KeyError for unknown references."""
    kind, arg = parse_static_reference(ref)
    if kind == "job":
        return {
            "id": f"local-{ctx.job_key}",
            "name": str(ctx.job.get("name") or ctx.job_key),
            "run_id": str(ctx.run_id),
            "repair_count": "0",
        }[arg]
    if kind == "job.trigger":
        return ctx.trigger
    if kind in ("job.start_time", "job.trigger.time"):
        return _time_arg(ctx.start, arg)
    if kind == "task":
        key = ctx.current_task or ""
        return {"name": key, "run_id": str(ctx.task_run_ids.get(key, 0)), "execution_count": "1"}[arg]
    if kind == "workspace":
        return {"id": "local", "url": ""}[arg]
    return ctx.bundle.target  # ("bundle", "target")


def _dynamic_value(ref: str, ctx: _RunContext) -> str:
    parts = ref.split(".")
    if parts[:2] == ["job", "parameters"] and len(parts) == 3:
        if parts[2] not in ctx.params:
            raise TaskFailure(f"{{{{{ref}}}}}: job parameter {parts[2]!r} is not declared")
        return ctx.params[parts[2]]
    if parts[0] == "tasks" and len(parts) >= 3:
        task, what = parts[1], parts[2]
        upstream = ctx.results.get(task)
        if what == "values" and len(parts) == 4:
            values = ctx.values.get(task, {})
            if parts[3] not in values:
                state = upstream.status if upstream else "not run"
                raise TaskFailure(
                    f"{{{{{ref}}}}}: task {task!r} ({state}) did not set task value {parts[3]!r} "
                    f"(set: {', '.join(sorted(values)) or 'none'})"
                )
            return render(values[parts[3]])
        if upstream is None:
            raise TaskFailure(f"{{{{{ref}}}}}: task {task!r} has not run")
        if what == "result_state":
            return {SUCCESS: "success", FAILED: "failed", SKIPPED: "upstream_failed",
                    EXCLUDED: "excluded"}[upstream.status]
        if what == "error_code":
            return "" if upstream.status != FAILED else "RUN_EXECUTION_ERROR"
        if what == "run_id":
            return str(ctx.task_run_ids.get(task, 0))
        if what == "execution_count":
            return "1" if upstream.ran else "0"
    try:
        return _static_value(ref, ctx)
    except KeyError:
        raise TaskFailure(f"{{{{{ref}}}}}: unknown dynamic value reference") from None


def substitute(value: Any, ctx: _RunContext) -> Any:
    """``value`` with every ``{{...}}`` dynamic value reference replaced (recursively in lists/dicts)."""
    if isinstance(value, str):
        return DYNAMIC_REF_RE.sub(lambda m: _dynamic_value(m.group(1), ctx), value)
    if isinstance(value, dict):
        return {k: substitute(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ctx) for v in value]
    return render(value)


def _as_number(text: str, side: str, op: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TaskFailure(f"condition {op}: {side} operand {text!r} is not a number") from None


def evaluate_condition(op: str, left: str, right: str) -> bool:
    """Evaluate a condition_task: EQUAL_TO/NOT_EQUAL compare strings, the others compare numbers."""
    if op == "EQUAL_TO":
        return left == right
    if op == "NOT_EQUAL":
        return left != right
    if op not in CONDITION_OPS:
        raise TaskFailure(f"unknown condition op {op!r}")
    lnum, rnum = _as_number(left, "left", op), _as_number(right, "right", op)
    return {
        "GREATER_THAN": lnum > rnum,
        "GREATER_THAN_OR_EQUAL": lnum >= rnum,
        "LESS_THAN": lnum < rnum,
        "LESS_THAN_OR_EQUAL": lnum <= rnum,
    }[op]


def _decide(task: Mapping[str, Any], ctx: _RunContext) -> tuple[str | None, str | None]:
    """``(None, None)`` to run the task, else ``(SKIPPED|EXCLUDED, reason)``."""
    if task.get("disabled") is True:
        return EXCLUDED, "task is disabled"
    deps = task.get("depends_on") or []
    if not deps:
        return None, None
    succeeded: list[str] = []
    failed: list[str] = []
    excluded: list[str] = []
    for d in deps:
        key = d["task_key"]
        res = ctx.results[key]
        outcome = d.get("outcome")
        if res.status == SUCCESS:
            if outcome is None or str(outcome) == res.outcome:
                succeeded.append(key)
            else:
                excluded.append(f"{key} outcome is {res.outcome!r}, needs {str(outcome)!r}")
        elif res.status in (FAILED, SKIPPED):
            failed.append(f"{key} {res.status.lower()}")
        else:
            excluded.append(f"{key} excluded")
    run_if = task.get("run_if", "ALL_SUCCESS")
    n = len(deps)
    if run_if == "ALL_SUCCESS":
        run = len(succeeded) == n
    elif run_if == "ALL_DONE":
        run = len(excluded) < n
    elif run_if == "NONE_FAILED":
        run = not failed and bool(succeeded)
    elif run_if == "AT_LEAST_ONE_SUCCESS":
        run = bool(succeeded)
    elif run_if == "ALL_FAILED":
        run = len(failed) == n
    else:  # AT_LEAST_ONE_FAILED
        run = bool(failed)
    if run:
        return None, None
    if failed and run_if in ("ALL_SUCCESS", "NONE_FAILED", "AT_LEAST_ONE_SUCCESS"):
        return SKIPPED, f"run_if {run_if}: upstream " + ", ".join(failed)
    return EXCLUDED, f"run_if {run_if}: " + ", ".join(excluded or [f"{k} succeeded" for k in succeeded])


class _TaskValueScope:
    """Give a job run empty task values and restore the caller's values (nested runs) afterwards."""

    def __enter__(self) -> Self:
        self.saved_values = {k: dict(v) for k, v in runtime.LOCAL_TASK_VALUES.items()}
        self.saved_key = runtime.CURRENT_TASK_KEY[0]
        runtime.LOCAL_TASK_VALUES.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        runtime.LOCAL_TASK_VALUES.clear()
        runtime.LOCAL_TASK_VALUES.update(self.saved_values)
        runtime.CURRENT_TASK_KEY[0] = self.saved_key


def _new_run_id() -> int:
    # Numeric like a Databricks run id, unique per process; nested runs started in the same millisecond
    # get the next number.
    global _LAST_RUN_ID
    candidate = int(time.time() * 1000)
    _LAST_RUN_ID = max(candidate, _LAST_RUN_ID + 1)
    return _LAST_RUN_ID


_LAST_RUN_ID = 0


def resolve_parameters(
    job: Mapping[str, Any], params: Mapping[str, Any] | None, job_key: str = "job"
) -> dict[str, str]:
    """The job's parameter values: YAML defaults overridden by ``params``.

    Raises:
        RunnerError: ``params`` names a parameter the job does not declare.
    """
    values = job_parameter_defaults(job)
    unknown = [k for k in (params or {}) if k not in values]
    if unknown:
        raise RunnerError(
            f"job {job_key!r} has no parameter(s) {', '.join(repr(k) for k in unknown)}; "
            f"its parameters: {', '.join(values) or 'none'}"
        )
    for k, v in (params or {}).items():
        values[k] = render(v)
    return values


def run_job(
    bundle: Bundle,
    job_key: str,
    params: Mapping[str, Any] | None = None,
    *,
    resolve_entry_point: EntryPointResolver | None = None,
    log: Log = print,
    lock_dir: Path | None = None,
    _stack: tuple[str, ...] = (),
    _trigger: str = "one_time",
) -> JobRunResult:
    """Run job ``job_key`` of ``bundle`` locally; see the module docstring for the semantics.

    Args:
        bundle: the bundle, resolved for a target (:func:`bundlekit.loader.load_bundle`).
        job_key: the job's key under ``resources.jobs`` (``ingestion``, ``training`` ...).
        params: job parameter overrides ``{name: value}``.
        resolve_entry_point: ``(package_name, entry_point) -> callable``; the callable is called with
            the argv list and returns a result dict. Default: this module's :func:`resolve_entry_point`
            (looked up at call time, so tests may monkeypatch it), which reads the installed metadata.
        log: receives progress lines.
        lock_dir: folder of the run locks (see :func:`job_lock`); None means ``$BUNDLEKIT_LOCK_DIR``,
            and no locking when that is unset too. Nested ``run_job_task`` runs use the same folder.

    Returns:
        The run's :class:`JobRunResult`; ``.ok`` is False when a task failed.

    Raises:
        BundleError: unknown job, or the job uses a ``lookup`` variable that has no value here (only a
            workspace resolves it: pass ``--var <name>=<value>``); nothing has run then.
        RunnerError: unknown parameter or a bad task graph (nothing has run then); another run of the
            job holds its lock and the job's queue is disabled (nothing has run either).
    """
    resolver: EntryPointResolver = resolve_entry_point or globals()["resolve_entry_point"]
    job = bundle.job(job_key)
    lookups = lookup_references(bundle, job)
    if lookups:
        raise BundleError(
            f"job {job_key!r} uses the lookup variable(s) {', '.join(lookups)}, which the Databricks CLI "
            f"resolves against a workspace; for a local run pass "
            + " ".join(f"--var {name}=<value>" for name in lookups)
            + f" (or set {', '.join('BUNDLE_VAR_' + name for name in lookups)})"
        )
    plan = plan_job(job, job_key)
    values = resolve_parameters(job, params, job_key)
    locks = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    run_id = _new_run_id()
    prefix = f"{'  ' * len(_stack)}[{job_key}]"
    with job_lock(locks, bundle, job_key, job, run_id, log=log, prefix=prefix):
        return _run_plan(bundle, job_key, job, plan, values, run_id, resolver, log, prefix, locks,
                         _stack, _trigger)


def _run_plan(bundle: Bundle, job_key: str, job: Mapping[str, Any], plan: list[dict[str, Any]],
              values: dict[str, str], run_id: int, resolver: EntryPointResolver, log: Log, prefix: str,
              lock_dir: Path | None, stack: tuple[str, ...], trigger: str) -> JobRunResult:
    """The body of :func:`run_job`, run while the job's lock is held."""
    name = str(job.get("name") or job_key)
    start = dt.datetime.now(dt.UTC)
    result = JobRunResult(job_key=job_key, job_name=name, target=bundle.target, run_id=run_id,
                          parameters=values, start_time=start.isoformat(timespec="seconds"))
    ctx = _RunContext(bundle, job_key, job, values, run_id, start, trigger, lock_dir)
    # Parameter defaults may hold dynamic value references such as {{job.start_time.iso_date}}.
    try:
        ctx.params.update({k: substitute(v, ctx) for k, v in values.items()})
    except TaskFailure as exc:
        raise RunnerError(f"job {job_key!r}: {exc}") from exc
    result.parameters = dict(ctx.params)

    log(f"{prefix} run {run_id} of {name!r} (target {bundle.target}): "
        + " -> ".join(t["task_key"] for t in plan))
    log(f"{prefix} parameters: " + " ".join(f"{k}={v}" for k, v in ctx.params.items()))
    t0 = time.perf_counter()
    with _TaskValueScope():
        for i, task in enumerate(plan, start=1):
            key = task["task_key"]
            ctx.task_run_ids[key] = run_id * 100 + i
            status, reason = _decide(task, ctx)
            if status is not None:
                res = TaskRunResult(task_key=key, task_type=task_type(task), status=status, reason=reason)
                log(f"{prefix} {status:<8} {key}: {reason}")
            else:
                runtime.fault_point(f"before:{key}", f"before:{job_key}.{key}")
                res = _run_task(task, ctx, resolver, log, prefix, (*stack, job_key))
                runtime.fault_point(f"after:{key}", f"after:{job_key}.{key}")
            ctx.results[key] = res
            result.tasks[key] = res
    result.duration_s = time.perf_counter() - t0
    summary = ", ".join(
        f"{k}={t.status}" + (f"({t.outcome})" if t.outcome is not None else "") for k, t in result.tasks.items()
    )
    log(f"{prefix} run {run_id} {result.status} in {result.duration_s:.2f}s: {summary}")
    return result


def _run_task(task: Mapping[str, Any], ctx: _RunContext, resolve: EntryPointResolver, log: Log,
              prefix: str, stack: tuple[str, ...]) -> TaskRunResult:
    key = task["task_key"]
    ttype = task_type(task)
    res = TaskRunResult(task_key=key, task_type=ttype, status=FAILED)
    ctx.current_task = key
    t0 = time.perf_counter()
    try:
        if ttype == "python_wheel_task":
            _run_python_wheel_task(task, ctx, resolve, log, prefix, res)
        elif ttype == "condition_task":
            cond = task["condition_task"]
            left = substitute(cond.get("left", ""), ctx)
            right = substitute(cond.get("right", ""), ctx)
            op = cond["op"]
            log(f"{prefix} START    {key}: condition {left!r} {CONDITION_OPS[op]} {right!r}")
            res.outcome = "true" if evaluate_condition(op, left, right) else "false"
            res.result = {"left": left, "op": op, "right": right, "outcome": res.outcome}
            res.status = SUCCESS
        else:  # run_job_task
            _run_job_task(task, ctx, resolve, log, prefix, stack, res)
    except Exception as exc:  # noqa: BLE001 - a task's failure is recorded, not raised
        res.status = FAILED
        res.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (TaskFailure, RunnerError, BundleError)):
            res.traceback = traceback.format_exc()
    res.duration_s = time.perf_counter() - t0
    ctx.current_task = None
    line = f"{prefix} {res.status:<8} {key} in {res.duration_s:.2f}s"
    if res.outcome is not None:
        line += f" (outcome {res.outcome})"
    if res.error:
        line += f": {res.error}"
    log(line)
    if res.traceback:
        log(res.traceback.rstrip())
    return res


def _run_python_wheel_task(task: Mapping[str, Any], ctx: _RunContext, resolve: EntryPointResolver, log: Log,
                           prefix: str, res: TaskRunResult) -> None:
    key = task["task_key"]
    pwt = task["python_wheel_task"]
    named = pwt.get("named_parameters") or {}
    positional = pwt.get("parameters") or []
    argv = [f"--{k}={substitute(v, ctx)}" for k, v in named.items()]
    argv += [substitute(v, ctx) for v in positional]
    res.argv = argv
    entry_point = pwt["entry_point"]
    fn = resolve(pwt["package_name"], entry_point)
    log(f"{prefix} START    {key}: {entry_point} {' '.join(argv)}")
    runtime.LOCAL_TASK_VALUES.pop(key, None)
    runtime.LOCAL_TASK_RESULTS.pop(key, None)
    runtime.CURRENT_TASK_KEY[0] = key
    saved_argv = sys.argv
    sys.argv = [entry_point, *argv]
    try:
        try:
            returned = fn(list(argv))
        except SystemExit as exc:
            code = exc.code
            if code not in (None, 0):
                raise TaskFailure(f"{entry_point} exited with status {code}") from exc
            returned = None
    finally:
        sys.argv = saved_argv
        res.values = dict(runtime.LOCAL_TASK_VALUES.get(key, {}))
        ctx.values[key] = res.values
    reported = runtime.LOCAL_TASK_RESULTS.pop(key, {})  # what the task passed to runtime.report
    if isinstance(returned, dict):
        res.result = returned
    elif returned is None:
        res.result = reported
    elif isinstance(returned, int) and not isinstance(returned, bool):
        if returned != 0:
            raise TaskFailure(f"{entry_point} returned exit status {returned}")
        res.result = reported
    else:
        res.result = {"return": returned}
    res.status = SUCCESS


def _run_job_task(task: Mapping[str, Any], ctx: _RunContext, resolve: EntryPointResolver, log: Log,
                  prefix: str, stack: tuple[str, ...], res: TaskRunResult) -> None:
    key = task["task_key"]
    rjt = task["run_job_task"]
    job_id = rjt.get("job_id")
    child_key = ctx.bundle.job_id_ref(job_id)
    if child_key is None:
        if isinstance(job_id, str) and job_id in ctx.bundle.jobs:
            child_key = job_id
        else:
            raise TaskFailure(
                f"run_job_task job_id {job_id!r} is not a bundle job reference "
                f"${{resources.jobs.<key>.id}}; only bundle jobs can run locally"
            )
    if child_key in stack:
        raise TaskFailure(f"run_job_task would run job {child_key!r} recursively: {' -> '.join(stack)} -> {child_key}")
    if len(stack) >= MAX_NESTING:
        raise TaskFailure(f"run_job_task nesting deeper than {MAX_NESTING} jobs")
    child_params = substitute(rjt.get("job_parameters") or {}, ctx)
    log(f"{prefix} START    {key}: run job {child_key} "
        + " ".join(f"{k}={v}" for k, v in child_params.items()))
    child = run_job(ctx.bundle, child_key, child_params, resolve_entry_point=resolve, log=log,
                    lock_dir=ctx.lock_dir, _stack=stack, _trigger="run_job_task")
    res.result = child.to_dict()
    if not child.ok:
        raise TaskFailure(
            f"job {child_key!r} (run {child.run_id}) failed: "
            + ", ".join(f"{k} {child.tasks[k].status}" for k in child.failed_tasks + child.skipped_tasks)
        )
    res.status = SUCCESS
