"""The fields of a bundle's configuration, from well-kept sources rather than hand-written lists.

* **Resources.** Every resource type of the pinned Databricks CLI (:data:`CLI_RESOURCE_TYPES`) is
  known. The fields of a resource come from the ``databricks-bundles`` typed class of its type
  (``databricks.bundles.jobs.Job`` ...) where there is one; the ``postgres_*`` family, which
  ``databricks-bundles`` does not model, takes the ``databricks-sdk`` dataclass the CLI embeds
  (``databricks.sdk.service.postgres.ProjectSpec`` ...) plus the identifier fields the CLI adds
  (:data:`_SDK_RESOURCES`). Dataclass fields, their type hints and their defaults give the field
  names, the nested shapes, the enum values and the required fields.
* **The bundle's own sections** (``bundle``, ``workspace``, ``artifacts``, ``sync``, ``variables``,
  targets ...) have no class in either package; :func:`root_shape` lists their fields (``BUNDLE``,
  ``WORKSPACE``, ``ARTIFACT`` ...) as the pinned CLI's configuration types declare them
  (``bundle/config/*.go``).

:func:`check` walks a value against a :class:`Shape` the way the CLI normalises configuration: an
unknown field, a value of the wrong type, an enum value outside its values, a required field not
set, each is a finding, never an exception. Strings holding ``${...}`` are not checked (their value
is only known at deploy time).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import importlib
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bundlekit.loader import yaml_kind

#: Resource types of the pinned CLI (``bundle/config/resources.go``), plural -> singular name.
CLI_RESOURCE_TYPES: dict[str, str] = {
    "jobs": "job", "job_runs": "job_run", "pipelines": "pipeline", "models": "model",
    "experiments": "experiment", "model_serving_endpoints": "model_serving_endpoint",
    "registered_models": "registered_model", "quality_monitors": "quality_monitor", "catalogs": "catalog",
    "schemas": "schema", "volumes": "volume", "external_locations": "external_location", "clusters": "cluster",
    "dashboards": "dashboard", "genie_spaces": "genie_space", "apps": "app", "secret_scopes": "secret_scope",
    "alerts": "alert", "sql_warehouses": "sql_warehouse", "database_instances": "database_instance",
    "database_catalogs": "database_catalog", "synced_database_tables": "synced_database_table",
    "postgres_projects": "postgres_project", "postgres_branches": "postgres_branch",
    "postgres_endpoints": "postgres_endpoint", "postgres_catalogs": "postgres_catalog",
    "postgres_databases": "postgres_database", "postgres_roles": "postgres_role",
    "postgres_synced_tables": "postgres_synced_table", "vector_search_endpoints": "vector_search_endpoint",
    "vector_search_indexes": "vector_search_index", "instance_pools": "instance_pool", "secrets": "secret",
}

#: Resource types ``databricks-bundles`` does not model: ``(databricks-sdk module, spec class,
#: fields the CLI adds as {name: kind}, of which required)``, from ``bundle/config/resources/postgres_*.go``.
_SDK_RESOURCES: dict[str, tuple[str, str, dict[str, str], tuple[str, ...]]] = {
    "postgres_projects": ("databricks.sdk.service.postgres", "ProjectSpec",
                          {"project_id": "str", "purge_on_delete": "bool", "permissions": "permissions"},
                          ("project_id",)),
    "postgres_branches": ("databricks.sdk.service.postgres", "BranchSpec",
                          {"branch_id": "str", "parent": "str", "replace_existing": "bool", "purge_on_delete": "bool"},
                          ("branch_id", "parent")),
    "postgres_endpoints": ("databricks.sdk.service.postgres", "EndpointSpec",
                           {"endpoint_id": "str", "parent": "str", "replace_existing": "bool"},
                           ("endpoint_id", "parent")),
    "postgres_catalogs": ("databricks.sdk.service.postgres", "CatalogCatalogSpec", {"catalog_id": "str"},
                          ("catalog_id",)),
    "postgres_databases": ("databricks.sdk.service.postgres", "DatabaseDatabaseSpec",
                           {"database_id": "str", "parent": "str", "replace_existing": "bool"},
                           ("database_id", "parent")),
    "postgres_roles": ("databricks.sdk.service.postgres", "RoleRoleSpec",
                       {"role_id": "str", "parent": "str", "replace_existing": "bool"}, ("role_id", "parent")),
    "postgres_synced_tables": ("databricks.sdk.service.postgres", "SyncedTableSyncedTableSpec",
                               {"synced_table_id": "str"}, ("synced_table_id",)),
}

#: Fields every CLI resource has besides its API fields (``BaseResource``): read-only ones included,
#: as the CLI accepts them in configuration (``id`` of a bound resource).
_BASE_FIELDS = ("id", "url", "modified_status", "lifecycle")


@dataclass(eq=False)
class Shape:
    """What a configuration value may be.

    ``kind`` is ``struct`` (a mapping with known ``fields``), ``map`` (string keys, ``item`` values),
    ``list`` (``item`` elements), ``enum`` (one of ``values``), ``str``, ``int``, ``float``, ``bool`` or
    ``any``. ``name`` names a struct or enum in messages.
    """

    kind: str
    name: str = ""
    values: tuple[str, ...] = ()
    item: Shape | None = None
    required: tuple[str, ...] = ()
    _fields: dict[str, Shape] | None = None
    _build: Any = None

    @property
    def fields(self) -> dict[str, Shape]:
        """A struct's fields (built on first use: shapes may refer to themselves, e.g. a for-each task)."""
        if self._fields is None:
            self._fields = {}
            if self._build is not None:
                self._fields.update(self._build())
        return self._fields


ANY = Shape("any")
STR = Shape("str")
INT = Shape("int")
FLOAT = Shape("float")
BOOL = Shape("bool")


def struct(name: str, fields: Mapping[str, Shape], required: tuple[str, ...] = ()) -> Shape:
    """A struct shape with the given fields."""
    return Shape("struct", name=name, required=required, _fields=dict(fields))


def enum_of(name: str, *values: str) -> Shape:
    """An enum shape."""
    return Shape("enum", name=name, values=tuple(values))


def list_of(item: Shape) -> Shape:
    """A list shape."""
    return Shape("list", item=item)


def map_of(item: Shape) -> Shape:
    """A string-keyed map shape."""
    return Shape("map", item=item)


# --------------------------------------------------------------------------------------------------
# Shapes from dataclasses (databricks-bundles typed classes, databricks-sdk service dataclasses)

_SCALARS: dict[Any, Shape] = {str: STR, int: INT, float: FLOAT, bool: BOOL}


def _strip(tp: Any) -> list[Any]:
    """The alternatives of a type hint, without ``None`` and ``databricks-bundles``' ``Variable[...]``."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_strip(arg))
        return out
    if tp is type(None):
        return []
    name = getattr(typing.get_origin(tp) or tp, "__name__", "")
    if name == "Variable":
        return []
    return [tp]


@functools.cache
def shape_of_type(tp: Any) -> Shape:
    """The :class:`Shape` of a type hint (dataclass, enum, ``Literal``, list, dict, scalar)."""
    options = _strip(tp)
    if not options:
        return ANY
    # Prefer the richest alternative: a dataclass, then a container, then an enum, then a scalar.
    def rank(t: Any) -> int:
        if dataclasses.is_dataclass(t):
            return 0
        if typing.get_origin(t) in (list, dict, typing.Union) or t in (list, dict):
            return 1
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return 2
        return 3
    tp = min(options, key=rank)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return dataclass_shape(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return enum_of(tp.__name__, *(str(m.value) for m in tp))
    if origin is typing.Literal:
        return enum_of("literal", *(str(a) for a in args))
    if origin in (list, typing.List) or tp is list:  # noqa: UP006 - older SDK annotations
        return list_of(shape_of_type(args[0]) if args else ANY)
    if origin in (dict, typing.Dict) or tp is dict:  # noqa: UP006
        return map_of(shape_of_type(args[1]) if len(args) == 2 else ANY)
    return _SCALARS.get(tp, ANY)


@functools.cache
def dataclass_shape(cls: type) -> Shape:
    """The struct shape of a dataclass: its fields (lazily), required = fields without a default."""
    required = tuple(f.name for f in dataclasses.fields(cls)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)

    def build() -> dict[str, Shape]:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - unresolvable forward references: fields of any type
            hints = {}
        return {f.name: shape_of_type(hints.get(f.name, Any)) for f in dataclasses.fields(cls)}

    return Shape("struct", name=cls.__name__, required=required, _build=build)


# --------------------------------------------------------------------------------------------------
# Resource shapes

_KIND_SHAPES = {"str": STR, "bool": BOOL, "int": INT}


@functools.cache
def bundles_class(plural: str) -> type | None:
    """The ``databricks-bundles`` typed class of resource type ``plural`` (``databricks.bundles.jobs.Job``);
    None when the package does not model the type or is not installed.

    Only that type's module is imported (all of them take over a second).
    """
    try:
        from databricks.bundles.core._resource import Resource
        module = importlib.import_module(f"databricks.bundles.{plural}")
    except ImportError:
        return None
    names = getattr(module, "__all__", None) or dir(module)
    for name in names:
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and issubclass(candidate, Resource) and candidate is not Resource:
            return candidate
    return None


@functools.cache
def resource_shape(plural: str) -> Shape | None:
    """The shape of one resource of type ``plural`` (``jobs`` ...); None for a type the CLI does not know
    or whose field source is not installed."""
    if plural not in CLI_RESOURCE_TYPES:
        return None
    cls = bundles_class(plural)
    if cls is not None:
        base = dataclass_shape(cls)
        extra = {name: ANY for name in _BASE_FIELDS}
        return Shape("struct", name=cls.__name__, required=base.required,
                     _build=lambda: {**extra, **base.fields})
    spec = _SDK_RESOURCES.get(plural)
    if spec is None:
        return None
    module_name, class_name, added, required = spec
    try:
        spec_cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return None
    base = dataclass_shape(spec_cls)

    def build() -> dict[str, Shape]:
        fields = {name: ANY for name in _BASE_FIELDS}
        fields.update(base.fields)
        for name, kind in added.items():
            fields[name] = list_of(PERMISSION) if kind == "permissions" else _KIND_SHAPES[kind]
        return fields

    return Shape("struct", name=class_name, required=tuple(dict.fromkeys((*required, *base.required))),
                 _build=build)


def field_source(plural: str) -> str:
    """Where the fields of resource type ``plural`` come from, for messages and documentation."""
    cls = bundles_class(plural)
    if cls is not None:
        return f"databricks-bundles {cls.__module__.split('._')[0]}.{cls.__name__}"
    if plural in _SDK_RESOURCES:
        module_name, class_name, _, _ = _SDK_RESOURCES[plural]
        return f"databricks-sdk {module_name}.{class_name}"
    return "none"


# --------------------------------------------------------------------------------------------------
# The bundle's own sections (the pinned CLI's bundle/config/*.go types)

PERMISSION = struct("Permission", {"level": STR, "user_name": STR, "group_name": STR,
                                   "service_principal_name": STR}, ("level",))
RUN_AS = struct("JobRunAs", {"user_name": STR, "service_principal_name": STR})
GIT = struct("Git", {"branch": STR, "origin_url": STR, "commit": STR, "actual_branch": STR,
                     "bundle_root_path": STR, "inferred": BOOL})
BUNDLE = struct("Bundle", {
    "name": STR, "target": STR, "environment": STR, "terraform": ANY, "force": BOOL, "git": GIT,
    "mode": enum_of("Mode", "development", "production"), "compute_id": STR, "cluster_id": STR,
    "engine": STR, "deployment": struct("Deployment", {
        "fail_on_active_runs": BOOL, "lock": struct("Lock", {"enabled": BOOL, "force": BOOL})}),
    "databricks_cli_version": STR, "uuid": STR,
})
WORKSPACE = struct("Workspace", {name: STR for name in (
    "host", "profile", "auth_type", "metadata_service_url", "client_id", "google_service_account",
    "azure_workspace_resource_id", "azure_client_id", "azure_tenant_id", "azure_environment",
    "azure_login_app_id", "account_id", "workspace_id", "root_path", "file_path", "resource_path",
    "artifact_path", "state_path", "snapshot_path")} | {
    "azure_use_msi": BOOL, "experimental_is_unified_host": BOOL, "current_user": ANY})
ARTIFACT = struct("Artifact", {
    "type": enum_of("ArtifactType", "whl", "jar"), "path": STR,
    "files": list_of(struct("ArtifactFile", {"source": STR, "patched": STR, "remote_path": STR}, ("source",))),
    "build": STR, "executable": STR, "dynamic_version": BOOL,
})
SYNC = struct("Sync", {"paths": list_of(STR), "include": list_of(STR), "exclude": list_of(STR)})
PRESETS = struct("Presets", {
    "name_prefix": STR, "pipelines_development": BOOL, "trigger_pause_status": STR,
    "jobs_max_concurrent_runs": INT, "source_linked_deployment": BOOL, "artifacts_dynamic_version": BOOL,
    "tags": map_of(STR),
})
PYTHON = struct("Python", {"resources": list_of(STR), "mutators": list_of(STR), "venv_path": STR})
EXPERIMENTAL = struct("Experimental", {
    "scripts": map_of(STR), "immutable_folder": BOOL, "python_wheel_wrapper": BOOL, "use_legacy_run_as": BOOL,
    "pydabs": struct("PyDABs", {"enabled": BOOL, "venv_path": STR, "import": list_of(STR)}), "python": PYTHON,
    "skip_artifact_cleanup": BOOL, "skip_name_prefix_for_schema": BOOL, "record_deployment_history": BOOL,
})
SCRIPT = struct("Script", {"content": STR, "env": map_of(STR)})
LOOKUP = struct("Lookup", {name: STR for name in (
    "alert", "cluster_policy", "cluster", "dashboard", "instance_pool", "job", "metastore",
    "notification_destination", "pipeline", "query", "service_principal", "warehouse")})
VARIABLE = struct("Variable", {"type": enum_of("VariableType", "complex"), "default": ANY,
                               "description": STR, "value": ANY, "lookup": LOOKUP})


def resources_shape() -> Shape:
    """The ``resources`` mapping: every CLI resource type, each a map of resources of its shape."""
    def build() -> dict[str, Shape]:
        return {plural: map_of(resource_shape(plural) or ANY) for plural in CLI_RESOURCE_TYPES}
    return Shape("struct", name="Resources", _build=build)


def _target_shape(resources: Shape) -> Shape:
    return struct("Target", {
        "default": BOOL, "mode": enum_of("Mode", "development", "production"), "presets": PRESETS,
        "compute_id": STR, "cluster_id": STR, "bundle": BUNDLE, "workspace": WORKSPACE,
        "artifacts": map_of(ARTIFACT), "resources": resources, "variables": map_of(ANY), "git": GIT,
        "run_as": RUN_AS, "sync": SYNC, "permissions": list_of(PERMISSION),
    })


@functools.cache
def root_shape() -> Shape:
    """The shape of a bundle configuration file (``databricks.yml`` or an included file)."""
    resources = resources_shape()
    target = _target_shape(resources)
    return struct("Root", {
        "bundle": BUNDLE, "include": list_of(STR), "workspace": WORKSPACE, "artifacts": map_of(ARTIFACT),
        "resources": resources, "targets": map_of(target), "environments": map_of(target),
        "variables": map_of(VARIABLE), "sync": SYNC, "run_as": RUN_AS, "presets": PRESETS,
        "experimental": EXPERIMENTAL, "permissions": list_of(PERMISSION), "scripts": map_of(SCRIPT),
        "python": PYTHON, "definitions": ANY,
    })


# --------------------------------------------------------------------------------------------------
# Checking a value against a shape


@dataclass(frozen=True)
class FieldFinding:
    """A value that does not fit its shape: ``kind`` is ``unknown``, ``type``, ``enum`` or ``required``."""

    key: str
    kind: str
    message: str


def _join(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else str(part)


_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*")
_FLOAT_TEXT = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def check(shape: Shape, value: Any, key: str, *, anchored: frozenset[str] | set[str] = frozenset(),
          depth: int = 0) -> Iterator[FieldFinding]:
    """Every way ``value`` (at ``key``) does not fit ``shape``, as the CLI's normalisation finds them.

    ``anchored`` holds key paths whose value is a YAML anchor block: unknown there is not reported
    (the CLI's rule for reusable blocks). Never raises.
    """
    if value is None or _is_reference(value) or shape.kind == "any" or depth > 60:
        return
    kind = shape.kind
    if kind == "struct":
        if not isinstance(value, dict):
            yield FieldFinding(key, "type", f"expected a map ({shape.name}), found {yaml_kind(value)}")
            return
        fields = shape.fields
        for name, sub in value.items():
            sub_key = _join(key, str(name))
            if str(name) not in fields:
                if sub_key not in anchored:
                    close = difflib.get_close_matches(str(name), list(fields), 1, 0.75)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    yield FieldFinding(sub_key, "unknown", f"unknown field: {name} (not a field of {shape.name}){hint}")
                continue
            yield from check(fields[str(name)], sub, sub_key, anchored=anchored, depth=depth + 1)
        for name in shape.required:
            if name not in value:
                yield FieldFinding(key, "required", f'required field "{name}" is not set')
    elif kind == "map":
        if not isinstance(value, dict):
            yield FieldFinding(key, "type", f"expected a map, found {yaml_kind(value)}")
            return
        for name, sub in value.items():
            yield from check(shape.item or ANY, sub, _join(key, str(name)), anchored=anchored, depth=depth + 1)
    elif kind == "list":
        if not isinstance(value, list):
            yield FieldFinding(key, "type", f"expected a sequence, found {yaml_kind(value)}")
            return
        for i, sub in enumerate(value):
            yield from check(shape.item or ANY, sub, _join(key, i), anchored=anchored, depth=depth + 1)
    elif kind == "enum":
        if isinstance(value, (dict, list)):
            yield FieldFinding(key, "type", f"expected a string, found {yaml_kind(value)}")
        elif str(value) not in shape.values and not (isinstance(value, bool) and str(value).lower() in shape.values):
            yield FieldFinding(key, "enum", f'invalid value "{value}" for enum field. Valid values are '
                                            f'[{" ".join(sorted(shape.values))}]')
    elif kind == "str":
        if isinstance(value, (dict, list)):
            yield FieldFinding(key, "type", f"expected a string, found {yaml_kind(value)}")
    elif kind == "int":
        if isinstance(value, (bool, dict, list)):
            yield FieldFinding(key, "type", f"expected an int, found {yaml_kind(value)}")
        elif isinstance(value, float) and not value.is_integer():
            yield FieldFinding(key, "type", f'cannot accurately represent "{value}" as integer')
        elif isinstance(value, str) and not _INT_TEXT.fullmatch(value):
            yield FieldFinding(key, "type", f'cannot parse "{value}" as an integer')
    elif kind == "float":
        if isinstance(value, (bool, dict, list)):
            yield FieldFinding(key, "type", f"expected a float, found {yaml_kind(value)}")
        elif isinstance(value, str) and not _FLOAT_TEXT.fullmatch(value):
            yield FieldFinding(key, "type", f'cannot parse "{value}" as a floating point number')
    elif kind == "bool":
        if isinstance(value, str):
            if value.strip().lower() not in ("true", "false"):
                yield FieldFinding(key, "type", f'cannot parse "{value}" as a boolean')
        elif not isinstance(value, bool):
            yield FieldFinding(key, "type", f"expected a bool, found {yaml_kind(value)}")
