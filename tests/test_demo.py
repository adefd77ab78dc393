"""The demo's summary printer on hand-made summaries (the jobs themselves are tested end to end)."""

from __future__ import annotations

import copy

from fraud_mlops import demo

GATE = {
    "candidate_model": "xgboost",
    "registered_version": "1",
    "window": {"train_start": "2018-07-25", "train_end": "2018-07-31", "test_start": "2018-08-08",
               "test_end": "2018-08-14"},
    "test_metrics": {"xgboost": {"average_precision": 0.665, "roc_auc": 0.885, "card_precision_top_100": 0.294}},
    "validation": {"status": "passed", "challenger_version": "1", "challenger_metrics": {"average_precision": 0.665},
                   "champion_version": None, "champion_metrics": None, "test_window": ["2018-08-08", "2018-08-14"]},
    "promoted": True,
    "champion_version_after": "1",
    "reasons": ["no champion yet; absolute thresholds met"],
}
SUMMARY = {
    "landing": "data/transactions", "landing_files": 75, "lakehouse": ".lakehouse",
    "tables": {"fraud_dev.fraud.bronze_transactions": 718216},
    "ingestion": {"files_ingested": 75, "files_failed": [], "rows_ingested": 718216, "rows_silver": 718210,
                  "rows_quarantined": 6, "quarantined_by_rule": {"tx_amount_non_negative": 6}},
    "training": GATE,
    "second_candidate": None,
    "scoring": {"score_start": "2018-08-15", "score_end": "2018-08-31", "rows_scored": 162504, "inserted": 162504,
                "updated": 0, "flagged": 964, "model_version": "1", "decision_threshold": 0.5},
    "monitoring": {"window_start": "2018-08-15", "window_end": "2018-08-31", "reference_start": "2018-07-25",
                   "reference_end": "2018-07-31", "n_transactions": 162504, "n_labeled": 95000, "label_delay_days": 7,
                   "score_psi": 0.00024, "max_feature_psi": 0.011, "max_feature_psi_column": "is_weekend",
                   "average_precision": 0.741, "card_precision_top_100": 0.389, "fraud_rate": 0.0088,
                   "alert": True, "retrain": True, "reasons": ["score psi 0.3 > 0.25"], "retraining_triggered": True},
    "wall_time_s": 76.7, "step_seconds": {}, "mlflow_ui": "mlflow ui --backend-store-uri sqlite:///x/mlflow.db",
}


def test_summary_shows_the_figures(capsys, tmp_path):
    demo.print_summary(SUMMARY, tmp_path / "s.json")
    out = capsys.readouterr().out
    assert "silver 718,210 + quarantined 6" in out
    assert "xgboost              AP 0.665  ROC AUC 0.885  card precision@100 0.294" in out
    assert "PROMOTED to champion: no champion yet; absolute thresholds met" in out
    assert "score PSI 2.4e-04" in out and "fraud rate 0.88%" in out
    assert "quality on 95,000 of 162,504 rows" in out
    assert "retraining job triggered" in out
    assert "mlflow ui --backend-store-uri sqlite:///x/mlflow.db" in out


def test_summary_without_labels_or_champion_comparison(capsys, tmp_path):
    summary = copy.deepcopy(SUMMARY)
    summary["second_candidate"] = {**GATE, "promoted": False, "reasons": ["average_precision 0.637 is 0.028 below"],
                                   "validation": {**GATE["validation"], "champion_version": "1",
                                                  "champion_metrics": {"average_precision": 0.665}}}
    summary["monitoring"].update(average_precision=None, card_precision_top_100=None, fraud_rate=None, n_labeled=0,
                                 alert=False, retrain=False, reasons=[], retraining_triggered=False)
    demo.print_summary(summary, tmp_path / "s.json")
    out = capsys.readouterr().out
    assert "vs champion v1 AP 0.665" in out and "NOT promoted (stays challenger)" in out
    assert "no labels known yet" in out and "alert: False, retrain: False" in out
