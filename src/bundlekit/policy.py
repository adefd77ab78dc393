"""Named policies: stricter rules a bundle opts into, on top of the compatibility rules.

The compatibility rules (:mod:`bundlekit.compat`) hold for every bundle. A policy adds a team's own
conventions, which the CLI and the APIs do not require and other bundles need not follow. A bundle
opts in with a file next to ``databricks.yml``, :data:`POLICY_FILE_NAME`::

    # bundlekit-policy.yml
    policy: production            # a policy of POLICIES
    production_targets: [prod]    # the targets held to the production rules
    strict: true                  # the CLI's warnings fail validation too (as `bundle validate --strict`)
    disable: []                   # rules of the policy to leave out
    waive:                        # problems accepted for now, each with its reason (reported as warnings)
      - {rule: unique-keys, key: resources.experiments.x, reason: "renamed in the next release"}

``bundlekit validate`` (and :func:`bundlekit.validate.validate_bundle`) reads that file when it is
there; ``--policy NAME`` chooses a policy for a bundle without one, ``--policy none`` checks
compatibility only. Each rule's problems carry the rule's name in :attr:`Problem.rule`.

The ``production`` policy's rules (:data:`RULES`):

``production-target``
    a production target exists; validated, it is in ``mode: production``, runs as a service principal
    and grants its jobs to groups, never to a person.
``no-literal-secrets``
    no YAML file of the repository holds a literal that looks like a credential.
``failure-notifications``
    every job notifies someone when it fails (``email_notifications.on_failure`` or
    ``webhook_notifications.on_failure``).
``pinned-runtimes``
    job clusters name a Databricks Runtime version (not ``latest``, not left to a policy).
``include-matches``
    every ``include`` pattern matches a file (a pattern that matches nothing loads nothing, and a
    deploy would delete what it defined).
``wheel-tasks``
    a ``python_wheel_task``'s package is a wheel the bundle builds or installs, its entry point is in
    the project's ``pyproject.toml`` and the function exists, and the task's compute installs the wheel.
``local-libraries``
    local wheels, JARs and environment dependencies exist (or are what a whl artifact builds).
``job-references``
    ``{{job.parameters.x}}`` names a declared parameter, ``{{tasks.t.values.k}}`` an upstream task, a
    ``run_job_task`` passes parameters the job it runs declares.
``concurrency``
    ``max_concurrent_runs`` is at least 1 (0 skips every run).
"""

from __future__ import annotations

import ast
import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bundlekit import jobspec
from bundlekit.compat import Context, _jobs, as_int, is_local_path, job_tasks
from bundlekit.findings import ERROR, WARNING, Problem, source_of
from bundlekit.jobspec import key_path
from bundlekit.loader import BUNDLE_FILE_NAMES, Bundle, bundle_file, read_config_file, relative_name
from bundlekit.yamlsource import parse_yaml

#: The file next to ``databricks.yml`` that opts a bundle into a policy.
POLICY_FILE_NAME = "bundlekit-policy.yml"

#: libyaml's safe loader when PyYAML has it (the secret scan reads every YAML file of the repository).
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", ".databricks", "dist", "build",
                           "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"})


class PolicyError(ValueError):
    """The policy file or the policy name is not one this toolkit knows."""


@dataclass(frozen=True)
class Policy:
    """A named set of rules and their settings.

    Attributes:
        name: the policy's name (a key of :data:`POLICIES`).
        rules: the rules it applies (names of :data:`RULES`).
        production_targets: targets held to the ``production-target`` rule.
        strict: warnings fail validation too (the CLI's ``--strict``).
        source: the file it was read from ("" when named on the command line).
        waivers: problems the bundle accepts for now: ``(rule, key, reason)``; a problem of that rule
            (compatibility or policy) at that key is reported as a warning naming the reason.
    """

    name: str
    rules: tuple[str, ...]
    production_targets: tuple[str, ...] = ("prod",)
    strict: bool = False
    source: str = ""
    waivers: tuple[tuple[str, str, str], ...] = ()

    def waive(self, problems: Sequence[Problem]) -> list[Problem]:
        """``problems`` with those the policy waives turned into warnings that name the reason."""
        if not self.waivers:
            return list(problems)
        out = []
        for problem in problems:
            reason = next((r for rule, key, r in self.waivers if rule == problem.rule and key == problem.key), None)
            out.append(replace(problem, severity=WARNING, waived=reason) if reason else problem)
        return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------------------
# production: mode, run_as a service principal, permissions for groups


def production_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``production-target``: the bundle declares a production target (:attr:`Policy.production_targets`);
    when validating it, it is in ``mode: production``, its jobs run as a service principal (never a
    person), named by a top-level ``run_as`` or, without one, by each job's ``run_as`` (the form a
    bundle with quality monitors or serving endpoints needs), and it grants its jobs to groups (or
    service principals), never to a person."""
    bundle = ctx.bundle
    targets = policy.production_targets
    main = relative_name(bundle.files[0], bundle.root) if bundle.files else BUNDLE_FILE_NAMES[0]
    if not any(t in bundle.targets for t in targets):
        return [Problem("production", main, "targets",
                        f"no production target ({' or '.join(targets)}) is declared (the policy's "
                        f"production_targets)")]
    if bundle.target not in targets:
        return []
    problems: list[Problem] = []
    t = f"targets.{bundle.target}"
    file = relative_name(bundle.source_of(t), bundle.root)
    if bundle.mode != "production":
        problems.append(Problem("production", file, f"{t}.mode",
                                f"must be 'production' (is {bundle.mode!r}): production mode makes the CLI "
                                f"refuse development-only settings and check the deployment path"))
    run_as = bundle.config.get("run_as")
    jobs = list(_jobs(ctx))
    if isinstance(run_as, dict) and run_as:
        problems.extend(_run_as_problems(run_as, file, f"{t}.run_as", "production jobs"))
    elif jobs and all(isinstance(job.get("run_as"), dict) and job["run_as"] for _, _, job in jobs):
        for job_key, dotted, job in jobs:
            problems.extend(_run_as_problems(job["run_as"], source_of(bundle, f"{dotted}.run_as"),
                                             f"{dotted}.run_as", f"job {job_key!r}"))
    else:
        unnamed = [job_key for job_key, _, job in jobs if not job.get("run_as")]
        which = f" (no run_as on job(s) {', '.join(repr(k) for k in unnamed)})" if unnamed and len(unnamed) < len(jobs) else ""
        problems.append(Problem("production", file, f"{t}.run_as",
                                "missing: production jobs must run as a service principal (run_as: "
                                "{service_principal_name: <application-id>}, at the top of the target or on "
                                f"every job){which}"))
    problems.extend(_permission_problems(ctx, file, t))
    return problems


def _run_as_problems(run_as: dict[str, Any], file: str, key: str, what: str) -> list[Problem]:
    """A ``run_as`` that names a person, or an empty service principal."""
    if run_as.get("user_name"):
        return [Problem("production", file, f"{key}.user_name",
                        f"{what} run as a person ({run_as['user_name']!r}); use service_principal_name")]
    if not str(run_as.get("service_principal_name") or "").strip():
        return [Problem("production", file, f"{key}.service_principal_name",
                        "is empty: give the application ID of the service principal the jobs run as")]
    return []


def _permission_problems(ctx: Context, file: str, t: str) -> list[Problem]:
    bundle = ctx.bundle
    problems: list[Problem] = []
    top = _list(bundle.config.get("permissions"))
    has_group = any(isinstance(p, dict) and p.get("group_name") for p in top)
    for j, p in enumerate(top):
        if isinstance(p, dict) and p.get("user_name"):
            problems.append(Problem("production", file, f"permissions[{j}].user_name",
                                    f"{p['user_name']!r} is a person: grant permissions to a group "
                                    f"(group_name) or a service principal"))
    for job_key, dotted, job in _jobs(ctx):
        perms = _list(job.get("permissions"))
        for j, p in enumerate(perms):
            if isinstance(p, dict) and p.get("user_name"):
                problems.append(Problem("production", source_of(bundle, dotted), f"{dotted}.permissions[{j}].user_name",
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
            docs = list(yaml.load_all(text, Loader=_FAST_LOADER))
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

# --------------------------------------------------------------------------------------------------
# wheel-tasks: python_wheel_task package names and entry points against the wheel the bundle builds
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
        for name, spec in artifacts.items():
            if isinstance(spec, dict) and spec.get("type", "whl") == "whl" and not spec.get("files"):
                base = bundle.source_of(f"artifacts.{name}").parent
                folders.append((base / str(spec.get("path") or ".")).resolve())
    elif (bundle.root / "pyproject.toml").is_file():
        folders.append(bundle.root)
    projects = []
    for folder in folders:
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        meta = document.get("project") if isinstance(document.get("project"), dict) else {}
        poetry = (document.get("tool") or {}).get("poetry") if isinstance(document.get("tool"), dict) else None
        poetry = poetry if isinstance(poetry, dict) else {}
        points: dict[str, str] = {}
        for table in (meta.get("scripts"), meta.get("gui-scripts"), poetry.get("scripts")):
            if isinstance(table, dict):  # PEP 621, and Poetry's [tool.poetry.scripts]
                points.update({str(k): str(v) for k, v in table.items() if isinstance(v, str)})
        for groups in (meta.get("entry-points"), poetry.get("plugins")):
            for group in (groups or {}).values() if isinstance(groups, dict) else ():
                if isinstance(group, dict):
                    points.update({str(k): str(v) for k, v in group.items() if isinstance(v, str)})
        name = meta.get("name") or poetry.get("name") or folder.name
        projects.append(WheelProject(folder, str(name), points, folder / "dist"))
    return projects


def _python_wheel_tasks(bundle: Bundle) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    """``(job key, task key, index, task)`` of every wheel task; jobs or tasks that are not mappings
    (``my_job:`` with nothing under it) are skipped: other rules report them."""
    jobs = bundle.jobs if isinstance(bundle.jobs, dict) else {}
    for job_key, job in jobs.items():
        tasks = job.get("tasks") if isinstance(job, dict) else None
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            if isinstance(task, dict) and isinstance(task.get("python_wheel_task"), dict):
                yield str(job_key), str(task.get("task_key")), i, task


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
    environments = job.get("environments")
    for k, env in enumerate(environments if isinstance(environments, list) else []):
        if isinstance(env, dict) and env.get("environment_key") == env_key:
            return k, env
    return None


def _environment_dependencies(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, str]]:
    """``(key, dependency)`` of every ``environments[k].spec.dependencies[d]`` of the job."""
    environments = job.get("environments")
    for k, env in enumerate(environments if isinstance(environments, list) else []):
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
    libraries = task.get("libraries")
    for j, lib in enumerate(libraries if isinstance(libraries, list) else []):
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
    if is_local_path(item.value):
        path = (item.file.parent / item.value).resolve()
        if path.parent in built:
            return built[path.parent] == wanted
        if not _local_exists(path):
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
        file = source_of(bundle, job_dotted)
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
    rel = Path(*module.split(".")) if module else Path()
    candidates = [base / rel.with_suffix(".py") for base in (project / "src", project)] if module else []
    candidates += [base / rel / "__init__.py" for base in (project / "src", project)] if module else []
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        return f"module {module!r} is not in the project's sources (looked in src/ and the project folder)"
    if not attr:
        return None
    name = attr.split(".")[0]
    defined = _top_level_names(source, source.stat().st_mtime_ns)
    if isinstance(defined, str):
        return defined
    if name not in defined:
        return f"{module} defines no {name!r}"
    return None


@functools.lru_cache(maxsize=256)
def _top_level_names(source: Path, mtime_ns: int) -> frozenset[str] | str:
    """The names a Python module defines at its top level (cached per file version); a message when
    it cannot be parsed."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError) as exc:
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
    return frozenset(defined)


# --------------------------------------------------------------------------------------------------
# failure notifications, pinned runtimes, includes, local libraries, references, concurrency


def failure_notification_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``failure-notifications``: every job tells someone when it fails."""
    problems = []
    for job_key, dotted, job in _jobs(ctx):
        email = _dict(job.get("email_notifications")).get("on_failure")
        hooks = _dict(job.get("webhook_notifications")).get("on_failure")
        if not _list(email) and not _list(hooks) and not isinstance(email, str):
            problems.append(Problem("notifications", source_of(ctx.bundle, dotted), f"{dotted}.email_notifications",
                                    f"job {job_key!r} notifies no one when it fails: add email_notifications."
                                    f"on_failure (or webhook_notifications.on_failure)"))
    return problems


_PINNED_SPARK_VERSION = re.compile(r"^\d+\.(\d+|x)([.-]|$)")


def pinned_runtime_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``pinned-runtimes``: a job cluster names a Databricks Runtime version (``15.4.x-scala2.12``, not
    ``latest``, not unset). (A serverless environment without ``environment_version`` is already a
    compatibility error: the Jobs API refuses it.)"""
    problems = []

    def check(spec: Any, at: str) -> None:
        if not isinstance(spec, dict) or spec.get("policy_id") and "spark_version" not in spec:
            return
        version = spec.get("spark_version")
        if not isinstance(version, str) or "${" in version:
            if version is None:
                problems.append(Problem("runtime", source_of(ctx.bundle, at), f"{at}.spark_version",
                                        "the cluster names no Databricks Runtime: set spark_version"))
            return
        if "latest" in version.lower() or not _PINNED_SPARK_VERSION.match(version):
            problems.append(Problem("runtime", source_of(ctx.bundle, at), f"{at}.spark_version",
                                    f"spark_version {version!r} does not pin a Databricks Runtime: name a version "
                                    f"such as 15.4.x-scala2.12"))

    for _, dotted, job in _jobs(ctx):
        for n, cluster in enumerate(_list(job.get("job_clusters"))):
            check(_dict(cluster).get("new_cluster"), f"{dotted}.job_clusters[{n}].new_cluster")
        for at, task in job_tasks(job, dotted):
            check(task.get("new_cluster"), f"{at}.new_cluster")
    return problems


def include_match_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``include-matches``: every ``include`` pattern matches at least one file."""
    bundle = ctx.bundle
    if not bundle.unmatched_includes:
        return []
    main = bundle.files[0] if bundle.files else bundle_file(bundle.root)
    declared = read_config_file(main, bundle.root).get("include") or []
    declared = [declared] if isinstance(declared, str) else _list(declared)
    problems = []
    for pattern in bundle.unmatched_includes:
        index = declared.index(pattern) if pattern in declared else None
        problems.append(Problem(
            "paths", relative_name(main, bundle.root), "include" if index is None else f"include[{index}]",
            f"include pattern {pattern!r} matches no file (patterns are relative to the bundle root): nothing "
            f"it should define is loaded, and deploying this bundle would delete the resources it no longer "
            f"defines"))
    return problems


def _library_paths(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, str, str]]:
    """``(key, path, kind)`` of the wheels, JARs and environment dependencies a job names."""
    for at, task in job_tasks(job, dotted):
        for j, lib in enumerate(_list(task.get("libraries"))):
            for kind in ("whl", "jar"):
                value = _dict(lib).get(kind)
                if isinstance(value, str):
                    yield f"{at}.libraries[{j}].{kind}", value, kind
    for key, dep in _environment_dependencies(job, dotted):
        if _is_local_dependency(dep):
            yield key, dep, "whl" if dep.lower().endswith(".whl") else "dependency"


def _local_exists(path: Path) -> bool:
    if any(ch in str(path) for ch in "*?["):
        try:
            return path.parent.is_dir() and any(path.parent.glob(path.name))
        except (ValueError, OSError):
            return False
    return path.exists()


def local_library_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``local-libraries``: local wheels, JARs and dependencies exist, each resolved against the file that
    names it; a wheel in the folder a whl artifact builds into is fine (built at deploy time)."""
    bundle = ctx.bundle
    problems: list[Problem] = []
    dist_folders = [p.dist_folder.resolve() for p in wheel_projects(bundle)]
    for _, dotted, job in _jobs(ctx):
        for key, raw, kind in _library_paths(job, dotted):
            if not is_local_path(raw) and not (kind == "dependency" and raw.startswith("file:")):
                continue
            raw_path = raw.split("[")[0] if kind == "whl" and raw.endswith("]") else raw
            raw_path = raw_path.removeprefix("file://")
            source = bundle.source_of(key)
            path = (source.parent / raw_path).resolve()
            if kind == "whl" and path.parent in dist_folders:
                continue
            if _local_exists(path):
                continue
            what = {"whl": "wheel", "jar": "JAR", "dependency": "file"}[kind]
            hint = ""
            if kind == "dependency":
                hint = ("; the Databricks CLI treats an environment dependency that is not a plain requirement "
                        "(name, extras, version specifiers) as a local path")
            if kind == "whl":
                hint = (f"; a whl artifact builds into {', '.join(relative_name(d, bundle.root) for d in dist_folders)}"
                        if dist_folders else "; no whl artifact builds it")
            problems.append(Problem("paths", relative_name(source, bundle.root), key,
                                    f"{what} {raw!r} does not exist (resolved against "
                                    f"{relative_name(source.parent, bundle.root) or '.'}/: "
                                    f"{relative_name(path, bundle.root)}){hint}"))
    return problems


def job_reference_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``job-references``: dynamic value references and job parameters
    (:func:`bundlekit.jobspec.job_problems`, ``references`` part) and ``run_job_task`` parameters."""
    bundle = ctx.bundle
    problems: list[Problem] = []
    for _, dotted, job in _jobs(ctx):
        file = source_of(bundle, dotted)
        for key, message in jobspec.job_problems(job, parts=("references",)):
            problems.append(Problem("jobs", file, key_path(dotted, key) if key else dotted, message))
        for i, task in enumerate(_list(job.get("tasks"))):
            rjt = task.get("run_job_task") if isinstance(task, dict) else None
            if not isinstance(rjt, dict):
                continue
            other = bundle.job_id_ref(rjt.get("job_id"))
            if other is None or not isinstance(bundle.jobs.get(other), dict):
                continue
            declared = {str(p.get("name")) for p in _list(bundle.jobs[other].get("parameters")) if isinstance(p, dict)}
            for name in _dict(rjt.get("job_parameters")):
                if name not in declared:
                    problems.append(Problem("jobs", file, f"{dotted}.tasks[{i}].run_job_task.job_parameters.{name}",
                                            f"job {other!r} declares no parameter {name!r} "
                                            f"(declared: {', '.join(sorted(declared)) or 'none'})"))
    return problems


def concurrency_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """``concurrency``: ``max_concurrent_runs`` (when set) is at least 1."""
    problems = []
    for _, dotted, job in _jobs(ctx):
        value = as_int(job.get("max_concurrent_runs"))
        if value is not None and value < 1:
            key = f"{dotted}.max_concurrent_runs"
            problems.append(Problem("jobs", source_of(ctx.bundle, key), key,
                                    f"max_concurrent_runs is {value}: must be at least 1 (with 0 every new run is "
                                    f"skipped; pause the schedule instead)"))
    return problems


def _wheel_rule(ctx: Context, policy: Policy) -> list[Problem]:
    return wheel_task_problems(ctx.bundle)


def _secrets_rule(ctx: Context, policy: Policy) -> list[Problem]:
    return []  # repository-wide, target-independent: validate_bundle runs secret_problems once


#: Every policy rule: name -> function.
RULES: dict[str, Callable[[Context, Policy], list[Problem]]] = {
    "production-target": production_problems,
    "no-literal-secrets": _secrets_rule,
    "failure-notifications": failure_notification_problems,
    "pinned-runtimes": pinned_runtime_problems,
    "include-matches": include_match_problems,
    "wheel-tasks": _wheel_rule,
    "local-libraries": local_library_problems,
    "job-references": job_reference_problems,
    "concurrency": concurrency_problems,
}

#: The named policies.
POLICIES: dict[str, Policy] = {
    "production": Policy("production", tuple(RULES), ("prod",), strict=False),
}


def policy_problems(ctx: Context, policy: Policy) -> list[Problem]:
    """The problems ``policy``'s rules find in the bundle in ``ctx`` (errors, each naming its rule)."""
    problems: list[Problem] = []
    for name in policy.rules:
        rule = RULES.get(name)
        if rule is None:
            continue
        try:
            found = rule(ctx, policy)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, RecursionError, OSError) as exc:
            found = [Problem("internal", "", "", f"the policy rule {name} could not check this bundle "
                                                 f"({type(exc).__name__}: {exc})")]
        problems.extend(replace(p, rule=name, severity=ERROR) for p in found)
    return problems


def named_policy(name: str) -> Policy:
    """The policy called ``name``.

    Raises:
        PolicyError: no policy has that name.
    """
    if name not in POLICIES:
        raise PolicyError(f"unknown policy {name!r} (known: {', '.join(sorted(POLICIES))})")
    return POLICIES[name]


def read_policy_file(path: Path) -> Policy:
    """The policy a ``bundlekit-policy.yml`` opts into, with its settings.

    Raises:
        PolicyError: the file is not valid YAML, names no known policy, or has unknown settings.
    """
    try:
        parsed = parse_yaml(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path.name}: cannot read: {exc}") from exc
    if parsed.issues:
        issue = parsed.issues[0]
        raise PolicyError(f"{path.name}:{issue.line}:{issue.column}: {issue.message}")
    data = parsed.data
    if not isinstance(data, dict):
        raise PolicyError(f"{path.name}: must be a mapping (policy: <name>, production_targets: [...], strict: ...)")
    unknown = sorted(set(map(str, data)) - {"policy", "production_targets", "strict", "disable", "waive"})
    if unknown:
        raise PolicyError(f"{path.name}: unknown setting {', '.join(unknown)} (known: policy, production_targets, "
                          f"strict, disable, waive)")
    base = named_policy(str(data.get("policy") or ""))
    targets = data.get("production_targets", list(base.production_targets))
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise PolicyError(f"{path.name}: production_targets must be a list of target names")
    disable = data.get("disable") or []
    if not isinstance(disable, list) or any(str(d) not in RULES for d in disable):
        raise PolicyError(f"{path.name}: disable must list rules of the policy ({', '.join(RULES)})")
    strict = data.get("strict", base.strict)
    if not isinstance(strict, bool):
        raise PolicyError(f"{path.name}: strict must be true or false")
    waivers = []
    for n, entry in enumerate(data.get("waive") or []):
        if not isinstance(entry, dict) or set(entry) != {"rule", "key", "reason"} or not all(
                isinstance(entry[k], str) and entry[k].strip() for k in ("rule", "key", "reason")):
            raise PolicyError(f"{path.name}: waive[{n}]: give rule, key and reason (all three, as text)")
        waivers.append((entry["rule"], entry["key"], " ".join(entry["reason"].split())))
    return Policy(base.name, tuple(r for r in base.rules if r not in set(map(str, disable))), tuple(targets),
                  strict, path.name, tuple(waivers))


def find_policy(root: Path) -> Policy | None:
    """The policy the bundle at ``root`` opts into (its :data:`POLICY_FILE_NAME`); None without one.

    Raises:
        PolicyError: the file is there but invalid.
    """
    path = Path(root) / POLICY_FILE_NAME
    return read_policy_file(path) if path.is_file() else None
