"""One run of a job at a time (``max_concurrent_runs: 1``, ``queue``), and the crash-test hook.

Each concurrent run is its own Python process (no Spark, no MLflow): a small script runs a job of a
mini bundle through :func:`bundlekit.runner.run_job` with an entry point that records when it starts
and ends and then sleeps, so the test can see whether two runs overlapped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bundlekit import task_runtime
from bundlekit.loader import load_bundle
from bundlekit.runner import (
    FAILED,
    LOCK_DIR_ENV,
    RunnerError,
    default_lock_dir,
    lock_file,
    lock_holder,
    queue_enabled,
    run_job,
)

from .fake_entry_points import FakeEntryPoints

JOBS = """\
resources:
  jobs:
    queued:
      max_concurrent_runs: 1
      queue: {enabled: true}
      tasks:
        - task_key: work
          python_wheel_task: {package_name: pkg, entry_point: work}
    refusing:
      max_concurrent_runs: 1
      tasks:
        - task_key: work
          python_wheel_task: {package_name: pkg, entry_point: work}
    parallel:
      max_concurrent_runs: 2
      tasks:
        - task_key: work
          python_wheel_task: {package_name: pkg, entry_point: work}
    parent:
      queue: {enabled: true}
      tasks:
        - task_key: child
          run_job_task: {job_id: "${resources.jobs.refusing.id}"}
"""

#: The child process: runs job argv[2] of the bundle at argv[1]; its entry point appends
#: "start|end <pid> <time>" to the file argv[3] and sleeps argv[4] seconds in between. Exit status 3
#: when the runner refuses the run. The lock folder comes from $BUNDLEKIT_LOCK_DIR.
CHILD = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path
    from bundlekit.loader import load_bundle
    from bundlekit.runner import RunnerError, run_job

    root, job, events, hold_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    def note(what):
        with open(events, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {os.getpid()} {time.time()!r}\\n")

    def work(argv):
        note("start")
        time.sleep(hold_s)
        note("end")
        return {}

    bundle = load_bundle(Path(root), "t", {}, env={})
    try:
        result = run_job(bundle, job, {}, resolve_entry_point=lambda pkg, ep: work,
                         log=lambda line: print(line, flush=True))
    except RunnerError as exc:
        print(f"REFUSED: {exc}", flush=True)
        sys.exit(3)
    sys.exit(0 if result.ok else 1)
    """)


@pytest.fixture()
def mini(tmp_path):
    """``(bundle root, lock dir, events file, child script)`` of a mini bundle with the jobs above."""
    (tmp_path / "databricks.yml").write_text(
        "bundle:\n  name: mini\ninclude: [resources/*.yml]\ntargets:\n  t:\n    default: true\n", encoding="utf-8")
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "jobs.yml").write_text(JOBS, encoding="utf-8")
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    return tmp_path, tmp_path / "locks", tmp_path / "events.txt", script


def _start(mini, job: str, hold_s: float, **env: str) -> subprocess.Popen:
    root, locks, events, script = mini
    environment = {**os.environ, LOCK_DIR_ENV: str(locks), **env}
    return subprocess.Popen([sys.executable, str(script), str(root), job, str(events), str(hold_s)],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _events(mini) -> list[tuple[str, int, float]]:
    path = mini[2]
    if not path.exists():
        return []
    return [(w, int(p), float(t)) for w, p, t in (line.split() for line in path.read_text().splitlines())]


def _wait_for_start(mini, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(e[0] == "start" and e[1] == proc.pid for e in _events(mini)):
        assert proc.poll() is None, f"the first run ended early: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, "the first run did not start its task"
        time.sleep(0.05)


def _bundle(mini):
    return load_bundle(mini[0], "t", {}, env={})


def test_a_second_run_waits_for_the_first_when_the_queue_is_enabled(mini):
    first = _start(mini, "queued", 1.5)
    _wait_for_start(mini, first)
    second = _start(mini, "queued", 0.1)
    out_second = second.communicate(timeout=60)[0]
    out_first = first.communicate(timeout=60)[0]
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    assert "waiting for the running queued run (queue enabled)" in out_second
    assert f"pid {first.pid}" in out_second  # the holder is named
    (s1, p1, t_start1), (e1, _, t_end1), (s2, p2, t_start2), (e2, _, _) = _events(mini)
    assert (s1, e1, s2, e2) == ("start", "end", "start", "end") and (p1, p2) == (first.pid, second.pid)
    assert t_start2 >= t_end1 > t_start1, "the second run's task started before the first one ended"
    assert lock_file(mini[1], "mini", "t", "queued").read_text() == ""  # emptied on release


def test_a_second_run_is_refused_when_the_queue_is_disabled(mini):
    first = _start(mini, "refusing", 1.5)
    _wait_for_start(mini, first)
    second = _start(mini, "refusing", 0.1)
    out_second = second.communicate(timeout=60)[0]
    assert second.returncode == 3, out_second
    assert "REFUSED: job 'refusing' (target t) is already running" in out_second
    assert f"pid {first.pid}" in out_second and "queue is disabled" in out_second
    assert "mini-t-refusing.lock" in out_second
    # Meanwhile a run_job_task of the same job, in this process, is refused in the same way.
    result = run_job(_bundle(mini), "parent", resolve_entry_point=FakeEntryPoints(), log=lambda line: None,
                     lock_dir=mini[1])
    assert result.tasks["child"].status == FAILED
    assert "job 'refusing' (target t) is already running" in result.tasks["child"].error
    assert first.wait(timeout=60) == 0
    assert [e[:2] for e in _events(mini)] == [("start", first.pid), ("end", first.pid)]  # nothing else ran
    # Once the first run has ended, the nested run takes the lock.
    again = run_job(_bundle(mini), "parent", resolve_entry_point=FakeEntryPoints(), log=lambda line: None,
                    lock_dir=mini[1])
    assert again.ok, again.tasks["child"].error


def test_a_killed_run_leaves_no_stale_lock(mini):
    # The first run dies (as by kill -9) after its task, still holding the lock: the kernel frees it.
    first = _start(mini, "refusing", 0.0, **{task_runtime.FAULT_ENV: "after:refusing.work"})
    out_first = first.communicate(timeout=60)[0]
    assert first.returncode == task_runtime.FAULT_EXIT_STATUS, out_first
    assert "bundlekit: fault injected at after:refusing.work" in out_first
    assert "[refusing] SUCCESS  work in" in out_first  # the task ended, then the process died:
    assert not any(" SUCCESS in " in line for line in out_first.splitlines())  # the job never ended
    lock = lock_file(mini[1], "mini", "t", "refusing")
    assert f'"pid": {first.pid}' in lock.read_text()  # the dead holder's record stays ...
    second = _start(mini, "refusing", 0.0)
    out_second = second.communicate(timeout=60)[0]
    assert second.returncode == 0, out_second  # ... but does not block the next run
    assert "waiting" not in out_second


def test_which_jobs_lock_and_where(mini, monkeypatch):
    bundle = _bundle(mini)
    locks = mini[1]
    # More than one concurrent run allowed: nothing is locked.
    assert run_job(bundle, "parallel", resolve_entry_point=FakeEntryPoints(), log=lambda line: None,
                   lock_dir=locks).ok
    assert not lock_file(locks, "mini", "t", "parallel").exists()
    # The lock folder comes from $BUNDLEKIT_LOCK_DIR when none is given; unset: no locking.
    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    assert default_lock_dir() is None
    assert run_job(bundle, "queued", resolve_entry_point=FakeEntryPoints(), log=lambda line: None).ok
    assert not locks.exists()
    monkeypatch.setenv(LOCK_DIR_ENV, str(locks))
    assert default_lock_dir() == locks
    assert run_job(bundle, "queued", resolve_entry_point=FakeEntryPoints(), log=lambda line: None).ok
    assert lock_file(locks, "mini", "t", "queued").exists()
    # Names are made safe for a file name; an unreadable holder record still gives a message.
    assert lock_file("/x", "my bundle", "dev/1", "job").name == "my_bundle-dev_1-job.lock"
    assert lock_holder(Path(locks) / "missing.lock") == "an unknown run"
    assert queue_enabled({"queue": {"enabled": "true"}}) and not queue_enabled({"queue": {"enabled": False}})
    assert not queue_enabled({})
    bad = {"max_concurrent_runs": 0, "tasks": bundle.job("queued")["tasks"]}
    bundle.jobs["bad"] = bad
    with pytest.raises(RunnerError, match="max_concurrent_runs must be a positive integer"):
        run_job(bundle, "bad", resolve_entry_point=FakeEntryPoints(), log=lambda line: None, lock_dir=locks)


def test_fault_point_kills_only_at_a_named_point(tmp_path):
    code = ("from bundlekit.task_runtime import fault_point\n"
            "fault_point('a')\nprint('alive', flush=True)\nfault_point('b', 'c:d')\nprint('not reached')\n")
    env = {k: v for k, v in os.environ.items() if k != task_runtime.FAULT_ENV}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                           check=False)
    assert quiet.returncode == 0 and "not reached" in quiet.stdout  # unset: a no-op
    killed = subprocess.run([sys.executable, "-c", code], env={**env, task_runtime.FAULT_ENV: "x, c:d"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert killed.returncode == task_runtime.FAULT_EXIT_STATUS == 137
    assert killed.stdout == "alive\n"
    assert "bundlekit: fault injected at c:d" in killed.stderr
