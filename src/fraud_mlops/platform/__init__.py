"""Platform glue: the Spark session (:mod:`~fraud_mlops.platform.session`), where tables live per
target (:mod:`~fraud_mlops.platform.config`, the one place that knows) and the one table
reader/writer (:mod:`~fraud_mlops.platform.lakehouse`: delta-rs locally, Spark's Delta on Databricks)."""
