"""Any input gives findings, never a traceback: a property-based test that breaks this repository's bundle.

Hypothesis takes the repository's bundle (``databricks.yml`` and ``resources/*.yml``, parsed), changes
one to three places in it (a value replaced by null, a scalar, a list, a mapping or another part of
the bundle; a key dropped or renamed), or damages a file's text so that it no longer parses, writes
the result next to a copy of the project (``pyproject.toml``, ``src/``) and validates it for one
target with the repository's policy. Whatever it produces, :func:`bundlekit.validate.validate_bundle`
must return a report (no exception) whose problems are well formed, and none of them may be the
"a rule could not check this bundle" fallback. Derandomized, so the suite runs the same examples
every time; about 15 seconds.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundlekit.findings import SEVERITIES
from bundlekit.policy import POLICY_FILE_NAME
from bundlekit.validate import validate_bundle

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_FILES = ["databricks.yml", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "resources").glob("*.yml"))]
PROD_VARS = [("prod_service_principal", "11111111-2222-3333-4444-555555555555"), ("alert_email", "oncall@example.com")]


def _parsed() -> dict[str, Any]:
    return {name: yaml.safe_load((REPO_ROOT / name).read_text(encoding="utf-8")) for name in BUNDLE_FILES}


ORIGINAL = _parsed()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed document: mapping keys and list indexes, outermost first."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


PLACES = [(name, path) for name in BUNDLE_FILES for path in _paths(ORIGINAL[name])]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["${var.catalog}", "${resources.jobs.training.id}",
                                                           "{{job.parameters.x}}", "${var.nope}", "${bundle.git.commit}",
                                                           "./dist/*.whl", "/Volumes/a/b/c", "UNPAUSED", "-1", "0"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, Any]:
    """One change: ``("set", file, path, value)``, ``("drop", file, path)``, ``("rename", file, path, key)``,
    ``("graft", file, path, (other file, other path))`` or ``("text", file, cut, junk)``."""
    kind = draw(st.sampled_from(["set", "set", "drop", "rename", "graft", "text"]))
    name, path = draw(st.sampled_from(PLACES))
    if kind == "set":
        return kind, (name, path, draw(values))
    if kind == "rename":
        return kind, (name, path, draw(st.one_of(st.text(max_size=10), st.sampled_from(["tasks", "environments", "run_as", "job_clusters", "resources"]))))
    if kind == "graft":
        return kind, (name, path, draw(st.sampled_from(PLACES)))
    if kind == "text":
        return kind, (name, draw(st.integers(0, 4000)), draw(st.sampled_from(["", ":", "- [", "{", "\t", "&a *a", "<<: *x", "'"])))
    return kind, (name, path)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _apply(docs: dict[str, Any], texts: dict[str, str], change: tuple[str, Any]) -> None:
    kind, args = change
    if kind == "text":
        name, cut, junk = args
        text = texts.get(name) or yaml.safe_dump(docs[name], sort_keys=False)
        cut = min(cut, len(text))
        texts[name] = text[:cut] + junk + text[cut:]
        return
    name, path = args[0], args[1]
    try:
        parent = _get(docs[name], path[:-1])
        key = path[-1]
        if kind == "set":
            parent[key] = copy.deepcopy(args[2])
        elif kind == "drop":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            parent[args[2]] = parent.pop(key)
        elif kind == "graft":
            other_name, other_path = args[2]
            parent[key] = copy.deepcopy(_get(ORIGINAL[other_name], other_path))
    except (KeyError, IndexError, TypeError):
        pass  # an earlier change removed the place: nothing to do


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of what the bundle refers to besides its YAML: the project, its sources, the policy."""
    folder = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", POLICY_FILE_NAME):
        shutil.copy2(REPO_ROOT / name, folder / name)
    shutil.copytree(REPO_ROOT / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO_ROOT / "notebooks", folder / "notebooks", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@settings(max_examples=45, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(changes=st.lists(mutation(), min_size=1, max_size=3), target=st.sampled_from(["dev", "staging", "prod", None]))
def test_a_broken_bundle_gives_findings_not_a_traceback(project, changes, target):
    docs = copy.deepcopy(ORIGINAL)
    texts: dict[str, str] = {}
    for change in changes:
        _apply(docs, texts, change)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bundle"
        root.mkdir()
        for entry in project.iterdir():  # the project's files, linked: only the YAML is written anew
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        for name in BUNDLE_FILES:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(texts.get(name) or yaml.safe_dump(docs[name], sort_keys=False), encoding="utf-8")
        report = validate_bundle(root, target, PROD_VARS if target == "prod" else [], env={},
                                 user_name="deployer@example.com")
    listing = "\n".join(f"{p.severity} [{p.check}/{p.rule}] {p}" for p in report.problems)
    assert not [p for p in report.problems if p.check == "internal"], listing
    for problem in report.problems:
        assert problem.severity in SEVERITIES and problem.message, listing
        assert problem.line >= 0 and problem.column >= 0
        assert isinstance(problem.key, str) and isinstance(problem.file, str)


def test_a_resource_with_an_empty_body_is_a_finding(project, tmp_path):
    # Was an AttributeError in the wheel check; the CLI: "job my_job is not defined".
    root = tmp_path / "bundle"
    shutil.copytree(project, root)
    for name in BUNDLE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    (root / "resources" / "empty.yml").write_text("resources:\n  jobs:\n    my_job:\n  schemas:\n    s:\n",
                                                  encoding="utf-8")
    report = validate_bundle(root, "dev", [], env={}, user_name="deployer@example.com")
    assert {(p.key, p.message) for p in report.errors} >= {
        ("resources.jobs.my_job", "job my_job is not defined"), ("resources.schemas.s", "schema s is not defined")}
    located = next(p for p in report.errors if p.key == "resources.jobs.my_job")
    assert (located.file, located.line, located.column) == ("resources/empty.yml", 3, 5)
