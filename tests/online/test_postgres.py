"""The local PostgreSQL server of the online store (fraud_mlops.online.postgres): a real server in
tmp_path on a free port, started, reached with psycopg, restarted and stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import psycopg
import pytest

from fraud_mlops.cli import main
from fraud_mlops.online.postgres import (
    ONLINE_STORE_ENV,
    PG_BIN_ENV,
    LocalPostgres,
    PortInUseError,
    PostgresError,
    PostgresNotFoundError,
    free_port,
    postgres_bin_dir,
)


@pytest.fixture()
def servers():
    """Make LocalPostgres instances; each is stopped at the end of the test, whatever happened."""
    made: list[LocalPostgres] = []

    def make(data_dir: Path, port: int | None = None) -> LocalPostgres:
        server = LocalPostgres(data_dir, port=free_port() if port is None else port)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def _wait_stopped(server: LocalPostgres, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.is_running():
        assert time.monotonic() < deadline, "the server did not go away"
        time.sleep(0.05)


def test_start_connect_create_database_and_stop(servers, tmp_path):
    server = servers(tmp_path / "pg")
    url = server.start()
    assert url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres" and server.is_running()
    assert (server.data_dir / "PG_VERSION").exists() and server.log_file.exists()
    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'max_connections', 'listen_addresses', 'unix_socket_directories', 'synchronous_commit')"
        ).fetchall())
    assert settings == {"fsync": "on", "synchronous_commit": "on", "max_connections": "50",
                        "listen_addresses": "127.0.0.1", "unix_socket_directories": str(server.data_dir)}
    # The unix socket in the data folder works too.
    with psycopg.connect(host=str(server.data_dir), port=server.port, user="postgres", dbname="postgres") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    db_url = server.ensure_database("online_test")
    assert db_url == f"postgresql://postgres@127.0.0.1:{server.port}/online_test"
    assert server.ensure_database("online_test") == db_url  # exists already: nothing to do
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("online_test",)

    pid = server._postmaster().pid
    assert server.start() == url and server._postmaster().pid == pid  # idempotent: the same server
    assert LocalPostgres(server.data_dir, port=0).start() == url  # port 0 adopts the running server's

    server.stop()
    assert not server.is_running() and not (server.data_dir / "postmaster.pid").exists()
    server.stop()  # idempotent
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    with pytest.raises(PostgresError, match="is the server"):
        server.ensure_database("other")


def test_committed_rows_survive_a_restart_and_a_crash(servers, tmp_path):
    server = servers(tmp_path / "pg")
    db_url = server.start() and server.ensure_database("durable")
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE features (customer_id bigint PRIMARY KEY, amount double precision)")
        conn.execute("INSERT INTO features VALUES (1, 10.5), (2, 20.0)")
    server.stop()
    assert not server.is_running()
    server.start()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT * FROM features ORDER BY 1").fetchall() == [(1, 10.5), (2, 20.0)]
        conn.execute("INSERT INTO features VALUES (3, 30.0)")  # committed on leaving the block
    # An immediate shutdown (SIGQUIT: no checkpoint, as a crash): the restart recovers from the WAL.
    os.kill(server._postmaster().pid, signal.SIGQUIT)
    _wait_stopped(server)
    server.start()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM features").fetchone() == (3,)
    assert "database system was not properly shut down" in server.log_file.read_text()


def test_an_occupied_port_is_a_clear_error(servers, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        server = servers(tmp_path / "pg", port=port)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use by another process"):
            server.start()
        assert not server.is_running()


def test_a_running_server_on_another_port_is_not_restarted(servers, tmp_path):
    server = servers(tmp_path / "pg")
    server.start()
    with pytest.raises(PostgresError, match=f"already runs on port {server.port}"):
        LocalPostgres(server.data_dir, port=free_port()).start()


def test_a_server_whose_folder_was_deleted_under_it_is_still_stopped(servers, tmp_path):
    server = servers(tmp_path / "pg")
    server.start()
    pid = server._postmaster().pid
    shutil.rmtree(server.data_dir)  # what an unaware clean-up does
    assert not server.is_running()
    server.stop()
    assert not Path(f"/proc/{pid}/cmdline").exists() or b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_a_foreign_folder_is_not_initialised(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("mine")
    with pytest.raises(PostgresError, match="neither empty nor a PostgreSQL data folder"):
        LocalPostgres(tmp_path / "pg", port=free_port()).start()
    assert [p.name for p in (tmp_path / "pg").iterdir()] == ["notes.txt"]


def test_bin_dir_is_the_pgserver_wheels_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv(PG_BIN_ENV, raising=False)
    default = postgres_bin_dir()
    assert (default / "initdb").exists() and (default / "pg_ctl").exists()
    assert default.parts[-3:] == ("pgserver", "pginstall", "bin")
    monkeypatch.setenv(PG_BIN_ENV, str(default))
    assert postgres_bin_dir() == default
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    with pytest.raises(PostgresNotFoundError, match=PG_BIN_ENV):
        postgres_bin_dir()


def test_cli_start_status_stop(tmp_path, capsys):
    data_dir, port = tmp_path / "pg", str(free_port())
    try:
        assert main(["online-store", "start", "--data-dir", str(data_dir), "--port", port]) == 0
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert capsys.readouterr().out.splitlines() == [url, f"export {ONLINE_STORE_ENV}={url}"]
        assert main(["online-store", "start", "--data-dir", str(data_dir), "--port", port]) == 0
        assert "already running" in capsys.readouterr().err
        assert main(["online-store", "status", "--data-dir", str(data_dir)]) == 0
        assert f"running at {url}" in capsys.readouterr().out
    finally:
        assert main(["online-store", "stop", "--data-dir", str(data_dir)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["online-store", "status", "--data-dir", str(data_dir)]) == 1
    assert "not running" in capsys.readouterr().out


def test_cli_run_starts_and_stops_a_throwaway_server_and_keeps_the_exit_status(capsys):
    check = ("import os, sys, psycopg; url = os.environ['FRAUD_MLOPS_ONLINE_STORE']; "
             "psycopg.connect(url).close(); print('child', url); sys.exit(3)")
    assert main(["online-store", "run", "--", sys.executable, "-c", check]) == 3
    out = capsys.readouterr().out
    data_dir = Path(out.split("(data ", 1)[1].split(")", 1)[0])
    assert not data_dir.exists()  # stopped and removed
    assert main(["online-store", "run", "--", sys.executable, "-c", "pass"]) == 0
    assert main(["online-store", "run"]) == 2
