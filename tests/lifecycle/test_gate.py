"""The validation gate: decide() and the registry flow train -> validate -> promote."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from fraud_mlops.lifecycle import gate
from fraud_mlops.lifecycle.gate import (
    MAX_TAG_VALUE_CHARS,
    GateThresholds,
    decide,
    promote_challenger,
    register_challenger,
    registry_tag_key,
    run_promotion,
    run_training,
    run_validation,
    tag_value,
    validate_challenger,
)
from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.lifecycle.training import time_split, train_and_log
from fraud_mlops.medallion.schema import FEATURE_COLUMNS
from fraud_mlops.platform.config import LakehouseConfig

T = GateThresholds(min_average_precision=0.5, min_roc_auc=0.8, max_ap_degradation=0.02)


def m(ap, auc=0.9):
    return {"average_precision": ap, "roc_auc": auc, "card_precision_top_100": 0.1}


# ------------------------------------------------------------------------------------ decide()
def test_no_champion_and_thresholds_met():
    decision = decide(m(0.7), None, T)
    assert decision.promote
    assert decision.reasons == [
        "no champion yet; absolute thresholds met",
        "average_precision 0.7 >= minimum 0.5",
        "roc_auc 0.9 >= minimum 0.8",
    ]
    assert decision.champion_metrics is None


def test_absolute_thresholds_fail():
    decision = decide(m(0.41, auc=0.7), None, T)
    assert not decision.promote
    assert decision.reasons == ["average_precision 0.41 < minimum 0.5", "roc_auc 0.7 < minimum 0.8"]


def test_worse_than_champion_beyond_tolerance():
    decision = decide(m(0.60), m(0.68), T, champion_version=3)
    assert not decision.promote
    assert decision.reasons == ["average_precision 0.6 is 0.08 below champion v3 0.68 (tolerance 0.02)"]
    assert decision.champion_version == "3"


def test_within_tolerance_or_better_passes():
    within = decide(m(0.67), m(0.68), T, champion_version="3")
    assert within.promote
    assert "average_precision 0.67 is 0.01 below champion v3 0.68, within tolerance 0.02" in within.reasons
    at_edge = decide(m(0.66), m(0.68), T, champion_version="3")
    assert at_edge.promote
    better = decide(m(0.75), m(0.68), T, champion_version="3")
    assert better.promote
    assert "average_precision 0.75 >= champion v3 0.68" in better.reasons


def test_both_absolute_and_relative_failures_are_listed():
    decision = decide(m(0.45), m(0.9), T, champion_version=1)
    assert not decision.promote
    assert decision.reasons == [
        "average_precision 0.45 < minimum 0.5",
        "average_precision 0.45 is 0.45 below champion v1 0.9 (tolerance 0.02)",
    ]


def test_undefined_metrics_never_pass():
    nan_ap = decide(m(math.nan), None, T)
    assert not nan_ap.promote
    assert nan_ap.reasons[0].startswith("average_precision is undefined")
    missing = decide({"roc_auc": 0.9}, None, T)
    assert not missing.promote
    # A champion without a defined AP cannot be compared against: absolute thresholds decide.
    champion_nan = decide(m(0.7), m(math.nan), T, champion_version=2)
    assert champion_nan.promote
    assert any("champion v2 average_precision is undefined" in r for r in champion_nan.reasons)
    json.dumps(nan_ap.to_dict(), allow_nan=False)


def test_thresholds_are_checked():
    with pytest.raises(ValueError):
        GateThresholds(min_average_precision=1.5)
    with pytest.raises(ValueError):
        GateThresholds(max_ap_degradation=-0.1)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="min_shadow_days"):
            GateThresholds(min_shadow_days=bad)
    assert GateThresholds().to_dict() == {
        "min_average_precision": 0.3,
        "min_roc_auc": 0.75,
        "max_ap_degradation": 0.02,
        "min_shadow_days": 0,
    }


# ------------------------------------------------------------------------------------ shadow evidence
TS = dataclasses.replace(T, min_shadow_days=5)


def shadow(n_days, champion_ap=0.6, challenger_ap=0.62, champion_version="3"):
    return {
        "champion_version": champion_version,
        "challenger_version": "4",
        "n_days": n_days,
        "champion_average_precision": champion_ap,
        "challenger_average_precision": challenger_ap,
        "champion_card_precision_top_100": 0.1,
        "challenger_card_precision_top_100": 0.1,
    }


def test_min_shadow_days_zero_ignores_shadow_evidence():
    for evidence in (None, shadow(0), shadow(30, challenger_ap=0.1)):
        with_shadow = decide(m(0.7), m(0.68), T, champion_version=3, shadow=evidence)
        assert with_shadow == decide(m(0.7), m(0.68), T, champion_version=3)
    assert decide(m(0.7), None, T, shadow=shadow(0)).reasons == decide(m(0.7), None, T).reasons


def test_too_few_shadow_days_block():
    decision = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(3))
    assert not decision.promote
    assert decision.reasons == [
        "needs 5 labelled shadow days, has 3: keep scoring in shadow and validate again"
    ]
    never = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=None)
    assert never.reasons == ["needs 5 labelled shadow days, has 0: keep scoring in shadow and validate again"]


def test_worse_challenger_on_shadow_days_blocks():
    decision = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(7, 0.6, 0.5))
    assert not decision.promote
    assert decision.reasons == [
        "shadow average_precision 0.5 is 0.1 below champion v3 0.6 on 7 labelled shadow days (tolerance 0.02)"
    ]
    # better on the test window does not make up for the shadow days; both failures are listed
    both = decide(m(0.6), m(0.68), TS, champion_version=3, shadow=shadow(7, 0.6, 0.5))
    assert len(both.reasons) == 2 and "below champion v3 0.68" in both.reasons[0]
    # no fraud on the shadow days: no evidence either way
    undefined = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(7, None, None))
    assert not undefined.promote and "undefined on 7 labelled shadow days" in undefined.reasons[0]
    # evidence against another champion does not count
    stale = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(7, champion_version="2"))
    assert not stale.promote and "compares against v2, not champion v3" in stale.reasons[0]


def test_enough_good_shadow_days_pass():
    decision = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(5))
    assert decision.promote
    assert decision.reasons[-1] == (
        "shadow average_precision 0.62 >= champion v3 0.6 on 5 labelled shadow days"
    )
    within = decide(m(0.7), m(0.68), TS, champion_version=3, shadow=shadow(9, 0.6, 0.59))
    assert within.promote
    assert within.reasons[-1] == (
        "shadow average_precision 0.59 is 0.01 below champion v3 0.6 on 9 labelled shadow days, "
        "within tolerance 0.02"
    )


def test_shadow_check_does_not_apply_without_champion():
    decision = decide(m(0.7), None, TS, shadow=None)
    assert decision.promote
    assert decision.reasons == [
        "no champion yet; absolute thresholds met",
        "average_precision 0.7 >= minimum 0.5",
        "roc_auc 0.9 >= minimum 0.8",
        "no champion: the shadow check (min_shadow_days 5) does not apply",
    ]


# ------------------------------------------------------------------------------------ registry
START = dt.date(2018, 4, 1)
WINDOW = {"train_start": START, "train_end": dt.date(2018, 4, 7), "delay_days": 7, "test_days": 7}
FAST_XGB = {"n_estimators": 30, "max_depth": 3, "n_jobs": 2}
NAME = "fraud_gate_model"


def make_gold(n_days=22, n_customers=120, tx_per_day=2, fraud_rate=0.04, seed=0):
    """Synthetic gold (gold columns and dtypes); frauds are the transactions above 250."""
    rng = np.random.default_rng(seed)
    n = n_days * n_customers * tx_per_day
    fraud = rng.random(n) < fraud_rate
    dates = [
        START + dt.timedelta(days=int(d)) for d in np.repeat(np.arange(n_days), n_customers * tx_per_day)
    ]
    gold = pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype="int64"),
            "tx_datetime": pd.to_datetime(dates),
            "tx_date": dates,
            "customer_id": np.tile(np.repeat(np.arange(n_customers), tx_per_day), n_days).astype("int64"),
            "terminal_id": rng.integers(0, 500, n).astype("int64"),
            "tx_amount": np.where(fraud, rng.uniform(250, 400, n), rng.uniform(5, 200, n)).round(2),
            "tx_fraud": fraud.astype("int32"),
            "tx_fraud_scenario": fraud.astype("int32"),
        }
    )
    for column in FEATURE_COLUMNS[1:]:
        gold[column] = rng.integers(0, 10, n).astype("int64") if "count" in column else rng.random(n)
    gold.loc[rng.random(n) < 0.1, "customer_amount_ratio_30d"] = np.nan
    return gold


@pytest.fixture()
def tracking(tmp_path):
    configure_mlflow(LakehouseConfig("fraud_test", "fraud", "delta-rs", tmp_path), "/fraud/test-gate")
    return MlflowClient()


def _aliases(client):
    return {alias: str(version) for alias, version in client.get_registered_model(NAME).aliases.items()}


def _tags(client, version):
    return client.get_model_version(NAME, str(version)).tags


def test_train_validate_promote_then_reject_a_worse_model(tracking):
    client = tracking
    gold = make_gold()
    loads = []

    def load_gold(first_day, last_day):
        loads.append((first_day, last_day))
        days = pd.to_datetime(gold["tx_date"]).dt.date
        return gold[(days >= first_day) & (days <= last_day)]

    # --- train: two runs, the XGBoost candidate registered as challenger
    summary = run_training(
        gold,
        **WINDOW,
        model_name=NAME,
        xgb_params=FAST_XGB,
        table_versions={"fraud_test.fraud.gold_transaction_features": 2},
        git_commit="deadbeef",
    )
    json.dumps(summary, allow_nan=False)
    assert summary["registered_version"] == "1"
    assert summary["candidate_model"] == "xgboost"
    assert set(summary["models"]) == {"xgboost", "logistic_regression"}
    assert summary["window"] == {
        "train_start": "2018-04-01",
        "train_end": "2018-04-07",
        "delay_days": 7,
        "test_days": 7,
        "known_compromised_days": None,  # None: the known frauds of the whole training window
        "test_start": "2018-04-15",
        "test_end": "2018-04-21",
    }
    for model in summary["models"].values():
        assert set(model["metrics"]) >= {"average_precision", "roc_auc", "card_precision_top_100"}
    baseline_run = client.get_run(summary["models"]["logistic_regression"]["run_id"])
    assert baseline_run.data.tags["role"] == "baseline"
    assert baseline_run.data.params["table_version.fraud_test.fraud.gold_transaction_features"] == "2"
    assert client.get_run(summary["candidate_run_id"]).data.tags["role"] == "candidate"
    assert len(client.search_model_versions(f"name='{NAME}'")) == 1  # the baseline is not registered
    assert _aliases(client) == {"challenger": "1"}
    assert _tags(client, 1)["validation_status"] == "pending"

    # --- promotion before validation is refused
    early = run_promotion(NAME)
    assert not early["promoted"]
    assert "pending" in early["reasons"][0]
    assert _aliases(client) == {"challenger": "1"}
    assert _tags(client, 1)["promotion_status"] == "rejected"

    # --- validation: no champion yet, the thresholds are met
    first = run_validation(load_gold, NAME, T)
    assert loads == [(dt.date(2018, 4, 1), dt.date(2018, 4, 21))]
    assert first["validation_status"] == "passed" and first["promote"]
    assert first["reasons"][0] == "no champion yet; absolute thresholds met"
    assert first["champion_metrics"] is None
    assert first["challenger_metrics"]["average_precision"] == pytest.approx(
        summary["models"]["xgboost"]["metrics"]["average_precision"]
    )
    tags = _tags(client, 1)
    assert tags["validation_status"] == "passed"
    assert tags["validation_champion_version"] == "none"
    assert float(tags["validation_average_precision"]) > 0.8
    assert tags["validation_test_start"] == "2018-04-15"
    assert tags["validation_test_end"] == "2018-04-21"
    validation_run = client.get_run(first["validation_run_id"])
    assert validation_run.data.tags["validation_status"] == "passed"
    assert validation_run.data.params["test_start"] == "2018-04-15"
    assert "challenger_average_precision" in validation_run.data.metrics

    # --- promotion: v1 becomes champion, the challenger alias goes
    promoted = run_promotion(NAME)
    assert promoted["promoted"] and promoted["champion_version"] == "1"
    assert promoted["previous_champion_version"] is None
    assert _aliases(client) == {"champion": "1"}
    assert _tags(client, 1)["promotion_status"] == "promoted"

    # --- a deliberately worse model: trained on shuffled labels
    shuffled = gold.assign(tx_fraud=np.random.default_rng(1).permutation(gold["tx_fraud"].to_numpy()))
    train, test = time_split(shuffled, **WINDOW)
    worse = train_and_log(train, test, "xgboost", FAST_XGB, model_name=NAME, extra_params=WINDOW)
    assert worse.registered_version == 2
    register_challenger(NAME, worse.registered_version)
    assert _aliases(client) == {"champion": "1", "challenger": "2"}

    second = validate_challenger(NAME, gold, T)  # a frame works as well as a loader
    assert second["validation_status"] == "failed" and not second["promote"]
    assert second["champion_version"] == "1"
    # The champion was scored on the same window as in the first validation.
    assert second["champion_metrics"]["average_precision"] == pytest.approx(
        first["challenger_metrics"]["average_precision"]
    )
    assert any(r.startswith("average_precision") and "< minimum 0.5" in r for r in second["reasons"])
    assert any("below champion v1" in r for r in second["reasons"])
    tags = _tags(client, 2)
    assert tags["validation_status"] == "failed"
    assert "below champion v1" in tags["validation_reasons"]
    assert tags["validation_champion_version"] == "1"
    assert "validation_champion_average_precision" in tags

    rejected = run_promotion(NAME)
    assert not rejected["promoted"]
    assert rejected["champion_version"] == "1"
    assert any("failed" in r for r in rejected["reasons"])
    assert any("below champion v1" in r for r in rejected["reasons"])
    assert _aliases(client) == {"champion": "1", "challenger": "2"}  # champion unchanged
    tags = _tags(client, 2)
    assert tags["promotion_status"] == "rejected"
    assert "below champion v1" in tags["promotion_reasons"]

    # --- a passed validation against another champion is stale: no promotion
    client.set_model_version_tag(NAME, "2", "validation_status", "passed")
    client.set_model_version_tag(NAME, "2", "validation_champion_version", "none")
    stale = promote_challenger(NAME)
    assert not stale["promoted"]
    assert "champion changed since validation" in stale["reasons"][0]
    assert _aliases(client) == {"champion": "1", "challenger": "2"}

    # --- the champion cannot be re-registered as challenger
    with pytest.raises(ValueError, match="already the champion"):
        register_challenger(NAME, 1)


def test_validation_and_promotion_need_a_registered_challenger(tracking):
    with pytest.raises(LookupError, match="not registered"):
        validate_challenger("no_such_model", make_gold(n_days=1, n_customers=2), T)
    with pytest.raises(LookupError, match="not registered"):
        promote_challenger("no_such_model")


def test_validation_requires_shadow_evidence(tracking):
    """validate_challenger asks shadow_source for the evidence, lets decide() judge it, records it."""
    client = tracking
    gold = make_gold()
    train, test = time_split(gold, **WINDOW)
    strict = dataclasses.replace(T, min_shadow_days=5)
    calls = []
    evidence = {}

    def source(champion_version, challenger_version):
        calls.append((champion_version, challenger_version))
        return evidence.get("value")

    def new_challenger():
        # the same data and seed: the test-window check passes, only the shadow days decide
        trained = train_and_log(train, test, "xgboost", FAST_XGB, model_name=NAME, extra_params=WINDOW)
        register_challenger(NAME, trained.registered_version)
        return str(trained.registered_version)

    # --- no champion: the shadow check does not apply, the source is not asked
    new_challenger()
    first = validate_challenger(NAME, gold, strict, shadow_source=source)
    assert first["promote"] and calls == [] and first["shadow"] is None
    assert first["reasons"][-1] == "no champion: the shadow check (min_shadow_days 5) does not apply"
    assert "validation_shadow_days" not in _tags(client, 1)
    assert promote_challenger(NAME)["promoted"]

    # --- a challenger never scored in shadow, then with too few labelled days: blocked
    assert new_challenger() == "2"
    blocked = validate_challenger(NAME, gold, strict, shadow_source=source)
    assert calls == [("1", "2")]
    assert blocked["validation_status"] == "failed"
    assert blocked["reasons"] == [
        "needs 5 labelled shadow days, has 0: keep scoring in shadow and validate again"
    ]
    assert _tags(client, 2)["validation_shadow_days"] == "0"
    evidence["value"] = shadow(3, 0.6, 0.7, champion_version="1")
    few = validate_challenger(NAME, gold, strict, shadow_source=source)
    assert not few["promote"] and "has 3" in few["reasons"][0]
    assert not promote_challenger(NAME)["promoted"]
    assert _aliases(client) == {"champion": "1", "challenger": "2"}

    # --- enough days, but worse than the champion on them: blocked
    evidence["value"] = shadow(6, 0.6, 0.5, champion_version="1")
    worse = validate_challenger(NAME, gold, strict, shadow_source=source)
    assert not worse["promote"]
    assert worse["reasons"] == [
        "shadow average_precision 0.5 is 0.1 below champion v1 0.6 on 6 labelled shadow days (tolerance 0.02)"
    ]
    tags = _tags(client, 2)
    assert tags["validation_status"] == "failed" and tags["validation_shadow_days"] == "6"
    assert float(tags["validation_shadow_challenger_average_precision"]) == 0.5
    assert float(tags["validation_shadow_champion_average_precision"]) == 0.6

    # --- enough good days: passed, recorded, promoted
    evidence["value"] = shadow(6, 0.6, 0.61, champion_version="1")
    good = validate_challenger(NAME, gold, strict, shadow_source=source)
    assert good["promote"] and good["validation_status"] == "passed"
    assert good["shadow"]["n_days"] == 6
    assert good["reasons"][-1] == "shadow average_precision 0.61 >= champion v1 0.6 on 6 labelled shadow days"
    json.dumps(good, allow_nan=False)
    tags = _tags(client, 2)
    assert tags["validation_shadow_days"] == "6"
    assert float(tags["validation_shadow_challenger_average_precision"]) == 0.61
    assert float(tags["validation_shadow_challenger_card_precision_top_100"]) == 0.1
    assert all(UC_TAG_KEY.match(key) for key in tags)
    run = client.get_run(good["validation_run_id"])
    assert run.data.metrics["shadow_days"] == 6 and run.data.params["min_shadow_days"] == "5"
    assert promote_challenger(NAME)["promoted"]
    assert _aliases(client) == {"champion": "2"}

    # --- min_shadow_days=0 (the default): today's gate, the evidence is only recorded
    assert new_challenger() == "3"
    evidence["value"] = None
    lenient = validate_challenger(NAME, gold, T, shadow_source=source)
    assert lenient["promote"] and not any("shadow" in r for r in lenient["reasons"])
    assert _tags(client, 3)["validation_shadow_days"] == "0"


# ------------------------------------------------------------------------------------ tag rules
# Unity Catalog's registry (databricks-uc) rejects tag keys with any of ". , - = / :" and values
# longer than 1000 characters.
UC_TAG_KEY = re.compile(r"^[A-Za-z0-9_ ]+$")


def test_registry_tag_key_builds_and_rejects_forbidden_characters():
    assert registry_tag_key("validation", "champion", "roc_auc") == "validation_champion_roc_auc"
    assert registry_tag_key("validation_status") == "validation_status"
    for bad in (".", ",", "-", "=", "/", ":"):
        with pytest.raises(ValueError, match="forbidden"):
            registry_tag_key("validation", f"a{bad}b")
    with pytest.raises(ValueError, match="empty"):
        registry_tag_key("")


def test_tag_value_truncates_with_a_visible_marker():
    assert tag_value(1.5) == "1.5"
    exact = "x" * MAX_TAG_VALUE_CHARS
    assert tag_value(exact) == exact
    long = tag_value("y" * 5000)
    assert len(long) == MAX_TAG_VALUE_CHARS == 1000
    assert long.endswith("…") and long.startswith("y" * 900)


def test_every_model_version_tag_fits_unity_catalog(tracking, monkeypatch):
    client = tracking
    gold = make_gold()
    lenient = GateThresholds(min_average_precision=0.5, min_roc_auc=0.8, max_ap_degradation=1.0)
    run_training(gold, **WINDOW, model_name=NAME, xgb_params=FAST_XGB, git_commit="deadbeef")
    assert validate_challenger(NAME, gold, lenient)["promote"]
    assert promote_challenger(NAME)["promoted"]

    # A second challenger, validated against the champion (champion metric tags) and promoted,
    # with reasons long enough to need truncation.
    train, test = time_split(gold, **WINDOW)
    second = train_and_log(train, test, "xgboost", FAST_XGB, model_name=NAME, extra_params=WINDOW)
    register_challenger(NAME, second.registered_version)
    real_decide = gate.decide

    def verbose_decide(*args, **kwargs):
        decision = real_decide(*args, **kwargs)
        return dataclasses.replace(decision, reasons=[*decision.reasons, "z" * 3000])

    monkeypatch.setattr(gate, "decide", verbose_decide)
    result = validate_challenger(NAME, gold, lenient)
    assert result["champion_version"] == "1" and result["promote"]
    assert promote_challenger(NAME)["promoted"]

    versions = client.search_model_versions(f"name='{NAME}'")
    assert {str(v.version) for v in versions} == {"1", "2"}
    all_keys = set()
    for v in versions:
        tags = client.get_model_version(NAME, str(v.version)).tags
        assert tags["validation_status"] == "passed" and tags["promotion_status"] == "promoted"
        for key, value in tags.items():
            assert UC_TAG_KEY.match(key), f"v{v.version} tag key {key!r} is rejected by Unity Catalog"
            assert len(value) <= MAX_TAG_VALUE_CHARS, f"v{v.version} tag {key!r} is {len(value)} chars"
        all_keys |= set(tags)
    assert {
        "validation_test_start",
        "validation_test_end",
        "validation_champion_version",
        "validation_average_precision",
        "validation_champion_average_precision",
        "validation_reasons",
        "previous_champion_version",
    } <= all_keys
    reasons = client.get_model_version(NAME, "2").tags["validation_reasons"]
    assert len(reasons) == MAX_TAG_VALUE_CHARS and reasons.endswith("…")
