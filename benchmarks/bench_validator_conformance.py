"""How often the offline validator agrees with ``databricks bundle validate``: run outside the repository.

The Databricks CLI's acceptance tests (``acceptance/bundle/**`` of a databricks/cli checkout) are small
bundles, each a folder with a ``databricks.yml``, the ``script`` the test runs and the ``output.txt``
it expects. For every ``bundle validate`` the script runs before it changes anything (no file written,
nothing deployed, no git set up), this benchmark reads the CLI's verdict from the expected output
(``Error:`` lines: error; otherwise OK, warnings included) and the key the first error names (its
``at <key>`` line), runs :func:`bundlekit.validate.validate_bundle` on the same folder with the same
target, ``--var`` flags, ``BUNDLE_VAR_`` environment and ``--strict``, and compares. Then it validates
every bundle of a databricks/bundle-examples checkout (default target, with the variable values their
own comments suggest) and counts false alarms: errors on bundles the CLI accepts.

Nothing of the CLI runs: its verdicts are the expected outputs its own tests hold.

    .venv/bin/python benchmarks/bench_validator_conformance.py --cli-checkout /tmp/cli \\
        --bundle-examples /tmp/bundle-examples [--show-agreeing] [--json out.json]

Exit status 0 always (a measurement, not a gate) unless a checkout is missing (2).

Last measured (databricks/cli v1.13.0, bundle-examples a4c43ad0; docs/bundlekit.md lists every
difference and why): 210 validate invocations in 164 case folders, verdict agrees 205/210 = 97.6%,
same key 25/25 of the CLI's located errors and 16/17 of its located warnings, 0 false alarms;
bundle-examples: 44 bundles, 0 false alarms, 2 rejected by the pinned CLI as well.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bundlekit.validate import validate_bundle

#: Script commands that change nothing a later ``bundle validate`` reads (output helpers, reads).
INERT_COMMANDS = frozenset({"trace", "title", "echo", "errcode", "musterr", "jq", "cat", "grep", "printf",
                            "sort_blocks.py", "gron.py", "contains.py", "head", "tail"})
#: CLI subcommands that only read the bundle.
READ_ONLY_BUNDLE_COMMANDS = frozenset({"validate", "summary"})
#: Case folders (relative to ``acceptance/bundle``) left out, with the reason.
EXCLUDED_PREFIXES = {
    "python/": "resources defined in Python code (the validator reads YAML only)",
    "templates/": "bundles generated from templates at test time",
    "templates-machinery/": "bundles generated from templates at test time",
    "benchmarks/": "generated configurations",
}

#: The user the CLI's acceptance tests deploy as (``[USERNAME]`` in their expected output), and the
#: service principal they deploy as when a case's ``test.toml`` sets ``IsServicePrincipal = true``.
CLI_TEST_USER = "tester@databricks.com"
CLI_TEST_SERVICE_PRINCIPAL = "aaaaaaaa-bbbb-4ccc-dddd-eeeeeeeeeeee"
SERVICE_PRINCIPAL_MARKER = "__is_service_principal"

#: Variable values for bundle-examples bundles whose variables have no default (or are lookups),
#: as the bundles' own comments and READMEs suggest them.
EXAMPLE_VARIABLES: dict[str, dict[str, str]] = {
    "knowledge_base/alerts": {"warehouse_id": "1234567890abcdef"},
    "knowledge_base/app_with_genie_space": {"warehouse_id": "1234567890abcdef"},
    "knowledge_base/dashboard_nyc_taxi": {"warehouse_id": "1234567890abcdef"},
    "knowledge_base/genie_space_nyc_taxi": {"warehouse_id": "1234567890abcdef"},
    # "(Required)": the value the commented-out target setting in its databricks.yml gives.
    "contrib/databricks_ingestion_monitoring/cdc_connector_monitoring_dab": {
        "main_dashboard_template_path":
            "../../cdc_connector_monitoring_dab/dashboards/CDC Connector Monitoring Dashboard Template.lvdash.json"},
    "contrib/databricks_ingestion_monitoring/generic_sdp_monitoring_dab": {
        "main_dashboard_template_path":
            "../../generic_sdp_monitoring_dab/dashboards/SDP Monitoring Dashboard Template.lvdash.json"},
}


#: bundle-examples bundles the pinned CLI itself rejects: ``{bundle: (the check our error must come
#: from, why the CLI rejects it)}``. They are not counted as false alarms when our error is that one.
EXAMPLES_THE_CLI_REJECTS: dict[str, tuple[str, str]] = {
    "knowledge_base/job_read_secret": (
        "compute", ("its spark_python_task has no compute: bundle/config/validate/job_task_cluster_spec.go "
                   "(\"Missing required cluster or environment settings\")")),
    "knowledge_base/target_includes": (
        "load", ("its jobs' names refer to ${var.environment}, which it does not declare: libs/dyn/dynvar "
                "(\"reference does not exist\")")),
}


@dataclass
class Invocation:
    """One ``bundle validate`` of a case's script: its arguments and the CLI's expected verdict."""

    case: str
    folder: str
    command: str
    target: str | None
    variables: list[tuple[str, str]]
    env: dict[str, str]
    strict: bool
    cli_verdict: str  # "error" or "ok"
    cli_key: str | None  # the key the first error (or, when OK, the first warning) names
    cli_message: str
    ours_verdict: str = ""
    ours_keys: list[str] = field(default_factory=list)
    ours_warning_keys: list[str] = field(default_factory=list)
    ours_message: str = ""
    seconds: float = 0.0

    @property
    def agrees(self) -> bool:
        """The two verdicts (error / OK-or-warning) are the same."""
        return self.cli_verdict == self.ours_verdict

    @property
    def same_key(self) -> bool | None:
        """For an error the CLI locates: one of our errors names the same key (None when the CLI names none)."""
        if self.cli_verdict != "error" or not self.cli_key:
            return None
        return self.cli_key in self.ours_keys

    @property
    def same_warning_key(self) -> bool | None:
        """For a warning the CLI locates (verdict OK): one of our warnings names that key, or a field
        under it (the CLI puts an unknown field's warning on the mapping that holds it)."""
        if self.cli_verdict != "ok" or not self.cli_key:
            return None
        return any(k == self.cli_key or k.startswith((self.cli_key + ".", self.cli_key + "["))
                   for k in self.ours_warning_keys)


# --------------------------------------------------------------------------------------------------
# Reading the CLI's acceptance cases


def _logical_lines(script: str) -> list[str]:
    """The script's commands: comments and blank lines dropped, backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in script.splitlines():
        line = raw.rstrip()
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append(stripped)
    if pending.strip():
        out.append(pending.strip())
    return out


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=False)
    except ValueError:
        return command.split()


def _is_inert(command: str) -> bool:
    """The command leaves the bundle folder as it was (output helpers, a read-only bundle command)."""
    if re.search(r"(^|[^2&])>\s*[^&\s]", command.replace(">>", ">")) and "out." not in command:
        return False  # writes a file other than an expected-output file
    for part in re.split(r"\|\||&&|\||;", command):
        words = [w for w in _words(part) if "=" not in w.split("/")[0] or w.startswith("-")]
        words = [w for w in words if w not in ("trace", "errcode", "musterr")]
        if not words:
            continue
        if words[0] in ("$CLI", "[CLI]"):
            if words[1:2] != ["bundle"] or (words[2:3] and words[2] not in READ_ONLY_BUNDLE_COMMANDS):
                return False
            continue
        if words[0] not in INERT_COMMANDS and not words[0].startswith(("out.", "print_")):
            return False
    return True


def _env_from_test_toml(folder: Path, stop: Path) -> dict[str, str]:
    """``Env.NAME = "value"`` settings of the ``test.toml`` files from ``stop`` down to ``folder``."""
    chain = []
    here = folder
    while True:
        chain.append(here)
        if here == stop or here.parent == here:
            break
        here = here.parent
    env: dict[str, str] = {}
    for d in reversed(chain):
        toml = d / "test.toml"
        if not toml.is_file():
            continue
        text = toml.read_text(encoding="utf-8")
        for m in re.finditer(r'^Env\.(\w+)\s*=\s*"([^"]*)"', text, re.MULTILINE):
            env[m.group(1)] = m.group(2)
        m = re.search(r"^IsServicePrincipal\s*=\s*(true|false)", text, re.MULTILINE)
        if m:
            env[SERVICE_PRINCIPAL_MARKER] = m.group(1)
    return env


def _parse_validate(command: str) -> tuple[dict[str, str], str | None, list[tuple[str, str]], bool, bool] | None:
    """``(env, target, variables, strict, musterr)`` of a ``bundle validate`` command; None when it is
    run through something else (``uv run``, ``bundle run --``)."""
    head = re.split(r"\||(?<![0-9&])>|2>|&>", command, maxsplit=1)[0]
    words = _words(head)
    musterr = "musterr" in words
    env: dict[str, str] = {}
    rest: list[str] = []
    for w in words:
        if w in ("trace", "errcode", "musterr"):
            continue
        if not rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w):
            k, _, v = w.partition("=")
            env[k] = v
            continue
        rest.append(w)
    if rest[:3] != ["$CLI", "bundle", "validate"]:
        return None
    target: str | None = None
    variables: list[tuple[str, str]] = []
    strict = False
    args = rest[3:]
    i = 0
    while i < len(args):
        a = args[i]
        value = None
        if a in ("-t", "--target", "--var", "-o", "--output", "-p", "--profile") and i + 1 < len(args):
            value = args[i + 1]
            i += 1
        elif a.startswith(("--target=", "--var=", "--output=")):
            a, _, value = a.partition("=")
        if a in ("-t", "--target"):
            target = value
        elif a == "--var" and value is not None:
            k, _, v = value.partition("=")
            variables.append((k, v))
        elif a == "--strict":
            strict = True
        i += 1
    return env, target, variables, strict, musterr


def _block_after(output: str, marker: str | None) -> str | None:
    """The output a traced command printed (from its ``>>> `` line to the next), or for ``marker``
    None the output before the first ``>>> `` line."""
    lines = output.splitlines()
    if marker is None:
        end = next((i for i, ln in enumerate(lines) if ln.startswith((">>> ", "=== "))), len(lines))
        return "\n".join(lines[:end])
    for i, ln in enumerate(lines):
        if ln.startswith(">>> ") and ln[4:].strip() == marker:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith((">>> ", "=== "))), len(lines))
            return "\n".join(lines[i + 1:end])
    return None


def _traced_form(command: str) -> str:
    """How ``trace`` prints a command: its arguments after ``trace``, ``$CLI`` as ``[CLI]``."""
    words = command.split()
    while "trace" in words:
        words = words[words.index("trace") + 1:]
    text = " ".join(words).replace("$CLI", "[CLI]")
    return re.split(r"\s(?:\||2?>|&>)", text, maxsplit=1)[0].strip()


def _verdict(block: str, exit_code_is_its_own: bool = True) -> tuple[str, str | None, str]:
    """``(verdict, key, message)`` of a validate's output: ``error`` when it printed an error (or, when
    ``exit_code_is_its_own``, the block ends with a non-zero ``Exit code:``)."""
    lines = block.splitlines()
    first_error = first_warning = None
    for i, ln in enumerate(lines):
        if ln.startswith("Error: ") and "Warnings are not allowed in strict mode" not in ln and first_error is None:
            first_error = i
        if ln.startswith("Warning: ") and first_warning is None:
            first_warning = i
    strict_fail = any("Warnings are not allowed in strict mode" in ln for ln in lines)
    exit_code = exit_code_is_its_own and any(re.match(r"Exit code: [1-9]", ln) for ln in lines)
    start = first_error if first_error is not None else first_warning
    key = None
    message = ""
    if start is not None:
        message = lines[start].split(": ", 1)[1]
        for ln in lines[start + 1:start + 6]:
            m = re.match(r"\s+at (\S+)", ln)
            if m:
                key = m.group(1)
                break
            if ln.startswith(("Error: ", "Warning: ")) or not ln.strip():
                break
    verdict = "error" if first_error is not None or strict_fail or exit_code else "ok"
    return verdict, key, message


def discover(cli_checkout: Path) -> tuple[list[Invocation], Counter[str]]:
    """Every comparable ``bundle validate`` of the checkout's ``acceptance/bundle`` cases, and why
    the others were skipped (a count per reason)."""
    base = cli_checkout / "acceptance" / "bundle"
    found: list[Invocation] = []
    skipped: Counter[str] = Counter()
    for script in sorted(base.rglob("script")):
        folder = script.parent
        rel = folder.relative_to(base).as_posix()
        text = script.read_text(encoding="utf-8", errors="replace")
        if "bundle validate" not in text:
            continue
        if not (folder / "databricks.yml").is_file():
            skipped["no databricks.yml (generated at test time)"] += 1
            continue
        if not (folder / "output.txt").is_file():
            skipped["no output.txt"] += 1
            continue
        excluded = next((why for p, why in EXCLUDED_PREFIXES.items() if (rel + "/").startswith(p)), None)
        if excluded:
            skipped[excluded] += 1
            continue
        output = (folder / "output.txt").read_text(encoding="utf-8", errors="replace")
        base_env = _env_from_test_toml(folder, base)
        n = 0
        commands = _logical_lines(text)
        for position, command in enumerate(commands):
            if "bundle validate" in command:
                parsed = _parse_validate(command)
                if parsed is None:
                    skipped["validate run through another tool (uv run, bundle run)"] += 1
                    break
                env, target, variables, strict, musterr = parsed
                block = _redirected_output(folder, command)
                if block is None:
                    traced = "trace" in command.split()
                    block = _block_after(output, _traced_form(command) if traced else None)
                    if block is not None and not traced and n > 0:
                        block = None  # an untraced later command: its output cannot be told apart
                if block is None:
                    skipped["expected output not attributable"] += 1
                    break
                # "Exit code: N" is the validate's own under errcode, or when nothing runs after it
                # (a later failing command's status is printed at the end of the output too).
                own_exit = "errcode" in command.split() or position == len(commands) - 1
                verdict, key, message = _verdict(block, own_exit)
                if musterr:
                    verdict = "error"
                n += 1
                found.append(Invocation(f"{rel}#{n}", str(folder), _traced_form(command), target, variables,
                                        {**base_env, **env}, strict, verdict, key, message))
                continue
            if not _is_inert(command):
                break
        if n == 0:
            skipped["changes the bundle before validating"] += 1
    return found, skipped


def _redirected_output(folder: Path, command: str) -> str | None:
    """The expected output of a command whose stderr goes to an ``out.*`` file (engine ``direct``)."""
    m = re.search(r"(?:&>|2>>?|>\s*)(out\.[\w.$]+)(?:\s+2>&1)?", command)
    if not m or ("&>" not in command and "2>" not in command and "2>&1" not in command):
        return None
    name = m.group(1).replace("$DATABRICKS_BUNDLE_ENGINE", "direct")
    path = folder / name
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# Running the validator


def run_ours(inv: Invocation) -> None:
    """Validate the case's folder as the CLI did and record our verdict and the keys our errors name."""
    env = {k: v for k, v in inv.env.items() if k.startswith("BUNDLE_VAR_") or k == "DATABRICKS_HOST"}
    started = time.perf_counter()
    user = CLI_TEST_SERVICE_PRINCIPAL if inv.env.get(SERVICE_PRINCIPAL_MARKER) == "true" else CLI_TEST_USER
    report = validate_bundle(Path(inv.folder), inv.target, inv.variables, env=env, user_name=user,
                             strict=inv.strict, policy=None)
    inv.seconds = time.perf_counter() - started
    errors = report.errors
    inv.ours_verdict = "error" if errors else "ok"
    inv.ours_keys = [p.key for p in errors]
    inv.ours_warning_keys = [p.key for p in report.warnings]
    first = errors[0] if errors else (report.warnings[0] if report.warnings else None)
    inv.ours_message = str(first) if first else ""


def example_bundles(checkout: Path) -> list[Path]:
    """Every bundle root of a bundle-examples checkout (a folder holding ``databricks.yml``)."""
    return sorted(p.parent for p in checkout.rglob("databricks.yml") if "template" not in p.parts)


def run_examples(checkout: Path) -> list[dict[str, Any]]:
    """Validate each example bundle for its default target; one row per bundle."""
    rows = []
    for root in example_bundles(checkout):
        rel = root.relative_to(checkout).as_posix()
        started = time.perf_counter()
        report = validate_bundle(root, None, list(EXAMPLE_VARIABLES.get(rel, {}).items()), env={},
                                 user_name=CLI_TEST_USER, policy=None)
        expected = EXAMPLES_THE_CLI_REJECTS.get(rel)
        rejected_as_the_cli = bool(expected) and any(p.check == expected[0] for p in report.errors)
        rows.append({"bundle": rel, "target": report.target, "errors": [str(p) for p in report.errors],
                     "warnings": [str(p) for p in report.warnings], "cli_rejects": expected[1] if expected else "",
                     "false_alarm": bool(report.errors) and not rejected_as_the_cli,
                     "seconds": round(time.perf_counter() - started, 3)})
    return rows


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli-checkout", type=Path, required=True, help="a databricks/cli checkout (the pinned tag)")
    parser.add_argument("--bundle-examples", type=Path, default=None, help="a databricks/bundle-examples checkout")
    parser.add_argument("--show-agreeing", action="store_true", help="also list the cases that agree")
    parser.add_argument("--json", type=Path, default=None, help="write every case and example result here")
    args = parser.parse_args(argv)
    if not (args.cli_checkout / "acceptance" / "bundle").is_dir():
        print(f"{args.cli_checkout}: not a databricks/cli checkout (no acceptance/bundle)", file=sys.stderr)
        return 2

    invocations, skipped = discover(args.cli_checkout)
    for inv in invocations:
        try:
            run_ours(inv)
        except Exception as exc:  # noqa: BLE001 - a traceback is itself a finding of this benchmark
            inv.ours_verdict = "crash"
            inv.ours_message = f"{type(exc).__name__}: {exc}"
    cases = len(invocations)
    agree = sum(inv.agrees for inv in invocations)
    keyed = [inv for inv in invocations if inv.same_key is not None]
    same = sum(bool(inv.same_key) for inv in keyed)
    cli_errors = sum(inv.cli_verdict == "error" for inv in invocations)
    print(f"CLI acceptance cases ({args.cli_checkout}): {cases} validate invocations "
          f"({cli_errors} errors, {cases - cli_errors} OK/warning) in "
          f"{len({inv.case.split('#')[0] for inv in invocations})} folders")
    print(f"  verdict agrees: {agree}/{cases} = {_pct(agree, cases)}")
    print(f"  same key (CLI errors that name a key, agreeing): {same}/{len(keyed)} = {_pct(same, len(keyed))}")
    warned = [inv for inv in invocations if inv.same_warning_key is not None]
    same_warned = sum(bool(inv.same_warning_key) for inv in warned)
    print(f"  same key for the CLI's warnings (OK cases whose first warning names a key): "
          f"{same_warned}/{len(warned)} = {_pct(same_warned, len(warned))}")
    print(f"  false alarms (we error, CLI OK): {sum(i.cli_verdict == 'ok' and i.ours_verdict == 'error' for i in invocations)}"
          f"; missed errors (CLI errors, we do not): {sum(i.cli_verdict == 'error' and i.ours_verdict != 'error' for i in invocations)}"
          f"; crashes: {sum(i.ours_verdict == 'crash' for i in invocations)}")
    print("  skipped folders: " + "; ".join(f"{why}: {n}" for why, n in skipped.most_common()))
    print("\nDisagreements:")
    for inv in invocations:
        if not inv.agrees:
            print(f"  {inv.case}: CLI {inv.cli_verdict} [{inv.cli_key or '-'}] {inv.cli_message[:110]}")
            print(f"      ours {inv.ours_verdict}: {inv.ours_message[:160]}")
    print("\nAgreeing errors naming another key:")
    for inv in keyed:
        if inv.agrees and not inv.same_key:
            print(f"  {inv.case}: CLI [{inv.cli_key}] {inv.cli_message[:90]}; ours {inv.ours_keys[:3]}")
    print("\nThe CLI's warnings we do not give at its key:")
    for inv in warned:
        if not inv.same_warning_key:
            print(f"  {inv.case}: CLI [{inv.cli_key}] {inv.cli_message[:90]}; ours {inv.ours_warning_keys[:3]}")
    if args.show_agreeing:
        print("\nAgreeing:")
        for inv in invocations:
            if inv.agrees:
                print(f"  {inv.case}: {inv.cli_verdict} [{inv.cli_key or '-'}] {inv.cli_message[:100]}")

    examples: list[dict[str, Any]] = []
    if args.bundle_examples is not None:
        examples = run_examples(args.bundle_examples)
        alarms = [row for row in examples if row["false_alarm"]]
        rejected = [row for row in examples if row["cli_rejects"]]
        print(f"\nbundle-examples ({args.bundle_examples}): {len(examples)} bundles, default target")
        print(f"  false alarms (an error on a bundle the CLI accepts): {len(alarms)}; bundles with warnings: "
              f"{sum(bool(r['warnings']) for r in examples)}; rejected by the pinned CLI too: {len(rejected)}")
        for row in alarms:
            print(f"  FALSE ALARM {row['bundle']} [{row['target']}]: {row['errors'][0][:200]}")
        for row in rejected:
            print(f"  the CLI rejects {row['bundle']}: {row['cli_rejects']}; ours: "
                  f"{(row['errors'] or ['(no error)'])[0][:120]}")
        for row in examples:
            for warning in row["warnings"]:
                print(f"  warning {row['bundle']}: {warning[:160]}")
    slowest = max((inv.seconds for inv in invocations), default=0.0)
    print(f"\nslowest case: {slowest:.3f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"cases": [asdict(i) for i in invocations], "examples": examples},
                                        indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
