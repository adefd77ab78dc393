"""The REST endpoint over real HTTP against a real PostgreSQL online store.

A small XGBoost model (trained on synthetic gold rows, logged as the project's pyfunc, with a recorded
decision threshold) is the champion in a temporary MLflow store; the online store holds a few
published silver transactions. Checks: the answer's fields, a customer's second request seeing the
first, repeats, conflicts, every kind of bad field, no champion yet, the alias moving under load,
concurrent requests of one customer, and the store going down (503, nothing written).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import subprocess
import sys

import pytest
import requests

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from fraud_mlops.lifecycle.thresholds import DECISION_THRESHOLD_TAG
from fraud_mlops.online.features import epoch_seconds
from fraud_mlops.online.store import OnlineStore, OnlineStoreLocation
from fraud_mlops.serving.app import create_app
from fraud_mlops.serving.model import ChampionWatcher
from fraud_mlops.serving.scorer import ScoringSettings, TransactionScorer
from fraud_mlops.serving.server import BackgroundServer

from ..lifecycle.synthetic_gold import make_gold_pdf, mlflow_store_config

MODEL_NAME = "fraud_serving_test_model"
DAY = dt.date(2018, 5, 10)


def _register(train_pdf, threshold: float, n_estimators: int = 20) -> str:
    import mlflow
    from mlflow.tracking import MlflowClient

    from fraud_mlops.lifecycle.training import XGBOOST, FraudProbabilityModel, _log_pyfunc, fit_estimator

    estimator, _ = fit_estimator(XGBOOST, {"n_estimators": n_estimators, "max_depth": 3}, train_pdf)
    with mlflow.start_run():
        info = _log_pyfunc(FraudProbabilityModel(estimator, model_type=XGBOOST), None, None, MODEL_NAME)
    version = str(info.registered_model_version)
    MlflowClient().set_model_version_tag(MODEL_NAME, version, DECISION_THRESHOLD_TAG, str(threshold))
    return version


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    config = mlflow_store_config(tmp_path_factory, "serving-mlflow")
    configure_mlflow(config, "serving-exp")
    train = make_gold_pdf([DAY - dt.timedelta(days=i) for i in range(1, 6)], 150, seed=3)
    first = _register(train, threshold=0.3)
    second = _register(train, threshold=0.4, n_estimators=30)
    return config, first, second


@pytest.fixture()
def location(online_store_url, request):
    name = "serving_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    loc = OnlineStoreLocation(online_store_url, "fraud_serving_tests", "".join(c for c in name if c.isalnum() or c == "_"))
    loc.ensure_database()
    with loc.connect(autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {loc.schema} CASCADE")
    store = OnlineStore(loc.schema)
    with loc.connect(autocommit=True) as conn:
        store.create_tables(conn)
        seconds = epoch_seconds(dt.datetime(2018, 5, 9, 10, 0, 0))
        # customer 7's history and terminal 3's labelled transactions of the day before
        store.replace_day(conn, dt.date(2018, 5, 9), [
            (901, 7, seconds, 3, 20.0, 0), (902, 7, seconds + 60, 3, 25.0, 1), (903, 8, seconds + 120, 3, 30.0, 0)])
    return loc


def _client(location, registry, poll_seconds=0.2):
    from fraud_mlops.lifecycle.tracking import configure_mlflow

    configure_mlflow(registry[0])
    store = OnlineStore(location.schema)
    pool = location.pool(min_size=1, max_size=6)
    scorer = TransactionScorer(pool, store, ChampionWatcher(MODEL_NAME, poll_seconds), ScoringSettings())
    return scorer, BackgroundServer(create_app(scorer))


def _set_champion(version: str | None) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if version is None:
        client.delete_registered_model_alias(MODEL_NAME, "champion")
    else:
        client.set_registered_model_alias(MODEL_NAME, "champion", version)


def _tx(tx_id, customer=7, when="2018-05-10 09:00:00", amount=42.5, terminal=3, **extra):
    return {"TRANSACTION_ID": tx_id, "TX_DATETIME": when, "CUSTOMER_ID": customer, "TERMINAL_ID": terminal,
            "TX_AMOUNT": amount, **extra}


def _counts(location):
    with location.connect() as conn:
        return OnlineStore(location.schema).counts(conn)


def test_score_answers_records_and_repeats(location, registry):
    _set_champion(registry[1])
    scorer, server = _client(location, registry)
    with server, requests.Session() as http:
        health = http.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["model"]["version"] == registry[1]
        first = http.post(f"{server.url}/score", json=_tx(1001))
        assert first.status_code == 200, first.text
        body = first.json()
        assert 0.0 <= body["fraud_probability"] <= 1.0 and body["decision"] == int(body["fraud_probability"] >= 0.3)
        assert body["decision_threshold"] == 0.3 and body["model_name"] == MODEL_NAME
        assert body["model_version"] == registry[1] and body["repeated"] is False
        assert len(body["reason_codes"]) == 3 and all(r["feature"] for r in body["reason_codes"])
        # the published history of customer 7 (two transactions the day before) plus this one
        assert body["features"]["customer_tx_count_7d"] == 3
        assert body["features"]["terminal_tx_count_30d"] == 0  # the terminal's rows are < 7 days old
        # the next request of the customer sees the first one
        second = http.post(f"{server.url}/score", json=_tx(1002, when="2018-05-10 09:00:30", amount=10.0)).json()
        assert second["features"]["customer_tx_count_1d"] == 4 and second["features"]["customer_tx_count_1h"] == 2
        assert second["features"]["customer_seconds_since_prev_tx"] == 30.0
        # a repeat gets the first answer back and is not counted twice
        before = _counts(location)
        again = http.post(f"{server.url}/score", json=_tx(1001)).json()
        assert again["repeated"] is True and again["fraud_probability"] == body["fraud_probability"]
        assert again["scored_at"] == body["scored_at"]
        assert _counts(location) == before
        third = http.post(f"{server.url}/score", json=_tx(1003, when="2018-05-10 09:01:00")).json()
        assert third["features"]["customer_tx_count_1d"] == 5
        # the same id with other values is a conflict, and nothing is written
        conflict = http.post(f"{server.url}/score", json=_tx(1001, amount=999.0))
        assert conflict.status_code == 409 and "TX_AMOUNT" in conflict.json()["error"]
    assert _counts(location)["scored_transactions"] == 3
    scorer.pool.close()


@pytest.mark.parametrize(("body", "fields"), [
    ({"TX_DATETIME": "2018-05-10 09:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 3, "TX_AMOUNT": 1.0}, {"TRANSACTION_ID"}),
    (_tx(1, amount=-5.0), {"TX_AMOUNT"}),
    (_tx(1, amount="NaN"), {"TX_AMOUNT"}),
    (_tx(1, when="2018-5-10 9:00"), {"TX_DATETIME"}),
    (_tx(1, when="2018-02-30 10:00:00"), {"TX_DATETIME"}),
    (_tx("abc", customer=-1), {"TRANSACTION_ID", "CUSTOMER_ID"}),
    (_tx(1, TX_FRAUD=1), {"TX_FRAUD"}),
    (_tx(1, terminal=2**63), {"TERMINAL_ID"}),
])
def test_bad_requests_name_each_bad_field_and_write_nothing(location, registry, body, fields):
    _set_champion(registry[1])
    scorer, server = _client(location, registry)
    before = _counts(location)
    with server:
        answer = requests.post(f"{server.url}/score", json=body, timeout=10)
        broken = requests.post(f"{server.url}/score", data="{not json", headers={"content-type": "application/json"},
                               timeout=10)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == fields, answer.json()
    assert broken.status_code == 422
    assert _counts(location) == before
    scorer.pool.close()


def test_no_champion_then_the_alias_moves_without_dropping_requests(location, registry):
    _set_champion(None)
    scorer, server = _client(location, registry, poll_seconds=0.1)
    with server, requests.Session() as http:
        assert http.get(f"{server.url}/health").status_code == 503
        refused = http.post(f"{server.url}/score", json=_tx(2001))
        assert refused.status_code == 503 and "champion" in refused.json()["error"]
        assert _counts(location)["scored_transactions"] == 0
        _set_champion(registry[1])
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while http.get(f"{server.url}/health").status_code != 200:
            assert dt.datetime.now() < deadline, "the watcher did not load the new champion"

        def send(i):
            with requests.Session() as s:
                return s.post(f"{server.url}/score", json=_tx(3000 + i, customer=100 + i % 5,
                                                               when=f"2018-05-10 10:{i // 60:02d}:{i % 60:02d}"))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, i) for i in range(60)]
            _set_champion(registry[2])  # moves while requests are in flight
            answers = [f.result() for f in futures]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
        assert {a.json()["model_version"] for a in answers} <= {registry[1], registry[2]}
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while http.get(f"{server.url}/health").json()["model"]["version"] != registry[2]:
            assert dt.datetime.now() < deadline
        assert http.post(f"{server.url}/score", json=_tx(4000)).json()["model_version"] == registry[2]
    scorer.pool.close()


def test_concurrent_requests_of_one_customer_each_see_the_earlier_ones(location, registry):
    _set_champion(registry[1])
    scorer, server = _client(location, registry)
    with server:
        def send(i):
            return requests.post(f"{server.url}/score", json=_tx(5011 - i, customer=55, when="2018-05-10 11:00:00"),
                                 timeout=30).json()

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(send, range(12)))
    # Requests of one customer take turns (the customer's lock): in the order they were scored, each
    # sees exactly the earlier-scored ones that precede it in (second, id) order, as batch scoring would.
    answers.sort(key=lambda a: a["scored_at"])
    for i, answer in enumerate(answers):
        earlier = sum(1 for a in answers[:i] if a["transaction_id"] < answer["transaction_id"])
        assert answer["features"]["customer_tx_count_1d"] == 1 + earlier, answer["transaction_id"]
    assert len({a["transaction_id"] for a in answers}) == 12
    scorer.pool.close()


def test_store_down_is_a_503_and_writes_nothing(registry, tmp_path):
    from fraud_mlops.online.postgres import LocalPostgres, free_port

    server_pg = LocalPostgres(tmp_path / "pg", port=free_port())
    url = server_pg.start()
    try:
        loc = OnlineStoreLocation(url, "fraud_down", "fraud")
        loc.ensure_database()
        with loc.connect() as conn:
            OnlineStore("fraud").create_tables(conn)
        _set_champion(registry[1])
        scorer, server = _client(loc, registry)
        with server, requests.Session() as http:
            assert http.post(f"{server.url}/score", json=_tx(6001)).status_code == 200
            server_pg.stop()
            down = http.post(f"{server.url}/score", json=_tx(6002, when="2018-05-10 12:00:00"))
            assert down.status_code == 503 and "unavailable" in down.json()["error"]
            assert http.get(f"{server.url}/health").json()["status"] == "store_unavailable"
            server_pg.start()
            deadline = dt.datetime.now() + dt.timedelta(seconds=20)
            while http.get(f"{server.url}/health").status_code != 200:
                assert dt.datetime.now() < deadline
            assert _counts(loc)["scored_transactions"] == 1  # 6002 was not recorded
            after = http.post(f"{server.url}/score", json=_tx(6002, when="2018-05-10 12:00:00")).json()
            assert after["repeated"] is False and after["features"]["customer_tx_count_1d"] == 2
        scorer.pool.close()
    finally:
        server_pg.stop()


def test_the_serving_code_imports_no_spark():
    code = ("import sys, fraud_mlops.serving.app, fraud_mlops.serving.replay; "
            "assert 'pyspark' not in sys.modules, 'pyspark imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
