"""The bundle's job task entry points, one module per job of ``resources/<job>_job.yml``.

Each ``python_wheel_task`` names an entry point of ``pyproject.toml`` ``[project.scripts]`` that is a
function here. An entry point parses its named parameters, gets the Spark session and the target's
tables, calls the library, and reports a JSON result (:func:`bundlekit.task_runtime.report`); as a
console script it exits 0, or 1 with the exception on failure (``<entry point>.run(argv)`` returns the
result dict). Nothing else lives here: the logic is in :mod:`fraud_mlops.medallion` and
:mod:`fraud_mlops.lifecycle`. On Databricks the runtime calls them as console scripts
(``fraud-bronze --catalog=...``); locally :mod:`bundlekit.runner` calls the same functions in-process
with the same arguments.
"""
