"""Gold orchestration: nothing to do before silver exists (the features are in test_features.py,
the incremental days in the end-to-end test)."""

from __future__ import annotations

from fraud_mlops.medallion import gold
from fraud_mlops.platform import config as C


def test_gold_does_nothing_before_silver_exists(lakehouse):
    assert gold.build_gold(lakehouse)["rows_written"] == 0
    assert not lakehouse.exists(C.GOLD_FEATURES) and not lakehouse.exists(C.GOLD_DAILY_SUMMARY)
