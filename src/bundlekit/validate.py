"""Offline validation of a Databricks Asset Bundle: what ``databricks bundle validate`` checks, without
the CLI or a workspace, plus what a deploy would fail on, plus the bundle's own policy when it has one.

Two layers:

* **Compatibility** (:mod:`bundlekit.compat`), for every bundle: the pinned Databricks CLI's own
  validation (its errors as errors, its warnings as warnings) and what the Jobs and Unity Catalog
  APIs would refuse at deploy time (a task without compute or with two kinds, an undeclared job
  cluster or environment, a cluster spec or a name the API refuses, an invalid schedule ...).
* **Policy** (:mod:`bundlekit.policy`), opt-in: a named set of stricter rules a bundle asks for with
  a ``bundlekit-policy.yml`` next to its ``databricks.yml`` (or ``policy=`` / ``--policy``). This
  repository's bundle opts into ``production``: a production target running as a service principal,
  no literal secrets, failure notifications, pinned runtimes, wheel entry points that exist ...

Every :class:`Problem` has a severity (warnings pass, as the CLI's do, unless the policy or
``strict`` says otherwise), the file, line and column, and the key path. Any input gives problems,
never an exception: YAML that does not parse, a null where a mapping belongs, a list where a string
belongs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bundlekit.compat import Context, compatibility_problems
from bundlekit.findings import ERROR, WARNING, Problem, locate
from bundlekit.loader import (
    Bundle,
    BundleError,
    bundle_file,
    git_details,
    load_bundle,
    local_user_name,
    read_config_file,
)
from bundlekit.policy import (
    POLICY_FILE_NAME,
    SECRET_PATTERNS,
    Policy,
    PolicyError,
    find_policy,
    named_policy,
    policy_problems,
    secret_problems,
)

__all__ = [
    "ERROR", "POLICY_FILE_NAME", "SECRET_PATTERNS", "WARNING", "Policy", "PolicyError", "Problem",
    "ValidationReport", "declared_targets", "resolve_policy", "secret_problems", "validate_bundle",
    "validate_targets",
]

#: ``policy=`` value that reads the bundle's own ``bundlekit-policy.yml`` (the default).
AUTO = "auto"

Overrides = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass
class ValidationReport:
    """The result of validating the bundle for one target."""

    target: str
    problems: list[Problem] = field(default_factory=list)
    bundle: Bundle | None = None
    policy: Policy | None = None

    @property
    def errors(self) -> list[Problem]:
        """The problems that fail validation."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are reported but pass."""
        return [p for p in self.problems if p.severity != ERROR]

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings pass, as the CLI's do)."""
        return not self.errors


def resolve_policy(root: Path | str, policy: Policy | str | None = AUTO) -> Policy | None:
    """The policy to apply: ``AUTO`` reads ``bundlekit-policy.yml`` at ``root`` (None without one),
    ``None`` or ``"none"`` applies none, a name picks a policy of :data:`bundlekit.policy.POLICIES`.

    Raises:
        PolicyError: the file or the name is invalid.
    """
    if policy is None or policy == "none":
        return None
    if isinstance(policy, Policy):
        return policy
    if policy == AUTO:
        return find_policy(Path(root))
    return named_policy(str(policy))


def validate_bundle(
    root: Path | str,
    target: str | None = None,
    overrides: Overrides | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_name: str | None = None,
    secrets: Sequence[Problem] | None = None,
    policy: Policy | str | None = AUTO,
    strict: bool = False,
    git: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Validate the bundle at ``root`` for ``target``; never raises for a bad bundle.

    Args:
        root: the bundle root (the folder holding ``databricks.yml``).
        target: the target; None selects the default target.
        overrides: variable values (``--var name=value``): a mapping or ``(name, value)`` pairs (a name
            given twice is an error, as in the CLI).
        env: environment for ``BUNDLE_VAR_<name>`` (default ``os.environ``).
        user_name: the deploying user (``${workspace.current_user.userName}``; default the local user).
        secrets: the ``no-literal-secrets`` result when the caller already has it (it does not depend
            on the target); computed here when the policy has that rule.
        policy: see :func:`resolve_policy` (default: the bundle's ``bundlekit-policy.yml``, if any).
        strict: warnings fail validation too (``databricks bundle validate --strict``); a policy can
            ask for it as well.
        git: ``bundle.git`` facts already read (:func:`bundlekit.loader.git_details`).

    Returns:
        A :class:`ValidationReport`; ``report.ok`` is False when any problem is an error.
    """
    root_path = Path(root).resolve()
    report = ValidationReport(target=target or "(default)")
    user = user_name or local_user_name()
    try:
        chosen = resolve_policy(root_path, policy)
    except PolicyError as exc:
        report.problems.append(Problem("policy", POLICY_FILE_NAME, "", str(exc)))
        chosen = None
    report.policy = chosen
    repository: list[Problem] = []
    if chosen is not None and "no-literal-secrets" in chosen.rules:
        found = secret_problems(root_path) if secrets is None else secrets
        repository = [replace(p, rule="no-literal-secrets", severity=ERROR) for p in found]
    try:
        bundle = load_bundle(root_path, target, overrides or {}, env=env, user_name=user, lookups="keep", git=git,
                             merge_keyed_lists=True)
    except BundleError as exc:
        report.problems.insert(0, load_problem(exc))
        report.problems.extend(repository)
        return _finish(report, None, root_path, strict or bool(chosen and chosen.strict))
    except RecursionError:
        report.problems.insert(0, Problem("load", "", "", "the configuration nests too deeply to be read"))
        return _finish(report, None, root_path, strict)
    report.target = bundle.target
    report.bundle = bundle
    ctx = Context.of(bundle, user)
    problems = compatibility_problems(ctx)
    if chosen is not None:
        problems.extend(policy_problems(ctx, chosen))
        problems = chosen.waive(problems)
    report.problems[:0] = _dedupe(problems)
    report.problems.extend(repository)
    return _finish(report, bundle, root_path, strict or bool(chosen and chosen.strict))


_SECTIONS = ("bundle", "include", "workspace", "artifacts", "resources", "targets", "environments", "variables",
             "sync", "run_as", "presets", "experimental", "permissions", "scripts", "python")
_LOAD_ERROR_RE = re.compile(
    r"^(?P<file>[^\s:]+\.(?:ya?ml|json))(?::(?P<line>\d+):(?P<column>\d+))?: "
    rf"(?:(?P<key>(?:{'|'.join(_SECTIONS)})(?:[.\[][^\s:]*)?): )?(?P<message>.*)$", re.DOTALL)


def load_problem(exc: BundleError) -> Problem:
    """The loader's error as a problem: its file, line and key when the message names them."""
    text = str(exc)
    m = _LOAD_ERROR_RE.match(text)
    if not m:
        return Problem("load", "", "", text)
    return Problem("load", m.group("file"), m.group("key") or "", m.group("message"),
                   line=int(m.group("line") or 0), column=int(m.group("column") or 0))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """Each problem once (two rules, or two targets' merged views, may find the same thing)."""
    kept: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for problem in problems:
        ident = (problem.file, problem.key, problem.message)
        if ident not in seen:
            seen.add(ident)
            kept.append(problem)
    return kept


def _finish(report: ValidationReport, bundle: Bundle | None, root: Path, strict: bool) -> ValidationReport:
    """Locate every problem (line and column), errors first; with ``strict`` warnings become errors."""
    located = [locate(bundle, root, p) for p in report.problems]
    if strict:
        located = [replace(p, severity=ERROR) if p.severity == WARNING and not p.waived else p for p in located]
    report.problems = sorted(located, key=lambda p: p.severity != ERROR)
    return report


def validate_targets(
    root: Path | str,
    targets: Sequence[str] | None = None,
    overrides: Overrides | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_name: str | None = None,
    policy: Policy | str | None = AUTO,
    strict: bool = False,
) -> list[ValidationReport]:
    """:func:`validate_bundle` for each of ``targets`` (default: every target the bundle declares, or
    the implicit ``default`` target of a bundle that declares none).

    Raises:
        BundleError: ``databricks.yml`` is missing or is not valid YAML (no target can be listed).
    """
    root_path = Path(root).resolve()
    if not targets:
        targets = declared_targets(root_path) or [None]  # type: ignore[list-item]
    try:
        chosen = resolve_policy(root_path, policy)
    except PolicyError:
        chosen = policy if isinstance(policy, Policy) else None
        secrets = None
    else:
        policy = chosen if chosen is not None else None
        secrets = secret_problems(root_path) if chosen is not None and "no-literal-secrets" in chosen.rules else []
    git = git_details(root_path)  # the same checkout for every target: read once
    return [validate_bundle(root_path, t, overrides, env=env, user_name=user_name, secrets=secrets, policy=policy,
                            strict=strict, git=git)
            for t in targets]


def declared_targets(root: Path | str) -> list[str]:
    """The target names ``databricks.yml`` declares, in file order (may be empty).

    Raises:
        BundleError: no ``databricks.yml`` in ``root`` or it is not valid YAML.
    """
    folder = Path(root).resolve()
    config = read_config_file(bundle_file(folder), folder)
    targets = config.get("targets")
    if not isinstance(targets, dict):
        targets = config.get("environments")
    return [str(t) for t in targets] if isinstance(targets, dict) else []

