"""Another system's scores (a CSV export) judged beside the champion on the same labelled days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fraud_mlops.lifecycle import external_scores as X
from fraud_mlops.lifecycle.metrics import card_precision_top_k, evaluate_scores
from fraud_mlops.platform.config import GOLD_FEATURES, PREDICTIONS

from .synthetic_gold import make_gold_pdf, to_spark

DAYS = [dt.date(2018, 8, 1) + dt.timedelta(days=i) for i in range(6)]
MODEL = "c.s.fraud_detector"


@pytest.fixture()
def world(lakehouse, spark):
    gold = make_gold_pdf(DAYS, 200, seed=21, n_customers=300)
    lakehouse.overwrite(GOLD_FEATURES, to_spark(spark, gold))
    rng = np.random.default_rng(3)
    champion = np.clip(gold["tx_fraud"] * 0.5 + rng.random(len(gold)) * 0.6, 0, 1)
    predictions = pd.DataFrame({"transaction_id": gold["transaction_id"], "tx_date": gold["tx_date"],
                                "customer_id": gold["customer_id"], "score": champion, "model_name": MODEL,
                                "model_version": "3"})
    lakehouse.overwrite(PREDICTIONS, spark.createDataFrame(
        predictions, "transaction_id bigint, tx_date date, customer_id bigint, score double, model_name string, "
                     "model_version string"))
    return gold, predictions


def test_every_row_is_accepted_or_rejected_with_a_reason(tmp_path, lakehouse, spark, world):
    gold, _ = world
    ids = gold["transaction_id"].head(5).tolist()
    (tmp_path / "export.csv").write_text(
        "ASSOCIATION_ID,fraud_1_PREDICTION,extra\n"
        f"{ids[0]},0.25,a\n{ids[1]},1,b\n"           # accepted
        "abc,0.5,c\n,0.5,d\n"                           # no integer id
        f"{ids[2]},high,e\n{ids[3]},,f\n"               # no number
        f"{ids[4]},1.5,g\n"                              # outside [0, 1]
        "7000000,0.1,h\n7000000,0.2,i\n"                 # repeated
        "9999999,0.3,j\n",                               # not in gold
        encoding="utf-8")
    raw = X.read_external_scores(spark, str(tmp_path / "export.csv"), id_column="association_id",
                                 score_column="FRAUD_1_PREDICTION")
    accepted, rejected = X.check_external_scores(raw, lakehouse.read(GOLD_FEATURES))
    assert sorted(tuple(r) for r in accepted.collect()) == sorted([(ids[0], 0.25), (ids[1], 1.0)])
    report = X.comparison_report(accepted, rejected, X.compare_with_champion(
        lakehouse, MODEL, "3", accepted, label_delay_days=0))
    assert report["rows_in"] == 10 == report["rows_accepted"] + report["rows_rejected"]
    assert report["rejected_by_reason"] == {X.REJECT_REASONS[0]: 2, X.REJECT_REASONS[1]: 2, X.REJECT_REASONS[2]: 1,
                                            X.REJECT_REASONS[3]: 2, X.REJECT_REASONS[4]: 1}
    with pytest.raises(ValueError, match=r"no column\(s\) \['score'\]"):
        X.read_external_scores(spark, str(tmp_path / "export.csv"), id_column="association_id")


def test_comparison_uses_the_same_labelled_rows_as_the_champion(lakehouse, spark, world):
    gold, predictions = world
    rng = np.random.default_rng(5)
    # the other system scores all but 100 transactions
    external = predictions.iloc[100:][["transaction_id"]].assign(score=rng.random(len(predictions) - 100))
    daily = X.compare_with_champion(lakehouse, MODEL, "3", spark.createDataFrame(external),
                                    name="datarobot", window_end=DAYS[-1], label_delay_days=2)
    assert list(daily.columns) == ["tx_date", "n_transactions", "n_frauds", "champion_average_precision",
                                   "datarobot_average_precision", "champion_card_precision_top_100",
                                   "datarobot_card_precision_top_100"]
    # labelled days only (the last two are within the label delay), both systems on the same rows
    rows = gold.iloc[100:].merge(predictions[["transaction_id", "score"]], on="transaction_id")
    rows = rows.merge(external.rename(columns={"score": "datarobot"}), on="transaction_id")
    rows = rows[rows["tx_date"] <= DAYS[-3]]
    assert list(daily["tx_date"]) == DAYS[:-2] and daily["n_transactions"].sum() == len(rows)
    pooled = daily.attrs["pooled"]
    for column, name in (("score", "champion"), ("datarobot", "datarobot")):
        expected = evaluate_scores(rows.assign(score=rows[column]))
        assert pooled[f"{name}_average_precision"] == pytest.approx(expected["average_precision"])
        assert pooled[f"{name}_card_precision_top_100"] == pytest.approx(
            card_precision_top_k(rows.assign(score=rows[column]))[0])
    with pytest.raises(ValueError, match="after the last labelled day"):
        X.compare_with_champion(lakehouse, MODEL, "3", spark.createDataFrame(external), window_start=DAYS[-1],
                                window_end=DAYS[-1], label_delay_days=2)
