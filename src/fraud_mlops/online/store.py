"""The online feature store: what real-time scoring reads, in PostgreSQL (Lakebase on Databricks).

Tables, in the PostgreSQL schema named like the target's Unity Catalog schema, in the database
named like its catalog (``fraud_dev.fraud`` locally and on Lakebase alike):

``customer_transactions`` (PK ``customer_id, tx_seconds, transaction_id``)
    each customer's transactions of the last :func:`retention_days` days: ``terminal_id`` bigint,
    ``tx_amount`` double precision (currency units), ``source`` text (``silver`` when published from
    the silver table, ``endpoint`` when recorded by the REST endpoint as it scored it). The customer
    features of a request read them (37 days).
``terminal_transactions`` (PK ``terminal_id, tx_seconds, transaction_id``)
    each terminal's silver transactions with their label ``tx_fraud`` (int). The terminal features
    read the window ``(t - D - 30 days, t - D days]``: with the label delay D = 7 days every row they
    need was published days before the request, so they are known in advance.
``scored_transactions`` (PK ``transaction_id``)
    the endpoint's answers: ``customer_id``, ``tx_seconds``, ``request`` jsonb (the validated
    request), ``response`` jsonb, ``model_version`` text, ``scored_at`` timestamptz. A repeated
    ``TRANSACTION_ID`` gets the stored answer back and is not counted twice.
``published_days`` (PK ``tx_date``)
    the silver days published (``n_transactions`` of silver that day, ``published_at``): the
    publish step's checkpoint.

``tx_seconds`` is ``CAST(tx_datetime AS BIGINT)`` of the silver table (seconds since 1970 of the naive
local time read as UTC; :func:`fraud_mlops.online.features.epoch_seconds`).

Why transactions and not daily risk values per terminal: the terminal window ends D days before
the *second* of each transaction, not at midnight, so a value per day would differ from the batch
features for every transaction but the first of the day. A terminal has about 30 transactions in
37 days; reading them is one index range scan.

This module needs only psycopg (no Spark): the serving process uses it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bundlekit.task_runtime import fault_point
from fraud_mlops.online.features import CustomerTransaction, TerminalTransaction
from fraud_mlops.online.postgres import ONLINE_STORE_ENV
from fraud_mlops.platform.config import uses_workspace

__all__ = [
    "ONLINE_STORE_ENV",
    "OnlineStore",
    "OnlineStoreLocation",
    "OnlineStoreUnavailableError",
    "retention_days",
]

#: Environment variable naming the Lakebase database instance (jobs on Databricks; an App gets PGHOST).
LAKEBASE_INSTANCE_ENV = "FRAUD_MLOPS_LAKEBASE_INSTANCE"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class OnlineStoreUnavailableError(RuntimeError):
    """The online store's server cannot be reached (or refused the connection)."""


def retention_days(label_delay_days: int = 7) -> int:
    """Days of transactions the store keeps before the newest published day: the features' look-back
    (:func:`fraud_mlops.medallion.features.lookback_days`, 37 days) plus one day of margin for
    requests of the day after the newest published one."""
    from fraud_mlops.medallion.feature_definitions import lookback_days

    return lookback_days(label_delay_days) + 1


def _identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value or ""):
        raise ValueError(f"{what} must be a plain SQL identifier (letters, digits, _), got {value!r}")
    return value


@dataclass(frozen=True)
class OnlineStoreLocation:
    """Where one target's online store lives.

    Attributes:
        conninfo: a libpq connection string or URL of the server (the database is set separately);
            empty to take everything from the libpq ``PG*`` environment variables (a Databricks App
            with a Lakebase database resource gets ``PGHOST``, ``PGUSER``...).
        database: the PostgreSQL database (the target's catalog name).
        schema: the PostgreSQL schema (the target's schema name).
        lakebase_instance: the Lakebase database instance whose OAuth token is the password
            (Databricks only; empty locally).
    """

    conninfo: str
    database: str
    schema: str
    lakebase_instance: str = ""

    def __post_init__(self) -> None:
        _identifier(self.database, "the online store database")
        _identifier(self.schema, "the online store schema")

    @classmethod
    def for_target(cls, catalog: str, schema: str, lakebase_instance: str = "") -> OnlineStoreLocation:
        """The store of the target ``catalog.schema`` for this process.

        Locally: the server of ``FRAUD_MLOPS_ONLINE_STORE`` (``make`` starts it); on Databricks: the
        Lakebase instance ``lakebase_instance`` (or ``FRAUD_MLOPS_LAKEBASE_INSTANCE``), whose host
        comes from the workspace, or the ``PG*`` variables of a Databricks App.

        Raises:
            OnlineStoreUnavailableError: none of these says where the server is.
        """
        instance = lakebase_instance or os.environ.get(LAKEBASE_INSTANCE_ENV, "")
        url = os.environ.get(ONLINE_STORE_ENV, "")
        if url:
            return cls(url, catalog, schema, "")
        if instance and uses_workspace():
            return cls(_lakebase_conninfo(instance), catalog, schema, instance)
        if os.environ.get("PGHOST"):
            return cls("", catalog, schema, "")
        raise OnlineStoreUnavailableError(
            f"no online store configured: set {ONLINE_STORE_ENV} to a PostgreSQL server URL (make serve, make demo "
            f"and make test start one: fraud-mlops online-store start), or give a Lakebase instance on Databricks")

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """A new connection to the store's database.

        Raises:
            OnlineStoreUnavailableError: the server cannot be reached or refuses the connection.
        """
        try:
            return self._connection_class().connect(self.conninfo, **self._connect_kwargs(), **kwargs)
        except psycopg.OperationalError as exc:
            raise OnlineStoreUnavailableError(f"the online store is unavailable: {exc}".strip()) from exc

    def _connect_kwargs(self) -> dict[str, Any]:
        return {"dbname": self.database, "connect_timeout": 5}

    def _connection_class(self) -> type[psycopg.Connection]:
        """``psycopg.Connection``, or on Lakebase a subclass whose every new connection logs in with a
        fresh OAuth token over TLS (tokens last an hour)."""
        if not self.lakebase_instance:
            return psycopg.Connection
        instance = self.lakebase_instance

        class _LakebaseConnection(psycopg.Connection):
            @classmethod
            def connect(cls, conninfo: str = "", **kw: Any):  # type: ignore[override]
                return super().connect(conninfo, **{**kw, "password": _lakebase_token(instance), "sslmode": "require"})

        return _LakebaseConnection

    def pool(self, min_size: int = 2, max_size: int = 8, timeout: float = 2.0) -> ConnectionPool:
        """A pool of connections to the store's database (opened; close it when done).

        Connections are checked before they are handed out, so a restarted server costs one failed
        check, not a failed request. On Lakebase every new connection logs in with a fresh OAuth token.

        Args:
            min_size, max_size: connections kept open / at most.
            timeout: seconds a request waits for a connection before ``PoolTimeout``.
        """
        max_lifetime = 45 * 60.0 if self.lakebase_instance else 3600.0  # Lakebase tokens last an hour
        return ConnectionPool(self.conninfo, kwargs=self._connect_kwargs(), min_size=min_size, max_size=max_size,
                              timeout=timeout, connection_class=self._connection_class(),
                              check=ConnectionPool.check_connection, max_lifetime=max_lifetime, open=True,
                              name=f"online-store-{self.database}")

    def ensure_database(self) -> None:
        """Create the database when it is missing (locally; on Lakebase the bundle declares it)."""
        if self.lakebase_instance:
            return
        try:
            with psycopg.connect(self.conninfo, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.OperationalError as exc:
            raise OnlineStoreUnavailableError(f"the online store is unavailable: {exc}".strip()) from exc


def _lakebase_conninfo(instance: str) -> str:
    """The host of a Lakebase instance, as the current Databricks identity sees it."""
    from databricks.sdk import WorkspaceClient

    w = WorkspaceClient()
    host = w.database.get_database_instance(name=instance).read_write_dns
    user = w.current_user.me().user_name
    return psycopg.conninfo.make_conninfo(host=host, port=5432, user=user)


def _lakebase_token(instance: str) -> str:
    """A fresh OAuth token (valid one hour) to log in to a Lakebase instance."""
    from databricks.sdk import WorkspaceClient

    credential = WorkspaceClient().database.generate_database_credential(
        request_id=str(uuid.uuid4()), instance_names=[instance])
    return credential.token


class OnlineStore:
    """The online store's tables in one schema: creation, publishing, the reads and writes of a request.

    Every method takes an open connection, so that a request's reads and writes share its transaction
    (:meth:`customer_lock` makes concurrent requests of one customer take turns).
    """

    def __init__(self, schema: str):
        self.schema = _identifier(schema, "the online store schema")

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    # ------------------------------------------------------------------------------------ tables
    def create_tables(self, conn: psycopg.Connection) -> None:
        """Create the schema and the tables when missing (idempotent)."""
        for statement in (
            "CREATE SCHEMA IF NOT EXISTS {s}",
            ("CREATE TABLE IF NOT EXISTS {s}.customer_transactions ("
            " customer_id bigint NOT NULL, tx_seconds bigint NOT NULL, transaction_id bigint NOT NULL,"
            " terminal_id bigint, tx_amount double precision, source text NOT NULL,"
            " PRIMARY KEY (customer_id, tx_seconds, transaction_id))"),
            ("CREATE TABLE IF NOT EXISTS {s}.terminal_transactions ("
            " terminal_id bigint NOT NULL, tx_seconds bigint NOT NULL, transaction_id bigint NOT NULL,"
            " tx_fraud integer, PRIMARY KEY (terminal_id, tx_seconds, transaction_id))"),
            ("CREATE TABLE IF NOT EXISTS {s}.scored_transactions ("
            " transaction_id bigint PRIMARY KEY, customer_id bigint NOT NULL, tx_seconds bigint NOT NULL,"
            " request jsonb NOT NULL, response jsonb NOT NULL, model_version text,"
            " scored_at timestamptz NOT NULL DEFAULT now())"),
            ("CREATE TABLE IF NOT EXISTS {s}.published_days ("
            " tx_date date PRIMARY KEY, n_transactions bigint NOT NULL, published_at timestamptz NOT NULL DEFAULT now())"),
        ):
            conn.execute(self._sql(statement))
        conn.commit()

    def drop(self, conn: psycopg.Connection) -> None:
        """Drop the schema and everything in it (a replay or a demo starting from nothing)."""
        conn.execute(self._sql("DROP SCHEMA IF EXISTS {s} CASCADE"))
        conn.commit()

    # ---------------------------------------------------------------------------------- publish
    def published_days(self, conn: psycopg.Connection) -> dict[dt.date, int]:
        """``{tx_date: n_transactions}`` of the silver days published so far."""
        rows = conn.execute(self._sql("SELECT tx_date, n_transactions FROM {s}.published_days")).fetchall()
        return {day: int(n) for day, n in rows}

    def replace_day(self, conn: psycopg.Connection, day: dt.date,
                    rows: Sequence[tuple[int, int, int, int | None, float | None, int | None]]) -> dict[str, int]:
        """Replace one silver day in the store, in one transaction (a crash leaves the day as it was).

        Args:
            conn: an open connection in autocommit mode (the day is its own transaction, committed here).
            day: the ``tx_date``.
            rows: that day's silver transactions ``(transaction_id, customer_id, tx_seconds,
                terminal_id, tx_amount, tx_fraud)``; every ``tx_seconds`` must fall on ``day``.

        Returns:
            ``{"customer_rows": n, "terminal_rows": n, "endpoint_rows_replaced": n}``: rows the endpoint
            had recorded for the same transactions are replaced by silver's.

        Raises:
            ValueError: a row's ``tx_seconds`` is not on ``day``, or ``conn`` is not in autocommit mode
                (inside an open transaction the day would only be a savepoint, committed by nobody).
        """
        _require_autocommit(conn)
        start = int(dt.datetime.combine(day, dt.time()).replace(tzinfo=dt.UTC).timestamp())
        end = start + 86_400
        bad = [r[0] for r in rows if not start <= r[2] < end]
        if bad:
            raise ValueError(f"transactions {bad[:5]} are not on {day}")
        with conn.transaction():
            conn.execute(self._sql("DELETE FROM {s}.customer_transactions WHERE source = 'silver'"
                                   " AND tx_seconds >= %s AND tx_seconds < %s"), (start, end))
            conn.execute(self._sql("DELETE FROM {s}.terminal_transactions WHERE tx_seconds >= %s AND tx_seconds < %s"),
                         (start, end))
            ids = [r[0] for r in rows]
            replaced = conn.execute(
                self._sql("DELETE FROM {s}.customer_transactions WHERE source = 'endpoint'"
                          " AND tx_seconds >= %s AND tx_seconds < %s AND transaction_id = ANY(%s)"),
                (start, end, ids)).rowcount
            with conn.cursor() as cur:
                with cur.copy(self._sql("COPY {s}.customer_transactions (customer_id, tx_seconds, transaction_id,"
                                        " terminal_id, tx_amount, source) FROM STDIN")) as copy:
                    for tx_id, customer, seconds, terminal, amount, _ in rows:
                        copy.write_row((customer, seconds, tx_id, terminal, amount, "silver"))
                with cur.copy(self._sql("COPY {s}.terminal_transactions (terminal_id, tx_seconds, transaction_id,"
                                        " tx_fraud) FROM STDIN")) as copy:
                    for tx_id, _, seconds, terminal, _, fraud in rows:
                        if terminal is not None:
                            copy.write_row((terminal, seconds, tx_id, fraud))
            fault_point("publish:inside_day")  # crash tests: the day's rows copied, its checkpoint not
            conn.execute(self._sql("INSERT INTO {s}.published_days (tx_date, n_transactions) VALUES (%s, %s)"
                                   " ON CONFLICT (tx_date) DO UPDATE SET n_transactions = EXCLUDED.n_transactions,"
                                   " published_at = now()"), (day, len(rows)))
        return {"customer_rows": len(rows), "terminal_rows": sum(r[3] is not None for r in rows),
                "endpoint_rows_replaced": int(replaced)}

    def prune(self, conn: psycopg.Connection, keep_from: dt.date) -> dict[str, int]:
        """Delete transactions and checkpoints of days before ``keep_from`` (one transaction, committed).

        Returns:
            ``{"customer_rows": n, "terminal_rows": n, "days": n}`` deleted.

        Raises:
            ValueError: ``conn`` is not in autocommit mode.
        """
        _require_autocommit(conn)
        before = int(dt.datetime.combine(keep_from, dt.time()).replace(tzinfo=dt.UTC).timestamp())
        with conn.transaction():
            customers = conn.execute(self._sql("DELETE FROM {s}.customer_transactions WHERE tx_seconds < %s"),
                                     (before,)).rowcount
            terminals = conn.execute(self._sql("DELETE FROM {s}.terminal_transactions WHERE tx_seconds < %s"),
                                     (before,)).rowcount
            days = conn.execute(self._sql("DELETE FROM {s}.published_days WHERE tx_date < %s"), (keep_from,)).rowcount
        return {"customer_rows": int(customers), "terminal_rows": int(terminals), "days": int(days)}

    # ---------------------------------------------------------------------------------- requests
    def customer_lock(self, conn: psycopg.Connection, customer_id: int) -> None:
        """Take the customer's transaction-scoped advisory lock: concurrent requests of one customer
        are scored one after the other, each seeing the ones before."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (int(customer_id),))

    def scored(self, conn: psycopg.Connection, transaction_id: int) -> tuple[dict, dict] | None:
        """``(request, response)`` stored for ``transaction_id``, or None when it was never scored."""
        row = conn.execute(self._sql("SELECT request, response FROM {s}.scored_transactions WHERE transaction_id = %s"),
                           (int(transaction_id),)).fetchone()
        return (row[0], row[1]) if row else None

    def customer_history(self, conn: psycopg.Connection, customer_id: int, tx_seconds: int, transaction_id: int,
                         reach_seconds: int) -> list[CustomerTransaction]:
        """The customer's transactions of ``(tx_seconds - reach_seconds, tx_seconds]`` that come before
        ``(tx_seconds, transaction_id)``, in that order."""
        rows = conn.execute(
            self._sql("SELECT tx_seconds, transaction_id, terminal_id, tx_amount FROM {s}.customer_transactions"
                      " WHERE customer_id = %s AND tx_seconds > %s AND (tx_seconds, transaction_id) < (%s, %s)"
                      " ORDER BY tx_seconds, transaction_id"),
            (int(customer_id), int(tx_seconds - reach_seconds), int(tx_seconds), int(transaction_id))).fetchall()
        return [CustomerTransaction(*row) for row in rows]

    def terminal_history(self, conn: psycopg.Connection, terminal_id: int, after_seconds: int,
                         until_seconds: int) -> list[TerminalTransaction]:
        """The terminal's labelled transactions of ``(after_seconds, until_seconds]``."""
        rows = conn.execute(
            self._sql("SELECT tx_seconds, tx_fraud FROM {s}.terminal_transactions"
                      " WHERE terminal_id = %s AND tx_seconds > %s AND tx_seconds <= %s"),
            (int(terminal_id), int(after_seconds), int(until_seconds))).fetchall()
        return [TerminalTransaction(*row) for row in rows]

    def record(self, conn: psycopg.Connection, customer_id: int, current: CustomerTransaction,
               request: dict, response: dict, model_version: str | None) -> None:
        """Record a scored transaction: in the customer's history (the next request sees it) and with
        its answer (a repeat gets it back). Part of the caller's transaction."""
        conn.execute(
            self._sql("INSERT INTO {s}.customer_transactions (customer_id, tx_seconds, transaction_id, terminal_id,"
                      " tx_amount, source) VALUES (%s, %s, %s, %s, %s, 'endpoint') ON CONFLICT DO NOTHING"),
            (int(customer_id), current.seconds, current.transaction_id, current.terminal_id, current.amount))
        conn.execute(
            self._sql("INSERT INTO {s}.scored_transactions (transaction_id, customer_id, tx_seconds, request,"
                      " response, model_version) VALUES (%s, %s, %s, %s, %s, %s)"),
            (current.transaction_id, int(customer_id), current.seconds, Jsonb(request), Jsonb(response), model_version))

    def counts(self, conn: psycopg.Connection) -> dict[str, int]:
        """Row counts of the four tables (for reports and tests)."""
        out = {}
        for table in ("customer_transactions", "terminal_transactions", "scored_transactions", "published_days"):
            out[table] = int(conn.execute(self._sql(f"SELECT count(*) FROM {{s}}.{table}")).fetchone()[0])
        return out


def _require_autocommit(conn: psycopg.Connection) -> None:
    if not conn.autocommit:
        raise ValueError("publishing needs a connection in autocommit mode: each day is committed as its own transaction")


@contextmanager
def connection(location: OnlineStoreLocation) -> Iterator[psycopg.Connection]:
    """An open connection to ``location`` (closed afterwards)."""
    conn = location.connect(autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def as_publish_rows(records: Iterable[tuple]) -> list[tuple]:
    """Normalise ``(transaction_id, customer_id, tx_seconds, terminal_id, tx_amount, tx_fraud)`` rows
    (numpy or pandas scalars, NaN amounts) to plain Python values for :meth:`OnlineStore.replace_day`."""
    def missing(value: Any) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    out = []
    for tx_id, customer, seconds, terminal, amount, fraud in records:
        amount = None if missing(amount) else float(amount)
        fraud = None if missing(fraud) else int(fraud)
        terminal = None if missing(terminal) else int(terminal)
        out.append((int(tx_id), int(customer), int(seconds), terminal, amount, fraud))
    return out
