"""The compatibility rules against the pinned Databricks CLI's verdicts: one small bundle per rule.

The cases live in ``conformance/cases.yml`` (each names the CLI source its rule comes from, the CLI's
verdict and the key its message names). Each is written to a temporary folder and validated without
a policy, as any bundle would be; the verdict and the key must match. A last test checks that every
compatibility rule of :mod:`bundlekit.compat` is broken by at least one case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bundlekit import compat
from bundlekit.validate import ValidationReport, validate_bundle

CASES_FILE = Path(__file__).parent / "conformance" / "cases.yml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
USER = "deployer@example.com"


def run_case(case: dict[str, Any], folder: Path) -> ValidationReport:
    """Write the case's bundle into ``folder`` and validate it as the case says (no policy)."""
    for name, text in case["files"].items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    variables = [tuple(pair) for pair in case.get("vars") or []]
    return validate_bundle(folder, case.get("target"), variables, env={}, user_name=case.get("user", USER),
                           policy=None)


def test_the_cases_are_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names are unique"
    for case in CASES:
        assert set(case) <= {"name", "cli", "verdict", "key", "rule", "target", "vars", "user", "files"}, case["name"]
        assert case["verdict"] in ("error", "warning", "ok"), case["name"]
        assert case["cli"] and "databricks.yml" in case["files"], case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, tmp_path):
    report = run_case(case, tmp_path)
    listing = "\n".join(f"{p.severity}: {p}" for p in report.problems) or "(no problems)"
    assert not [p for p in report.problems if p.check == "internal"], listing
    if case["verdict"] == "ok":
        assert report.problems == [], listing
        return
    wanted = report.errors if case["verdict"] == "error" else report.warnings
    assert wanted, f"expected an {case['verdict']}:\n{listing}"
    if case["verdict"] == "warning":
        assert report.ok, listing
    if "key" in case:
        matching = [p for p in wanted if p.key == case["key"]]
        assert matching, f"expected an {case['verdict']} at {case['key']}:\n{listing}"
        if "rule" in case:
            assert any(p.rule == case["rule"] or p.check == case["rule"] for p in matching), listing
        assert all(p.line > 0 for p in matching if p.file), f"located: {listing}"


def test_every_compatibility_rule_is_broken_by_a_case():
    covered = {c["rule"] for c in CASES if "rule" in c}
    assert {rule.name for rule in compat.RULES} - covered == set()
