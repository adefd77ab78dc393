"""The online feature store of real-time scoring.

On Databricks the store is Lakebase (managed PostgreSQL); locally it is a real PostgreSQL server
that :mod:`fraud_mlops.online.postgres` starts and stops (``make test`` and ``make demo`` do it, and
``fraud-mlops online-store start|stop|status`` by hand). ``$FRAUD_MLOPS_ONLINE_STORE`` is the URL of
that server.
"""
