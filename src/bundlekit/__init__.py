"""bundlekit: run and validate a Databricks Asset Bundle offline.

A generic toolkit, independent of the fraud pipeline (it imports nothing of :mod:`fraud_mlops`), so
that it can serve any bundle:

* :mod:`bundlekit.loader`: load ``databricks.yml`` and its includes for a target, resolve variables;
* :mod:`bundlekit.runner`: run a job's tasks in-process in ``depends_on`` order, as Databricks would;
* :mod:`bundlekit.jobspec`: the task-graph and parameter checks shared by the runner and the validator;
* :mod:`bundlekit.validate`: the offline ``bundle validate``; :mod:`bundlekit.quartz`: Quartz cron;
* :mod:`bundlekit.task_runtime`: what a ``python_wheel_task`` needs (named parameters, task values,
  its result);
* :mod:`bundlekit.cli`: the ``run``, ``jobs`` and ``validate`` commands.
"""
