"""What the offline validator reports: a :class:`Problem` with a severity, a file, a line and column,
and the key path inside the configuration.

Kept apart from the checks so that the compatibility rules (:mod:`bundlekit.compat`) and the policies
(:mod:`bundlekit.policy`) share one type without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bundlekit.loader import Bundle, relative_name
from bundlekit.yamlsource import read_yaml_file

#: A problem that fails validation (the CLI's ``Error:``; a deploy would fail).
ERROR = "error"
#: A problem that is reported but passes validation (the CLI's ``Warning:``; exit status 0).
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the bundle.

    Attributes:
        check: which check found it (``load``, ``schema``, ``paths``, ``compute``, ``jobs`` ... for the
            compatibility rules; ``policy`` for a policy's rules, then ``rule`` names the rule).
        file: the file, relative to the bundle root ("" when the message already names it).
        key: the key inside the configuration (``resources.jobs.training.tasks[1].depends_on[0]``).
        message: what is wrong and, where there is one, how to fix it.
        severity: :data:`ERROR` or :data:`WARNING`.
        line: 1-based line of the key in ``file`` (0 when unknown).
        column: 1-based column of the key in ``file`` (0 when unknown).
        rule: the policy rule (``production-target`` ...) or the compatibility rule that found it.
        waived: why the bundle's policy accepts this problem for now ("" when it does not): a waived
            problem is reported as a warning, even under ``strict``.
    """

    check: str
    file: str
    key: str
    message: str
    severity: str = ERROR
    line: int = 0
    column: int = 0
    rule: str = ""
    waived: str = ""

    @property
    def location(self) -> str:
        """``file:line:column`` (as much of it as is known)."""
        if not self.file:
            return ""
        if self.line:
            return f"{self.file}:{self.line}:{self.column or 1}"
        return self.file

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.location, self.key) if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} [waived: {self.waived}]" if self.waived else text

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON-ready data."""
        return {"severity": self.severity, "check": self.check, "rule": self.rule, "file": self.file,
                "line": self.line, "column": self.column, "key": self.key, "message": self.message,
                "waived": self.waived}


def source_of(bundle: Bundle, dotted: str) -> str:
    """The file (relative to the bundle root) that defines ``dotted`` in the merged configuration."""
    return relative_name(bundle.source_of(dotted), bundle.root)


def locate(bundle: Bundle | None, root: Path, problem: Problem) -> Problem:
    """``problem`` with the line and column of its key in its file (the key as the file writes it:
    for a value a target sets, under ``targets.<target>.``); unchanged when the file cannot say."""
    if problem.line or not problem.file:
        return problem
    path = (root / problem.file)
    try:
        parsed = read_yaml_file(path) if path.is_file() else None
    except OSError:
        parsed = None
    if parsed is None or not parsed.positions:
        return problem
    prefixes = [""]
    if bundle is not None:
        prefixes = [f"targets.{bundle.target}.", f"environments.{bundle.target}.", ""]
    best: tuple[int, tuple[int, int]] | None = None
    for prefix in prefixes:
        key = problem.key
        while key:
            found = parsed.positions.get(prefix + key)
            if found is not None:
                depth = key.count(".") + key.count("[") + 1
                if best is None or depth > best[0]:
                    best = (depth, found)
                break
            key = _parent(key)
    if best is None:
        first = parsed.positions.get(problem.key.split(".")[0]) if problem.key else None
        return replace(problem, line=first[0], column=first[1]) if first else problem
    return replace(problem, line=best[1][0], column=best[1][1])


def _parent(key: str) -> str:
    if key.endswith("]"):
        return key[:key.rindex("[")]
    return key.rsplit(".", 1)[0] if "." in key else ""
