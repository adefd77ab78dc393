"""Read a bundle's YAML files as the Databricks CLI does, and remember where each key is.

The CLI parses bundle files with a YAML 1.2 parser: ``on``, ``yes`` and ``no`` are strings, dates
stay strings, a mapping key must be a string (``123:`` is an error, not the number 123) and a mapping
may have one ``<<`` merge key only. PyYAML's ``safe_load`` follows YAML 1.1 on all four points, so
this module gives it a YAML 1.2 view (:class:`BundleYamlLoader`) and reads every file once into a
:class:`YamlFile`: the parsed data, the line and column of every key path
(``resources.jobs.x.tasks[0].task_key``), which values are anchors (reusable blocks the CLI does
not warn about as unknown fields), and what the file itself gets wrong.

Key paths are written as everywhere in :mod:`bundlekit`: mapping keys joined by dots, list items as
``[i]`` (:func:`bundlekit.jobspec.key_path`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"

# YAML 1.2 core schema scalars (what the CLI's parser resolves), replacing YAML 1.1's.
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


class BundleYamlLoader(yaml.SafeLoader):
    """A safe loader with YAML 1.2 core-schema scalars that records each node's anchor name."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        """Compose as usual, keeping the anchor (``&name``) on the node as ``node.anchor``."""
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        is_alias = isinstance(event, yaml.AliasEvent)
        node = Composer.compose_node(self, parent, index)
        if anchor is not None and not is_alias:
            node.anchor = anchor  # type: ignore[attr-defined]
        return node

    def construct_yaml_int(self, node: ScalarNode) -> int:  # type: ignore[override]
        """``0o17`` and ``0x1f`` as YAML 1.2 writes them; decimal otherwise."""
        value = str(self.construct_scalar(node))
        if value.startswith(("0o", "0x")):
            return int(value, 0)
        return int(value)


BundleYamlLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", _BOOL_RE, "tTfF"),
    ("tag:yaml.org,2002:int", _INT_RE, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT_RE, "-+0123456789."),
    (_NULL_TAG, _NULL_RE, ["~", "n", "N", ""]),
    (_MERGE_TAG, re.compile(r"^<<$"), ["<"]),
):
    BundleYamlLoader.add_implicit_resolver(_tag, _regexp, list(_first))
BundleYamlLoader.add_constructor("tag:yaml.org,2002:int", BundleYamlLoader.construct_yaml_int)


@dataclass(frozen=True)
class YamlIssue:
    """Something the CLI's YAML reader rejects in a file, with where it is (1-based)."""

    key: str
    line: int
    column: int
    message: str


@dataclass
class YamlFile:
    """One parsed bundle file.

    Attributes:
        path: the file.
        data: the parsed document (None for an empty file or when it does not parse).
        positions: ``{key path: (line, column)}``, 1-based, of every mapping key and list item.
        anchored: key paths whose value is an anchor, or a non-empty container of only anchors.
        issues: what the CLI refuses (duplicate ``<<``, a key that is not a string, YAML that does
            not parse); a file with issues is not loaded.
    """

    path: Path
    data: Any = None
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    anchored: set[str] = field(default_factory=set)
    issues: list[YamlIssue] = field(default_factory=list)

    def position(self, key: str) -> tuple[int, int] | None:
        """``(line, column)`` of ``key`` or of its nearest ancestor present in the file."""
        while key:
            found = self.positions.get(key)
            if found is not None:
                return found
            key = _parent(key)
        return None


def _parent(key: str) -> str:
    """``a.b[0].c`` -> ``a.b[0]`` -> ``a.b`` -> ``a`` -> ``""``."""
    if key.endswith("]"):
        return key[:key.rindex("[")]
    return key.rsplit(".", 1)[0] if "." in key else ""


def _join(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


def _is_anchor_container(node: Node) -> bool:
    """The CLI skips its unknown-field warning for an anchor, or a container holding only anchors."""
    if getattr(node, "anchor", None):
        return True
    if isinstance(node, SequenceNode):
        items = list(node.value)
    elif isinstance(node, MappingNode):
        items = [v for _, v in node.value]
    else:
        return False
    return bool(items) and all(_is_anchor_container(n) for n in items)


class _Indexer:
    """Walks a composed document (before construction, which flattens ``<<``) recording positions."""

    def __init__(self, out: YamlFile) -> None:
        self.out = out
        self.active: set[int] = set()

    def walk(self, node: Node, path: str) -> None:
        if id(node) in self.active:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            self.out.issues.append(YamlIssue(path, line, column, "an alias refers to the block that contains "
                                                                 "it (a recursive anchor)"))
            return
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                self._mapping(node, path)
            elif isinstance(node, SequenceNode):
                for i, item in enumerate(node.value):
                    sub = _join(path, i)
                    self.out.positions.setdefault(sub, (item.start_mark.line + 1, item.start_mark.column + 1))
                    if _is_anchor_container(item):
                        self.out.anchored.add(sub)
                    self.walk(item, sub)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: str) -> None:
        merges: list[Node] = []
        for key_node, value_node in node.value:
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key_node.tag == _MERGE_TAG:
                if merges:
                    self.out.issues.append(YamlIssue(path, line, column, (
                        "duplicate YAML merge key ('<<') is not allowed; to merge multiple maps, use a "
                        "sequence: '<<: [*anchor1, *anchor2]'")))
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.out.issues.append(YamlIssue(path, line, column, "a mapping key must be a string, not a "
                                                                     "mapping or a list"))
                continue
            if key_node.tag not in (_STR_TAG, _NULL_TAG):
                kind = key_node.tag.rsplit(":", 1)[-1]
                self.out.issues.append(YamlIssue(_join(path, str(key_node.value)), line, column, (
                    f"the key {key_node.value!r} is read as a YAML {kind}, and the CLI accepts only string "
                    f"keys: quote it")))
                continue
            sub = _join(path, str(key_node.value))
            self.out.positions[sub] = (line, column)
            if _is_anchor_container(value_node):
                self.out.anchored.add(sub)
            self.walk(value_node, sub)
        for merged in merges:  # keys merged in keep the position of the block they come from
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    line, column = source.start_mark.line + 1, source.start_mark.column + 1
                    self.out.issues.append(YamlIssue(path, line, column, "map merge requires map or sequence "
                                                                         "of maps as the value"))
                    continue
                inner = YamlFile(self.out.path)
                sub_indexer = _Indexer(inner)
                sub_indexer.active = set(self.active)
                sub_indexer.walk(source, path)
                self.out.issues.extend(i for i in inner.issues if i not in self.out.issues)
                for key, where in inner.positions.items():
                    self.out.positions.setdefault(key, where)
                self.out.anchored.update(inner.anchored)


_CACHE: dict[tuple[str, bytes], YamlFile] = {}


def read_yaml_file(path: Path) -> YamlFile:
    """Parse ``path``; never raises for bad content. Parses are cached by content (validating every
    target reads the same files), so a caller must not change the data it gets.

    Raises:
        OSError: the file cannot be read.
    """
    raw = path.read_bytes()
    cache_key = (str(path), hashlib.blake2b(raw, digest_size=16).digest())
    cached = _CACHE.get(cache_key)
    if cached is not None:
        return cached
    result = parse_yaml(raw.decode("utf-8", errors="replace"), path)
    if len(_CACHE) > 512:
        _CACHE.clear()
    _CACHE[cache_key] = result
    return result


def parse_yaml(text: str, path: Path | None = None) -> YamlFile:
    """Parse one YAML document (a bundle file) into a :class:`YamlFile`; never raises."""
    out = YamlFile(Path(path) if path is not None else Path("<string>"))
    loader = BundleYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return out
        _Indexer(out).walk(node, "")
        if out.issues:
            return out
        out.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        out.issues.append(YamlIssue("", line, column, f"invalid YAML: {problem}"))
        out.data = None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        out.issues.append(YamlIssue("", 0, 0, f"invalid YAML: {exc}"))
        out.data = None
    finally:
        loader.dispose()
    return out
