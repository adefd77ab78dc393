"""What a task needs from the platform: named parameters, task values, a result report.

On Databricks a ``python_wheel_task`` calls an entry point with ``named_parameters`` as
``--key=value`` arguments and shares small values between tasks with ``dbutils.jobs.taskValues``.
Locally the job runner (:mod:`bundlekit.runner`) calls the same entry point in-process with the
same arguments and keeps task values in :data:`LOCAL_TASK_VALUES`.

:func:`fault_point` is the crash-test hook: named points in the runner and the library where a test
can make the process die as if killed (``BUNDLEKIT_FAULT_AT``); it does nothing otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("bundlekit")

#: Task values set by tasks run in this process, ``{task_key: {key: value}}`` (local runs only).
LOCAL_TASK_VALUES: dict[str, dict[str, Any]] = {}
#: The task key the local runner is running now (set by the runner).
CURRENT_TASK_KEY: list[str] = ["local"]
#: The result each task of this process reported, ``{task_key: result}`` (read by the local runner).
LOCAL_TASK_RESULTS: dict[str, dict[str, Any]] = {}


#: Environment variable naming the fault point(s) at which :func:`fault_point` kills this process.
FAULT_ENV = "BUNDLEKIT_FAULT_AT"
#: Exit status of an injected fault: what a shell reports for a process killed by SIGKILL (128 + 9).
FAULT_EXIT_STATUS = 137


def fault_point(*names: str) -> None:
    """Crash-test hook: end this process at once, as ``kill -9`` would, when ``$BUNDLEKIT_FAULT_AT``
    names one of ``names``.

    Unless the variable is set this is one environment look-up and does nothing; it is meant for
    fault-injection tests only (tests/jobs/test_fault_injection.py) and must never be set in a
    deployed job. The variable holds one point name or several separated by commas; a point has
    several ``names`` when it answers to a short and a qualified name (``after:train``,
    ``after:training.train``). On a match it writes ``bundlekit: fault injected at <name>`` to
    stderr, flushes stdout and stderr (so that a test can see where the process died; a real kill
    would lose buffered output, which changes no table) and calls ``os._exit(137)``: no ``finally``
    block, context manager exit, ``atexit`` handler or pending write of this process runs.

    Points (see docs/failure-modes-jobs.md): the local runner's ``before:<task>`` / ``after:<task>``
    (also ``before:<job>.<task>`` / ``after:<job>.<task>``) around every task;
    ``after_write:<table>`` after each Delta commit of ``fraud_mlops.platform.lakehouse.Lakehouse``;
    ``promote:after_tags`` and ``promote:after_champion_alias`` inside
    ``fraud_mlops.lifecycle.gate.promote_challenger``; ``publish:inside_day`` and ``publish:after_day``
    in the online store's publish step (``fraud_mlops.online``).
    """
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    targets = {w.strip() for w in wanted.split(",")}
    for name in names:
        if name in targets:
            sys.stdout.flush()
            sys.stderr.write(f"bundlekit: fault injected at {name} (pid {os.getpid()})\n")
            sys.stderr.flush()
            os._exit(FAULT_EXIT_STATUS)


def on_databricks() -> bool:
    """True inside a Databricks Runtime (the runtime sets ``DATABRICKS_RUNTIME_VERSION``)."""
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


class ParameterError(ValueError):
    """A task parameter is missing, unknown or malformed."""


def parse_named_parameters(
    argv: Sequence[str] | None, required: Sequence[str], optional: dict[str, str] | None = None
) -> dict[str, str]:
    """Parse ``--key=value`` (or ``--key value``) arguments into a dict of strings.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        required: keys that must be present.
        optional: keys that may be present, with their defaults.

    Raises:
        ParameterError: a required key is missing, a key is unknown, or an argument is not a
            ``--key`` option.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    optional = dict(optional or {})
    known = set(required) | set(optional)
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ParameterError(f"unexpected argument {arg!r}: parameters are passed as --key=value")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        else:
            if i + 1 >= len(args):
                raise ParameterError(f"parameter {arg} has no value")
            key, value = arg[2:], args[i + 1]
            i += 1
        if key not in known:
            raise ParameterError(f"unknown parameter {key!r}; this task takes {sorted(known)}")
        values[key] = value
        i += 1
    missing = [k for k in required if k not in values]
    if missing:
        raise ParameterError(f"missing required parameter(s): {', '.join(missing)}")
    return {**optional, **values}


def parse_date(value: str, name: str) -> dt.date:
    """Parse an ISO date ``YYYY-MM-DD``.

    Raises:
        ParameterError: the value is not an ISO date.
    """
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ParameterError(f"parameter {name}={value!r} is not a date YYYY-MM-DD") from exc


def parse_optional_date(value: str, name: str) -> dt.date | None:
    """Like :func:`parse_date`, but an empty string means "not given" and returns None."""
    return parse_date(value, name) if value and value.strip() else None


def _bounds_text(minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


def _check_bounds(number: float, value: str, name: str, minimum: float | None, maximum: float | None,
                  above: float | None) -> None:
    if ((minimum is not None and number < minimum) or (maximum is not None and number > maximum)
            or (above is not None and number <= above)):
        raise ParameterError(
            f"parameter {name}={value!r} is out of range: it must be {_bounds_text(minimum, maximum, above)}")


def parse_float(value: str, name: str, *, minimum: float | None = None, maximum: float | None = None,
                above: float | None = None) -> float:
    """Parse a finite number, optionally within bounds (``minimum <= x <= maximum``, ``x > above``).

    Raises:
        ParameterError: not a number, not finite (``nan``, ``inf``), or out of range; the message
            names the parameter and the range.
    """
    try:
        number = float(value)
    except ValueError as exc:
        raise ParameterError(f"parameter {name}={value!r} is not a number") from exc
    if not math.isfinite(number):
        raise ParameterError(f"parameter {name}={value!r} is not a finite number")
    _check_bounds(number, value, name, minimum, maximum, above)
    return number


def parse_probability(value: str, name: str) -> float:
    """Parse a number in [0, 1] (a probability, a threshold on one, a share). Raises
    :class:`ParameterError` otherwise."""
    return parse_float(value, name, minimum=0.0, maximum=1.0)


def parse_int(value: str, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Parse an integer, optionally within ``minimum <= n <= maximum``.

    Raises:
        ParameterError: not an integer, or out of range (the message names the parameter and range).
    """
    try:
        number = int(value)
    except ValueError as exc:
        raise ParameterError(f"parameter {name}={value!r} is not an integer") from exc
    _check_bounds(number, value, name, minimum, maximum, None)
    return number


def check_date_order(start: dt.date | None, end: dt.date | None, start_name: str, end_name: str) -> None:
    """Raise :class:`ParameterError` when both dates are given and ``start`` is after ``end``."""
    if start is not None and end is not None and start > end:
        raise ParameterError(f"parameter {start_name}={start.isoformat()} is after {end_name}={end.isoformat()}: "
                             f"a window runs from {start_name} to {end_name}, both inclusive")


def parse_bool(value: str, name: str) -> bool:
    """Parse ``true``/``false`` (also ``1``/``0``, ``yes``/``no``), case-insensitive."""
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ParameterError(f"parameter {name}={value!r} is not true/false")


def _dbutils():  # pragma: no cover - Databricks only
    from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
    from pyspark.sql import SparkSession

    return DBUtils(SparkSession.getActiveSession())


def set_task_value(key: str, value: Any) -> None:
    """Publish a small JSON-serialisable value for downstream tasks (``{{tasks.<task>.values.<key>}}``)."""
    if on_databricks():  # pragma: no cover - Databricks only
        _dbutils().jobs.taskValues.set(key=key, value=value)
        return
    LOCAL_TASK_VALUES.setdefault(CURRENT_TASK_KEY[0], {})[key] = value


def report(task: str, result: dict[str, Any]) -> dict[str, Any]:
    """Log a task's result as one JSON line (the task output), keep it for the local runner in
    :data:`LOCAL_TASK_RESULTS`, and return it."""
    print(f"[{task}] " + json.dumps(result, default=str, sort_keys=True), flush=True)
    LOCAL_TASK_RESULTS[CURRENT_TASK_KEY[0]] = result
    return result


def entry_point(task: Callable[[Sequence[str] | None], dict[str, Any]]) -> Callable[[Sequence[str] | None], None]:
    """Make a task function a console-script entry point.

    A console script ends with ``sys.exit(<return value>)``, and ``sys.exit`` of a dict exits with
    status 1, so the entry point returns None (status 0) and a failure is an exception (status 1).
    The result stays available: the task reports it with :func:`report`, and the undecorated
    function is the entry point's ``run`` attribute, for Python callers.
    """

    @functools.wraps(task)
    def main(argv: Sequence[str] | None = None) -> None:
        task(argv)

    main.run = task  # type: ignore[attr-defined]
    return main
