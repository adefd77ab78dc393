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


def test_summary_shows_selection_budget_reason_codes_and_shadow(capsys, tmp_path):
    summary = copy.deepcopy(SUMMARY)
    summary["training"]["selection"] = {
        "folds": [{"validation_start": "2018-07-25", "validation_end": "2018-07-31"},
                  {"validation_start": "2018-07-04", "validation_end": "2018-07-10"}],
        "n_candidates": 7,
        "selected": {"xgboost": {"params": {"max_depth": 6}, "mean_card_precision_top_100": 0.2932,
                                 "mean_average_precision": 0.7463}},
        "ablation": [{"features": "handbook only", "mean_card_precision_top_100": 0.2886,
                      "mean_average_precision": 0.6884, "delta_average_precision": -0.0579}],
        "backtest": {"weeks": [{"test_start": "2018-08-01", "test_end": "2018-08-07"},
                               {"test_start": "2018-08-22", "test_end": "2018-08-28"}],
                     "mean_average_precision": 0.742, "std_average_precision": 0.013, "mean_roc_auc": 0.88,
                     "std_roc_auc": 0.008, "mean_card_precision_top_100": 0.312, "std_card_precision_top_100": 0.013},
    }
    summary["training"]["decision"] = {"method": "alert_budget", "decision_threshold": 0.034, "alert_budget": 100,
                                       "source": "the model's scores of all 14 days after its training window"}
    summary["scoring"].update(
        alerts_per_day=94.8, alert_budget=100, threshold_source="v1 tag decision_threshold",
        top_flagged=[{"transaction_id": 7, "tx_date": "2018-08-28", "customer_id": 3690, "score": 0.999,
                      "reason_1": "customer_amount_ratio_30d", "reason_1_contribution": 6.87,
                      "reason_2": "tx_amount", "reason_2_contribution": 1.18, "reason_3": None,
                      "reason_3_contribution": None}],
        shadow={"model_version": "2", "rows_scored": 162504, "predictions_table": "c.s.predictions_shadow",
                "alerts_per_day": 99.1, "decision_threshold": 0.035})
    summary["monitoring"].update(alerts_per_day_mean=94.8, alerts_per_day_max=115, alert_budget=100,
                                 precision_within_budget=0.41, precision_flagged=0.43,
                                 shadow={"n_days": 10, "champion_version": "1", "champion_average_precision": 0.789,
                                         "champion_card_precision_top_100": 0.396, "challenger_version": "2",
                                         "challenger_average_precision": 0.721,
                                         "challenger_card_precision_top_100": 0.388})
    demo.print_summary(summary, tmp_path / "s.json")
    out = capsys.readouterr().out
    assert "selection: 7 candidates x 2 prequential folds (validation 2018-07-04..2018-07-31)" in out
    assert "ablation handbook only" in out and "(-0.0579 AP)" in out
    assert "backtest 2 weeks 2018-08-01..2018-08-28: AP 0.742 +/- 0.013" in out
    assert "decision threshold 0.034 (alert_budget, 100 cards/day" in out
    assert "alerts: 94.8 cards/day against a budget of 100" in out
    assert "tx 7 (2018-08-28, card 3690) score 0.999: customer_amount_ratio_30d +6.87, tx_amount +1.18" in out
    assert "shadow: challenger v2 scored the same 162,504 rows into c.s.predictions_shadow" in out
    assert "alerts per day: mean 94.800, max 115 (budget 100)" in out
    assert "shadow, 10 labelled days: champion v1 AP 0.789 CP@100 0.396 | challenger v2 AP 0.721" in out
