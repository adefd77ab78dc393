"""Compatibility rules: what ``databricks bundle validate`` rejects, and what a deploy would fail on.

Every rule here holds for any bundle, whatever its conventions: a bundle these rules pass is one the
pinned Databricks CLI accepts and the Jobs and Unity Catalog APIs would not refuse for a reason that
is visible offline. Each rule is a function of a :class:`Context` that returns :class:`Problem`\\ s;
:data:`RULES` lists them with the CLI source each mirrors (``bundle/config/validate/...``) or the API
that would refuse the configuration (``deploy-time``). Severities follow the CLI: what it only warns
about (an unknown field, an enum value it does not know, a required field not set) is a warning;
what it rejects, and what a deploy would fail on, is an error.

Not reproduced (they need a workspace, a git checkout or running code): ``lookup`` variables,
permissions the workspace grants, Python-defined resources, artifact builds, git metadata, and the
sync patterns' match against git's ignore rules.
"""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bundlekit import jobspec, quartz, schema_sources
from bundlekit.findings import ERROR, WARNING, Problem, source_of
from bundlekit.jobspec import key_path
from bundlekit.loader import Bundle, hashable, relative_name
from bundlekit.yamlsource import YamlFile, read_yaml_file


@dataclass
class Context:
    """What the rules read: the resolved bundle, its files as parsed, and who deploys it."""

    bundle: Bundle
    user_name: str
    files: list[tuple[str, YamlFile]] = field(default_factory=list)

    @classmethod
    def of(cls, bundle: Bundle, user_name: str) -> Context:
        """The context of ``bundle`` (its configuration files parsed once, cached)."""
        files = []
        for path in bundle.files:
            try:
                files.append((relative_name(path, bundle.root), read_yaml_file(path)))
            except OSError:
                continue
        return cls(bundle, user_name, files)

    @property
    def short_name(self) -> str:
        """``${workspace.current_user.short_name}`` of :attr:`user_name`."""
        return re.sub(r"[^A-Za-z0-9]+", "_", self.user_name.split("@")[0]).strip("_").lower() or "user"

    def anchored(self) -> set[str]:
        """Key paths (in the merged configuration) whose value is a YAML anchor block."""
        out: set[str] = set()
        prefix = f"targets.{self.bundle.target}."
        for _, parsed in self.files:
            for key in parsed.anchored:
                out.add(key.removeprefix(prefix))
        return out


def _problem(ctx: Context, check: str, key: str, message: str, severity: str = ERROR, *, file: str | None = None,
             rule: str = "") -> Problem:
    return Problem(check, source_of(ctx.bundle, key) if file is None else file, key, message, severity, rule=rule)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _resources(ctx: Context, rtype: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(key, dotted, definition)`` of every resource of type ``rtype`` that is a mapping."""
    for key, definition in _dict(ctx.bundle.resources.get(rtype)).items():
        if isinstance(definition, dict):
            yield str(key), f"resources.{rtype}.{key}", definition


def _jobs(ctx: Context) -> Iterator[tuple[str, str, dict[str, Any]]]:
    return _resources(ctx, "jobs")


def job_tasks(job: Mapping[str, Any], dotted: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, task)`` of every task of a job, including the task inside a ``for_each_task``."""
    def walk(task: Any, at: str, depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(task, dict) or depth > 5:
            return
        yield at, task
        each = task.get("for_each_task")
        if isinstance(each, dict):
            yield from walk(each.get("task"), f"{at}.for_each_task.task", depth + 1)

    for i, task in enumerate(_list(job.get("tasks"))):
        yield from walk(task, f"{dotted}.tasks[{i}]", 0)


# --------------------------------------------------------------------------------------------------
# schema: unknown fields, wrong types, enum values, required fields (the CLI warns; some it rejects)


def schema_problems(ctx: Context) -> list[Problem]:
    """Fields against their source (:mod:`bundlekit.schema_sources`), as the CLI normalises them.

    Each file's own sections (top level, targets, variables, artifacts ...) as written; resources as
    merged and resolved for the target. Unknown fields, values of the wrong type, enum values outside
    their values and required fields not set are warnings, as in the CLI (``libs/dyn/convert``,
    ``bundle/config/validate/enum.go``, ``required.go``); the values it drops are not deployed.
    """
    problems: list[Problem] = []
    root = schema_sources.root_shape()
    for rel, parsed in ctx.files:
        data = parsed.data
        if not isinstance(data, dict):
            continue
        trimmed = dict(data)
        sections: list[tuple[str, Any]] = [("resources", trimmed.pop("resources", None))]
        for tkey in ("targets", "environments"):
            targets = trimmed.get(tkey)
            if isinstance(targets, dict):
                trimmed[tkey] = {}
                for tname, tcfg in targets.items():
                    if isinstance(tcfg, dict):
                        tcfg = dict(tcfg)
                        sections.append((f"{tkey}.{tname}.resources", tcfg.pop("resources", None)))
                    trimmed[tkey][tname] = tcfg
        for finding in schema_sources.check(root, trimmed, "", anchored=parsed.anchored):
            if finding.kind in ("unknown", "type", "enum"):
                problems.append(Problem("schema", rel, finding.key, finding.message, WARNING))
        for where, resources in sections:
            if resources is None:
                continue
            if not isinstance(resources, dict):
                problems.append(Problem("schema", rel, where, "expected a map of resource types, found "
                                                              f"{type(resources).__name__}", WARNING))
                continue
            for rtype, entries in resources.items():
                if str(rtype) not in schema_sources.CLI_RESOURCE_TYPES:
                    at = f"{where}.{rtype}"
                    if at in parsed.anchored:
                        continue
                    close = difflib.get_close_matches(str(rtype), list(schema_sources.CLI_RESOURCE_TYPES), 1, 0.75)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    problems.append(Problem("schema", rel, at, f"unknown field: {rtype} (not a resource type the "
                                                                f"pinned CLI knows){hint}", WARNING))
                elif entries is not None and not isinstance(entries, dict):
                    problems.append(Problem("schema", rel, f"{where}.{rtype}",
                                            f"expected a map of {rtype}, found {type(entries).__name__}", WARNING))
    for file, key, message in ctx.bundle.warnings:
        problems.append(Problem("schema", file, key, message, WARNING))
    anchored = ctx.anchored()
    merged_sections = {k: v for k, v in ctx.bundle.config.items() if k in ("artifacts", "permissions", "run_as")}
    for finding in schema_sources.check(root, merged_sections, ""):
        if finding.kind == "required":
            problems.append(_problem(ctx, "schema", finding.key, finding.message, WARNING))
    for rtype, entries in ctx.bundle.resources.items():
        shape = schema_sources.resource_shape(str(rtype))
        if shape is None or not isinstance(entries, dict):
            continue
        for key, definition in entries.items():
            dotted = f"resources.{rtype}.{key}"
            if definition is None:
                continue  # undefined_resource_problems
            for finding in schema_sources.check(shape, definition, dotted, anchored=anchored):
                if finding.kind == "required" and _required_elsewhere(rtype, definition, finding):
                    continue
                problems.append(_problem(ctx, "schema", finding.key, finding.message, WARNING))
    return problems


def _required_elsewhere(rtype: str, definition: Mapping[str, Any], finding: schema_sources.FieldFinding) -> bool:
    """A required field another field provides: an alert's definition read from its ``file_path``."""
    return rtype == "alerts" and bool(definition.get("file_path")) and finding.key.count(".") == 2


# --------------------------------------------------------------------------------------------------
# The CLI's own validation rules (bundle/config/validate, bundle/config/mutator)


def undefined_resource_problems(ctx: Context) -> list[Problem]:
    """A resource key with nothing under it (``my_job:``): ``validate/all_resources_have_values.go``."""
    problems = []
    for rtype, entries in ctx.bundle.resources.items():
        singular = schema_sources.CLI_RESOURCE_TYPES.get(str(rtype), str(rtype))
        for key, definition in _dict(entries).items():
            if definition is None:
                dotted = f"resources.{rtype}.{key}"
                problems.append(_problem(ctx, "resources", dotted, f"{singular} {key} is not defined"))
    return problems


def unique_key_problems(ctx: Context) -> list[Problem]:
    """One key for two resources (of different types) or a resource and a script:
    ``validate/unique_resource_keys.go`` (two of one type are the loader's error)."""
    seen: dict[str, list[str]] = {}
    for rtype, entries in ctx.bundle.resources.items():
        for key in _dict(entries):
            seen.setdefault(str(key), []).append(f"resources.{rtype}.{key}")
    for key in _dict(ctx.bundle.config.get("scripts")):
        seen.setdefault(str(key), []).append(f"scripts.{key}")
    problems = []
    for key, places in seen.items():
        if len(places) > 1:
            problems.append(_problem(ctx, "resources", places[0],
                                     f"multiple resources or scripts have been defined with the same key: {key} "
                                     f"({', '.join(places)})"))
    return problems


def resource_key_problems(ctx: Context) -> list[Problem]:
    """A resource key holding a variable reference: ``validate/no_variable_reference_in_resource_key.go``."""
    problems = []
    for rel, parsed in ctx.files:
        for key in parsed.positions:
            parts = key.split(".")
            if "${" in key and len(parts) >= 3 and (parts[0] == "resources" or (
                    parts[0] in ("targets", "environments") and len(parts) >= 5 and parts[2] == "resources")):
                problems.append(Problem("resources", rel, key, "resource key must not contain variable references"))
    return problems


def run_as_problems(ctx: Context) -> list[Problem]:
    """``run_as`` names exactly one identity, and resources that cannot run as another identity are not
    deployed with one: ``mutator/resourcemutator/run_as.go``."""
    config = ctx.bundle.config
    if "run_as" not in config or config["run_as"] is None:
        return []
    run_as = config["run_as"]
    if not isinstance(run_as, dict):
        return []  # the schema check reports the type
    user = _text(run_as.get("user_name"))
    principal = _text(run_as.get("service_principal_name"))
    if not user and not principal:
        return [_problem(ctx, "run_as", "run_as", "run_as section must specify exactly one identity. Neither "
                                                  "service_principal_name nor user_name is specified")]
    problems = []
    if user and principal:
        problems.append(_problem(ctx, "run_as", "run_as", "run_as section cannot specify both user_name and "
                                                          "service_principal_name"))
    identity = principal or user
    if identity == ctx.user_name or _unresolved(identity):
        return problems
    resources = ctx.bundle.resources
    for rtype in ("model_serving_endpoints", "quality_monitors", "apps"):
        if _dict(resources.get(rtype)):
            problems.append(_problem(ctx, "run_as", f"resources.{rtype}",
                                     f"{rtype} do not support a setting a run_as user that is different from the "
                                     f"owner (run_as {identity!r}, deploying as {ctx.user_name!r})"))
    for key, dotted, dashboard in _resources(ctx, "dashboards"):
        if dashboard.get("embed_credentials") in (True, "true"):
            problems.append(_problem(ctx, "run_as", dotted,
                                     "dashboards with embed_credentials set to true do not support a setting a run_as "
                                     f"user that is different from the owner (run_as {identity!r})"))
    return problems


def engine_problems(ctx: Context) -> list[Problem]:
    """``bundle.engine`` is ``direct`` or ``terraform`` (deprecated): ``validate/validate_engine.go``."""
    engine = _dict(ctx.bundle.config.get("bundle")).get("engine")
    if engine in (None, "") or _unresolved(engine):
        return []
    if engine == "terraform":
        return [_problem(ctx, "bundle", "bundle.engine", "the terraform deployment engine is deprecated and will "
                                                         "stop working in a future version of the CLI", WARNING)]
    if engine != "direct":
        return [_problem(ctx, "bundle", "bundle.engine",
                         f'invalid value "{engine}" for bundle.engine (expected "terraform" or "direct")')]
    return []


def workspace_path_problems(ctx: Context) -> list[Problem]:
    """Only ``workspace.artifact_path`` may be a Unity Catalog volume: ``validate/validate_volume_path.go``."""
    workspace = _dict(ctx.bundle.config.get("workspace"))
    problems = []
    for name in ("root_path", "file_path", "state_path", "resource_path"):
        value = _text(workspace.get(name))
        if value.startswith("/Volumes/"):
            problems.append(_problem(ctx, "workspace", f"workspace.{name}",
                                     f"workspace.{name} {value} starts with /Volumes. /Volumes can only be used with "
                                     f"workspace.artifact_path."))
            if name == "root_path":
                break
    return problems


def bundle_name_problems(ctx: Context) -> list[Problem]:
    """No variable reference in ``bundle.name``: ``validate/no_interpolation_in_bundle_name.go`` (a warning)."""
    for rel, parsed in ctx.files[:1]:
        name = _dict(_dict(parsed.data).get("bundle")).get("name")
        if isinstance(name, str) and "${" in name:
            return [Problem("bundle", rel, "bundle.name", "Please do not use variable interpolation in the name of "
                                                          "your bundle. The name of your bundle is used to identify "
                                                          "its deployment", WARNING)]
    return []


_SCRIPT_ENV_PREFIXES = ("bundle", "workspace", "var", "variables")
_REF_RE = re.compile(r"\$\{([A-Za-z_][\w.\[\]-]*)\}")


def script_problems(ctx: Context) -> list[Problem]:
    """Each script has content without ``${...}``, and its ``env`` reads only ``${bundle.*}``,
    ``${workspace.*}`` and ``${var.*}``: ``validate/scripts.go``."""
    problems = []
    raw_content: dict[str, str] = {}
    for _, parsed in ctx.files:
        for key, script in _dict(_dict(parsed.data).get("scripts")).items():
            if isinstance(script, dict) and isinstance(script.get("content"), str):
                raw_content[str(key)] = script["content"]
    for key, script in _dict(ctx.bundle.config.get("scripts")).items():
        dotted = f"scripts.{key}"
        content = raw_content.get(str(key), _text(_dict(script).get("content")))
        if not content:
            problems.append(_problem(ctx, "scripts", f"{dotted}.content", f"Script {key} has no content"))
            continue
        m = _REF_RE.search(content)
        if m:
            problems.append(_problem(ctx, "scripts", f"{dotted}.content",
                                     f"Found {m.group(0)} in script {key}.content. Interpolation syntax ${{...}} is "
                                     f"not supported in script content: declare an env variable and use $NAME"))
        for name, value in _dict(_dict(script).get("env")).items():
            for ref in _REF_RE.findall(_text(value)):
                if ref.split(".")[0] not in _SCRIPT_ENV_PREFIXES:
                    problems.append(_problem(ctx, "scripts", f"{dotted}.env.{name}",
                                             f"${{{ref}}} cannot be used in scripts.{key}.env.{name}; only ${{bundle.*}}, "
                                             f"${{workspace.*}}, and ${{var.*}} are resolved before scripts execute"))
    return problems


def managed_field_problems(ctx: Context) -> list[Problem]:
    """Fields the CLI or the service manages must not be set: dashboard and Genie space ``etag``,
    ``deployment`` ids of jobs and pipelines, a job run's ``idempotency_token``, a volume's
    ``volume_path`` (``validate/validate_dashboard_etags.go``, ``validate_genie_space_etags.go``,
    ``validate_deployment_fields.go``, ``validate_job_run_idempotency_token.go``,
    ``mutator/initialize_volume_paths.go``)."""
    problems = []
    for rtype, what in (("dashboards", "dashboard"), ("genie_spaces", "genie space")):
        for key, dotted, definition in _resources(ctx, rtype):
            if definition.get("etag") not in (None, ""):
                problems.append(_problem(ctx, "resources", dotted, f"{what} {key!r} has an etag set. Etags must not "
                                                                   f"be set in bundle configuration"))
    for rtype in ("jobs", "pipelines"):
        for _, dotted, definition in _resources(ctx, rtype):
            deployment = _dict(definition.get("deployment"))
            for name in ("deployment_id", "version_id"):
                if deployment.get(name) not in (None, ""):
                    problems.append(_problem(ctx, "resources", f"{dotted}.deployment.{name}",
                                             f"{name} must not be set in bundle configuration; the CLI manages it"))
    for _, dotted, definition in _resources(ctx, "job_runs"):
        if definition.get("idempotency_token") not in (None, ""):
            problems.append(_problem(ctx, "resources", f"{dotted}.idempotency_token",
                                     "idempotency_token must not be set in bundle configuration; the CLI sets it on "
                                     "each run-now request"))
    for _, dotted, definition in _resources(ctx, "volumes"):
        if definition.get("volume_path") not in (None, ""):
            problems.append(_problem(ctx, "resources", f"{dotted}.volume_path",
                                     f"{dotted}.volume_path is computed and read-only; remove it from the configuration"))
    return problems


def resource_fixup_problems(ctx: Context) -> list[Problem]:
    """Serving endpoints use ``served_entities`` (``served_models`` is deprecated; not both), a Genie
    space has ``file_path`` or ``serialized_space`` (not both): ``mutator/resourcemutator``."""
    problems = []
    for _, dotted, endpoint in _resources(ctx, "model_serving_endpoints"):
        config = _dict(endpoint.get("config"))
        if config.get("served_models") and config.get("served_entities"):
            problems.append(_problem(ctx, "resources", f"{dotted}.config",
                                     "Cannot use both served_models and served_entities"))
        elif config.get("served_models"):
            problems.append(_problem(ctx, "resources", f"{dotted}.config.served_models",
                                     "Using served_models is deprecated; use served_entities", WARNING))
    for _, dotted, space in _resources(ctx, "genie_spaces"):
        if space.get("file_path") and space.get("serialized_space"):
            problems.append(_problem(ctx, "resources", dotted,
                                     "both file_path and serialized_space are set; specify only one"))
    return problems


_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _contains_user(ctx: Context, path: str) -> bool:
    return ctx.user_name in path or ctx.short_name in path


def target_mode_problems(ctx: Context) -> list[Problem]:
    """``mode: development``: schedules not unpaused by preset, workspace paths and a name prefix that
    name the user; ``mode: production``: no development pipeline, an explicit ``workspace.root_path``
    unless every job runs as someone (``mutator/resourcemutator/validate_target_mode.go``)."""
    bundle = ctx.bundle
    config = bundle.config
    problems: list[Problem] = []
    presets = _dict(config.get("presets"))
    workspace = _dict(config.get("workspace"))
    if bundle.mode == "development":
        if presets.get("trigger_pause_status") == "UNPAUSED":
            problems.append(_problem(ctx, "mode", "presets.trigger_pause_status",
                                     "target with 'mode: development' cannot set trigger pause status to UNPAUSED "
                                     "by default"))
        for name in ("root_path", "file_path", "resource_path", "artifact_path", "state_path"):
            value = _text(workspace.get(name))
            if value and not _unresolved(value) and not _contains_user(ctx, value):
                problems.append(_problem(ctx, "mode", f"workspace.{name}",
                                         f"{name} must start with '~/' or contain the current username to ensure "
                                         f"uniqueness when using 'mode: development'"))
                break
        prefix = _text(presets.get("name_prefix"))
        if prefix and not _unresolved(prefix) and not _contains_user(ctx, prefix):
            problems.append(_problem(ctx, "mode", "presets.name_prefix",
                                     "prefix should contain the current username or ${workspace.current_user.short_name} "
                                     "to ensure uniqueness when using 'mode: development'"))
    elif bundle.mode == "production":
        for _, dotted, pipeline in _resources(ctx, "pipelines"):
            if pipeline.get("development") in (True, "true"):
                problems.append(_problem(ctx, "mode", f"{dotted}.development",
                                         "target with 'mode: production' cannot include a pipeline with "
                                         "'development: true'"))
                return problems
        run_as = config.get("run_as")
        every_job_runs_as = all(isinstance(job.get("run_as"), dict) and job["run_as"] for _, _, job in _jobs(ctx)) or (
            isinstance(run_as, dict) and bool(run_as))
        deploys_as_principal = bool(_UUID_RE.fullmatch(ctx.user_name))  # the CLI then only recommends it
        if not workspace.get("root_path") and not every_job_runs_as and not deploys_as_principal:
            problems.append(_problem(ctx, "mode", f"targets.{bundle.target}",
                                     "target with 'mode: production' must set 'workspace.root_path' to make sure only "
                                     "one copy is deployed (e.g. root_path: /Workspace/Users/<user>/.bundle/"
                                     "${bundle.name}/${bundle.target})"))
    return problems


_GLOB = re.compile(r"[*?\[]")


def _bad_glob(pattern: str) -> bool:
    """A pattern Go's ``filepath.Match`` refuses: an unclosed ``[``."""
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    return depth > 0


def artifact_problems(ctx: Context) -> list[Problem]:
    """Each artifact has settings (a build command or files; a whl artifact defaults to a setup.py
    build), and the files an artifact without a build lists exist (globs relative to the file that
    declares them): ``artifacts/prepare.go``, ``artifacts/expand_globs.go``."""
    problems = []
    for name, spec in _dict(ctx.bundle.config.get("artifacts")).items():
        dotted = f"artifacts.{name}"
        if spec is None:
            problems.append(_problem(ctx, "artifacts", dotted, "Artifact not properly configured: please specify "
                                                               "artifact properties"))
            continue
        if not isinstance(spec, dict):
            continue
        if spec.get("type") != "whl" and not spec.get("build") and not spec.get("files"):
            problems.append(_problem(ctx, "artifacts", dotted, "misconfigured artifact: please specify 'build' or "
                                                               "'files' property"))
            continue
        if spec.get("build"):
            continue  # the files are what the build writes: the CLI expands them after building
        for i, entry in enumerate(_list(spec.get("files"))):
            source = _dict(entry).get("source")
            if not isinstance(source, str) or not source or _unresolved(source):
                continue
            key = f"{dotted}.files[{i}].source"
            base = ctx.bundle.source_of(key).parent
            if _bad_glob(source):
                problems.append(_problem(ctx, "artifacts", key, f"{source}: syntax error in pattern"))
                continue
            path = Path(source) if Path(source).is_absolute() else base / source
            if _GLOB.search(source):
                try:
                    found = any(path.parent.glob(path.name)) if path.parent.is_dir() else False
                except (ValueError, OSError):
                    found = False
            else:
                found = path.exists()
            if not found:
                problems.append(_problem(ctx, "artifacts", key, f"{source}: no matching files"))
    return problems


#: Fields an alert may set next to ``file_path`` (the rest comes from its ``.dbalert.json``).
ALERT_FILE_FIELDS = ("warehouse_id", "display_name", "file_path", "permissions", "lifecycle")


def alert_file_problems(ctx: Context) -> list[Problem]:
    """An alert defined by a ``.dbalert.json`` (``file_path``) sets only :data:`ALERT_FILE_FIELDS`, and its
    file exists, parses and holds no ``${...}``: ``mutator/load_dbalert_files.go``."""
    problems = []
    for _, dotted, alert in _resources(ctx, "alerts"):
        file_path = alert.get("file_path")
        if not isinstance(file_path, str) or not file_path or _unresolved(file_path):
            continue
        for name, value in alert.items():
            if name not in ALERT_FILE_FIELDS and value is not None:
                problems.append(_problem(ctx, "resources", f"{dotted}.{name}",
                                         f"field {name} is not allowed in the bundle configuration: with a "
                                         f".dbalert.json only {', '.join(ALERT_FILE_FIELDS)} are"))
        path = Path(file_path) if Path(file_path).is_absolute() else ctx.bundle.source_of(
            f"{dotted}.file_path").parent / file_path
        key = f"{dotted}.file_path"
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(_problem(ctx, "resources", key, f"failed to read .dbalert.json file {file_path}: {exc}"))
            continue
        try:
            json.loads(content)
        except ValueError as exc:
            problems.append(_problem(ctx, "resources", key, f"failed to parse .dbalert.json file {file_path}: {exc}"))
            continue
        if "${" in content:
            problems.append(_problem(ctx, "resources", key, f".alert file {file_path} must not contain variable "
                                                            f"interpolations (inline the alert to use variables)"))
    return problems


def dashboard_file_problems(ctx: Context) -> list[Problem]:
    """A dashboard's ``file_path`` names a readable file in the sync root, resolved against the file that
    sets it (the CLI reads it into ``serialized_dashboard`` while loading:
    ``resourcemutator/configure_dashboards_serialized_dashboard.go``), holding a JSON object whose
    ``datasets`` and ``pages`` are lists (what the Lakeview API accepts at deploy time)."""
    problems = []
    root = sync_root(ctx)
    for _, dotted, dashboard in _resources(ctx, "dashboards"):
        file_path = dashboard.get("file_path")
        if not isinstance(file_path, str) or not file_path or _unresolved(file_path):
            continue
        key = f"{dotted}.file_path"
        path = (Path(file_path) if Path(file_path).is_absolute()
                else ctx.bundle.source_of(key).parent / file_path).resolve()
        try:
            path.relative_to(root)
        except ValueError:
            problems.append(_problem(ctx, "paths", key, f"path {path} is not contained in sync root path {root}"))
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(_problem(ctx, "resources", key, f"failed to read serialized dashboard from file_path "
                                                            f"{file_path}: {exc}"))
            continue
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            problems.append(_problem(ctx, "resources", key, f"{file_path} is not a valid dashboard: not JSON ({exc})"))
            continue
        if not isinstance(parsed, dict):
            problems.append(_problem(ctx, "resources", key, f"{file_path} is not a valid dashboard: its top level "
                                                            f"must be a JSON object"))
            continue
        for name in ("datasets", "pages"):
            if name in parsed and not isinstance(parsed[name], list):
                problems.append(_problem(ctx, "resources", key, f"{file_path} is not a valid dashboard: {name} "
                                                                f"must be a list"))
    return problems


#: ``workspace`` fields that configure authentication (``validate/interpolation_in_auth_config.go``).
AUTH_FIELDS = ("host", "profile", "auth_type", "metadata_service_url", "client_id", "google_service_account",
               "azure_resource_id", "azure_use_msi", "azure_client_id", "azure_tenant_id", "azure_environment",
               "azure_login_app_id", "account_id", "workspace_id")


def auth_config_problems(ctx: Context) -> list[Problem]:
    """No variable reference in the ``workspace`` fields that configure authentication: the CLI warns
    (``validate/interpolation_in_auth_config.go``), and with a reference in ``host`` it cannot reach the
    workspace at all (an error)."""
    problems = []
    for rel, parsed in ctx.files:
        data = _dict(parsed.data)
        sections = [("workspace", data.get("workspace"))]
        for tkey in ("targets", "environments"):
            target = _dict(_dict(data.get(tkey)).get(ctx.bundle.target))
            sections.append((f"{tkey}.{ctx.bundle.target}.workspace", target.get("workspace")))
        for where, workspace in sections:
            for name in AUTH_FIELDS:
                value = _dict(workspace).get(name)
                if isinstance(value, str) and "${" in value:
                    severity = ERROR if name == "host" else WARNING
                    problems.append(Problem("workspace", rel, f"{where}.{name}",
                                            f"Variable interpolation is not supported for fields that configure "
                                            f"authentication ({value!r})"
                                            + ("; the CLI cannot reach the workspace" if name == "host" else ""),
                                            severity))
    return problems


def include_problems(ctx: Context) -> list[Problem]:
    """An ``include`` in a file other than ``databricks.yml`` is ignored (the CLI warns)."""
    return [Problem("include", rel, "include", "Include section is defined outside root file: only includes "
                                               "defined in databricks.yml are applied", WARNING)
            for rel, parsed in ctx.files[1:] if isinstance(parsed.data, dict) and "include" in parsed.data]


def required_problems(ctx: Context) -> list[Problem]:
    """Required fields the CLI rejects rather than warns about: a dashboard's ``display_name`` and
    ``warehouse_id``, a SQL warehouse's ``name``, a grant's ``principal`` and ``privileges``, a secret
    scope permission's principal (``validate/required.go``)."""
    problems = []
    for _, dotted, dashboard in _resources(ctx, "dashboards"):
        for name in ("display_name", "warehouse_id"):
            if not _text(dashboard.get(name)):
                problems.append(_problem(ctx, "required", dotted, f"dashboard {name} is required"))
    for _, dotted, warehouse in _resources(ctx, "sql_warehouses"):
        if not _text(warehouse.get("name")).strip():
            problems.append(_problem(ctx, "required", dotted, "sql_warehouse name is required"))
    for rtype in ctx.bundle.resources:
        for _, dotted, definition in _resources(ctx, str(rtype)):
            for i, grant in enumerate(_list(definition.get("grants"))):
                if not isinstance(grant, dict):
                    continue
                key = f"{dotted}.grants[{i}]"
                if not _text(grant.get("principal")):
                    problems.append(_problem(ctx, "required", key, "grant principal is required"))
                if not _list(grant.get("privileges")) and not _unresolved(grant.get("privileges")):
                    problems.append(_problem(ctx, "required", key, "grant privileges is required"))
    for _, dotted, scope in _resources(ctx, "secret_scopes"):
        for i, permission in enumerate(_list(scope.get("permissions"))):
            if isinstance(permission, dict) and not any(
                    _text(permission.get(k)) for k in ("user_name", "group_name", "service_principal_name")):
                problems.append(_problem(ctx, "required", f"{dotted}.permissions[{i}]",
                                         "secret scope permission principal is required (set one of user_name, "
                                         "group_name or service_principal_name)"))
    return problems


def secret_resource_problems(ctx: Context) -> list[Problem]:
    """A ``secrets`` resource's value is a reference to a variable without a default:
    ``mutator/validate_secret_value_is_variable.go``."""
    problems = []
    raw: dict[str, Any] = {}
    for _, parsed in ctx.files:
        for key, secret in _dict(_dict(_dict(parsed.data).get("resources")).get("secrets")).items():
            raw[str(key)] = _dict(secret).get("value")
    variables = _dict(ctx.bundle.config.get("variables"))
    for key, dotted, _ in _resources(ctx, "secrets"):
        value = raw.get(key)
        if not isinstance(value, str):
            problems.append(_problem(ctx, "resources", f"{dotted}.value", "Secret value must be a string"))
            continue
        m = re.fullmatch(r"\$\{(?:var|variables)\.([\w-]+)(?:\.value)?\}", value.strip())
        if not m:
            problems.append(_problem(ctx, "resources", f"{dotted}.value",
                                     "Secret value must be a variable reference (e.g. ${var.my_secret})"))
        elif _dict(variables.get(m.group(1))).get("default") is not None:
            problems.append(_problem(ctx, "resources", f"{dotted}.value",
                                     f"Variable used for secret value must not have a default value ({m.group(1)})"))
    return problems


# --------------------------------------------------------------------------------------------------
# paths: local notebooks, files and folders, as the CLI translates them (mutator/translate_paths*.go)

_NOTEBOOK_HEADERS = {".py": "# Databricks notebook source", ".r": "# Databricks notebook source",
                     ".scala": "// Databricks notebook source", ".sql": "-- Databricks notebook source"}
_NOTEBOOK_EXTENSIONS = (".py", ".r", ".scala", ".sql", ".ipynb")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_notebook(path: Path) -> bool:
    """The CLI's notebook detection: a ``.ipynb``, or a source file whose first line is the
    ``Databricks notebook source`` header of its language."""
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        return True
    header = _NOTEBOOK_HEADERS.get(suffix)
    if header is None:
        return False
    try:
        with path.open("rb") as handle:
            first = handle.read(32).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return bool(first) and first[0].rstrip("\r") == header


def is_local_path(value: Any) -> bool:
    """A path the CLI treats as local to the bundle: relative, no URL scheme, no reference."""
    return (isinstance(value, str) and bool(value) and not value.startswith("/") and "${" not in value
            and not _SCHEME_RE.match(value))


def sync_root(ctx: Context) -> Path:
    """The folder the CLI syncs: the bundle root, or a parent when ``sync.paths`` reaches above it."""
    root = ctx.bundle.root
    best = root
    for i, raw in enumerate(_list(_dict(ctx.bundle.config.get("sync")).get("paths"))):
        if not isinstance(raw, str) or _unresolved(raw):
            continue
        base = ctx.bundle.source_of(f"sync.paths[{i}]").parent
        target = (base / raw).resolve()
        common = Path(*_common_parts(target, root)) if _common_parts(target, root) else None
        if common is not None and len(str(common)) < len(str(best)):
            best = common
    return best


def _common_parts(a: Path, b: Path) -> tuple[str, ...]:
    out = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        out.append(x)
    return tuple(out)


def _path_targets(ctx: Context) -> Iterator[tuple[str, str, str, str]]:
    """``(key, path, mode, owner)``: every local path the CLI translates, its mode (``notebook``,
    ``file``, ``directory``) and the resource key it belongs to."""
    for _, dotted, job in _jobs(ctx):
        if job.get("git_source"):
            continue  # the CLI leaves a job with git_source to the repository
        for at, task in job_tasks(job, dotted):
            specs = (("notebook_task", "notebook_path", "notebook"), ("spark_python_task", "python_file", "file"),
                     ("dbt_task", "project_directory", "directory"))
            for task_type, name, mode in specs:
                body = _dict(task.get(task_type))
                if body.get(name) and body.get("source") != "GIT":
                    yield f"{at}.{task_type}.{name}", body[name], mode, dotted
            sql_file = _dict(_dict(task.get("sql_task")).get("file"))
            if sql_file.get("path") and sql_file.get("source") != "GIT":
                yield f"{at}.sql_task.file.path", sql_file["path"], "file", dotted
            alert = _dict(task.get("alert_task"))
            if alert.get("workspace_path"):
                yield f"{at}.alert_task.workspace_path", alert["workspace_path"], "file", dotted
            for j, lib in enumerate(_list(task.get("libraries"))):
                if _dict(lib).get("requirements"):
                    yield f"{at}.libraries[{j}].requirements", lib["requirements"], "file", dotted
    for _, dotted, pipeline in _resources(ctx, "pipelines"):
        for j, lib in enumerate(_list(pipeline.get("libraries"))):
            for kind, mode in (("notebook", "notebook"), ("file", "file")):
                path = _dict(_dict(lib).get(kind)).get("path")
                if path:
                    yield f"{dotted}.libraries[{j}].{kind}.path", path, mode, dotted
        if pipeline.get("root_path"):
            yield f"{dotted}.root_path", pipeline["root_path"], "directory", dotted
    for _, dotted, app in _resources(ctx, "apps"):
        if app.get("source_code_path"):
            yield f"{dotted}.source_code_path", app["source_code_path"], "directory", dotted


def path_problems(ctx: Context) -> list[Problem]:
    """Local notebooks, files and folders the bundle names exist, are of the right kind and lie in the
    sync root. Each resolves against the file that sets it (a path a target sets, against that file);
    a notebook path names its file with the extension."""
    problems = []
    root = sync_root(ctx)
    for key, raw, mode, owner in _path_targets(ctx):
        if not is_local_path(raw):
            continue
        file = ctx.bundle.source_of(key)
        path = (file.parent / raw).resolve()
        try:
            path.relative_to(root)
        except ValueError:
            problems.append(_problem(ctx, "paths", key, f"path {path} is not contained in sync root path {root}"))
            continue
        message = _path_message(raw, path, mode, key)
        if message is None:
            continue
        owner_file = ctx.bundle.source_of(owner)
        if owner_file != file and _path_message(raw, (owner_file.parent / raw).resolve(), mode, key) is None:
            message = (f"path {raw} is defined relative to the {relative_name(owner_file.parent, ctx.bundle.root) or '.'}"
                       f" folder of {relative_name(owner_file, ctx.bundle.root)}, but is set in "
                       f"{relative_name(file, ctx.bundle.root)}: make it relative to the file where it is set")
        problems.append(_problem(ctx, "paths", key, message))
    return problems


def _path_message(raw: str, path: Path, mode: str, key: str) -> str | None:
    """What is wrong with local ``path`` for ``mode``; None when it is right."""
    if mode == "directory":
        if not path.exists():
            return f"directory {raw} not found (resolved to {path})"
        return None if path.is_dir() else f"{raw} is not a directory"
    if not path.exists():
        if mode == "notebook":
            with_ext = next((raw + ext for ext in _NOTEBOOK_EXTENSIONS if Path(str(path) + ext).is_file()), None)
            if with_ext:
                return f"notebook {raw!r} not found. Did you mean {with_ext!r}? Local notebook paths name the file " \
                       f"with its extension ({', '.join(_NOTEBOOK_EXTENSIONS)})"
            return f"notebook {raw} not found"
        return f"file {raw} not found"
    if path.is_dir():
        return f"{raw} is a folder, not a {mode}"
    notebook = is_notebook(path)
    if mode == "notebook" and not notebook:
        return f'expected a notebook for "{key}" but got a file: {raw} has no "Databricks notebook source" header'
    if mode == "file" and notebook:
        return f'expected a file for "{key}" but got a notebook: {raw}'
    return None


# --------------------------------------------------------------------------------------------------
# compute: the CLI's rule (a task that runs code has compute) and the Jobs API's


#: Task types that run code (``validate/job_task_cluster_spec.go``); a notebook task may have none.
CODE_TASK_TYPES = ("python_wheel_task", "notebook_task", "spark_python_task", "spark_jar_task",
                   "spark_submit_task", "dbt_task")
#: Task types that run no code themselves and take no compute.
NO_COMPUTE_TASK_TYPES = ("condition_task", "run_job_task")
#: The ways a task names its compute; a task uses exactly one of them.
COMPUTE_KEYS = ("job_cluster_key", "environment_key", "existing_cluster_id", "new_cluster")
#: Fields of a serverless environment's ``spec`` that choose its version.
ENVIRONMENT_VERSION_KEYS = ("environment_version", "client", "base_environment")


def _declared_keys(ctx: Context, job: Mapping[str, Any], dotted: str, field_name: str, key_name: str,
                   what: str, problems: list[Problem]) -> dict[Any, int]:
    """``{key: index}`` of a job's ``job_clusters``/``environments``; a key declared twice is a problem."""
    declared: dict[Any, int] = {}
    for n, entry in enumerate(_list(job.get(field_name))):
        if not isinstance(entry, dict) or entry.get(key_name) in (None, "") or isinstance(entry.get(key_name), (dict, list)):
            continue
        name = entry[key_name]
        if name in declared:
            first = f"{dotted}.{field_name}[{declared[name]}]"
            key = f"{dotted}.{field_name}[{n}].{key_name}"
            hint = (" (a target's environments are appended to the job's, not merged by key as tasks and "
                    "job clusters are: declare the environment in one place)") if field_name == "environments" else ""
            problems.append(_problem(ctx, "compute", key, f"{what} {name!r} is declared twice in job (first as {first} "
                                                          f"in {source_of(ctx.bundle, first)}){hint}"))
            continue
        declared[name] = n
    return declared


def compute_problems(ctx: Context) -> list[Problem]:
    """Where each task runs.

    * A task that runs code (:data:`CODE_TASK_TYPES`) has compute; a notebook task may have none (it
      then runs on serverless): the CLI's ``validate/job_task_cluster_spec.go``.
    * Deploy-time (the Jobs API refuses the job): a task names one kind of compute, not two; the
      ``job_cluster_key`` / ``environment_key`` it names is declared in its job, once; condition and
      run_job tasks take none; a serverless task has no ``libraries``; an environment's ``spec``
      has an ``environment_version``.
    """
    problems: list[Problem] = []
    for _, dotted, job in _jobs(ctx):
        clusters = _declared_keys(ctx, job, dotted, "job_clusters", "job_cluster_key", "job cluster", problems)
        environments = _declared_keys(ctx, job, dotted, "environments", "environment_key", "environment", problems)
        for k, env in enumerate(_list(job.get("environments"))):
            if not isinstance(env, dict):
                continue
            spec = env.get("spec")
            if not isinstance(spec, dict) or not any(spec.get(v) not in (None, "") for v in ENVIRONMENT_VERSION_KEYS):
                key = f"{dotted}.environments[{k}]" + (".spec" if isinstance(spec, dict) else "")
                problems.append(_problem(ctx, "compute", key,
                                         f"environment {env.get('environment_key')!r} has no environment_version: set "
                                         f"spec.environment_version to a serverless environment version (e.g. \"5\")"))
        for at, task in job_tasks(job, dotted):
            problems.extend(_task_compute_problems(ctx, task, at, dotted, clusters, environments))
    return problems


def _task_compute_problems(ctx: Context, task: Mapping[str, Any], at: str, dotted: str,
                           clusters: Mapping[Any, int], environments: Mapping[Any, int]) -> list[Problem]:
    problems: list[Problem] = []
    name = task.get("task_key")
    kind_of_task = jobspec.task_type(task)
    kinds = [k for k in COMPUTE_KEYS if task.get(k) not in (None, "", {})]
    if kind_of_task in NO_COMPUTE_TASK_TYPES:
        for k in kinds:
            key = f"{at}.{k}"
            problems.append(_problem(ctx, "compute", key, f"task {name!r} is a {kind_of_task}, which runs no code and "
                                                          f"takes no compute: remove {k}"))
        return problems
    if len(kinds) > 1:
        first, second = f"{at}.{kinds[0]}", f"{at}.{kinds[1]}"
        problems.append(_problem(
            ctx, "compute", second,
            f"task {name!r} has two kinds of compute, {kinds[0]} (set in {source_of(ctx.bundle, first)}) and "
            f"{', '.join(kinds[1:])} (set in {source_of(ctx.bundle, second)}); give it exactly one (a target's "
            f"override of a task adds to the task, it does not replace its compute)"))
    elif not kinds and kind_of_task in CODE_TASK_TYPES and kind_of_task != "notebook_task":
        problems.append(_problem(
            ctx, "compute", at,
            f"Missing required cluster or environment settings: task {name!r} ({kind_of_task}) needs one of "
            f"job_cluster_key (a job cluster of the job), environment_key (a serverless environment of the job), "
            f"existing_cluster_id or new_cluster"))
    cluster = task.get("job_cluster_key")
    if cluster not in (None, "") and not _unresolved(cluster) and hashable(cluster) and cluster not in clusters:
        key = f"{at}.job_cluster_key"
        problems.append(_problem(ctx, "compute", key,
                                 f"task {name!r} uses job cluster {cluster!r}, which {dotted}.job_clusters does not "
                                 f"declare (declared: {', '.join(map(str, clusters)) or 'none'})"))
    env_key = task.get("environment_key")
    if env_key not in (None, "") and not _unresolved(env_key) and hashable(env_key):
        if env_key not in environments:
            key = f"{at}.environment_key"
            problems.append(_problem(ctx, "compute", key,
                                     f"task {name!r} uses environment {env_key!r}, which {dotted}.environments does "
                                     f"not declare (declared: {', '.join(map(str, environments)) or 'none'})"))
        if task.get("libraries"):
            key = f"{at}.libraries"
            env_at = (f"{dotted}.environments[{environments[env_key]}].spec.dependencies"
                      if env_key in environments else f"{dotted}.environments")
            problems.append(_problem(ctx, "compute", key,
                                     f"task {name!r} runs on serverless (environment_key {env_key!r}), where a task "
                                     f"takes no libraries: put them in the environment's dependencies ({env_at})"))
    return problems


_LOCAL_LIBRARY_KINDS = ("whl", "jar")


def wheel_runtime_problems(ctx: Context) -> list[Problem]:
    """A wheel task that installs a local library runs on DBR 13.1 or later (or the bundle turns on
    ``experimental.python_wheel_wrapper``): ``trampoline/python_dbr_warning.go``."""
    if _dict(ctx.bundle.config.get("experimental")).get("python_wheel_wrapper") in (True, "true"):
        return []
    problems = []
    clusters = {key: definition for key, _, definition in _resources(ctx, "clusters")}
    for _, dotted, job in _jobs(ctx):
        job_clusters = {c.get("job_cluster_key"): _dict(c.get("new_cluster")) for c in _list(job.get("job_clusters"))
                        if isinstance(c, dict) and hashable(c.get("job_cluster_key"))}
        for at, task in job_tasks(job, dotted):
            if not isinstance(task.get("python_wheel_task"), dict):
                continue
            local = any(is_local_path(_dict(lib).get(kind)) for lib in _list(task.get("libraries"))
                        for kind in _LOCAL_LIBRARY_KINDS)
            if not local:
                continue
            version = ""
            if isinstance(task.get("new_cluster"), dict):
                version = _text(task["new_cluster"].get("spark_version"))
            elif hashable(task.get("job_cluster_key")) and task.get("job_cluster_key") in job_clusters:
                version = _text(job_clusters[task["job_cluster_key"]].get("spark_version"))
            elif isinstance(task.get("existing_cluster_id"), str):
                m = re.fullmatch(r"\$\{resources\.clusters\.([\w-]+)\.id\}", task["existing_cluster_id"].strip())
                if m and m.group(1) in clusters:
                    version = _text(clusters[m.group(1)].get("spark_version"))
            if version and _older_than_13_1(version):
                problems.append(_problem(
                    ctx, "compute", at,
                    f"task {task.get('task_key')!r} uses cluster with incompatible DBR version {version}: Python wheel "
                    f"tasks require compute with DBR 13.3+ to include local libraries (or the experimental "
                    f"python_wheel_wrapper setting)"))
    return problems


def _older_than_13_1(version: str) -> bool:
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return False
    minor = "99" if parts[1].startswith("x") else parts[1]
    if not minor.isdigit():
        return False
    return (int(parts[0]), int(minor)) < (13, 1)


# --------------------------------------------------------------------------------------------------
# jobs: what the Jobs API refuses at deploy time


_NO_TASK_TYPE = " ...)"  # the end of jobspec's "has no task type (one of ...)" message


def job_graph_problems(ctx: Context) -> list[Problem]:
    """The task graph (:func:`bundlekit.jobspec.job_problems`, ``graph`` part): ``depends_on`` names
    tasks of the job, an ``outcome`` follows a condition task, no cycles; the Jobs API refuses such a
    job at deploy time. A task without a type is a warning (the CLI accepts it); one without a
    ``task_key`` is the schema check's required-field warning."""
    problems = []
    for _, dotted, job in _jobs(ctx):
        if not job.get("tasks"):
            continue  # the CLI accepts a job without tasks
        for key, message in jobspec.job_problems(job, parts=("graph",)):
            full = key_path(dotted, key) if key else dotted
            if message == "the task has no task_key":
                continue  # a required field: the schema check warns, as the CLI does
            severity = WARNING if message.endswith(_NO_TASK_TYPE) else ERROR
            problems.append(_problem(ctx, "jobs", full, message, severity))
    return problems


def limit_problems(ctx: Context) -> list[Problem]:
    """``timeout_seconds`` (job and task) is 0 or more and a task's ``max_retries`` -1 or more; the Jobs
    API refuses other values at deploy time."""
    problems: list[Problem] = []

    def check(mapping: Mapping[str, Any], at: str, name: str, minimum: int, meaning: str) -> None:
        value = as_int(mapping.get(name))
        if value is not None and value < minimum:
            key = f"{at}.{name}"
            problems.append(_problem(ctx, "jobs", key, f"{name} is {value}: {meaning}"))

    for _, dotted, job in _jobs(ctx):
        timeout = "must be 0 (no timeout) or a number of seconds"
        check(job, dotted, "timeout_seconds", 0, timeout)
        for at, task in job_tasks(job, dotted):
            check(task, at, "timeout_seconds", 0, timeout)
            check(task, at, "max_retries", -1, "must be -1 (retry without limit), 0 (no retries) or more")
    return problems


def as_int(value: Any) -> int | None:
    """An integer field's value (an int, or a string of one after variable resolution); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def schedule_problems(ctx: Context) -> list[Problem]:
    """A job's ``schedule`` is a valid Quartz cron expression in a known time zone, and a job has at most
    one of ``schedule``, ``continuous`` and ``trigger``: the Jobs API refuses others at deploy time."""
    problems: list[Problem] = []
    for _, dotted, job in _jobs(ctx):
        kinds = [k for k in ("schedule", "continuous", "trigger") if isinstance(job.get(k), dict)]
        if len(kinds) > 1:
            problems.append(_problem(ctx, "schedule", f"{dotted}.{kinds[1]}",
                                     f"job has both {kinds[0]} and {kinds[1]}: the Jobs API accepts only one of "
                                     f"schedule, continuous and trigger"))
        schedule = job.get("schedule")
        if not isinstance(schedule, dict):
            continue
        expression = schedule.get("quartz_cron_expression")
        if isinstance(expression, str) and not _unresolved(expression):
            for message in quartz.quartz_cron_problems(expression):
                key = f"{dotted}.schedule.quartz_cron_expression"
                problems.append(_problem(ctx, "schedule", key, f"invalid Quartz cron expression {expression!r}: {message}"))
        tz = schedule.get("timezone_id")
        if isinstance(tz, str) and not _unresolved(tz) and not known_time_zone(tz):
            problems.append(_problem(ctx, "schedule", f"{dotted}.schedule.timezone_id",
                                     f"unknown time zone {tz!r} (use a Java/IANA ID such as UTC or Europe/Amsterdam)"))
    return problems


def known_time_zone(name: str) -> bool:
    """``name`` is a time zone ID the Jobs API accepts (IANA, plus UTC and GMT)."""
    if name in ("UTC", "GMT"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def cluster_spec_problems(ctx: Context) -> list[Problem]:
    """Cluster specifications the Clusters API refuses: ``autoscale.min_workers`` above ``max_workers``
    (job clusters, task clusters, clusters)."""
    problems: list[Problem] = []

    def check(spec: Any, at: str) -> None:
        if not isinstance(spec, dict):
            return
        autoscale = spec.get("autoscale")
        if isinstance(autoscale, dict):
            low, high = as_int(autoscale.get("min_workers")), as_int(autoscale.get("max_workers"))
            if low is not None and high is not None and low > high:
                problems.append(_problem(ctx, "compute", f"{at}.autoscale.min_workers",
                                         f"autoscale.min_workers ({low}) is above max_workers ({high})"))

    for _, dotted, job in _jobs(ctx):
        for n, cluster in enumerate(_list(job.get("job_clusters"))):
            check(_dict(cluster).get("new_cluster"), f"{dotted}.job_clusters[{n}].new_cluster")
        for at, task in job_tasks(job, dotted):
            check(task.get("new_cluster"), f"{at}.new_cluster")
    for _, dotted, cluster in _resources(ctx, "clusters"):
        check(cluster, dotted)
    return problems


#: Characters Unity Catalog refuses in object names (catalogs, schemas, volumes, registered models).
_UC_FORBIDDEN = re.compile(r"[\s./\x00-\x1f\x7f]")


def unity_catalog_name_problems(ctx: Context) -> list[Problem]:
    """Names Unity Catalog refuses: a period, space, slash or control character, or over 255 characters
    (catalogs, schemas, volumes, registered models); the API refuses them at deploy time."""
    problems = []
    for rtype, fields in (("catalogs", ("name",)), ("schemas", ("name", "catalog_name")),
                          ("volumes", ("name", "catalog_name", "schema_name")),
                          ("registered_models", ("name", "catalog_name", "schema_name"))):
        for _, dotted, definition in _resources(ctx, rtype):
            for name in fields:
                value = definition.get(name)
                if not isinstance(value, str) or not value or _unresolved(value):
                    continue
                if _UC_FORBIDDEN.search(value) or len(value) > 255:
                    problems.append(_problem(ctx, "names", f"{dotted}.{name}",
                                             f"{value!r} is not a name Unity Catalog accepts (no period, space, slash "
                                             f"or control character; at most 255 characters)"))
    return problems


@dataclass(frozen=True)
class Rule:
    """A compatibility rule: its function, and where it comes from (a CLI source file or the API)."""

    name: str
    check: Callable[[Context], list[Problem]]
    source: str


#: Every compatibility rule, in the order findings are reported.
RULES: tuple[Rule, ...] = (
    Rule("schema", schema_problems, "libs/dyn/convert/normalize.go, validate/enum.go, validate/required.go"),
    Rule("undefined-resources", undefined_resource_problems, "validate/all_resources_have_values.go"),
    Rule("unique-keys", unique_key_problems, "validate/unique_resource_keys.go"),
    Rule("resource-keys", resource_key_problems, "validate/no_variable_reference_in_resource_key.go"),
    Rule("run-as", run_as_problems, "mutator/resourcemutator/run_as.go"),
    Rule("engine", engine_problems, "validate/validate_engine.go"),
    Rule("workspace-paths", workspace_path_problems, "validate/validate_volume_path.go"),
    Rule("bundle-name", bundle_name_problems, "validate/no_interpolation_in_bundle_name.go"),
    Rule("scripts", script_problems, "validate/scripts.go"),
    Rule("managed-fields", managed_field_problems, "validate/validate_*_etags.go, validate_deployment_fields.go, "
                                                   "validate_job_run_idempotency_token.go, initialize_volume_paths.go"),
    Rule("resource-fixups", resource_fixup_problems, "mutator/resourcemutator (serving endpoints, Genie spaces)"),
    Rule("target-mode", target_mode_problems, "mutator/resourcemutator/validate_target_mode.go"),
    Rule("artifacts", artifact_problems, "artifacts/prepare.go, artifacts/expand_globs.go"),
    Rule("includes", include_problems, "loader/process_include.go"),
    Rule("alert-files", alert_file_problems, "mutator/load_dbalert_files.go"),
    Rule("dashboard-files", dashboard_file_problems,
         "resourcemutator/configure_dashboards_serialized_dashboard.go; deploy-time (Lakeview API)"),
    Rule("auth-config", auth_config_problems, "validate/interpolation_in_auth_config.go"),
    Rule("required", required_problems, "validate/required.go"),
    Rule("secrets-resources", secret_resource_problems, "mutator/validate_secret_value_is_variable.go"),
    Rule("paths", path_problems, "mutator/translate_paths*.go, mutator/sync_infer_root.go"),
    Rule("compute", compute_problems, "validate/job_task_cluster_spec.go; deploy-time (Jobs API)"),
    Rule("wheel-runtime", wheel_runtime_problems, "trampoline/python_dbr_warning.go"),
    Rule("job-graph", job_graph_problems, "deploy-time (Jobs API)"),
    Rule("limits", limit_problems, "deploy-time (Jobs API)"),
    Rule("schedule", schedule_problems, "deploy-time (Jobs API)"),
    Rule("cluster-specs", cluster_spec_problems, "deploy-time (Clusters API)"),
    Rule("uc-names", unity_catalog_name_problems, "deploy-time (Unity Catalog API)"),
)


def compatibility_problems(ctx: Context) -> list[Problem]:
    """Every compatibility rule's problems for the bundle in ``ctx`` (rule order); never raises for a bad
    bundle: a rule that fails on input it did not foresee reports that as a problem."""
    problems: list[Problem] = []
    for rule in RULES:
        try:
            found = rule.check(ctx)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, RecursionError, OSError) as exc:
            found = [Problem("internal", "", "", f"the {rule.name} rule could not check this bundle "
                                                 f"({type(exc).__name__}: {exc})", WARNING, rule=rule.name)]
        problems.extend(p if p.rule else replace(p, rule=rule.name) for p in found)
    return problems
