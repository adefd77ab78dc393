"""The online store's tables on a real PostgreSQL server: publishing a day, replacing it, pruning."""

from __future__ import annotations

import datetime as dt

import pytest

from fraud_mlops.online.features import CustomerTransaction, epoch_seconds
from fraud_mlops.online.store import OnlineStore, OnlineStoreLocation, connection, retention_days

DAY = dt.date(2018, 6, 1)
T0 = epoch_seconds(dt.datetime(2018, 6, 1, 8, 0, 0))


@pytest.fixture()
def store(online_store_url):
    location = OnlineStoreLocation(online_store_url, "fraud_store_tests", "fraud")
    location.ensure_database()
    store = OnlineStore("fraud")
    with connection(location) as conn:
        store.drop(conn)
        store.create_tables(conn)
        store.create_tables(conn)  # idempotent
        yield store, conn


def test_replace_day_is_whole_and_repeatable(store):
    s, conn = store
    rows = [(1, 10, T0, 5, 12.5, 0), (2, 10, T0 + 60, 6, None, 1), (3, 11, T0 + 120, 5, 7.0, 0)]
    assert s.replace_day(conn, DAY, rows) == {"customer_rows": 3, "terminal_rows": 3, "endpoint_rows_replaced": 0}
    first = s.counts(conn)
    s.replace_day(conn, DAY, rows)
    assert s.counts(conn) == first == {"customer_transactions": 3, "terminal_transactions": 3,
                                       "scored_transactions": 0, "published_days": 1}
    assert s.published_days(conn) == {DAY: 3}
    history = s.customer_history(conn, 10, T0 + 3600, 99, 86_400)
    assert [(h.transaction_id, h.amount) for h in history] == [(1, 12.5), (2, None)]
    assert [(t.seconds, t.fraud) for t in s.terminal_history(conn, 5, T0 - 1, T0 + 120)] == [(T0, 0), (T0 + 120, 0)]


def test_silver_replaces_what_the_endpoint_recorded(store):
    s, conn = store
    with conn.transaction():
        s.record(conn, 10, CustomerTransaction(T0, 1, 5, 12.5), {"TRANSACTION_ID": 1}, {"fraud_probability": 0.1}, "1")
    assert s.scored(conn, 1) == ({"TRANSACTION_ID": 1}, {"fraud_probability": 0.1})
    result = s.replace_day(conn, DAY, [(1, 10, T0, 5, 12.5, 0), (2, 10, T0 + 5, 5, 3.0, 0)])
    assert result["endpoint_rows_replaced"] == 1
    assert s.counts(conn)["customer_transactions"] == 2 and s.counts(conn)["scored_transactions"] == 1


def test_rows_off_the_day_and_open_transactions_are_refused(store, online_store_url):
    s, conn = store
    with pytest.raises(ValueError, match="not on 2018-06-01"):
        s.replace_day(conn, DAY, [(1, 10, T0 + 86_400, 5, 1.0, 0)])
    location = OnlineStoreLocation(online_store_url, "fraud_store_tests", "fraud")
    with location.connect() as plain, pytest.raises(ValueError, match="autocommit"):
        s.replace_day(plain, DAY, [(1, 10, T0, 5, 1.0, 0)])
    assert s.counts(conn)["customer_transactions"] == 0


def test_prune_drops_days_before_the_window(store):
    s, conn = store
    s.replace_day(conn, DAY, [(1, 10, T0, 5, 1.0, 0)])
    s.replace_day(conn, DAY + dt.timedelta(days=40), [(2, 10, T0 + 40 * 86_400, 5, 1.0, 0)])
    assert s.prune(conn, DAY + dt.timedelta(days=40 - retention_days() + 1)) == {
        "customer_rows": 1, "terminal_rows": 1, "days": 1}
    assert s.published_days(conn) == {DAY + dt.timedelta(days=40): 1}
    assert retention_days(7) == 38


def test_bad_names_and_missing_store_are_clear_errors(monkeypatch):
    from fraud_mlops.online.store import OnlineStoreUnavailableError

    with pytest.raises(ValueError, match="identifier"):
        OnlineStoreLocation("postgresql://x", "fraud dev", "fraud")
    monkeypatch.delenv("FRAUD_MLOPS_ONLINE_STORE", raising=False)
    monkeypatch.delenv("PGHOST", raising=False)
    with pytest.raises(OnlineStoreUnavailableError, match="FRAUD_MLOPS_ONLINE_STORE"):
        OnlineStoreLocation.for_target("fraud_dev", "fraud")
    down = OnlineStoreLocation("postgresql://postgres@127.0.0.1:1/postgres", "fraud_dev", "fraud")
    with pytest.raises(OnlineStoreUnavailableError, match="unavailable"):
        down.connect()
