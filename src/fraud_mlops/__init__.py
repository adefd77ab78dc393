"""Card-fraud detection MLOps on Databricks.

* :mod:`fraud_mlops.medallion`: landing -> bronze -> silver (+ quarantine) -> gold, the shared feature
  library and the column contracts;
* :mod:`fraud_mlops.lifecycle`: training, metrics, the validation gate, batch scoring, monitoring and
  MLflow tracking;
* :mod:`fraud_mlops.platform`: the Spark session, where tables live per target, the table reader/writer;
* :mod:`fraud_mlops.jobs`: the bundle jobs' task entry points (thin);
* :mod:`fraud_mlops.demo`, :mod:`fraud_mlops.cli`: the local demo and the ``fraud-mlops`` command.

The bundle tooling (loader, local runner, validator) is the separate package :mod:`bundlekit`.
"""
