"""The task entry points behave as console scripts on Databricks and as functions for the local runner."""

from __future__ import annotations


def test_task_entry_points_exit_zero_and_report_their_result(lakehouse):
    """A console script ends with sys.exit(<return value>): the entry points return None (status 0)
    and their result reaches the local runner through runtime.report."""
    from bundlekit import task_runtime as runtime
    from fraud_mlops.jobs import ingestion

    argv = [f"--catalog={lakehouse.config.catalog}", f"--schema={lakehouse.config.schema}"]
    runtime.CURRENT_TASK_KEY[0] = "silver"
    assert ingestion.silver(argv) is None
    assert runtime.LOCAL_TASK_RESULTS.pop("silver")["files_processed"] == 0
    assert ingestion.silver.run(argv)["files_processed"] == 0
