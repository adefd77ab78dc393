"""Load and resolve the Databricks Asset Bundle (``databricks.yml`` + included files) offline.

The bundle is the one definition of our jobs: the Databricks CLI deploys it, and the local runner
(:mod:`bundlekit.runner`) runs the very same job definitions in-process. This module reproduces the
part of the CLI's configuration processing that a local run needs, without a workspace connection:

* Files are read as the CLI reads them (:mod:`bundlekit.yamlsource`): YAML 1.2 scalars (``on`` and
  ``yes`` are strings, dates stay text), string keys only, one ``<<`` merge key per mapping.
* ``include`` globs (relative to the bundle root) are loaded and merged; a resource defined twice is
  an error naming both files. As in the CLI, an include without glob characters that names no file
  is an error, a file that is not YAML or JSON is an error, and a glob that matches nothing loads
  nothing and is listed in :attr:`Bundle.unmatched_includes`. Sections the CLI does not know (a
  ``definitions:`` block of YAML anchors ...) are dropped, unresolved.
* The target is selected (``default: true`` when none is given) and its overrides are merged, part
  by part when several files declare parts of it: ``variables``, ``resources``, ``workspace``,
  ``artifacts``, ``presets``, ``mode`` ...; ``run_as`` is replaced. Like the CLI, a job's ``tasks``
  are merged by ``task_key``, ``job_clusters`` by ``job_cluster_key``, ``parameters`` by ``name`` (a
  pipeline's ``clusters`` by ``label``); every other list is appended to, including a job's
  ``environments`` and the lists inside a merged task (``libraries``). Values of kinds the CLI
  cannot merge (a reference and a list) are an error; a target's plain value where a mapping belongs
  is dropped with a warning (:attr:`Bundle.warnings`), as the CLI's normalisation drops it. Which
  file set a value is tracked down to the merged task field (:meth:`Bundle.source_of`), so that
  relative paths resolve against the file that sets them and errors name the file that set the key.
* ``bundle.git`` (``commit``, ``branch``, ``origin_url``, ``actual_branch``, ``bundle_root_path``) is
  read from the git checkout holding the bundle root, as the CLI does at deploy time
  (:func:`git_details`); values the configuration sets win (``commit``/``origin_url``/``branch``), and
  all are empty strings outside a git checkout or without git.
* Variable values, highest precedence first: a ``value`` in the declaration, ``overrides`` (``--var
  k=v``; a name given twice is an error), ``BUNDLE_VAR_<name>`` environment variables,
  ``.databricks/bundle/<target>/variable-overrides.json``, the target's ``variables`` block (a
  mapping or list there is the value, ``type: complex`` or not), the declaration's ``default`` (a
  null ``default:`` is none). Like the CLI, every declared variable must have a value for the
  selected target. A ``lookup`` (a warehouse, a service principal ... by name) is resolved by the CLI
  against a workspace: offline its references stay ``${var.name}`` (:attr:`Bundle.lookup_variables`),
  and the local runner refuses only a job that uses one (pass ``--var name=<value>`` to run it);
  ``lookups="error"`` makes any lookup without a value an error at load time.
* ``${...}`` references are resolved recursively: ``${var.x}`` (variables may reference each other),
  ``${bundle.target}``, ``${bundle.name}``, ``${bundle.git.commit}`` (and the other ``bundle.git``
  fields), ``${workspace.current_user.userName}`` (the local user name),
  ``${workspace.current_user.short_name}``, ``${workspace.root_path}`` ... and
  ``${resources.<type>.<key>.<field>}`` for fields present in the configuration; the ``name`` of a
  schema, registered model or serving endpoint resolves to the name the CLI deploys, with the
  development-mode prefix (``dev_<user>_``) or ``presets.name_prefix``, normalised as the CLI does. References that
  only exist after a deployment (``${resources.jobs.<key>.id}``, ``url`` ...) and those the CLI does
  not resolve while loading (``${artifacts...}``) are kept verbatim; the runner understands
  ``${resources.jobs.<key>.id}`` in ``run_job_task``.
* Job-run dynamic value references (``{{job.parameters.x}}`` ...) are left alone: the runner
  substitutes them when it runs a task.

What is NOT reproduced: deployment-mode presets on the resources themselves (the ``[dev <user>]``
name prefix of their names, except in the references above; pausing),
resolving ``lookup`` variables, path translation of libraries/notebooks, and Python-defined
resources.

Errors are :class:`BundleError` (a :class:`ValueError`) naming the file and the key.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundlekit.yamlsource import read_yaml_file

#: File names the CLI accepts for the bundle root configuration, in lookup order.
BUNDLE_FILE_NAMES = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
#: Prefix of environment variables that set bundle variables (as the CLI reads them).
BUNDLE_VAR_ENV_PREFIX = "BUNDLE_VAR_"

_REF_RE = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*)\}")
_SEGMENT_RE = re.compile(r"([A-Za-z_][\w-]*)((?:\[\d+\])*)")
_JOB_ID_REF_RE = re.compile(r"^\$\{resources\.jobs\.([\w-]+)\.id\}$")

# Lists the CLI merges element-wise by a key when a target overrides a job (others are concatenated:
# the CLI has no such merge for ``environments``, a target's environments are appended to the job's).
_JOB_LIST_KEYS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "parameters": "name",
}
#: ``bundle.git`` fields :func:`git_details` fills in (as the CLI's LoadGitDetails does).
GIT_FIELDS = ("commit", "branch", "origin_url", "actual_branch", "bundle_root_path")
_GLOB_CHARS = "*?["
# Target keys the CLI moves into the ``bundle`` mapping.
_TARGET_BUNDLE_KEYS = ("git", "compute_id", "cluster_id")
_VALID_MODES = (None, "development", "production")
#: Top-level sections of a bundle configuration the loader keeps (as the pinned CLI's ``Root`` type
#: declares them); others (``definitions:`` blocks of YAML anchors, typos) are dropped unresolved.
CONFIG_SECTIONS = frozenset({
    "bundle", "include", "workspace", "artifacts", "resources", "targets", "environments", "variables",
    "sync", "run_as", "presets", "experimental", "permissions", "scripts", "python",
})


class BundleError(ValueError):
    """The bundle configuration is invalid or cannot be resolved for the requested target."""


#: The reference prefixes the CLI resolves while loading (``mutator/resolve_variable_references.go``);
#: others (``${artifacts...}``, ``${something.else}``) stay as written.
_RESOLVED_PREFIXES = frozenset({"bundle", "workspace", "var", "variables", "resources"})


class _Keep:
    """Marker: the reference is only known after deployment and stays verbatim."""


_KEEP = _Keep()


@dataclass(frozen=True)
class Bundle:
    """A bundle resolved for one target.

    Attributes:
        root: folder holding ``databricks.yml``.
        name: ``bundle.name``.
        target: the selected target.
        mode: the target's ``mode`` (``development``, ``production``) or None.
        variables: resolved variable values, ``{name: value}``.
        config: the whole merged, resolved configuration (without ``targets``).
        targets: every target the bundle declares, in file order.
        default_target: the target marked ``default: true`` (None when none is).
        sources: which file defined what, ``{"resources.jobs.ingestion": Path(...), ...}``; a value a
            target override set has its own entry (``resources.jobs.x.tasks[0].libraries[0]``).
        files: every configuration file loaded (``databricks.yml`` first, then the includes).
        unmatched_includes: ``include`` glob patterns that matched no file (a bundle that loads but
            lacks what those files should define).
        warnings: ``(file, key, message)`` of what the CLI would warn about while loading: a target value
            of the wrong kind it drops, complex variables that refer to each other in a cycle.
        lookup_variables: ``lookup`` variables without a value (only the workspace can resolve them);
            their references stay ``${var.<name>}`` in :attr:`config` and :attr:`variables`.
    """

    root: Path
    name: str
    target: str
    mode: str | None
    variables: dict[str, Any]
    config: dict[str, Any]
    targets: tuple[str, ...]
    default_target: str | None
    sources: dict[str, Path] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    unmatched_includes: tuple[str, ...] = ()
    warnings: tuple[tuple[str, str, str], ...] = ()
    lookup_variables: tuple[str, ...] = ()

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """``{resource_type: {key: definition}}`` (jobs, registered_models, experiments ...)."""
        return self.config.get("resources") or {}

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """Resolved job definitions by job key (``ingestion``, ``training`` ...)."""
        return self.resources.get("jobs") or {}

    def job(self, key: str) -> dict[str, Any]:
        """The resolved definition of job ``key``.

        Raises:
            BundleError: the bundle has no such job.
        """
        try:
            return self.jobs[key]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise BundleError(f"unknown job {key!r} in bundle {self.name!r}; jobs: {known}") from None

    def source_of(self, dotted_path: str) -> Path:
        """The file that defines ``dotted_path`` (longest known prefix), e.g. ``resources.jobs.x.tasks``."""
        return _source_for(self.sources, dotted_path, self.root)

    def job_id_ref(self, value: Any) -> str | None:
        """The job key of a ``${resources.jobs.<key>.id}`` reference, None for anything else."""
        if isinstance(value, str):
            m = _JOB_ID_REF_RE.match(value.strip())
            if m:
                return m.group(1)
        return None


def lookup_references(bundle: Bundle, value: Any) -> list[str]:
    """The ``lookup`` variables without a value (:attr:`Bundle.lookup_variables`) that ``value`` (a
    job definition ...) refers to, sorted: a local run of it needs ``--var <name>=<value>``."""
    if not bundle.lookup_variables:
        return []
    wanted = set(bundle.lookup_variables)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and "${" in node:
            for m in _REF_RE.finditer(node):
                parts = m.group(1).split(".")
                if len(parts) >= 2 and parts[0] in ("var", "variables") and parts[1] in wanted:
                    found.add(parts[1])

    walk(value)
    return sorted(found)


def normalise_name_prefix(prefix: str) -> str:
    """The CLI's ``normalizePrefix`` (``apply_presets.go``) for Unity Catalog names: ``"[dev alice] "``
    becomes ``"dev_alice_"``; brackets and surrounding spaces go, other characters than letters and
    digits become ``_`` (runs of them one, none at either end), and a prefix that ended with ``]`` gets a
    trailing ``_``."""
    text = prefix.replace("[", "").strip(" ")
    suffix = "_" if text.endswith("]") else ""
    normal = re.sub(r"_+", "_", re.sub(r"[^\w]|_", "_", text.lower())).strip("_")
    return normal + suffix


def find_bundle_root(start: Path | str | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``databricks.yml``.

    Raises:
        BundleError: no bundle configuration file in ``start`` or any parent.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in BUNDLE_FILE_NAMES):
            return folder
    raise BundleError(f"no databricks.yml found in {here} or any parent folder (use --bundle-root)")


def bundle_file(root: Path) -> Path:
    """The bundle's root configuration file in folder ``root`` (``databricks.yml`` ...).

    Raises:
        BundleError: ``root`` holds none of :data:`BUNDLE_FILE_NAMES`.
    """
    found = next((root / n for n in BUNDLE_FILE_NAMES if (root / n).is_file()), None)
    if found is None:
        raise BundleError(f"{root}: no {' / '.join(BUNDLE_FILE_NAMES)} in this folder")
    return found


def local_user_name() -> str:
    """The user name standing in for ``${workspace.current_user.userName}`` in local runs."""
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):  # pragma: no cover - no login name (some containers)
        return "local-user"


def load_bundle(
    root: Path | str,
    target: str | None = None,
    overrides: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_name: str | None = None,
    lookups: str = "keep",
    git: Mapping[str, str] | None = None,
    merge_keyed_lists: bool = False,
) -> Bundle:
    """Load the bundle at ``root`` and resolve it for ``target``.

    Args:
        root: the bundle root folder (the one holding ``databricks.yml``) or the file itself.
        target: target name; None selects the target marked ``default: true``.
        overrides: variable values that win over everything else (``--var k=v``): a mapping, or
            ``(name, value)`` pairs in the order given (a name given twice is an error, as in the CLI).
        env: environment for ``BUNDLE_VAR_<name>`` and ``DATABRICKS_HOST`` (default: ``os.environ``).
        user_name: stands in for ``${workspace.current_user.userName}`` (default: the local user).
        lookups: what a ``lookup`` variable without a value becomes: ``"keep"`` (the default: its
            references stay ``${var.name}``, as for a value only the workspace knows, and its name is
            listed in :attr:`Bundle.lookup_variables`; the runner refuses a job that uses it) or
            ``"error"`` (loading fails, naming ``--var``).
        git: ``bundle.git`` facts already read with :func:`git_details` (default: read them now).
        merge_keyed_lists: merge a job's tasks (job clusters, parameters; a pipeline's clusters) that
            share a key into one, as the CLI does before deploying (the offline validator's choice);
            by default two tasks with one ``task_key`` stay two (the local runner reports them).

    Raises:
        BundleError: unreadable/invalid YAML, unknown target, undeclared or unset variable, an
            unresolvable reference, a resource defined twice.
    """
    if lookups not in ("keep", "error"):
        raise ValueError(f"lookups must be 'keep' or 'error', got {lookups!r}")
    root_path = Path(root).resolve()
    if root_path.is_file():
        main_file = root_path
        root_path = root_path.parent
    else:
        main_file = bundle_file(root_path)
    env = os.environ if env is None else env
    user = user_name or local_user_name()
    given = _variable_overrides(overrides)

    config, sources, files, unmatched, fragments = _load_with_includes(main_file, root_path)
    if "targets" not in config and isinstance(config.get("environments"), dict):
        config["targets"] = config["environments"]  # the CLI's deprecated name for targets
        fragments = {f"targets.{k[len('environments.'):]}" if k.startswith("environments.") else k: v
                     for k, v in fragments.items()}
    for key in [k for k in config if k not in CONFIG_SECTIONS]:
        config.pop(key)  # unknown sections (a definitions: block of anchors ...): the CLI drops them
    targets_cfg = config.pop("targets", None) or {}
    if not isinstance(targets_cfg, dict):
        raise BundleError(f"{main_file.name}: targets: must be a mapping of target names")
    target_names = tuple(targets_cfg)
    defaults = [t for t, tc in targets_cfg.items() if isinstance(tc, dict) and tc.get("default") is True]
    if len(defaults) > 1:
        raise BundleError(f"{main_file.name}: targets: more than one default target: {', '.join(defaults)}")
    default_target = defaults[0] if defaults else None

    if target is None:
        if default_target is not None:
            target = default_target
        elif len(target_names) == 1:
            target = target_names[0]
        elif not target_names:
            target = "default"
        else:
            raise BundleError(
                f"{main_file.name}: no target given and no target has 'default: true'; "
                f"targets: {', '.join(target_names)}"
            )
    if target_names and target not in targets_cfg:
        raise BundleError(f"unknown target {target!r}; the bundle defines: {', '.join(target_names)}")
    target_cfg = targets_cfg.get(target) or {}
    if not isinstance(target_cfg, dict):
        raise BundleError(f"{relative_name(sources.get('targets', main_file), root_path)}: targets.{target}: must be a mapping")
    target_file = sources.get(f"targets.{target}", main_file)

    target_parts = fragments.get(f"targets.{target}") or [(target_file, target_cfg)]
    warnings: list[tuple[str, str, str]] = []
    mode = _merge_target(config, target_cfg, target, sources, target_parts, warnings, root_path)
    bundle_cfg = config.setdefault("bundle", {})
    if not isinstance(bundle_cfg, dict) or not bundle_cfg.get("name"):
        raise BundleError(f"{main_file.name}: bundle.name is required")
    bundle_cfg["target"] = target
    if mode is not None:
        bundle_cfg["mode"] = mode
    _set_git_details(bundle_cfg, root_path, sources, main_file, git)

    _assign_variables(config, target_cfg, target, given, env, sources, root_path, main_file, target_file,
                      keep_lookups=lookups == "keep")

    resolver = _Resolver(config, sources, root_path, target, user, env)
    resolved = resolver.resolve_all()
    if merge_keyed_lists:
        _merge_keyed_lists(resolved)
    kept_lookups = []
    for name, spec in (resolved.get("variables") or {}).items():
        if isinstance(spec, dict) and spec.get("value") is _KEEP:
            spec["value"] = f"${{var.{name}}}"
            kept_lookups.append(str(name))
    variables = {name: (spec or {}).get("value") for name, spec in (resolved.get("variables") or {}).items()}
    return Bundle(
        root=root_path,
        name=str(resolved["bundle"]["name"]),
        target=target,
        mode=mode,
        variables=variables,
        config=resolved,
        targets=target_names,
        default_target=default_target,
        sources=sources,
        files=files,
        unmatched_includes=unmatched,
        warnings=tuple(warnings + resolver.warnings),
        lookup_variables=tuple(kept_lookups),
    )


# --------------------------------------------------------------------------------------------------
# Loading and merging


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to the bundle root ``root`` (as error messages name files); as is when outside."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _source_for(sources: Mapping[str, Path], dotted_path: str, root: Path) -> Path:
    best: tuple[int, Path] | None = None
    for prefix, file in sources.items():
        matches = dotted_path == prefix or dotted_path.startswith((prefix + ".", prefix + "["))
        if matches and (best is None or len(prefix) > best[0]):
            best = (len(prefix), file)
    if best is not None:
        return best[1]
    return sources.get("", root / BUNDLE_FILE_NAMES[0])


def read_config_file(path: Path, root: Path) -> dict[str, Any]:
    """One bundle configuration file as a mapping (empty file: ``{}``), read as the CLI reads YAML
    (:mod:`bundlekit.yamlsource`: YAML 1.2 scalars, string keys, one ``<<`` per mapping).

    Raises:
        BundleError: the file cannot be read, is not valid YAML, or its top level is not a mapping.
    """
    try:
        parsed = read_yaml_file(path)
    except OSError as exc:
        raise BundleError(f"{relative_name(path, root)}: cannot read: {exc}") from exc
    if parsed.issues:
        issue = parsed.issues[0]
        where = f"{relative_name(path, root)}:{issue.line}:{issue.column}" if issue.line else relative_name(path, root)
        raise BundleError(f"{where}: {issue.key + ': ' if issue.key else ''}{issue.message}")
    data = parsed.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BundleError(f"{relative_name(path, root)}: the top level must be a mapping")
    return copy.deepcopy(data)  # the parse is cached: callers may change what they get


#: ``{"targets.<name>": [(file, the part of the target that file declares), ...]}`` in load order.
TargetFragments = dict[str, list[tuple[Path, dict[str, Any]]]]


def _load_with_includes(
    main_file: Path, root: Path
) -> tuple[dict[str, Any], dict[str, Path], tuple[Path, ...], tuple[str, ...], TargetFragments]:
    config = read_config_file(main_file, root)
    sources: dict[str, Path] = {"": main_file}
    _record_sources(config, main_file, sources)
    fragments: TargetFragments = {}
    _record_fragments(config, main_file, fragments)

    includes = config.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        raise BundleError(f"{main_file.name}: include: must be a list of glob patterns")
    seen: set[Path] = {main_file.resolve()}
    seen.update((root / name).resolve() for name in BUNDLE_FILE_NAMES)
    files = [main_file]
    unmatched: list[str] = []
    for index, pattern in enumerate(includes):
        if not isinstance(pattern, str) or not pattern:
            raise BundleError(f"{main_file.name}: include[{index}]: {pattern!r} is not a glob pattern")
        if Path(pattern).is_absolute():
            raise BundleError(f"{main_file.name}: include[{index}]: {pattern!r} must be relative to the bundle root")
        try:
            matches = sorted(p for p in root.glob(pattern) if p.is_file())
        except (ValueError, NotImplementedError, OSError) as exc:
            raise BundleError(f"{main_file.name}: include[{index}]: invalid pattern {pattern!r}: {exc}") from exc
        if not matches:
            if not any(ch in pattern for ch in _GLOB_CHARS):  # as the CLI: a plain path must exist
                raise BundleError(f"{main_file.name}: include: {pattern} does not match any file")
            unmatched.append(pattern)
        for path in matches:
            path = path.resolve()
            if path in seen:
                continue
            seen.add(path)
            if path.suffix not in (".yml", ".yaml", ".json"):
                raise BundleError(f"{main_file.name}: include[{index}]: {relative_name(path, root)}: files in the "
                                  f"'include' section must be YAML or JSON files (to sync other files, list them "
                                  f"under sync.include)")
            files.append(path)
            data = read_config_file(path, root)
            data.pop("include", None)  # as the CLI: only the root file's includes apply (it warns)
            _record_fragments(data, path, fragments)
            _merge_included(config, data, path, root, sources)
    return config, sources, tuple(files), tuple(unmatched), fragments


def _record_fragments(data: Mapping[str, Any], file: Path, fragments: TargetFragments) -> None:
    for section in ("targets", "environments"):
        targets = data.get(section)
        if not isinstance(targets, dict):
            continue
        for name, cfg in targets.items():
            if isinstance(cfg, dict):
                fragments.setdefault(f"{section}.{name}", []).append((file, cfg))


def _record_sources(data: Mapping[str, Any], file: Path, sources: dict[str, Path]) -> None:
    for section in ("resources", "variables", "targets", "scripts"):
        if not isinstance(data.get(section), dict):
            continue
        if section == "resources":
            for rtype, entries in data["resources"].items():
                for key in entries if isinstance(entries, dict) else ():
                    sources[f"resources.{rtype}.{key}"] = file
        else:
            for name in data[section]:
                sources[f"{section}.{name}"] = file


def _merge_included(config: dict[str, Any], data: dict[str, Any], path: Path, root: Path,
                    sources: dict[str, Path]) -> None:
    def record(where: tuple[str | int, ...]) -> None:
        sources[_dotted(where)] = path

    for top, value in data.items():
        if value is None:
            continue
        if top == "resources":
            if not isinstance(value, dict):
                raise BundleError(f"{relative_name(path, root)}: resources: must be a mapping")
            resources = config.setdefault("resources", {})
            if not isinstance(resources, dict):
                raise BundleError(f"{relative_name(path, root)}: resources: must be a mapping")
            for rtype, entries in value.items():
                if entries is None:
                    continue
                if not isinstance(entries, dict):
                    raise BundleError(f"{relative_name(path, root)}: resources.{rtype}: must be a mapping")
                existing = resources.setdefault(rtype, {})
                if not isinstance(existing, dict):
                    raise BundleError(f"{relative_name(path, root)}: resources.{rtype}: must be a mapping")
                for key, definition in entries.items():
                    where = f"resources.{rtype}.{key}"
                    if key in existing:
                        other = relative_name(sources.get(where, root), root)
                        raise BundleError(f"{relative_name(path, root)}: {where}: already defined in {other}")
                    existing[key] = definition
                    sources[where] = path
        elif top in ("variables", "targets", "environments", "scripts"):
            if not isinstance(value, dict):
                raise BundleError(f"{relative_name(path, root)}: {top}: must be a mapping")
            existing = config.setdefault(top, {})
            if not isinstance(existing, dict):
                raise BundleError(f"{relative_name(path, root)}: {top}: must be a mapping")
            for key, definition in value.items():
                where = f"{top}.{key}"
                if key in existing and top in ("variables", "scripts"):
                    other = relative_name(sources.get(where, root), root)
                    raise BundleError(f"{relative_name(path, root)}: {where}: already declared in {other}")
                try:
                    existing[key] = _merge(existing[key], definition, (top, key)) if key in existing else definition
                except _MergeConflict as exc:
                    raise BundleError(f"{relative_name(path, root)}: {exc}") from None
                sources.setdefault(where, path)
        elif top in config:
            try:
                config[top] = _merge(config[top], value, (top,), (top,), record)
            except _MergeConflict as exc:
                raise BundleError(f"{relative_name(path, root)}: {exc}") from None
        else:
            config[top] = copy.deepcopy(value)
            sources[top] = path


class _MergeConflict(Exception):
    """Two values the CLI cannot merge (a mapping and a string ...), at ``where``."""

    def __init__(self, where: str, base: str, override: str) -> None:
        super().__init__(f"{where}: cannot merge {override} into {base}")
        self.where = where
        self.base = base
        self.override = override


def yaml_kind(value: Any) -> str:
    """The CLI's name for the kind of a YAML value (``map``, ``sequence``, ``string``, ``int`` ...)."""
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string" if isinstance(value, str) else type(value).__name__


def _list_key(path: tuple[str, ...]) -> Callable[[Any], Any] | None:
    """How the CLI matches the items of a list a target merges into: tasks by ``task_key``, job clusters
    by ``job_cluster_key``, job parameters by ``name``, pipeline clusters by ``label``; None: appended."""
    if len(path) == 4 and path[:2] == ("resources", "jobs") and path[3] in _JOB_LIST_KEYS:
        name = _JOB_LIST_KEYS[path[3]]
        return lambda item: item.get(name) if isinstance(item, dict) else None
    if len(path) == 4 and path[:2] == ("resources", "pipelines") and path[3] == "clusters":
        return lambda item: str(item.get("label") or "default").lower() if isinstance(item, dict) else None
    return None


def _merge(base: Any, override: Any, path: tuple[str, ...], where: tuple[str | int, ...] | None = None,
           record: Callable[[tuple[str | int, ...]], None] | None = None,
           drop: Callable[[str, str], None] | None = None) -> Any:
    """Merge ``override`` into ``base`` like the CLI: maps deep, keyed job lists by key, lists appended,
    null keeps ``base``, scalars replaced; values of different kinds (a mapping and a string) do not merge.

    ``path`` is the key path used to recognise keyed job lists (list items by their key); ``where`` is
    the location in the merged result (list items by index), and ``record(where)`` is called for every
    location whose value now comes from ``override`` (to track which file set what).

    With ``drop`` (a target's override), a plain value where the other side is a mapping or a list is
    the one the CLI's normalisation drops before merging (a string where a mapping belongs): it is
    left out and ``drop(key, message)`` reports it, as the CLI warns.

    Raises:
        _MergeConflict: the two values are of kinds the CLI does not merge.
    """
    loc: tuple[str | int, ...] = path if where is None else where
    if override is None:  # as the CLI: an empty (null) override keeps what is there
        return base
    if base is None:
        if record is not None:
            record(loc)
        return copy.deepcopy(override)
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            if k in base:
                out[k] = _merge(base[k], v, (*path, str(k)), (*loc, k), record, drop)
            else:
                out[k] = copy.deepcopy(v)
                if record is not None:
                    record((*loc, k))
        return out
    if isinstance(base, list) and isinstance(override, list):
        key_of = _list_key(path)
        out_list = [copy.deepcopy(item) for item in base]
        index: dict[Any, int] = {}
        if key_of is not None:
            for i, item in enumerate(out_list):
                k = key_of(item)
                if k is not None and hashable(k):
                    index.setdefault(k, i)
        for item in override:
            k = key_of(item) if key_of is not None else None
            if k is not None and hashable(k) and k in index:
                i = index[k]
                out_list[i] = _merge(out_list[i], item, (*path, str(k)), (*loc, i), record, drop)
            else:
                out_list.append(copy.deepcopy(item))
                if record is not None:
                    record((*loc, len(out_list) - 1))
        return out_list
    if yaml_kind(base) != yaml_kind(override):
        containers = (dict, list)
        if drop is not None and isinstance(base, containers) and not isinstance(override, containers) \
                and not (isinstance(override, str) and "${" in override):
            drop(_dotted(loc), f"expected {yaml_kind(base)}, found {yaml_kind(override)}: the target's value is ignored")
            return base
        if drop is not None and isinstance(override, containers) and not isinstance(base, containers) \
                and not (isinstance(base, str) and "${" in base):
            drop(_dotted(loc), f"expected {yaml_kind(override)}, found {yaml_kind(base)}: the value is replaced by the "
                               f"target's")
            if record is not None:
                record(loc)
            return copy.deepcopy(override)
        raise _MergeConflict(_dotted(loc), yaml_kind(base), yaml_kind(override))
    if record is not None:
        record(loc)  # as the CLI: the value's location is the last file that set it
    return copy.deepcopy(override)


def _merge_keyed_lists(config: dict[str, Any]) -> None:
    """Merge the items of a job's ``tasks``, ``job_clusters`` and ``parameters`` (and a pipeline's
    ``clusters``) that share a key into the first of them, as the CLI does after merging a target
    (``resourcemutator/merge_job_tasks.go`` ...): two tasks with one ``task_key`` are one task."""
    resources = config.get("resources")
    if not isinstance(resources, dict):
        return
    for rtype, fields in (("jobs", ("tasks", "job_clusters", "parameters")), ("pipelines", ("clusters",))):
        entries = resources.get(rtype)
        for definition in entries.values() if isinstance(entries, dict) else ():
            if not isinstance(definition, dict):
                continue
            for name in fields:
                items = definition.get(name)
                key_of = _list_key(("resources", rtype, "_", name))
                if not isinstance(items, list) or key_of is None:
                    continue
                merged: list[Any] = []
                index: dict[Any, int] = {}
                for item in items:
                    k = key_of(item)
                    if k is not None and hashable(k) and k in index:
                        try:
                            merged[index[k]] = _merge(merged[index[k]], item, ("resources", rtype, "_", name, str(k)))
                        except _MergeConflict:
                            merged.append(item)
                        continue
                    if k is not None and hashable(k):
                        index[k] = len(merged)
                    merged.append(item)
                definition[name] = merged


def hashable(value: Any) -> bool:
    """True when ``value`` can be a dict key or set member (YAML can put a mapping where a key belongs)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _git(root: Path, *args: str) -> str | None:
    """``git -C root <args>``'s output, stripped; None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
            stdin=subprocess.DEVNULL, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (an HTTPS remote may embed a token)."""
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@(.*)$", url)
    return m.group(1) + m.group(2) if m else url


def git_details(root: Path | str) -> dict[str, str]:
    """The git facts of the checkout holding ``root``, as the CLI loads them into ``bundle.git``.

    Returns ``{"commit": <HEAD's SHA>, "branch": <current branch, "" when detached>, "actual_branch":
    the same, "origin_url": <remote.origin.url without credentials>, "bundle_root_path": <root relative
    to the checkout's top folder, "." at the top>}``; every value is ``""`` when ``root`` is not in a
    git checkout, the checkout has no commit yet, or git is not installed.
    """
    folder = Path(root)
    empty = dict.fromkeys(GIT_FIELDS, "")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not top:
        return empty
    branch = _git(folder, "symbolic-ref", "--quiet", "--short", "HEAD") or ""
    try:
        rel = Path(os.path.relpath(folder.resolve(), Path(top).resolve())).as_posix()
    except ValueError:  # pragma: no cover - different drives (Windows)
        rel = ""
    return {
        "commit": _git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}") or "",
        "branch": branch,
        "origin_url": _without_credentials(_git(folder, "config", "--get", "remote.origin.url") or ""),
        "actual_branch": branch,
        "bundle_root_path": rel,
    }


def _set_git_details(bundle_cfg: dict[str, Any], root: Path, sources: Mapping[str, Path], main_file: Path,
                     known: Mapping[str, str] | None = None) -> None:
    """Fill ``bundle.git`` from the checkout like the CLI: configured commit/branch/origin_url win."""
    configured = bundle_cfg.get("git") or {}
    if not isinstance(configured, dict):
        where = relative_name(sources.get("", main_file), root)
        raise BundleError(f"{where}: bundle.git: must be a mapping (branch, origin_url)")
    found = dict(known) if known is not None else git_details(root)
    git = dict(configured)
    for name in ("commit", "origin_url"):
        if not git.get(name):
            git[name] = found.get(name, "")
    if not git.get("branch"):
        git["branch"] = found.get("branch", "")
        git["inferred"] = True
    git["actual_branch"] = found.get("actual_branch", "")
    git["bundle_root_path"] = found.get("bundle_root_path", "")
    bundle_cfg["git"] = git


def _merge_target(config: dict[str, Any], target_cfg: dict[str, Any], target: str,
                  sources: dict[str, Path], parts: list[tuple[Path, dict[str, Any]]],
                  warnings: list[tuple[str, str, str]] | None = None, root: Path | None = None) -> str | None:
    """Merge the selected target into ``config``, part by part (each file that declares a part of the
    target, in load order), so that every value it sets is attributed to the file that sets it."""
    bundle_section = config.get("bundle")
    mode = target_cfg.get("mode", bundle_section.get("mode") if isinstance(bundle_section, dict) else None)
    if mode not in _VALID_MODES:
        where = parts[-1][0].name if parts else BUNDLE_FILE_NAMES[0]
        raise BundleError(
            f"{where}: targets.{target}.mode: {mode!r} is not 'development' or 'production'"
        )
    for target_file, part in parts:
        def record(where: tuple[str | int, ...], file: Path = target_file) -> None:
            # A value the target sets or adds inside what is defined elsewhere (a task's job_cluster_key,
            # its libraries, a job's environments) is attributed to the file of the target's part.
            sources[_dotted(where)] = file

        for key, value in part.items():
            if key in ("default", "mode", "variables") or value is None:
                continue
            if key in _TARGET_BUNDLE_KEYS:
                bundle_cfg = config.setdefault("bundle", {})
                if not isinstance(bundle_cfg, dict):
                    raise BundleError(f"{target_file.name}: bundle: must be a mapping")
                try:
                    bundle_cfg[key] = _merge(bundle_cfg[key], value, ("bundle", key)) if key in bundle_cfg else value
                except _MergeConflict as exc:
                    raise BundleError(f"{target_file.name}: targets.{target}.{key}: {exc}") from None
                continue
            if key == "resources" and isinstance(value, dict):
                for rtype, entries in value.items():
                    for rkey in entries if isinstance(entries, dict) else ():
                        sources.setdefault(f"resources.{rtype}.{rkey}", target_file)
            if key == "run_as":  # as the CLI: run_as is replaced, not merged
                config[key] = copy.deepcopy(value)
                record((key,))
                continue
            if key in config:
                def drop(where: str, message: str, file: Path = target_file) -> None:
                    if warnings is not None:
                        warnings.append((relative_name(file, root or file.parent), where, message))
                try:
                    config[key] = _merge(config[key], value, (key,), (key,), record, drop)
                except _MergeConflict as exc:
                    raise BundleError(f"{target_file.name}: targets.{target}: failed to merge the target's "
                                      f"{exc.where}: cannot merge {exc.base} with {exc.override}") from None
            else:
                config[key] = copy.deepcopy(value)
                record((key,))
    return mode


#: Key sets of a full variable definition in a target (anything else is a value, as the CLI reads it).
_FULL_VARIABLE_DEFINITIONS = (
    {"default", "type", "description"}, {"default", "type"}, {"default", "description"},
    {"lookup", "description"}, {"default"}, {"lookup"},
)


def _variable_overrides(overrides: Mapping[str, str] | Sequence[tuple[str, str]] | None) -> dict[str, str]:
    """``--var`` values by name; like the CLI, a name given twice is an error.

    Raises:
        BundleError: a name is given twice.
    """
    if not overrides:
        return {}
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    given: dict[str, str] = {}
    for name, value in pairs:
        if name in given:
            raise BundleError(f"--var {name}={value}: failed to assign {value} to {name}: variable has already "
                              f"been assigned value: {given[name]}")
        given[name] = value
    return given


def _assign_variables(config: dict[str, Any], target_cfg: dict[str, Any], target: str,
                      overrides: Mapping[str, str], env: Mapping[str, str], sources: dict[str, Path],
                      root: Path, main_file: Path, target_file: Path, *, keep_lookups: bool = False) -> None:
    """Give every declared variable its value for ``target``, as the CLI does.

    Precedence: ``--var``, ``BUNDLE_VAR_<name>``, the variable-overrides file, the target's value, the
    declaration's ``default``; a ``lookup`` is resolved against a workspace (``keep_lookups``: left as a
    reference). A null ``default:`` is no default. A target's value that is a mapping is a full
    definition (``default``/``lookup`` with ``type``/``description``) or else the value itself.
    """
    declared = config.get("variables") or {}
    if not isinstance(declared, dict):
        raise BundleError(f"{main_file.name}: variables: must be a mapping")
    specs: dict[str, dict[str, Any]] = {}
    for name, spec in declared.items():
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            where = relative_name(sources.get(f"variables.{name}", main_file), root)
            raise BundleError(f"{where}: variables.{name}: must be a mapping (description, default ...)")
        specs[str(name)] = dict(spec)

    target_values = target_cfg.get("variables") or {}
    if not isinstance(target_values, dict):
        raise BundleError(f"{relative_name(target_file, root)}: targets.{target}.variables: must be a mapping")
    for name, value in target_values.items():
        name = str(name)
        if name not in specs:
            raise BundleError(
                f"{relative_name(target_file, root)}: targets.{target}.variables.{name}: variable {name!r} is "
                f"assigned a value but not declared under the top-level variables:"
            )
        if isinstance(value, dict) and set(value) in _FULL_VARIABLE_DEFINITIONS:
            if value.get("lookup") is not None:
                specs[name]["lookup"] = value["lookup"]
                specs[name].pop("default", None)
            if value.get("default") is not None:
                specs[name]["default"] = value["default"]
                specs[name].pop("lookup", None)
        elif value is not None:
            specs[name]["default"] = value
            specs[name].pop("lookup", None)

    for name in overrides:
        if name not in specs:
            raise BundleError(
                f"--var {name}=...: variable {name!r} is not declared in the bundle; declared: "
                f"{', '.join(sorted(specs)) or 'none'}"
            )
        if specs[name].get("value") is not None:
            raise BundleError(f"--var {name}={overrides[name]}: failed to assign {overrides[name]} to {name}: variable "
                              f"has already been assigned value: {_stringify(specs[name]['value'])}")
        if specs[name].get("type") == "complex":
            raise BundleError(f"--var {name}=...: setting variables of complex type via --var flag is not "
                              f"supported: {name}")
    file_overrides: dict[str, Any] = {}
    overrides_file = root / ".databricks" / "bundle" / target / "variable-overrides.json"
    if overrides_file.is_file():
        try:
            file_overrides = json.loads(overrides_file.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError) as exc:
            raise BundleError(f"{relative_name(overrides_file, root)}: invalid JSON: {exc}") from exc
        if not isinstance(file_overrides, dict):
            raise BundleError(f"{relative_name(overrides_file, root)}: must hold a JSON object")
        for name in file_overrides:
            if name not in specs:
                raise BundleError(f"{relative_name(overrides_file, root)}: variable {name!r} is not declared")

    missing: list[str] = []
    for name, spec in specs.items():
        where = relative_name(sources.get(f"variables.{name}", main_file), root)
        env_name = BUNDLE_VAR_ENV_PREFIX + name
        if spec.get("value") is not None:  # a value given in the declaration itself wins, as in the CLI
            value: Any = spec["value"]
        elif name in overrides:
            value = overrides[name]
        elif env_name in env:
            if spec.get("type") == "complex":
                raise BundleError(f"{where}: variables.{name}: setting via environment variables ({env_name}) is "
                                  f"not supported for complex variable {name}")
            value = env[env_name]
        elif file_overrides.get(name) is not None:
            value = file_overrides[name]
            if (spec.get("type") == "complex") != isinstance(value, (dict, list)):
                raise BundleError(f"{relative_name(overrides_file, root)}: variable {name}: the type of the value "
                                  f"does not match the declaration (type: complex takes a mapping or a list)")
        elif spec.get("lookup") is not None:
            if not keep_lookups:
                raise BundleError(
                    f"{where}: variables.{name}: a lookup variable is resolved by the Databricks CLI against a "
                    f"workspace; for a local run pass --var {name}=<value> (or {BUNDLE_VAR_ENV_PREFIX}{name})"
                )
            value = _KEEP
        elif spec.get("default") is not None:
            value = spec["default"]
        else:
            missing.append(name)
            continue
        spec["value"] = value
    if missing:
        where = ", ".join(
            sorted({relative_name(sources.get(f"variables.{n}", main_file), root) for n in missing})
        )
        names = ", ".join(missing)
        flags = " ".join(f"--var {n}=<value>" for n in missing)
        raise BundleError(
            f"{where}: variable{'s' if len(missing) > 1 else ''} {names}: no value for target {target!r} (no default and the target does not "
            f"set it); pass {flags} (or set {', '.join(BUNDLE_VAR_ENV_PREFIX + n for n in missing)})"
        )
    config["variables"] = specs


# --------------------------------------------------------------------------------------------------
# Reference resolution


def _parse_ref(ref: str) -> list[str | int]:
    parts: list[str | int] = []
    for segment in ref.split("."):
        m = _SEGMENT_RE.fullmatch(segment)
        if not m:  # pragma: no cover - the reference regex only lets valid segments through
            raise BundleError(f"invalid reference ${{{ref}}}")
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return parts


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class _Resolver:
    """Resolves ``${...}`` references over the merged configuration, memoised, with cycle detection."""

    _DEPLOY_TIME_FIELDS = frozenset({"id", "url", "job_id", "pipeline_id", "experiment_id", "model_id",
                                     "endpoint_id", "modified_status"})

    def __init__(self, config: dict[str, Any], sources: dict[str, Path], root: Path, target: str,
                 user: str, env: Mapping[str, str]) -> None:
        self.raw = config
        self.sources = sources
        self.root = root
        self.target = target
        self.env = env
        short = re.sub(r"[^A-Za-z0-9]+", "_", user.split("@")[0]).strip("_").lower() or "user"
        self.builtins: dict[str, Any] = {
            "bundle.target": target,
            "bundle.environment": target,
            "workspace.current_user.userName": user,
            "workspace.current_user.user_name": user,
            "workspace.current_user.displayName": user,
            "workspace.current_user.short_name": short,
            "workspace.current_user.domain_friendly_name": short,
        }
        self.memo: dict[tuple[str | int, ...], Any] = {}
        self.in_progress: list[tuple[str | int, ...]] = []
        self.warnings: list[tuple[str, str, str]] = []

    def _is_complex_variable(self, path: tuple[str | int, ...]) -> bool:
        """``path`` is in a variable whose value is a mapping or a list (typed complex or not)."""
        if len(path) < 3 or path[0] != "variables":
            return False
        spec = (self.raw.get("variables") or {}).get(path[1])
        return isinstance(spec, dict) and (spec.get("type") == "complex" or isinstance(spec.get("value"), (dict, list)))

    # The workspace paths the CLI derives when they are not configured.
    def _workspace_default(self, name: str) -> Any:
        ws = self.raw.get("workspace") or {}
        if name == "root_path":
            return ws.get("root_path") or (
                "/Workspace/Users/${workspace.current_user.userName}/.bundle/${bundle.name}/${bundle.target}"
            )
        if name in ("file_path", "artifact_path", "state_path", "resource_path"):
            sub = {"file_path": "files", "artifact_path": "artifacts", "state_path": "state",
                   "resource_path": "resources"}[name]
            return ws.get(name) or "${workspace.root_path}/" + sub
        if name == "host":
            return ws.get("host") or self.env.get("DATABRICKS_HOST") or _KEEP
        return None

    def where(self, path: tuple[str | int, ...]) -> str:
        dotted = _dotted(path)
        return f"{relative_name(_source_for(self.sources, dotted, self.root), self.root)}: {dotted}"

    def resolve_all(self) -> dict[str, Any]:
        return self._resolve_value(self.raw, ())

    def _resolve_value(self, value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve_value(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve_value(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self._resolve_string(value, path)
        return value

    def _resolve_string(self, text: str, path: tuple[str | int, ...]) -> Any:
        whole = _REF_RE.fullmatch(text)
        if whole:
            got = self._lookup(whole.group(1), path)
            return text if got is _KEEP else got

        def substitute(m: re.Match[str]) -> str:
            got = self._lookup(m.group(1), path)
            if got is _KEEP:
                return m.group(0)
            if isinstance(got, (dict, list)):
                raise BundleError(
                    f"{self.where(path)}: ${{{m.group(1)}}} is a {type(got).__name__} and cannot be "
                    f"interpolated into a string"
                )
            return _stringify(got)

        return _REF_RE.sub(substitute, text)

    def _lookup(self, ref: str, at: tuple[str | int, ...]) -> Any:
        if ref in self.builtins:
            return self.builtins[ref]
        parts = _parse_ref(ref)
        head = parts[0]
        if head not in _RESOLVED_PREFIXES:
            return _KEEP  # as the CLI: only bundle, workspace, var(iables) and resources references resolve
        if head == "var":
            if len(parts) < 2:
                raise BundleError(f"{self.where(at)}: ${{{ref}}} names no variable")
            parts = ["variables", parts[1], "value", *parts[2:]]
            head = "variables"
        if head == "variables":
            name = parts[1] if len(parts) > 1 else None
            if name not in (self.raw.get("variables") or {}):
                raise BundleError(
                    f"{self.where(at)}: ${{{ref}}} refers to an undeclared variable {name!r}; declared: "
                    f"{', '.join(sorted(self.raw.get('variables') or {})) or 'none'}"
                )
        if head == "workspace" and len(parts) == 2 and isinstance(parts[1], str):
            default = self._workspace_default(parts[1])
            if default is _KEEP:
                return _KEEP
            if default is not None:
                return self._resolve_value(default, ("workspace", parts[1]))
        if head == "resources":
            return self._lookup_resource(ref, parts, at)
        found, raw = self._get(parts)
        if not found:
            raise BundleError(f"{self.where(at)}: cannot resolve ${{{ref}}}: no such key in the bundle")
        return self._resolve_at(tuple(parts), raw, ref, at)

    def _lookup_resource(self, ref: str, parts: list[str | int], at: tuple[str | int, ...]) -> Any:
        if len(parts) < 4:
            raise BundleError(f"{self.where(at)}: ${{{ref}}}: use ${{resources.<type>.<key>.<field>}}")
        rtype, key = parts[1], parts[2]
        if key not in ((self.raw.get("resources") or {}).get(rtype) or {}):
            raise BundleError(f"{self.where(at)}: ${{{ref}}} refers to resources.{rtype}.{key}, which is not defined")
        found, raw = self._get(parts)
        if not found:  # known only once deployed (id, url ...) or read from the deployed resource
            return _KEEP
        value = self._resolve_at(tuple(parts), raw, ref, at)
        if len(parts) == 4 and parts[3] == "name" and isinstance(value, str) and value:
            return self._deployed_name_prefix(str(rtype)) + value
        return value

    #: Resource types whose ``name`` the CLI prefixes with the normalised ``presets.name_prefix``
    #: (``apply_presets.go``: Unity Catalog schemas, registered models, serving endpoints).
    _NORMALISED_PREFIX_TYPES = frozenset({"schemas", "registered_models", "model_serving_endpoints"})

    def _deployed_name_prefix(self, rtype: str) -> str:
        """What the CLI puts before the ``name`` of a ``rtype`` resource when it deploys it, so that
        ``${resources.<rtype>.<key>.name}`` is the deployed name: in development mode ``dev_<short
        name>_`` (the ``[dev <short name>] `` preset, normalised), or the normalised
        ``presets.name_prefix``; nothing for other types, outside development mode without a
        ``name_prefix``, or for schemas with ``experimental.skip_name_prefix_for_schema``."""
        if rtype not in self._NORMALISED_PREFIX_TYPES:
            return ""
        experimental = self.raw.get("experimental") or {}
        if rtype == "schemas" and isinstance(experimental, dict) and experimental.get("skip_name_prefix_for_schema") in (True, "true"):
            return ""
        presets = self.raw.get("presets") or {}
        prefix = presets.get("name_prefix") if isinstance(presets, dict) else None
        if isinstance(prefix, str) and "${" in prefix:
            prefix = self._resolve_value(prefix, ("presets", "name_prefix"))
        if not prefix and (self.raw.get("bundle") or {}).get("mode") == "development":
            prefix = f"[dev {self.builtins['workspace.current_user.short_name']}] "
        return normalise_name_prefix(prefix) if isinstance(prefix, str) and prefix else ""

    def _get(self, parts: list[str | int]) -> tuple[bool, Any]:
        node: Any = self.raw
        for p in parts:
            if isinstance(p, int):
                if not isinstance(node, list) or p >= len(node):
                    return False, None
                node = node[p]
            else:
                if not isinstance(node, dict) or p not in node:
                    return False, None
                node = node[p]
        return True, node

    def _resolve_at(self, path: tuple[str | int, ...], raw: Any, ref: str, at: tuple[str | int, ...]) -> Any:
        if path in self.memo:
            return self.memo[path]
        if path in self.in_progress:
            cycle = [*self.in_progress[self.in_progress.index(path):], path]
            chain = " -> ".join(_dotted(p) for p in cycle)
            if all(self._is_complex_variable(p) for p in cycle):
                # The CLI stops resolving complex variables after a number of rounds and warns.
                where = relative_name(_source_for(self.sources, _dotted(path), self.root), self.root)
                message = f"variable references form a cycle ({chain}): they stay unresolved"
                self.warnings.append((where, _dotted(path), message))
                return _KEEP
            raise BundleError(f"{self.where(at)}: circular reference ${{{ref}}}: {chain}")
        self.in_progress.append(path)
        try:
            value = self._resolve_value(raw, path)
        finally:
            self.in_progress.pop()
        self.memo[path] = value
        return value
