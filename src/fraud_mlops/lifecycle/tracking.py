"""MLflow set-up for a target: Databricks tracking and Unity Catalog models, or sqlite locally."""

from __future__ import annotations

import os

import mlflow

from fraud_mlops.platform.config import LakehouseConfig


def configure_mlflow(config: LakehouseConfig, experiment_name: str | None = None) -> str | None:
    """Point MLflow at the target's tracking server and registry and select the experiment.

    Tasks that only use the registry (scoring, monitoring, promotion) pass no experiment name: then
    only the URIs are set and None is returned.

    Locally the tracking and registry store is ``sqlite:///<local_root>/mlflow.db`` and artifacts go
    to ``<local_root>/mlartifacts`` (the experiment is created with that artifact location, so
    nothing lands in ``./mlruns``). On Databricks the workspace tracking server and Unity Catalog
    registry are used and the experiment is the bundle's ``resources.experiments`` entry.

    Returns:
        The experiment id, or None without ``experiment_name``.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # A model's environment is its pip_requirements (training.model_pip_requirements). MLflow 3 would
    # also copy the repository's uv.lock into every model: that lock describes the development
    # environments (.venv, .venv-connect), not what the model needs where it is served.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    if config.backend == "delta-rs" and config.local_root is not None:
        config.local_root.mkdir(parents=True, exist_ok=True)  # the sqlite store lives there
    mlflow.set_tracking_uri(config.mlflow_tracking_uri())
    mlflow.set_registry_uri(config.mlflow_registry_uri())
    if experiment_name is None:
        return None
    artifact_root = config.mlflow_artifact_root()
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        if artifact_root is not None:
            experiment_id = mlflow.create_experiment(
                experiment_name, artifact_location=f"{artifact_root}/{experiment_name.strip('/').replace('/', '_')}"
            )
        else:
            experiment_id = mlflow.create_experiment(experiment_name)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
