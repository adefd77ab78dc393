"""What every task entry point shares: the target parameters and the target's tables."""

from __future__ import annotations

import logging

from fraud_mlops.platform.config import LakehouseConfig
from fraud_mlops.platform.lakehouse import Lakehouse

#: The named parameters that select the target's tables (every task takes them).
TARGET = ("catalog", "schema")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def target_lakehouse(params: dict[str, str]) -> Lakehouse:
    """The tables of the target named by the ``catalog`` and ``schema`` parameters, on this process's
    Spark session (:func:`fraud_mlops.platform.session.get_spark`)."""
    from fraud_mlops.platform.session import get_spark

    return Lakehouse(get_spark(), LakehouseConfig.from_env(params["catalog"], params["schema"]))
