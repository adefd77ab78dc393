"""The set-up every chart notebook shares: which tables, which model, where figures go.

A notebook calls :func:`notebook_context` with its Databricks globals (``dbutils`` and ``display``
exist only inside a notebook there; ``globals().get(...)`` gives None elsewhere) and draws with
``ctx.show(fig, name)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse
from fraud_mlops.platform.session import get_spark
from fraud_mlops.reporting import charts


@dataclass
class NotebookContext:
    """The tables and model a notebook reads, and where its figures go.

    Attributes:
        lakehouse: the target's tables (MLflow configured for the same target).
        model_name: the registered model (``<catalog>.<schema>.fraud_detector`` unless ``FRAUD_MODEL_NAME``).
        figures: folder the figures are written to as PNG.
        written: paths of the figures written so far, in order.
    """

    lakehouse: Lakehouse
    model_name: str
    figures: Path
    display: Callable[[Any], Any] | None = None
    written: list[str] = field(default_factory=list)

    def show(self, fig: Figure, name: str) -> Path:
        """Write ``fig`` as ``<figures>/<name>.png`` and display it where a notebook can (else print the path)."""
        path = charts.save(fig, self.figures, name)
        self.written.append(str(path))
        if self.display is not None:
            self.display(fig)
        else:
            print(f"figure: {path}")
        return path


def notebook_context(app_name: str, dbutils: Any = None, display: Callable[[Any], Any] | None = None) -> NotebookContext:
    """The context of a chart notebook.

    Catalog and schema: the ``catalog`` / ``schema`` widgets on Databricks (``dbutils`` given), else
    ``$FRAUD_CATALOG`` / ``$FRAUD_SCHEMA`` (default ``fraud_dev`` / ``fraud``, the dev target's).
    Figures go to ``$FRAUD_FIGURES_DIR``, else ``<local lakehouse>/figures``.
    """
    catalog = os.environ.get("FRAUD_CATALOG", "fraud_dev")
    schema = os.environ.get("FRAUD_SCHEMA", "fraud")
    if dbutils is not None:
        dbutils.widgets.text("catalog", catalog)
        dbutils.widgets.text("schema", schema)
        catalog, schema = dbutils.widgets.get("catalog"), dbutils.widgets.get("schema")
    figures = os.environ.get("FRAUD_FIGURES_DIR") or os.path.join(os.environ.get("FRAUD_MLOPS_LOCAL_ROOT", ".lakehouse"),
                                                                  "figures")
    lakehouse = Lakehouse(get_spark(app_name), LakehouseConfig.from_env(catalog, schema))
    configure_mlflow(lakehouse.config)
    model_name = os.environ.get("FRAUD_MODEL_NAME", f"{catalog}.{schema}.fraud_detector")
    return NotebookContext(lakehouse, model_name, Path(figures), display)
