"""Offline validation of the Databricks Asset Bundle: what ``databricks bundle validate`` checks, and more.

``databricks bundle validate`` needs the Go CLI and a workspace. This module checks the same
``databricks.yml`` + ``resources/*.yml`` with neither, so a broken job definition fails a pull request
(and a laptop run of ``fraud-mlops validate``) instead of a deployment. Every problem names the file
and the key it is about. The checks, each with its ``check`` id:

``load``
    the bundle loads for the target (:func:`bundlekit.loader.load_bundle`): valid YAML and includes,
    every ``${var.x}`` declared and given a value for the target, every ``${...}`` resolvable.
``schema``
    top-level, target and variable keys are ones the bundle schema knows; every resource passes the
    ``databricks-bundles`` typed class of its type (``databricks.bundles.jobs.Job`` ...), which
    rejects unknown fields and wrong types; the first offending key is located.
``wheel``
    a ``python_wheel_task``'s ``package_name`` is a wheel the bundle builds (an ``artifacts`` entry of
    type ``whl``), its ``entry_point`` is one of that wheel's entry points (``pyproject.toml``
    ``[project.scripts]`` / ``[project.entry-points.*]``), and the entry point's ``module:function``
    exists in the sources.
    A wheel task's compute installs the wheel: on serverless its environment's ``spec.dependencies``
    list the wheel the artifact builds, on a job cluster (or ``new_cluster``) its ``libraries`` do.
``paths``
    local notebook, Python file, SQL file, library and serverless-environment dependency paths exist
    (relative to the YAML file that names them, as the CLI resolves them: a path a target sets in
    ``databricks.yml`` against the bundle root); a relative wheel is what a whl artifact builds. Every
    ``include`` pattern matches at least one file.
``compute``
    every task that runs code has exactly one kind of compute (``job_cluster_key``,
    ``environment_key``, ``existing_cluster_id`` or ``new_cluster``; a notebook task may have none:
    serverless), declared in its job (``job_clusters`` / ``environments``, each key once); condition
    and run_job tasks have none; serverless tasks have no ``libraries``; each environment's ``spec``
    has an ``environment_version``.
``jobs``
    the task graph and references (:func:`bundlekit.jobspec.job_problems`): ``depends_on`` names
    tasks of the job, no cycles, every ``{{job.parameters.x}}`` is declared, ``run_job_task``
    parameters are declared by the job it runs; ``timeout_seconds`` (job and task) is not negative,
    ``max_concurrent_runs`` is at least 1 and ``max_retries`` at least -1.
``schedule``
    a valid Quartz cron expression (:mod:`bundlekit.quartz`) and a known ``timezone_id``.
``production``
    the production target (``prod``) exists, is in ``mode: production``, runs as a service principal
    (``run_as.service_principal_name``, never a user) and grants its job permissions to groups (or
    service principals), never to a person.
``secrets``
    no literal that looks like a credential (Databricks, GitHub, AWS, Slack, Google tokens, private
    keys, JWTs, passwords in URLs, non-reference values of password/secret/token keys) in any YAML
    file of the repository; use ``{{secrets/<scope>/<key>}}``, ``${{ secrets.X }}`` or a variable.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bundlekit import jobspec, quartz
from bundlekit.jobspec import key_path
from bundlekit.loader import (
    BUNDLE_FILE_NAMES,
    Bundle,
    BundleError,
    bundle_file,
    load_bundle,
    read_config_file,
    relative_name,
)

#: Targets held to the production rules (mode, run_as, group permissions).
PRODUCTION_TARGETS = ("prod",)

#: Keys of the bundle's top level and of a target, as the bundle JSON schema defines them.
TOP_LEVEL_KEYS = frozenset({
    "bundle", "include", "workspace", "artifacts", "resources", "targets", "environments", "variables",
    "sync", "permissions", "run_as", "experimental", "presets", "scripts", "python",
})
TARGET_KEYS = frozenset({
    "default", "mode", "bundle", "workspace", "artifacts", "resources", "variables", "git", "cluster_id",
    "compute_id", "run_as", "sync", "permissions", "presets",
})
VARIABLE_KEYS = frozenset({"description", "default", "type", "lookup"})

_REMOTE_PREFIXES = ("/", "dbfs:", "s3://", "s3a://", "abfss://", "gs://", "wasbs://", "file:", "http://",
                    "https://", "${")
_SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", ".databricks", "dist", "build",
                           "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the bundle.

    Attributes:
        check: which check found it (``load``, ``schema``, ``wheel``, ``paths``, ``compute``, ``jobs``,
            ``schedule``, ``production``, ``secrets``).
        file: the file, relative to the bundle root ("" when the message already names it).
        key: the key inside the configuration (``resources.jobs.training.tasks[1].depends_on[0]``).
        message: what is wrong and, where there is one, how to fix it.
    """

    check: str
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.key) if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ValidationReport:
    """The result of validating the bundle for one target."""

    target: str
    problems: list[Problem] = field(default_factory=list)
    bundle: Bundle | None = None

    @property
    def ok(self) -> bool:
        """True when no check found a problem."""
        return not self.problems


def validate_bundle(
    root: Path | str,
    target: str | None = None,
    overrides: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_name: str | None = None,
    secrets: Sequence[Problem] | None = None,
) -> ValidationReport:
    """Run every offline check on the bundle at ``root`` for ``target``; never raises for a bad bundle.

    Args:
        root: the bundle root (the folder holding ``databricks.yml``).
        target: the target; None selects the default target.
        overrides: variable values (``--var name=value``), as for :func:`bundlekit.loader.load_bundle`.
        env: environment for ``BUNDLE_VAR_<name>`` (default ``os.environ``).
        user_name: stands in for ``${workspace.current_user.userName}``.
        secrets: the result of :func:`secret_problems` on ``root`` when the caller already has it
            (it does not depend on the target); computed here otherwise.

    Returns:
        A :class:`ValidationReport`; ``report.ok`` is False when any check found a problem.
    """
    root_path = Path(root).resolve()
    report = ValidationReport(target=target or "(default)")
    report.problems.extend(secret_problems(root_path) if secrets is None else secrets)
    try:
        bundle = load_bundle(root_path, target, overrides or {}, env=env, user_name=user_name)
    except BundleError as exc:
        report.problems.insert(0, Problem("load", "", "", str(exc)))
        return report
    report.target = bundle.target
    report.bundle = bundle
    problems = [
        *structure_problems(bundle),
        *resource_schema_problems(bundle),
        *wheel_task_problems(bundle),
        *path_problems(bundle),
        *compute_problems(bundle),
        *job_graph_problems(bundle),
        *limit_problems(bundle),
        *schedule_problems(bundle),
        *production_problems(bundle),
    ]
    kept: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for problem in problems:  # one problem per key: the typed-class message wins over later checks
        if problem.key and (problem.file, problem.key) in seen:
            continue
        seen.add((problem.file, problem.key))
        kept.append(problem)
    report.problems[:0] = kept
    return report


def validate_targets(
    root: Path | str,
    targets: Sequence[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_name: str | None = None,
) -> list[ValidationReport]:
    """:func:`validate_bundle` for each of ``targets`` (default: every target the bundle declares).

    Raises:
        BundleError: ``databricks.yml`` is missing or is not valid YAML (no target can be listed).
    """
    if not targets:
        targets = declared_targets(root)
    secrets = secret_problems(Path(root).resolve())  # the same files for every target: scan once
    return [validate_bundle(root, t, overrides, env=env, user_name=user_name, secrets=secrets) for t in targets]


def declared_targets(root: Path | str) -> list[str]:
    """The target names ``databricks.yml`` declares, in file order (``[None]``-free; may be empty).

    Raises:
        BundleError: no ``databricks.yml`` in ``root`` or it is not valid YAML.
    """
    folder = Path(root).resolve()
    targets = read_config_file(bundle_file(folder), folder).get("targets") or {}
    return [str(t) for t in targets] if isinstance(targets, dict) else []


# --------------------------------------------------------------------------------------------------
# Helpers


def _source(bundle: Bundle, dotted: str) -> str:
    return relative_name(bundle.source_of(dotted), bundle.root)


# --------------------------------------------------------------------------------------------------
# schema: top-level keys, targets, variables; resources against the databricks-bundles typed classes


def structure_problems(bundle: Bundle) -> list[Problem]:
    """Unknown keys at the top level, in a target or in a variable declaration, per file."""
    problems: list[Problem] = []
    known_types = set(resource_classes())
    for path in bundle.files:
        data = read_config_file(path, bundle.root)
        rel = relative_name(path, bundle.root)
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                problems.append(Problem("schema", rel, str(key), _unknown(key, TOP_LEVEL_KEYS, "top-level key")))
        for name, spec in (data.get("variables") or {}).items():
            for key in spec if isinstance(spec, dict) else ():
                if key not in VARIABLE_KEYS:
                    problems.append(Problem("schema", rel, f"variables.{name}.{key}",
                                            _unknown(key, VARIABLE_KEYS, "variable field")))
        sections = [("resources", data.get("resources"))]
        for tname, tcfg in (data.get("targets") or {}).items():
            if not isinstance(tcfg, dict):
                continue
            for key in tcfg:
                if key not in TARGET_KEYS:
                    problems.append(Problem("schema", rel, f"targets.{tname}.{key}",
                                            _unknown(key, TARGET_KEYS, "target field")))
            sections.append((f"targets.{tname}.resources", tcfg.get("resources")))
        for where, resources in sections:
            for rtype in resources if isinstance(resources, dict) else ():
                if known_types and rtype not in known_types:
                    problems.append(Problem("schema", rel, f"{where}.{rtype}",
                                            _unknown(rtype, known_types, "resource type")))
    return problems


def _unknown(key: Any, known: typing.Iterable[str], what: str) -> str:
    close = [k for k in sorted(known) if _similar(str(key), k)]
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown {what} {str(key)!r}{hint}"


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.75


def resource_classes() -> dict[str, type]:
    """``{resource type (plural, as under resources:): databricks-bundles typed class}``.

    Empty when ``databricks-bundles`` is not installed (then :func:`resource_schema_problems` reports
    that the schema check could not run).
    """
    try:
        from databricks.bundles.core._resource_type import _ResourceType
    except ImportError:  # pragma: no cover - databricks-bundles is a dev dependency
        return {}
    return {rt.plural_name: rt.resource_type for rt in _ResourceType.all()}


def resource_schema_problems(bundle: Bundle) -> list[Problem]:
    """Each resource of the resolved bundle against its ``databricks-bundles`` typed class.

    ``from_dict`` of the typed class rejects unknown fields, wrong types and missing required fields;
    the first offending key is then located by descending the class's fields.
    """
    classes = resource_classes()
    if not classes:
        return [Problem("schema", "", "resources", "databricks-bundles is not installed, so resource "
                                                   "fields cannot be checked (pip install databricks-bundles)")]
    problems: list[Problem] = []
    for rtype, entries in bundle.resources.items():
        cls = classes.get(rtype)
        if cls is None or not isinstance(entries, dict):
            continue
        for name, definition in entries.items():
            dotted = f"resources.{rtype}.{name}"
            if not isinstance(definition, dict):
                problems.append(Problem("schema", _source(bundle, dotted), dotted, "must be a mapping"))
                continue
            try:
                cls.from_dict(definition)  # type: ignore[attr-defined]
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                key, message = _locate_type_error(cls, definition, dotted, exc)
                problems.append(Problem("schema", _source(bundle, dotted), key, message))
    return problems


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _nested_dataclass(tp: Any) -> tuple[type | None, str]:
    """The dataclass inside a field type and how it is held: ``("one"|"list"|"dict")``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp, "one"
    args = typing.get_args(tp)
    if origin in (list, Sequence) and args:
        inner, _ = _nested_dataclass(args[0])
        return inner, "list" if inner else ""
    if origin is dict and len(args) == 2:
        inner, _ = _nested_dataclass(args[1])
        return inner, "dict" if inner else ""
    for arg in args:  # Union / Optional / VariableOr[...]
        inner, how = _nested_dataclass(arg)
        if inner is not None:
            return inner, how
    return None, ""


def _locate_type_error(cls: type, value: Any, path: str, exc: Exception) -> tuple[str, str]:
    """The deepest key under ``path`` where ``value`` does not fit ``cls``, with a message."""
    if not isinstance(value, dict) or not dataclasses.is_dataclass(cls):
        return path, f"{_describe(exc)} (expected {getattr(cls, '__name__', cls)})"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            return key_path(path, key), _unknown(key, fields, f"field of {cls.__name__}")
    missing = [n for n, f in fields.items()
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in value]
    if missing:
        return path, f"{cls.__name__} needs {', '.join(repr(m) for m in missing)}"
    types = _field_types(cls)
    for key, sub in value.items():
        inner, how = _nested_dataclass(types.get(key))
        if inner is None:
            continue
        items: list[tuple[str | int, Any]] = []
        if how == "one" and isinstance(sub, dict):
            items = [("", sub)]
        elif how == "list" and isinstance(sub, list):
            items = list(enumerate(sub))
        elif how == "dict" and isinstance(sub, dict):
            items = list(sub.items())
        for index, item in items:
            try:
                inner.from_dict(item)  # type: ignore[attr-defined]
            except (ValueError, TypeError, KeyError, AttributeError) as inner_exc:
                at = key_path(path, key) if index == "" else key_path(key_path(path, key), index)
                return _locate_type_error(inner, item, at, inner_exc)
    # A scalar field: find the one whose value the class rejects.
    for key, sub in value.items():
        probe = {**_required_values(cls, value), key: sub}
        try:
            cls.from_dict(probe)  # type: ignore[attr-defined]
        except (ValueError, TypeError, KeyError, AttributeError) as field_exc:
            return key_path(path, key), f"{_describe(field_exc)} (value {sub!r})"
    return path, _describe(exc)


def _required_values(cls: type, value: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: value[f.name] for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name in value}


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return re.sub(r"databricks\.bundles\.[\w.]+\.", "", text)


# --------------------------------------------------------------------------------------------------
# wheel: python_wheel_task package names and entry points against the wheel the bundle builds


@dataclass(frozen=True)
class WheelProject:
    """A wheel the bundle builds: its ``pyproject.toml``, distribution name and entry points."""

    folder: Path
    name: str
    entry_points: dict[str, str]
    dist_folder: Path


def normalize_distribution_name(name: str) -> str:
    """PEP 503 normalisation (``Fraud_MLOps`` -> ``fraud-mlops``), also matching import-style names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_projects(bundle: Bundle) -> list[WheelProject]:
    """The Python projects the bundle's ``whl`` artifacts build (a ``pyproject.toml`` in the artifact path).

    With no ``artifacts`` section, the CLI builds the bundle root when it holds a Python project;
    the same default applies here.
    """
    artifacts = bundle.config.get("artifacts")
    folders: list[Path] = []
    if isinstance(artifacts, dict) and artifacts:
        for spec in artifacts.values():
            if isinstance(spec, dict) and spec.get("type", "whl") == "whl":
                folders.append((bundle.root / str(spec.get("path") or ".")).resolve())
    elif (bundle.root / "pyproject.toml").is_file():
        folders.append(bundle.root)
    projects = []
    for folder in folders:
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            meta = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project") or {}
        except (OSError, tomllib.TOMLDecodeError):
            continue
        points: dict[str, str] = {}
        points.update(meta.get("scripts") or {})
        points.update(meta.get("gui-scripts") or {})
        for group in (meta.get("entry-points") or {}).values():
            if isinstance(group, dict):
                points.update(group)
        projects.append(WheelProject(folder, str(meta.get("name") or folder.name), points, folder / "dist"))
    return projects


def _python_wheel_tasks(bundle: Bundle) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    for job_key, job in bundle.jobs.items():
        for i, task in enumerate(job.get("tasks") or []):
            if isinstance(task, dict) and isinstance(task.get("python_wheel_task"), dict):
                yield job_key, str(task.get("task_key")), i, task


@dataclass(frozen=True)
class _Install:
    """One thing a task installs: a ``libraries`` entry or a dependency of its serverless environment.

    ``kind`` is ``whl``, ``pypi`` (a requirement such as ``xgboost-cpu>=3``), ``requirements`` (a
    requirements file, contents unknown) or ``other`` (a JAR, Maven, CRAN, a pip option); ``file`` is
    the YAML file that declares it (relative wheel paths resolve against its folder).
    """

    kind: str
    value: str
    key: str
    file: Path


_REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _environment(job: Mapping[str, Any], env_key: Any) -> tuple[int, dict[str, Any]] | None:
    """``(index, environment)`` of the job's first environment named ``env_key``; None when undeclared."""
    for k, env in enumerate(job.get("environments") or []):
        if isinstance(env, dict) and env.get("environment_key") == env_key:
            return k, env
    return None


def _environment_dependencies(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, str]]:
    """``(key, dependency)`` of every ``environments[k].spec.dependencies[d]`` of the job."""
    for k, env in enumerate(job.get("environments") or []):
        spec = env.get("spec") if isinstance(env, dict) else None
        deps = spec.get("dependencies") if isinstance(spec, dict) else None
        for d, dep in enumerate(deps if isinstance(deps, list) else []):
            if isinstance(dep, str) and dep.strip():
                yield f"{dotted}.environments[{k}].spec.dependencies[{d}]", dep.strip()


# A PyPI requirement as the Databricks CLI recognises one in environment dependencies (its
# bundle/libraries/local_path.go): a name, optional extras, PEP 440 version specifiers.
_PEP440 = (r"(\d+!)?(\d+(\.\d+)*)([-_.]?(a|b|rc)\d+)?([-_.]?post\d+)?([-_.]?dev\d+)?"
           r"(\+[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*)?")
_CLI_PACKAGE_RE = re.compile(rf"[a-zA-Z0-9\-_]+\s?(\[.*\])?\s?((==|!=|<=|>=|~=|>|<)\s?{_PEP440},?)*")
_PIP_FLAG_RE = re.compile(r"--[a-zA-Z0-9-]+")
_URL_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):/")


def _is_requirement(dep: str) -> bool:
    """``dep`` is a requirement (``xgboost-cpu>=3.0,<4``, ``pkg @ https://...``), as the CLI decides."""
    if _CLI_PACKAGE_RE.fullmatch(dep):
        return True
    name, sep, url = dep.partition(" @ ")
    return bool(sep) and bool(_CLI_PACKAGE_RE.fullmatch(name)) and _is_remote_url(url)


def _is_remote_url(path: str) -> bool:
    m = _URL_SCHEME_RE.match(path)
    return bool(m) and m.group(1).lower() != "file"


def _is_local_dependency(dep: str) -> bool:
    """A serverless environment dependency the Databricks CLI treats as a file of the repository (and
    uploads): a ``./``/``../`` path, or anything that is neither a requirement, a pip option, a
    requirements file, a remote URL nor an absolute (workspace/volume) path."""
    if dep.startswith("."):
        return True
    if _PIP_FLAG_RE.search(dep) or dep.startswith("-r") or _is_requirement(dep):
        return False
    if dep.startswith("file://"):
        return True
    return not _is_remote_url(dep) and not dep.startswith("/")


def _dependency_install(dep: str, key: str, file: Path) -> _Install:
    if dep.startswith("-r"):
        return _Install("requirements", dep, key, file)
    if _PIP_FLAG_RE.search(dep) and not _is_local_dependency(dep):
        return _Install("other", dep, key, file)
    if _is_local_dependency(dep) or not _is_requirement(dep):
        return _Install("whl" if dep.lower().endswith(".whl") else "other", dep, key, file)
    return _Install("pypi", dep, key, file)


def _task_installs(bundle: Bundle, job: Mapping[str, Any], task: Mapping[str, Any], at: str,
                   dotted: str) -> list[_Install]:
    """What ``task`` (at key ``at`` of job ``dotted``) installs: its ``libraries`` and, on serverless,
    its environment's ``spec.dependencies``."""
    found: list[_Install] = []
    for j, lib in enumerate(task.get("libraries") or []):
        if not isinstance(lib, dict):
            continue
        key = f"{at}.libraries[{j}]"
        if lib.get("whl"):
            found.append(_Install("whl", str(lib["whl"]), f"{key}.whl", bundle.source_of(f"{key}.whl")))
        elif isinstance(lib.get("pypi"), dict) and lib["pypi"].get("package"):
            found.append(_Install("pypi", str(lib["pypi"]["package"]), f"{key}.pypi.package", bundle.source_of(key)))
        elif lib.get("requirements"):
            found.append(_Install("requirements", str(lib["requirements"]), f"{key}.requirements",
                                  bundle.source_of(key)))
        else:
            found.append(_Install("other", str(lib), key, bundle.source_of(key)))
    located = _environment(job, task.get("environment_key")) if task.get("environment_key") else None
    if located is not None:
        prefix = f"{dotted}.environments[{located[0]}]."
        for key, dep in _environment_dependencies(job, dotted):
            if key.startswith(prefix):
                found.append(_dependency_install(dep, key, bundle.source_of(key)))
    return found


def _provides(item: _Install, package: str, built: Mapping[Path, str]) -> bool:
    """``item`` installs distribution ``package`` (PEP 503 names compared), or may (a requirements
    file, a remote wheel whose name is a pattern or a reference).

    A local wheel in the folder a whl artifact builds into (``built``: ``{dist folder: normalised
    distribution name}``) is that artifact's wheel; any other local wheel counts by its file name, or
    when it does not exist (the ``paths`` check then reports that path, once).
    """
    wanted = normalize_distribution_name(package)
    if item.kind == "requirements":
        return True
    if item.kind == "pypi":
        m = _REQUIREMENT_NAME_RE.match(item.value)
        return bool(m) and normalize_distribution_name(m.group(1)) == wanted
    if item.kind != "whl":
        return False
    name = item.value.rstrip("/").rsplit("/", 1)[-1]
    if _is_local(item.value):
        path = (item.file.parent / item.value).resolve()
        if path.parent in built:
            return built[path.parent] == wanted
        if not _path_exists(path, "whl"):
            return True
    if any(ch in name for ch in "*?[") or "${" in name:
        return True
    return normalize_distribution_name(name.split("-", 1)[0]) == wanted


def _relative_hint(target: Path, file: Path) -> str:
    """``target`` as a path relative to the folder of ``file`` (how a YAML file there must write it)."""
    rel = Path(os.path.relpath(target, file.parent)).as_posix()
    return rel if rel.startswith(".") else f"./{rel}"


def wheel_task_problems(bundle: Bundle) -> list[Problem]:
    """``python_wheel_task`` package names and entry points the bundle's own wheel must define, and
    the task's compute installs that wheel.

    * A package the bundle does not build must come from something the task installs (a PyPI
      requirement of that name, a remote wheel, a requirements file).
    * A package the bundle builds must be installed where the task runs: on serverless
      (``environment_key``) the environment's ``spec.dependencies`` list the wheel the whl artifact
      builds (a relative path resolves against the YAML file that declares it); on a job cluster or
      ``new_cluster`` the task's ``libraries`` do (``- whl: ...``). ``existing_cluster_id`` is not
      checked (the cluster may have the wheel installed).
    """
    problems: list[Problem] = []
    projects = {normalize_distribution_name(p.name): p for p in wheel_projects(bundle)}
    built = {p.dist_folder.resolve(): name for name, p in projects.items()}
    for job_key, task_key, i, task in _python_wheel_tasks(bundle):
        pwt = task["python_wheel_task"]
        job_dotted = f"resources.jobs.{job_key}"
        at = f"{job_dotted}.tasks[{i}]"
        dotted = f"{at}.python_wheel_task"
        file = _source(bundle, job_dotted)
        package = str(pwt.get("package_name") or "")
        project = projects.get(normalize_distribution_name(package))
        installs = _task_installs(bundle, bundle.jobs[job_key], task, at, job_dotted)
        if project is None:
            if not any(_provides(item, package, built) for item in installs):
                names = ", ".join(p.name for p in projects.values()) or "none (no whl artifact)"
                problems.append(Problem("wheel", file, f"{dotted}.package_name",
                                        f"task {task_key!r}: package {package!r} is not a wheel this bundle "
                                        f"builds (builds: {names}) and the task installs no other package"))
            continue
        if not any(_provides(item, package, built) for item in installs):
            problems.extend(_missing_wheel_problem(bundle, bundle.jobs[job_key], task, task_key, at, job_dotted,
                                                   project))
        entry = str(pwt.get("entry_point") or "")
        target = project.entry_points.get(entry)
        if target is None:
            known = ", ".join(sorted(project.entry_points)) or "none"
            problems.append(Problem("wheel", file, f"{dotted}.entry_point",
                                    f"task {task_key!r}: the {project.name} wheel defines no entry point "
                                    f"{entry!r} (its pyproject.toml defines: {known})"))
            continue
        missing = _entry_point_target_problem(project.folder, target)
        if missing:
            problems.append(Problem("wheel", file, f"{dotted}.entry_point",
                                    f"task {task_key!r}: entry point {entry!r} = {target!r}: {missing}"))
    return problems


def _missing_wheel_problem(bundle: Bundle, job: Mapping[str, Any], task: Mapping[str, Any], task_key: str,
                           at: str, dotted: str, project: WheelProject) -> list[Problem]:
    """The problem of a task whose compute does not install the bundle's wheel ``project``."""
    wheel = project.dist_folder / "*.whl"
    env_key = task.get("environment_key")
    if env_key:
        located = _environment(job, env_key)
        if located is None:
            return []  # undeclared environment: the compute check reports it
        k, env = located
        spec = env.get("spec") if isinstance(env.get("spec"), dict) else {}
        key = f"{dotted}.environments[{k}].spec" + (".dependencies" if "dependencies" in spec else "")
        where = bundle.source_of(key)
        return [Problem("wheel", relative_name(where, bundle.root), key,
                        f"task {task_key!r} runs the {project.name} wheel on serverless (environment "
                        f"{env_key!r}), but the environment's spec.dependencies do not install it: add the "
                        f"wheel the bundle builds, {_relative_hint(wheel, where)!r} (relative to "
                        f"{relative_name(where, bundle.root)})")]
    kind = next((k for k in ("job_cluster_key", "new_cluster") if task.get(k)), None)
    if kind is None:
        return []  # no compute, or an existing cluster that may have it installed: see the compute check
    key = f"{at}.libraries" if task.get("libraries") else f"{at}.{kind}"
    where = bundle.source_of(key)
    return [Problem("wheel", relative_name(where, bundle.root), key,
                    f"task {task_key!r} runs the {project.name} wheel on a cluster ({kind}) but does not "
                    f"install it: add libraries: [{{whl: {_relative_hint(wheel, where)}}}] to the "
                    f"task (relative to {relative_name(where, bundle.root)})")]


def _entry_point_target_problem(project: Path, target: str) -> str | None:
    module, _, attr = target.partition(":")
    module = module.strip()
    attr = attr.split("[")[0].strip()
    rel = Path(*module.split("."))
    candidates = [base / rel.with_suffix(".py") for base in (project / "src", project)]
    candidates += [base / rel / "__init__.py" for base in (project / "src", project)]
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        return f"module {module!r} is not in the project's sources (looked in src/ and the project folder)"
    if not attr:
        return None
    name = attr.split(".")[0]
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        return f"{source.name} cannot be parsed: {exc}"
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    if name not in defined:
        return f"{module} defines no {name!r}"
    return None


# --------------------------------------------------------------------------------------------------
# paths: notebooks, Python/SQL files and libraries that live in the repository


def _is_local(path: str) -> bool:
    return bool(path) and not path.startswith(_REMOTE_PREFIXES)


def _task_paths(task: Mapping[str, Any], at: str) -> Iterator[tuple[str, str, str]]:
    """``(key, path, kind)`` of the repository paths a task names."""
    nb = task.get("notebook_task")
    if isinstance(nb, dict) and nb.get("source", "WORKSPACE") != "GIT" and nb.get("notebook_path"):
        yield f"{at}.notebook_task.notebook_path", str(nb["notebook_path"]), "notebook"
    sp = task.get("spark_python_task")
    if isinstance(sp, dict) and sp.get("source", "WORKSPACE") != "GIT" and sp.get("python_file"):
        yield f"{at}.spark_python_task.python_file", str(sp["python_file"]), "file"
    sql = task.get("sql_task")
    sql_file = sql.get("file") if isinstance(sql, dict) else None
    if isinstance(sql_file, dict) and sql_file.get("source") != "GIT" and sql_file.get("path"):
        yield f"{at}.sql_task.file.path", str(sql_file["path"]), "file"
    for j, lib in enumerate(task.get("libraries") or []):
        if isinstance(lib, dict):
            for kind in ("whl", "jar", "requirements"):
                if lib.get(kind):
                    yield f"{at}.libraries[{j}].{kind}", str(lib[kind]), kind
    each = task.get("for_each_task")
    if isinstance(each, dict) and isinstance(each.get("task"), dict):
        yield from _task_paths(each["task"], f"{at}.for_each_task.task")


_NOTEBOOK_SUFFIXES = ("", ".py", ".ipynb", ".sql", ".scala", ".r", ".R")


def _path_exists(path: Path, kind: str) -> bool:
    if any(ch in str(path) for ch in "*?["):
        return any(path.parent.glob(path.name)) if path.parent.is_dir() else False
    if kind == "notebook":
        return any(Path(str(path) + s).is_file() for s in _NOTEBOOK_SUFFIXES)
    if kind == "dependency":  # pip installs a project folder too
        return path.exists()
    return path.is_file()


def _job_paths(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, str, str]]:
    """``(key, path, kind)`` of the repository paths a job names: in its tasks and as local
    dependencies of its serverless environments."""
    for i, task in enumerate(job.get("tasks") or []):
        if isinstance(task, dict):
            yield from _task_paths(task, f"{dotted}.tasks[{i}]")
    for key, dep in _environment_dependencies(job, dotted):
        if _is_local_dependency(dep):
            yield key, dep, "whl" if dep.lower().endswith(".whl") else "dependency"


def path_problems(bundle: Bundle) -> list[Problem]:
    """Local paths that do not exist, and ``include`` globs that match no file.

    Paths: notebooks, Python and SQL files, ``libraries`` of job tasks, local dependencies of serverless
    environments (``environments[k].spec.dependencies``) and pipeline libraries. Each resolves against
    the folder of the YAML file that declares it (a path a target adds in ``databricks.yml`` against the
    bundle root), as the CLI resolves it; a wheel in the folder a ``whl`` artifact builds into is fine.
    Includes: an ``include`` pattern that matches nothing loads nothing; deploying that bundle would
    delete the resources it no longer defines.
    """
    problems: list[Problem] = _include_problems(bundle)
    dist_folders = [p.dist_folder.resolve() for p in wheel_projects(bundle)]
    for job_key, job in bundle.jobs.items():
        if not isinstance(job, dict):
            continue
        for key, raw, kind in _job_paths(job, f"resources.jobs.{job_key}"):
            if not _is_local(raw):
                continue
            source = bundle.source_of(key)
            path = (source.parent / raw).resolve()
            if kind == "whl" and path.parent in dist_folders:
                continue  # built by the whl artifact at deploy time
            if _path_exists(path, kind):
                continue
            what = {"notebook": "notebook", "whl": "wheel", "jar": "JAR", "requirements": "requirements file",
                    "file": "file", "dependency": "file"}[kind]
            hint = ""
            if kind == "dependency":
                hint = ("; the Databricks CLI treats an environment dependency that is not a plain requirement "
                        "(name, extras, version specifiers) as a local path")
            if kind == "whl":
                hint = (f"; a whl artifact builds into {', '.join(relative_name(d, bundle.root) for d in dist_folders)}"
                        if dist_folders else "; no whl artifact builds it")
            problems.append(Problem("paths", relative_name(source, bundle.root), key,
                                    f"{what} {raw!r} does not exist (resolved against {relative_name(source.parent, bundle.root) or '.'}/: "
                                    f"{relative_name(path, bundle.root)}){hint}"))
    for name, pipeline in (bundle.resources.get("pipelines") or {}).items():
        source = bundle.source_of(f"resources.pipelines.{name}")
        for j, lib in enumerate((pipeline or {}).get("libraries") or []):
            for kind in ("notebook", "file"):
                raw = (lib.get(kind) or {}).get("path") if isinstance(lib, dict) else None
                if raw and _is_local(str(raw)) and not _path_exists((source.parent / str(raw)).resolve(), kind):
                    problems.append(Problem("paths", relative_name(source, bundle.root),
                                            f"resources.pipelines.{name}.libraries[{j}].{kind}.path",
                                            f"{kind} {raw!r} does not exist"))
    return problems


def _include_problems(bundle: Bundle) -> list[Problem]:
    """One problem per ``include`` pattern that matched no file (:attr:`Bundle.unmatched_includes`)."""
    if not bundle.unmatched_includes:
        return []
    main = bundle.files[0] if bundle.files else bundle_file(bundle.root)
    declared = read_config_file(main, bundle.root).get("include") or []
    declared = [declared] if isinstance(declared, str) else declared
    problems = []
    for pattern in bundle.unmatched_includes:
        index = declared.index(pattern) if pattern in declared else None
        problems.append(Problem(
            "paths", relative_name(main, bundle.root), "include" if index is None else f"include[{index}]",
            f"include pattern {pattern!r} matches no file (patterns are relative to the bundle root): nothing "
            f"it should define is loaded, and deploying this bundle would delete the resources it no longer "
            f"defines"))
    return problems


# --------------------------------------------------------------------------------------------------
# compute: one kind of compute per task, declared job clusters and environments, serverless rules

#: Task types that run code, so need compute: a job cluster, a serverless environment, a cluster.
CODE_TASK_TYPES = ("python_wheel_task", "notebook_task", "spark_python_task", "spark_jar_task",
                   "spark_submit_task", "dbt_task")
#: Of those, the types that run on serverless compute when the task names none (notebooks).
SERVERLESS_BY_DEFAULT_TASK_TYPES = ("notebook_task",)
#: Task types that run no code themselves and take no compute.
NO_COMPUTE_TASK_TYPES = ("condition_task", "run_job_task")
#: The ways a task names its compute; a task uses exactly one of them.
COMPUTE_KEYS = ("job_cluster_key", "environment_key", "existing_cluster_id", "new_cluster")
#: Fields of a serverless environment's ``spec`` that choose its version (``client`` is the
#: deprecated name of ``environment_version``; a ``base_environment`` carries its own version).
ENVIRONMENT_VERSION_KEYS = ("environment_version", "client", "base_environment")


def _job_tasks(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, task)`` of every task of a job, including the task inside a ``for_each_task``."""
    def walk(task: Any, at: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(task, dict):
            return
        yield at, task
        each = task.get("for_each_task")
        if isinstance(each, dict):
            yield from walk(each.get("task"), f"{at}.for_each_task.task")

    for i, task in enumerate(job.get("tasks") or []):
        yield from walk(task, f"{dotted}.tasks[{i}]")


def _declared_keys(bundle: Bundle, job: Mapping[str, Any], dotted: str, field_name: str, key_name: str,
                   what: str, problems: list[Problem]) -> dict[Any, int]:
    """``{key: index}`` of a job's ``job_clusters``/``environments``; a key declared twice is a problem."""
    declared: dict[Any, int] = {}
    for n, entry in enumerate(job.get(field_name) or []):
        if not isinstance(entry, dict) or entry.get(key_name) in (None, ""):
            continue  # the schema check reports the missing key
        name = entry[key_name]
        if name in declared:
            first = f"{dotted}.{field_name}[{declared[name]}]"
            key = f"{dotted}.{field_name}[{n}].{key_name}"
            hint = (" (a target's environments are appended to the job's, not merged by key as tasks and "
                    "job clusters are: declare the environment in one place)") if field_name == "environments" else ""
            problems.append(Problem("compute", _source(bundle, key), key,
                                    f"{what} {name!r} is declared twice in job (first as {first} in "
                                    f"{_source(bundle, first)}){hint}"))
            continue
        declared[name] = n
    return declared


def compute_problems(bundle: Bundle) -> list[Problem]:
    """Where each task runs. For every job:

    * each task that runs code (:data:`CODE_TASK_TYPES`) has exactly one kind of compute
      (:data:`COMPUTE_KEYS`: ``job_cluster_key``, ``environment_key``, ``existing_cluster_id``,
      ``new_cluster``); a notebook task may have none (it then runs on serverless notebook compute);
      ``condition_task`` and ``run_job_task`` have none;
    * a ``job_cluster_key`` is declared in the job's ``job_clusters``, an ``environment_key`` in its
      ``environments``; each job cluster and environment key is declared once in the job;
    * a serverless task (``environment_key``) has no ``libraries`` (its environment's
      ``spec.dependencies`` install what it needs);
    * each environment's ``spec`` has an ``environment_version`` (or the deprecated ``client``).

    That a wheel task's compute installs the bundle's wheel is the ``wheel`` check.
    """
    problems: list[Problem] = []
    for job_key, job in bundle.jobs.items():
        if not isinstance(job, dict):
            continue
        dotted = f"resources.jobs.{job_key}"
        clusters = _declared_keys(bundle, job, dotted, "job_clusters", "job_cluster_key", "job cluster", problems)
        environments = _declared_keys(bundle, job, dotted, "environments", "environment_key", "environment",
                                      problems)
        for k, env in enumerate(job.get("environments") or []):
            if not isinstance(env, dict):
                continue
            spec = env.get("spec")
            if not isinstance(spec, dict) or not any(spec.get(v) not in (None, "") for v in ENVIRONMENT_VERSION_KEYS):
                key = f"{dotted}.environments[{k}]" + (".spec" if isinstance(spec, dict) else "")
                problems.append(Problem("compute", _source(bundle, key), key,
                                        f"environment {env.get('environment_key')!r} has no environment_version: "
                                        f"set spec.environment_version to a serverless environment version "
                                        f"(e.g. \"5\"; client is its deprecated name)"))
        for at, task in _job_tasks(job, dotted):
            problems.extend(_task_compute_problems(bundle, job, task, at, dotted, clusters, environments))
    return problems


def _task_compute_problems(bundle: Bundle, job: Mapping[str, Any], task: Mapping[str, Any], at: str, dotted: str,
                           clusters: Mapping[Any, int], environments: Mapping[Any, int]) -> list[Problem]:
    problems: list[Problem] = []
    name = task.get("task_key")
    kind_of_task = jobspec.task_type(task)
    kinds = [k for k in COMPUTE_KEYS if task.get(k) not in (None, "", {})]
    if kind_of_task in NO_COMPUTE_TASK_TYPES:
        for k in kinds:
            key = f"{at}.{k}"
            problems.append(Problem("compute", _source(bundle, key), key,
                                    f"task {name!r} is a {kind_of_task}, which runs no code and takes no compute: "
                                    f"remove {k}"))
        return problems
    if len(kinds) > 1:
        first, second = f"{at}.{kinds[0]}", f"{at}.{kinds[1]}"
        problems.append(Problem(
            "compute", _source(bundle, second), second,
            f"task {name!r} has two kinds of compute, {kinds[0]} (set in {_source(bundle, first)}) and "
            f"{', '.join(kinds[1:])} (set in {_source(bundle, second)}); give it exactly one (a target's "
            f"override of a task adds to the task, it does not replace its compute)"))
    elif not kinds and kind_of_task in CODE_TASK_TYPES and kind_of_task not in SERVERLESS_BY_DEFAULT_TASK_TYPES:
        problems.append(Problem(
            "compute", _source(bundle, at), at,
            f"task {name!r} ({kind_of_task}) has no compute: give it one of job_cluster_key (a job cluster of "
            f"the job), environment_key (a serverless environment of the job), existing_cluster_id or "
            f"new_cluster (for example in the target's override in databricks.yml)"))
    cluster = task.get("job_cluster_key")
    if cluster not in (None, "") and cluster not in clusters:
        key = f"{at}.job_cluster_key"
        problems.append(Problem("compute", _source(bundle, key), key,
                                f"task {name!r} uses job cluster {cluster!r}, which {dotted}.job_clusters does not "
                                f"declare (declared: {', '.join(map(str, clusters)) or 'none'})"))
    env_key = task.get("environment_key")
    if env_key not in (None, ""):
        if env_key not in environments:
            key = f"{at}.environment_key"
            problems.append(Problem("compute", _source(bundle, key), key,
                                    f"task {name!r} uses environment {env_key!r}, which {dotted}.environments does "
                                    f"not declare (declared: {', '.join(map(str, environments)) or 'none'})"))
        if task.get("libraries"):
            key = f"{at}.libraries"
            env_at = (f"{dotted}.environments[{environments[env_key]}].spec.dependencies"
                      if env_key in environments else f"{dotted}.environments")
            problems.append(Problem("compute", _source(bundle, key), key,
                                    f"task {name!r} runs on serverless (environment_key {env_key!r}), where a "
                                    f"task takes no libraries: put them in the environment's dependencies "
                                    f"({env_at})"))
    return problems


# --------------------------------------------------------------------------------------------------
# jobs: task graph, parameters, run_job_task parameters


def job_graph_problems(bundle: Bundle) -> list[Problem]:
    """:func:`bundlekit.jobspec.job_problems` for every job, plus ``run_job_task`` parameters."""
    problems: list[Problem] = []
    for job_key, job in bundle.jobs.items():
        dotted = f"resources.jobs.{job_key}"
        file = _source(bundle, dotted)
        if not isinstance(job, dict):
            continue
        for key, message in jobspec.job_problems(job):
            problems.append(Problem("jobs", file, key_path(dotted, key) if key else dotted, message))
        for i, task in enumerate(job.get("tasks") or []):
            rjt = task.get("run_job_task") if isinstance(task, dict) else None
            if not isinstance(rjt, dict):
                continue
            other = bundle.job_id_ref(rjt.get("job_id"))
            if other is None or other not in bundle.jobs:
                continue
            declared = {str(p.get("name")) for p in bundle.jobs[other].get("parameters") or [] if isinstance(p, dict)}
            for name in rjt.get("job_parameters") or {}:
                if name not in declared:
                    problems.append(Problem("jobs", file, f"{dotted}.tasks[{i}].run_job_task.job_parameters.{name}",
                                            f"job {other!r} declares no parameter {name!r} "
                                            f"(declared: {', '.join(sorted(declared)) or 'none'})"))
    return problems


def _as_int(value: Any) -> int | None:
    """An integer field's value (an int, or a string of one after variable resolution); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def limit_problems(bundle: Bundle) -> list[Problem]:
    """Numeric job and task settings outside what they mean.

    ``timeout_seconds`` (job and task) is 0 (no timeout) or more; ``max_concurrent_runs`` (when set) is
    at least 1 (0 skips every new run); a task's ``max_retries`` (when set) is -1 (retry without limit),
    0 or more.
    """
    problems: list[Problem] = []

    def check(mapping: Mapping[str, Any], at: str, name: str, minimum: int, meaning: str) -> None:
        value = _as_int(mapping.get(name))
        if value is not None and value < minimum:
            key = f"{at}.{name}"
            problems.append(Problem("jobs", _source(bundle, key), key, f"{name} is {value}: {meaning}"))

    for job_key, job in bundle.jobs.items():
        if not isinstance(job, dict):
            continue
        dotted = f"resources.jobs.{job_key}"
        timeout = "must be 0 (no timeout) or a number of seconds"
        check(job, dotted, "timeout_seconds", 0, timeout)
        check(job, dotted, "max_concurrent_runs", 1,
              "must be at least 1 (with 0 every new run is skipped; pause the schedule instead)")
        for at, task in _job_tasks(job, dotted):
            check(task, at, "timeout_seconds", 0, timeout)
            check(task, at, "max_retries", -1, "must be -1 (retry without limit), 0 (no retries) or more")
    return problems


# --------------------------------------------------------------------------------------------------
# schedule: Quartz cron and time zone


def schedule_problems(bundle: Bundle) -> list[Problem]:
    """Invalid ``schedule.quartz_cron_expression`` or unknown ``schedule.timezone_id`` of any job."""
    problems: list[Problem] = []
    for job_key, job in bundle.jobs.items():
        schedule = job.get("schedule") if isinstance(job, dict) else None
        if not isinstance(schedule, dict):
            continue
        dotted = f"resources.jobs.{job_key}.schedule"
        file = _source(bundle, f"resources.jobs.{job_key}")
        expression = schedule.get("quartz_cron_expression")
        for message in quartz.quartz_cron_problems(str(expression or "")):
            problems.append(Problem("schedule", file, f"{dotted}.quartz_cron_expression",
                                    f"invalid Quartz cron expression {expression!r}: {message}"))
        tz = schedule.get("timezone_id")
        if tz is None or not _known_time_zone(str(tz)):
            problems.append(Problem("schedule", file, f"{dotted}.timezone_id",
                                    f"unknown time zone {tz!r} (use a Java/IANA ID such as UTC or Europe/Amsterdam)"))
    return problems


def _known_time_zone(name: str) -> bool:
    if name in ("UTC", "GMT"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------------------------------
# production: mode, run_as a service principal, permissions for groups


def production_problems(bundle: Bundle) -> list[Problem]:
    """The production rules, for a production target (``prod``), and that such a target exists."""
    main = relative_name(bundle.files[0], bundle.root) if bundle.files else BUNDLE_FILE_NAMES[0]
    if not any(t in bundle.targets for t in PRODUCTION_TARGETS):
        return [Problem("production", main, "targets",
                        f"no production target ({' or '.join(PRODUCTION_TARGETS)}) is declared")]
    if bundle.target not in PRODUCTION_TARGETS:
        return []
    problems: list[Problem] = []
    t = f"targets.{bundle.target}"
    file = relative_name(bundle.source_of(t), bundle.root)
    if bundle.mode != "production":
        problems.append(Problem("production", file, f"{t}.mode",
                                f"must be 'production' (is {bundle.mode!r}): production mode makes the CLI "
                                f"refuse development-only settings and check the deployment path"))
    run_as = bundle.config.get("run_as")
    if not isinstance(run_as, dict) or not run_as:
        problems.append(Problem("production", file, f"{t}.run_as",
                                "missing: production jobs must run as a service principal "
                                "(run_as: {service_principal_name: <application-id>})"))
    else:
        if run_as.get("user_name"):
            problems.append(Problem("production", file, f"{t}.run_as.user_name",
                                    f"production jobs run as a person ({run_as['user_name']!r}); use "
                                    f"service_principal_name"))
        elif not str(run_as.get("service_principal_name") or "").strip():
            problems.append(Problem("production", file, f"{t}.run_as.service_principal_name",
                                    "is empty: give the application ID of the service principal the jobs run as"))
    problems.extend(_permission_problems(bundle, file, t))
    return problems


def _permission_problems(bundle: Bundle, file: str, t: str) -> list[Problem]:
    problems: list[Problem] = []
    top = bundle.config.get("permissions") or []
    has_group = any(isinstance(p, dict) and p.get("group_name") for p in top)
    for j, p in enumerate(top):
        if isinstance(p, dict) and p.get("user_name"):
            problems.append(Problem("production", file, f"permissions[{j}].user_name",
                                    f"{p['user_name']!r} is a person: grant permissions to a group "
                                    f"(group_name) or a service principal"))
    for job_key, job in bundle.jobs.items():
        perms = (job or {}).get("permissions") or []
        for j, p in enumerate(perms):
            if isinstance(p, dict) and p.get("user_name"):
                problems.append(Problem("production", _source(bundle, f"resources.jobs.{job_key}"),
                                        f"resources.jobs.{job_key}.permissions[{j}].user_name",
                                        f"{p['user_name']!r} is a person: grant job permissions to a group"))
        if not has_group and not any(isinstance(p, dict) and p.get("group_name") for p in perms):
            problems.append(Problem("production", file, f"{t}.permissions",
                                    f"job {job_key!r} grants no permission to a group: add a group "
                                    f"(target permissions: [{{level: CAN_RUN, group_name: ...}}], or CAN_MANAGE_RUN on the job)"))
    return problems


# --------------------------------------------------------------------------------------------------
# secrets: literals that look like credentials, in any YAML file of the repository


#: ``(name, pattern)`` of credential formats with a recognisable shape.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Databricks personal access token", re.compile(r"\bdapi[0-9a-f]{32}(-\d+)?\b")),
    ("Databricks OAuth secret", re.compile(r"\bdose[0-9a-f]{32}\b")),
    ("GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b")),
    ("AWS access key ID", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}")),
    ("password in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@${}]+:[^/\s@${}]+@")),
)
_SECRET_KEY_RE = re.compile(
    r"(^|_)(password|passwd|secret|token|api_?key|access_?key|secret_?key|private_?key|account_?key|"
    r"client_?secret|auth_?token|access_?token|credentials?)(_|$)"
)
_REFERENCE_RE = re.compile(r"\$\{|\{\{|\$\(|^\s*\$[A-Z_]+\s*$")


def yaml_files(root: Path) -> list[Path]:
    """Every ``*.yml`` / ``*.yaml`` under ``root``, skipping virtualenvs, build output and hidden folders
    (except ``.github``)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and (not d.startswith(".") or d == ".github")
                         and not d.startswith(".lakehouse"))
        found.extend(Path(folder) / f for f in sorted(files) if f.endswith((".yml", ".yaml")))
    return found


def _looks_like_secret_value(key: str, value: str) -> bool:
    normalized = re.sub(r"[.\-\s]+", "_", key).lower()
    if not _SECRET_KEY_RE.search(normalized):
        return False
    text = value.strip()
    if not text or _REFERENCE_RE.search(text) or any(ch.isspace() for ch in text):
        return False
    if text.startswith(("/", "http://", "https://")):
        return False  # a path or URL (URLs with credentials are caught by SECRET_PATTERNS)
    if len(text) < 8:
        return False
    has_digit = any(ch.isdigit() for ch in text)
    has_alpha = any(ch.isalpha() for ch in text)
    return (has_digit and has_alpha) or len(text) >= 20


def _walk_strings(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """``(key path, last key, string)`` for every string in a parsed YAML document."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = key_path(path, str(k))
            if isinstance(v, str):
                yield sub, str(k), v
            else:
                yield from _walk_strings(v, sub)
    elif isinstance(value, list):
        last = path.rsplit(".", 1)[-1].split("[")[0]
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield key_path(path, i), last, v
            else:
                yield from _walk_strings(v, key_path(path, i))


def secret_problems(root: Path, files: Sequence[Path] | None = None) -> list[Problem]:
    """Literals in YAML files that look like credentials (see :data:`SECRET_PATTERNS`).

    The matched text is never echoed in full: the message shows its first four characters.
    """
    problems: list[Problem] = []
    for path in files if files is not None else yaml_files(root):
        try:
            rel = str(path.resolve().relative_to(root))
        except ValueError:
            rel = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            docs = None
        if docs is None:  # not YAML we can parse: scan the lines
            for n, line in enumerate(text.splitlines(), 1):
                for name, pattern in SECRET_PATTERNS:
                    m = pattern.search(line)
                    if m:
                        problems.append(Problem("secrets", rel, f"line {n}", _secret_message(name, m.group(0))))
            continue
        for doc in docs:
            for key, last, value in _walk_strings(doc, ""):
                for name, pattern in SECRET_PATTERNS:
                    m = pattern.search(value)
                    if m:
                        problems.append(Problem("secrets", rel, key, _secret_message(name, m.group(0))))
                        break
                else:
                    if _looks_like_secret_value(last, value):
                        problems.append(Problem("secrets", rel, key, _secret_message(
                            f"literal value of a {last!r} key", value)))
    return problems


def _secret_message(what: str, text: str) -> str:
    return (f"looks like a {what} ({text.strip()[:4]}...): never commit credentials; use a secret "
            f"reference ({{{{secrets/<scope>/<key>}}}} in the bundle, ${{{{ secrets.NAME }}}} in a workflow) "
            f"or a variable set at deploy time")
