"""A local PostgreSQL server for the online feature store (Lakebase's local stand-in: a real server).

:class:`LocalPostgres` creates (``initdb``), starts, stops and checks one server in a data folder;
:func:`postgres_bin_dir` finds the binaries; :func:`temporary_postgres` is a throw-away server (the
tests' and ``make test``'s). ``$FRAUD_MLOPS_ONLINE_STORE`` (:data:`ONLINE_STORE_ENV`) holds the URL of
the server of the local online store, server-level (``postgresql://postgres@127.0.0.1:54329/postgres``):
the store chooses its own database on it (:meth:`LocalPostgres.ensure_database`).

Where the binaries come from (:func:`postgres_bin_dir`): ``$FRAUD_MLOPS_PG_BIN`` (a folder with
``initdb`` and ``pg_ctl``), else the ``pgserver`` wheel's (PostgreSQL 16, installed by ``make setup``),
else, only when ``pgserver`` is not installed, a system installation (``pg_config --bindir``,
``/usr/lib/postgresql/<version>/bin``, ``initdb`` on the ``PATH``).

The server is for one machine: it listens on ``127.0.0.1`` (and a unix socket in the data folder),
trusts local connections only, and is small (``shared_buffers`` 16MB, 50 connections). ``fsync``
stays on: a committed write survives a crash of the server or of the machine.

PostgreSQL refuses to run as root. When this process is root (CI, containers), ``initdb``,
``pg_ctl`` and the server run as the unprivileged system user :data:`SERVICE_USER` (created with
``useradd --system`` when missing), which owns the data folder; the folders above the data folder
and the binaries get the others' traverse bit (``o+x``, no read) where that user could not pass
them otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ONLINE_STORE_ENV",
    "PG_BIN_ENV",
    "SERVICE_USER",
    "LocalPostgres",
    "PortInUseError",
    "PostgresError",
    "PostgresNotFoundError",
    "free_port",
    "postgres_bin_dir",
    "server_url",
    "temporary_postgres",
]

#: The URL of the PostgreSQL server of the local online store (server-level; the store picks the database).
ONLINE_STORE_ENV = "FRAUD_MLOPS_ONLINE_STORE"
#: A folder with ``initdb`` and ``pg_ctl`` to use instead of the ``pgserver`` wheel's.
PG_BIN_ENV = "FRAUD_MLOPS_PG_BIN"
DEFAULT_PORT = 54329
DEFAULT_HOST = "127.0.0.1"
#: The unprivileged system user the server runs as when this process is root.
SERVICE_USER = "fraud-mlops-pg"
SUPERUSER = "postgres"
LOG_FILE = "postgres.log"
#: Written into the data folder at every start (port, socket, sizes) and included by postgresql.conf.
SETTINGS_FILE = "fraud_mlops.conf"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
# A unix socket path holds at most 107 bytes (sun_path); longer data folders get no socket.
_SOCKET_PATH_MAX = 100
_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")

logger = logging.getLogger(__name__)


class PostgresError(RuntimeError):
    """The local server could not be created, started, stopped or reached."""


class PostgresNotFoundError(PostgresError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``) were found."""


class PortInUseError(PostgresError):
    """The port is taken by another process than this data folder's server."""


def postgres_bin_dir() -> Path:
    """The folder of the PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``).

    In order: ``$FRAUD_MLOPS_PG_BIN``; the ``pgserver`` wheel's ``pginstall/bin`` (located without
    importing ``pgserver``, whose import has side effects); only when ``pgserver`` is not installed,
    a system installation (``pg_config --bindir``, the newest ``/usr/lib/postgresql/*/bin``, the
    folder of ``initdb`` on the ``PATH``).

    Raises:
        PostgresNotFoundError: ``$FRAUD_MLOPS_PG_BIN`` lacks the binaries, the ``pgserver``
            installation has none, or nothing was found (the message says what to install).
    """
    override = os.environ.get(PG_BIN_ENV)
    if override:
        path = Path(override).expanduser()
        if not _has_server_binaries(path):
            raise PostgresNotFoundError(
                f"${PG_BIN_ENV}={override} is not a folder with the PostgreSQL server binaries "
                f"({', '.join(_SERVER_BINARIES)})")
        return path.resolve()
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "pginstall" / "bin"
            if _has_server_binaries(candidate):
                return candidate.resolve()
        raise PostgresNotFoundError(
            f"the pgserver package ({', '.join(spec.submodule_search_locations)}) has no PostgreSQL binaries "
            f"in pginstall/bin: reinstall it (make setup), or set ${PG_BIN_ENV} to a folder with initdb and pg_ctl")
    for candidate in _system_bin_dirs():
        if _has_server_binaries(candidate):
            return candidate.resolve()
    raise PostgresNotFoundError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: run make setup (it installs the "
        "pgserver wheel, PostgreSQL 16, from uv.lock), or pip install pgserver, or install a PostgreSQL server "
        f"(apt-get install postgresql, brew install postgresql@16), or set ${PG_BIN_ENV} to the folder of initdb")


def _has_server_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) and (folder / name).is_file() for name in _SERVER_BINARIES)


def _system_bin_dirs() -> list[Path]:
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            found.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    found += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).resolve().parent)
    return found


def server_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, database: str = "postgres") -> str:
    """``postgresql://postgres@<host>:<port>/<database>`` (an IPv6 host in brackets, the name quoted)."""
    netloc = f"[{host}]" if ":" in host else host
    return f"postgresql://{SUPERUSER}@{netloc}:{port}/{quote(database, safe='')}"


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` now (the kernel's choice; another process may take it later)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int
    status: str


class LocalPostgres:
    """One PostgreSQL server in ``data_dir``, listening on ``host:port``.

    Args:
        data_dir: the data folder (created, with ``initdb``, on the first :meth:`start`); also holds
            the log (``postgres.log``) and the unix socket.
        port: the TCP port; 0 picks a free one at :meth:`start` (or adopts the running server's).
        host: the address to listen on (``127.0.0.1``; connections from elsewhere are refused).
    """

    def __init__(self, data_dir: Path | str, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST):
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be within 0..65535, got {port}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = int(port)
        self.host = host
        self._started_pid: int | None = None  # the postmaster this object started or found running

    def __repr__(self) -> str:
        return f"LocalPostgres({str(self.data_dir)!r}, port={self.port}, host={self.host!r})"

    @property
    def url(self) -> str:
        """The server's URL, ``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return server_url(self.host, self.port)

    def database_url(self, name: str) -> str:
        """The URL of the database ``name`` on this server (whether or not it exists)."""
        return server_url(self.host, self.port, name)

    @property
    def log_file(self) -> Path:
        """The server's log, inside the data folder."""
        return self.data_dir / LOG_FILE

    def is_running(self) -> bool:
        """Whether a server runs for this data folder (its ``postmaster.pid`` names a live postgres process)."""
        return self._postmaster() is not None

    def running_port(self) -> int | None:
        """The port the server of this data folder listens on, None when it is not running."""
        info = self._postmaster()
        return info.port if info else None

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the server (``initdb`` first when the data folder holds none) and wait until it accepts
        connections; returns :attr:`url`.

        Idempotent: when the server of this data folder already runs on this port, returns its URL
        (with ``port`` 0, adopts its port).

        Raises:
            PortInUseError: another process listens on the port.
            PostgresNotFoundError: no server binaries (see :func:`postgres_bin_dir`).
            PostgresError: the server of this data folder runs on another port; the data folder is
                neither empty nor a PostgreSQL one; ``initdb`` or the start failed (with the end of
                the log); the server did not accept connections within ``timeout`` seconds.
        """
        running = self._postmaster()
        if running is not None:
            if self.port == 0:
                self.port = running.port
            if running.port != self.port:
                raise PostgresError(
                    f"the server of {self.data_dir} already runs on port {running.port}, not {self.port}: "
                    f"use port {running.port}, or stop it first")
            self._wait_until_accepting(time.monotonic() + timeout)
            self._started_pid = running.pid
            return self.url
        bin_dir = postgres_bin_dir()
        account = _service_account()
        self._prepare(bin_dir, account)
        auto_port = self.port == 0
        for attempt in range(3 if auto_port else 1):
            if auto_port:
                self.port = free_port(self.host)
            else:
                self._check_port_free()
            self._write_settings(account)
            code, output = _run([str(bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                                 "-w", "-t", str(int(timeout)), "-s"], account, timeout=timeout + 30)
            if code == 0:
                break
            if auto_port and attempt < 2 and not self.is_running() and not _port_is_free(self.host, self.port):
                continue  # another process took the free port in between: pick another
            raise PostgresError(f"PostgreSQL did not start in {self.data_dir} on {self.host}:{self.port} "
                                f"(pg_ctl exit {code}): {output.strip()}\n{self._log_tail()}")
        self._wait_until_accepting(time.monotonic() + timeout)
        info = self._postmaster()
        self._started_pid = info.pid if info else None
        logger.info("PostgreSQL started: %s (data %s)", self.url, self.data_dir)
        return self.url

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the server (``pg_ctl stop -m fast``: open sessions are ended, committed data stays).
        Idempotent: nothing to do when it is not running. A server this object started whose data
        folder was deleted under it (no ``postmaster.pid`` left) is stopped by its process id.

        Raises:
            PostgresError: the server did not stop within ``timeout`` seconds.
        """
        if self._postmaster() is None:
            orphan, self._started_pid = self._started_pid, None
            if orphan is not None and _is_postgres_process(orphan):
                logger.warning("the data folder %s went away under its server: stopping process %d", self.data_dir,
                               orphan)
                os.kill(orphan, signal.SIGINT)  # what pg_ctl stop -m fast sends
                deadline = time.monotonic() + timeout
                while _is_postgres_process(orphan):
                    if time.monotonic() > deadline:
                        raise PostgresError(f"PostgreSQL process {orphan} did not stop within {timeout:.0f} s")
                    time.sleep(0.05)
            return
        code, output = _run([str(postgres_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast",
                             "-w", "-t", str(int(timeout)), "-s"], _service_account(), timeout=timeout + 30)
        if code != 0 and self._postmaster() is not None:
            raise PostgresError(f"PostgreSQL in {self.data_dir} did not stop (pg_ctl exit {code}): {output.strip()}")
        self._started_pid = None
        logger.info("PostgreSQL stopped (data %s)", self.data_dir)

    def ensure_database(self, name: str) -> str:
        """Create the database ``name`` unless it exists (safe against a concurrent creation);
        returns its URL.

        Raises:
            ValueError: an empty name, or one longer than PostgreSQL's 63 bytes.
            PostgresError: the server cannot be reached (not started?).
        """
        import psycopg
        from psycopg import errors, sql

        if not name or len(name.encode()) > 63:
            raise ValueError(f"a database name has 1 to 63 bytes, got {name!r}")
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.OperationalError as exc:
            raise PostgresError(f"cannot connect to {self.url} (is the server of {self.data_dir} started?): "
                                f"{exc}") from exc
        return self.database_url(name)

    # -- internals ---------------------------------------------------------------------------

    def _postmaster(self) -> _Postmaster | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not _is_postgres_process(pid):
            return None  # stale: the server crashed or the machine restarted
        return _Postmaster(pid, port, lines[7].strip() if len(lines) > 7 else "")

    def _check_port_free(self) -> None:
        with socket.socket(_family(self.host), socket.SOCK_STREAM) as sock:
            # As the server's own listening socket does: a port in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(
                        f"port {self.port} on {self.host} is in use by another process (not the server of "
                        f"{self.data_dir}): stop that process (ss -ltnp 'sport = :{self.port}' names it) or "
                        f"choose another port (--port N, or port 0 for a free one)") from exc
                raise PostgresError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc

    def _prepare(self, bin_dir: Path, account: pwd.struct_passwd | None) -> None:
        """Create the data folder with ``initdb`` when it holds no cluster, owned by ``account``."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if account is not None:
            _ensure_traversable(bin_dir, account)
            _ensure_traversable(self.data_dir.parent, account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, account)
        if account is not None and self.data_dir.stat().st_uid != account.pw_uid:
            _chown_tree(self.data_dir, account)  # e.g. created before by another user
        if account is not None or self.data_dir.stat().st_uid == os.geteuid():
            self.data_dir.chmod(0o700)  # the server refuses a data folder others can read

    def _initdb(self, bin_dir: Path, account: pwd.struct_passwd | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} is neither empty nor a PostgreSQL data folder (no PG_VERSION): "
                                f"remove it, or choose another data folder")
        # initdb into a sibling folder, renamed into place when complete: a killed initdb leaves no
        # half-made data folder behind (the leftovers of killed ones are removed here).
        for stale in self.data_dir.parent.glob(f".{self.data_dir.name}.initdb-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if not (pid.isdigit() and _pid_alive(int(pid))):
                shutil.rmtree(stale, ignore_errors=True)
        staging = self.data_dir.parent / f".{self.data_dir.name}.initdb-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        try:
            if account is not None:
                os.chown(staging, account.pw_uid, account.pw_gid)
            code, output = _run([str(bin_dir / "initdb"), "-D", str(staging), "-U", SUPERUSER, "-A", "trust",
                                 "-E", "UTF8", "--no-locale"], account, timeout=300)
            if code != 0:
                raise PostgresError(f"initdb failed for {self.data_dir} (exit {code}): {output.strip()}")
            with (staging / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write(f"\n# fraud_mlops.online.postgres: port, socket and sizes, rewritten at each start\n"
                           f"include_if_exists = '{SETTINGS_FILE}'\n")
            _write_owned(staging / "pg_hba.conf", _PG_HBA, account)
            try:
                os.replace(staging, self.data_dir)  # replaces an empty data folder
            except OSError:
                if not (self.data_dir / "PG_VERSION").exists():
                    raise
                return  # a concurrent start made it first: use that one
            fd = os.open(self.data_dir.parent, os.O_RDONLY)
            try:
                os.fsync(fd)  # the rename itself on disk (initdb synced the files)
            finally:
                os.close(fd)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("initdb: %s", self.data_dir)

    def _write_settings(self, account: pwd.struct_passwd | None) -> None:
        socket_path = self.data_dir / f".s.PGSQL.{self.port}"
        socket_dir = str(self.data_dir) if len(str(socket_path).encode()) <= _SOCKET_PATH_MAX else ""
        if not socket_dir:
            logger.info("%s is too long for a unix socket path: TCP only", socket_path)
        _write_owned(self.data_dir / SETTINGS_FILE, _SETTINGS.format(
            host=_conf_quote(self.host), port=self.port, socket_dir=_conf_quote(socket_dir)), account)

    def _wait_until_accepting(self, deadline: float) -> None:
        import psycopg

        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if not self.is_running():
                    raise PostgresError(f"PostgreSQL in {self.data_dir} stopped while starting: {exc}\n"
                                        f"{self._log_tail()}") from exc
                if time.monotonic() > deadline:
                    raise PostgresError(f"PostgreSQL at {self.url} does not accept connections: {exc}\n"
                                        f"{self._log_tail()}") from exc
            time.sleep(0.1)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no log at {self.log_file})"
        return f"last lines of {self.log_file}:\n" + "\n".join(tail)


_PG_HBA = """\
# fraud_mlops.online.postgres: a local server; trust local connections only, refuse all others.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
host    all       all   ::1/128        trust
"""

_SETTINGS = """\
# Written by fraud_mlops.online.postgres at each start (included by postgresql.conf).
listen_addresses = {host}
port = {port}
unix_socket_directories = {socket_dir}
# A small local server.
max_connections = 50
shared_buffers = 16MB
max_wal_size = 256MB
min_wal_size = 32MB
huge_pages = off
timezone = 'UTC'
log_timezone = 'UTC'
# Durability (part of crash safety): a committed write is on disk.
fsync = on
synchronous_commit = on
full_page_writes = on
"""


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _write_owned(path: Path, text: str, account: pwd.struct_passwd | None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    if account is not None:
        os.chown(tmp, account.pw_uid, account.pw_gid)
    os.replace(tmp, path)


@contextlib.contextmanager
def temporary_postgres(port: int = 0, host: str = DEFAULT_HOST) -> Iterator[LocalPostgres]:
    """A started server in a fresh temporary data folder (port 0: a free port); stopped and removed on exit.

    Raises:
        PostgresError: as :meth:`LocalPostgres.start`.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="fraud-mlops-pg-"))
    server = LocalPostgres(data_dir, port=port, host=host)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


# -- processes and the unprivileged user -----------------------------------------------------------


def _run(cmd: list[str], account: pwd.struct_passwd | None, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` (as ``account`` when given); its exit status and output. The output goes through a
    file, not a pipe: a server started by ``pg_ctl`` could otherwise hold the pipe open."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    as_user: dict = {}
    if account is not None:
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = "/"
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  cwd="/", timeout=timeout, check=False, **as_user)
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{Path(cmd[0]).name} did not finish within {timeout:.0f} s") from exc
        out.seek(0)
        return proc.returncode, out.read()


def _service_account() -> pwd.struct_passwd | None:
    """None when this process is not root; else :data:`SERVICE_USER` (created when missing)."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SERVICE_USER)
    detail = ""
    try:
        result = subprocess.run(
            [shutil.which("useradd") or "/usr/sbin/useradd", "--system", "--no-create-home", "--user-group",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
             "--comment", "fraud-mlops local PostgreSQL", SERVICE_USER],
            capture_output=True, text=True, timeout=60, check=False)
        detail = result.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        detail = str(exc)
    try:
        return pwd.getpwnam(SERVICE_USER)  # created now, or by a concurrent process
    except KeyError:
        raise PostgresError(
            f"PostgreSQL does not run as root, and the user {SERVICE_USER} to run it as could not be created "
            f"({detail}): create it (useradd --system --no-create-home {SERVICE_USER}), or run as another "
            "user than root") from None


def _ensure_traversable(folder: Path, account: pwd.struct_passwd) -> None:
    """Give ``folder`` and the folders above it the others' traverse bit where ``account`` lacks it."""
    for path in [folder, *folder.parents]:
        st = path.stat()
        if st.st_uid == account.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == account.pw_gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            logger.info("chmod o+x %s (so that %s can reach the PostgreSQL files)", path, account.pw_name)
            path.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    os.chown(root, account.pw_uid, account.pw_gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), account.pw_uid, account.pw_gid, follow_symlinks=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres_process(pid: int) -> bool:
    """Whether ``pid`` is alive and, where ``/proc`` tells, a postgres process (a stale
    ``postmaster.pid`` may name a process id that another program has now)."""
    if pid <= 0 or not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): the live process is taken for the server
    return b"postgres" in cmdline.split(b"\0", 1)[0]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
