"""Real-time scoring: the ``@champion`` model behind a REST endpoint, its features computed per request
by the single-customer engine (:mod:`fraud_mlops.online.features`) from the online store
(:mod:`fraud_mlops.online.store`).

* :mod:`~fraud_mlops.serving.model`: the served champion, reloaded when the alias moves;
* :mod:`~fraud_mlops.serving.scorer`: one request, from validated fields to the recorded answer;
* :mod:`~fraud_mlops.serving.app`: the HTTP routes (FastAPI), started by ``fraud-mlops serve``;
* :mod:`~fraud_mlops.serving.replay`: landing files replayed through the endpoint, compared with batch scores.

Nothing here imports Spark: the same code runs as a Databricks App.
"""
