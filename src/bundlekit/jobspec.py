"""Static checks of one Databricks job definition (a ``resources.jobs.<key>`` mapping), without running it.

Both the local runner (:mod:`bundlekit.runner`, before it runs anything) and the offline bundle
validator (:mod:`bundlekit.validate`, before anything is deployed) use these checks, so a job that
validates is a job the runner accepts, and the other way round.

A problem is reported as ``(key, message)`` where ``key`` is the path inside the job definition in the
bundle's own notation (``tasks[1].depends_on[0].task_key``), so that callers can name the file and the
full key (``resources.jobs.training.tasks[1].depends_on[0].task_key``).

Checked:

* every task has a ``task_key``, used once; it has a task type (``python_wheel_task`` ...);
* ``depends_on`` names tasks of the same job (not itself); ``outcome`` is ``"true"``/``"false"`` and
  only follows a ``condition_task``; the tasks form no cycle;
* ``run_if`` and ``condition_task.op`` take values Databricks accepts;
* ``python_wheel_task`` has ``package_name`` and ``entry_point``;
* dynamic value references (``{{job.parameters.x}}``, ``{{tasks.t.values.k}}`` ...; see Databricks
  "What is a dynamic value reference?") name declared job parameters, upstream tasks and known
  fields; parameter defaults do not refer to parameters or tasks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

#: Every job task type Databricks Jobs knows (the key of the task's type-specific mapping).
TASK_TYPES = (
    "python_wheel_task", "condition_task", "run_job_task", "notebook_task", "spark_python_task",
    "spark_jar_task", "spark_submit_task", "pipeline_task", "sql_task", "dbt_task", "for_each_task",
    "clean_rooms_notebook_task", "dashboard_task", "power_bi_task", "gen_ai_compute_task", "alert_task",
    "dbt_cloud_task", "dbt_platform_task", "ai_runtime_task", "python_operator_task",
)
RUN_IF_VALUES = ("ALL_SUCCESS", "ALL_DONE", "NONE_FAILED", "AT_LEAST_ONE_SUCCESS", "ALL_FAILED",
                 "AT_LEAST_ONE_FAILED")
CONDITION_OPS = {
    "EQUAL_TO": "==",
    "NOT_EQUAL": "!=",
    "GREATER_THAN": ">",
    "GREATER_THAN_OR_EQUAL": ">=",
    "LESS_THAN": "<",
    "LESS_THAN_OR_EQUAL": "<=",
}
#: Arguments of ``{{job.start_time.<arg>}}`` and ``{{job.trigger.time.<arg>}}``.
TIME_ARGS = ("iso_date", "iso_datetime", "timestamp_ms", "year", "month", "day", "hour", "minute",
             "second", "iso_weekday", "is_weekday")
#: Fields of ``{{tasks.<task>.<field>}}``.
TASK_FIELDS = ("values", "result_state", "error_code", "run_id", "execution_count")

DYNAMIC_REF_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

Problem = tuple[str, str]


def task_type(task: Mapping[str, Any]) -> str:
    """The task's type key (``python_wheel_task`` ...); ``unknown`` when it has none of :data:`TASK_TYPES`."""
    for name in TASK_TYPES:
        if name in task:
            return name
    return "unknown"


def render(value: Any) -> str:
    """A value as Databricks renders it into a string (booleans as true/false, JSON for containers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def key_path(base: str, part: str | int) -> str:
    """``base`` extended by a mapping key (``a.b``) or a list index (``a[0]``)."""
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else str(part)


def dynamic_references_at(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(key, reference)`` for every ``{{...}}`` inside ``value`` (strings nested in lists and dicts)."""
    if isinstance(value, str):
        for m in DYNAMIC_REF_RE.finditer(value):
            yield path, m.group(1)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from dynamic_references_at(v, key_path(path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from dynamic_references_at(v, key_path(path, i))


def dynamic_references(value: Any) -> list[str]:
    """Every ``{{...}}`` reference inside ``value`` (strings nested in lists and dicts)."""
    return [ref for _, ref in dynamic_references_at(value)]


def parse_static_reference(ref: str) -> tuple[str, str]:
    """Classify a dynamic value reference that does not depend on parameters or other tasks.

    Returns ``(kind, arg)``: ``("job", "id"|"name"|"run_id"|"repair_count")``, ``("job.trigger", "type")``,
    ``("job.start_time", <time arg>)``, ``("job.trigger.time", <time arg>)``,
    ``("task", "name"|"run_id"|"execution_count")``, ``("workspace", "id"|"url")``,
    ``("bundle", "target")`` (local runs only).

    Raises:
        KeyError: ``ref`` is not such a reference.
    """
    parts = ref.split(".")
    if parts[0] == "job":
        if len(parts) == 2 and parts[1] in ("id", "name", "run_id", "repair_count"):
            return "job", parts[1]
        if parts[1:] == ["trigger", "type"]:
            return "job.trigger", "type"
        if len(parts) == 3 and parts[1] == "start_time" and parts[2] in TIME_ARGS:
            return "job.start_time", parts[2]
        if len(parts) == 4 and parts[1:3] == ["trigger", "time"] and parts[3] in TIME_ARGS:
            return "job.trigger.time", parts[3]
    if parts[0] == "task" and len(parts) == 2 and parts[1] in ("name", "run_id", "execution_count"):
        return "task", parts[1]
    if parts[0] == "workspace" and len(parts) == 2 and parts[1] in ("id", "url"):
        return "workspace", parts[1]
    if parts == ["bundle", "target"]:
        return "bundle", "target"
    raise KeyError(ref)


def job_parameter_defaults(job: Mapping[str, Any]) -> dict[str, str]:
    """``{name: default}`` of the job's ``parameters`` (defaults rendered as strings).

    Raises:
        ValueError: a parameter has no name.
    """
    out: dict[str, str] = {}
    for i, p in enumerate(job.get("parameters") or []):
        if not isinstance(p, dict) or not p.get("name"):
            raise ValueError(f"parameters[{i}] has no name")
        out[str(p["name"])] = render(p.get("default", ""))
    return out


def _ancestors(key: str, deps: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(deps.get(key, []))
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(deps.get(d, []))
    return seen


def _find_cycle(deps: Mapping[str, list[str]], candidates: set[str]) -> str:
    for start in sorted(candidates):
        path = [start]
        seen = {start}
        node = start
        while True:
            nxt = next((d for d in deps[node] if d in candidates), None)
            if nxt is None:
                break
            if nxt in seen:
                cycle = path[path.index(nxt):] + [nxt]
                return " -> ".join(reversed(cycle))
            path.append(nxt)
            seen.add(nxt)
            node = nxt
    return ", ".join(sorted(candidates))  # pragma: no cover - a cycle always exists here


def _reference_problem(ref: str, declared: Mapping[str, str], upstream: set[str], tasks: set[str]) -> str | None:
    parts = ref.split(".")
    if ref.startswith("secrets/"):
        return None  # a secret reference ({{secrets/<scope>/<key>}}), resolved by Databricks
    if parts[:2] == ["job", "parameters"]:
        name = ref[len("job.parameters."):] if ref.startswith("job.parameters.") else ""
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]  # {{job.parameters.[name]}}: a name with characters a plain reference cannot hold
        elif len(parts) != 3:
            return "use {{job.parameters.<name>}}"
        if name not in declared:
            return f"job parameter {name!r} is not declared (declared: {', '.join(declared) or 'none'})"
        return None
    if parts[0] == "tasks":
        if len(parts) < 3:
            return "use {{tasks.<task>.values.<key>}}"
        if parts[1] not in tasks:
            return f"no task {parts[1]!r} in this job"
        if parts[1] not in upstream:
            return f"task {parts[1]!r} is not upstream of this task (add it to depends_on)"
        if parts[2] == "values" and len(parts) != 4:
            return "use {{tasks.<task>.values.<key>}}"
        if parts[2] not in TASK_FIELDS:
            return f"unknown task field {parts[2]!r} (known: {', '.join(TASK_FIELDS)})"
        return None
    try:
        parse_static_reference(ref)
    except KeyError:
        return "unknown dynamic value reference"
    return None


def _task_keys(tasks: list[Any], problems: list[Problem]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        key = task.get("task_key") if isinstance(task, dict) else None
        if isinstance(key, (dict, list)):
            problems.append((f"tasks[{i}].task_key", "the task's task_key is not a string"))
        elif not key:
            problems.append((f"tasks[{i}].task_key", "the task has no task_key"))
        elif key in index:
            problems.append((f"tasks[{i}].task_key", f"task_key {key!r} is used twice (also tasks[{index[key]}])"))
        else:
            index[key] = i
    return index


def _dependencies(tasks: list[Any], index: Mapping[str, int], problems: list[Problem]) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for key, i in index.items():
        task = tasks[i]
        deps[key] = []
        depends_on = task.get("depends_on") or []
        for j, d in enumerate(depends_on if isinstance(depends_on, list) else []):
            where = f"tasks[{i}].depends_on[{j}]"
            dep = d.get("task_key") if isinstance(d, dict) else None
            if isinstance(dep, (dict, list)):
                dep = None
            if dep not in index:
                known = ", ".join(index)
                problems.append((f"{where}.task_key",
                                 f"task {key!r} depends on unknown task {dep!r} (tasks of this job: {known})"))
            elif dep == key:
                problems.append((f"{where}.task_key", f"task {key!r} depends on itself"))
            else:
                deps[key].append(dep)
            outcome = d.get("outcome") if isinstance(d, dict) else None
            if outcome is not None and str(outcome) not in ("true", "false"):
                problems.append((f"{where}.outcome", f"task {key!r}: outcome must be \"true\" or \"false\""))
            elif outcome is not None and dep in index and task_type(tasks[index[dep]]) != "condition_task":
                problems.append((f"{where}.outcome",
                                 f"task {key!r}: depends_on {dep!r} has an outcome but {dep!r} is not a condition_task"))
    return deps


def _task_body_problems(task: Mapping[str, Any], i: int, key: str) -> list[Problem]:
    problems: list[Problem] = []
    ttype = task_type(task)
    if ttype == "unknown":
        problems.append((f"tasks[{i}]", f"task {key!r} has no task type (one of {', '.join(TASK_TYPES[:6])} ...)"))
    run_if = task.get("run_if", "ALL_SUCCESS")
    if run_if not in RUN_IF_VALUES:
        problems.append((f"tasks[{i}].run_if", f"task {key!r}: run_if {run_if!r} is not one of {', '.join(RUN_IF_VALUES)}"))
    if ttype == "condition_task":
        body = task["condition_task"]
        op = body.get("op") if isinstance(body, dict) else None
        if op not in CONDITION_OPS:
            problems.append((f"tasks[{i}].condition_task.op",
                             f"task {key!r}: condition op {op!r} is not one of {', '.join(CONDITION_OPS)}"))
    if ttype == "python_wheel_task":
        pwt = task["python_wheel_task"] if isinstance(task["python_wheel_task"], dict) else {}
        for name in ("package_name", "entry_point"):
            if not pwt.get(name):
                problems.append((f"tasks[{i}].python_wheel_task.{name}", f"task {key!r}: python_wheel_task needs {name}"))
    return problems


def topological_order(job: Mapping[str, Any]) -> list[str]:
    """The job's task keys in dependency order (ties in file order); call after :func:`job_problems` is empty.

    Raises:
        ValueError: the tasks form a cycle.
    """
    tasks = list(job.get("tasks") or [])
    problems: list[Problem] = []
    index = _task_keys(tasks, problems)
    order, cycle = _kahn(_dependencies(tasks, index, problems), list(index))
    if cycle:
        raise ValueError(f"dependency cycle: {cycle}")
    return order


def _kahn(deps: Mapping[str, list[str]], order: list[str]) -> tuple[list[str], str | None]:
    indegree = {k: len(set(deps[k])) for k in order}
    dependants: dict[str, list[str]] = {k: [] for k in order}
    for k in order:
        for d in set(deps[k]):
            dependants[d].append(k)
    position = {k: n for n, k in enumerate(order)}
    ready = [k for k in order if indegree[k] == 0]
    planned: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__)
        k = ready.pop(0)
        planned.append(k)
        for child in dependants[k]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(planned) != len(order):
        return planned, _find_cycle(deps, set(order) - set(planned))
    return planned, None


#: The parts of :func:`job_problems`: ``tasks`` (the job has tasks), ``graph`` (task keys, types,
#: ``depends_on``, outcomes, cycles), ``fields`` (``run_if``, condition ``op``, a wheel task's
#: ``package_name`` and ``entry_point``) and ``references`` (job parameters and dynamic value references).
JOB_CHECK_PARTS = ("tasks", "graph", "fields", "references")


def job_problems(job: Mapping[str, Any], parts: tuple[str, ...] = JOB_CHECK_PARTS) -> list[Problem]:
    """Everything wrong with the job's task graph and references, as ``(key, message)`` pairs.

    ``key`` is relative to the job definition (``tasks[2].run_if``, ``parameters[0].default``, ``tasks``
    for a cycle). An empty list means the job is well formed. ``parts`` selects which checks run
    (:data:`JOB_CHECK_PARTS`; the local runner runs them all). Never raises for malformed input.
    """
    problems: list[Problem] = []
    tasks = job.get("tasks") or []
    if not isinstance(tasks, list) or not tasks:
        return [("tasks", "the job has no tasks")] if "tasks" in parts else []
    declared: dict[str, str] = {}
    parameters = job.get("parameters") or []
    for i, p in enumerate(parameters if isinstance(parameters, list) else []):
        if not isinstance(p, dict) or not p.get("name"):
            if "references" in parts:
                problems.append((f"parameters[{i}].name", "the job parameter has no name"))
            continue
        declared[str(p["name"])] = render(p.get("default", ""))
        if "references" not in parts:
            continue
        for at, ref in dynamic_references_at(p.get("default"), f"parameters[{i}].default"):
            if ref.startswith(("job.parameters.", "tasks.", "task.")):
                problems.append((at, f"parameter {p['name']!r}: {{{{{ref}}}}} cannot be used in a parameter default"))

    graph: list[Problem] = []
    index = _task_keys(tasks, graph)
    deps = _dependencies(tasks, index, graph)
    for key, i in index.items():
        for at, message in _task_body_problems(tasks[i], i, key):
            is_field = at.endswith((".run_if", ".op", ".package_name", ".entry_point"))
            if ("fields" if is_field else "graph") in parts:
                problems.append((at, message))
    if "graph" in parts:
        problems.extend(graph)
    _, cycle = _kahn(deps, list(index))
    if cycle:
        if "graph" in parts:
            problems.append(("tasks", f"dependency cycle: {cycle}"))
        return problems
    if "references" not in parts:
        return problems

    for key, i in index.items():
        task = tasks[i]
        upstream = _ancestors(key, deps)
        for name in TASK_TYPES:
            if name not in task:
                continue
            for at, ref in dynamic_references_at(task[name], f"tasks[{i}].{name}"):
                if name == "for_each_task" and (ref == "input" or ref.startswith("input.")):
                    continue  # the iteration's input, inside a for-each task
                problem = _reference_problem(ref, declared, upstream, set(index))
                if problem:
                    problems.append((at, f"task {key!r}: {{{{{ref}}}}}: {problem}"))
    return problems
