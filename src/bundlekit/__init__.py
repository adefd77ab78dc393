"""bundlekit: run and validate a Databricks Asset Bundle offline.

A generic toolkit, independent of the fraud pipeline (it imports nothing of :mod:`fraud_mlops`), so
that it can serve any bundle:

* :mod:`bundlekit.loader`: load ``databricks.yml`` and its includes for a target, resolve variables;
* :mod:`bundlekit.runner`: run a job's tasks in-process in ``depends_on`` order, as Databricks would;
* :mod:`bundlekit.jobspec`: the task-graph and parameter checks shared by the runner and the validator;
* :mod:`bundlekit.validate`: the offline ``bundle validate``, built from :mod:`bundlekit.compat`
  (what the pinned Databricks CLI and the deploy-time APIs reject, for any bundle) and
  :mod:`bundlekit.policy` (stricter rules a bundle opts into with ``bundlekit-policy.yml``), over
  :mod:`bundlekit.yamlsource` (YAML read as the CLI does, with file, line and column of every key),
  :mod:`bundlekit.schema_sources` (resource fields from the ``databricks-bundles`` and
  ``databricks-sdk`` classes) and :mod:`bundlekit.findings` (problems with severity);
  :mod:`bundlekit.quartz`: Quartz cron;
* :mod:`bundlekit.task_runtime`: what a ``python_wheel_task`` needs (named parameters, task values,
  its result);
* :mod:`bundlekit.cli`: the ``run``, ``jobs`` and ``validate`` commands.
"""
