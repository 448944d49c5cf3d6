"""A throwaway PostgreSQL server for the test session.

Database tests run against a real PostgreSQL from the distribution's packages (``make postgres``
installs it on Debian), never a mock. ``start_postgres()`` runs ``initdb`` into a temporary folder,
starts the server on its own free port and socket folder (trust auth, 127.0.0.1 only, durability
switched off for speed) and, on leaving the ``with`` block, stops it and deletes the folder.

PostgreSQL refuses to run as root, so when the tests run as root (as in CI) the server runs as the
``postgres`` system user through ``runuser``.

Only the standard library and psycopg are imported here: conftest.py imports this module.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

BINDIR_GLOB = "/usr/lib/postgresql/*/bin"
BINDIR_ENV = "KAM_TEST_PG_BINDIR"  # optional override, e.g. a Homebrew or EDB install
SERVER_USER = "postgres"  # the OS user that runs the server when the tests run as root
START_TIMEOUT_S = 60

# Test-only settings: nothing here needs to survive a crash, so trade durability for speed.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'1GB'",
    "checkpoint_timeout": "'1h'",
    "max_parallel_workers_per_gather": "0",  # 2-core CI machines; also keeps /dev/shm use small
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",
}

NOT_INSTALLED = (
    "PostgreSQL is not installed: no initdb and pg_ctl under {where}. The database tests need a "
    "real PostgreSQL server: run `make postgres` (installs Debian's `postgresql` package), "
    "or point ${env} at the bin folder of another PostgreSQL install."
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed or the throwaway server could not be started."""


@dataclass(frozen=True)
class PostgresServer:
    """Where the running test server listens, and a few admin helpers.

    ``url()`` gives SQLAlchemy URLs, ``libpq()`` gives libpq key/value DSNs (psycopg, DuckDB).
    """

    host: str
    port: int
    user: str = "postgres"
    version: int = 0  # server_version_num, e.g. 150018
    data_dir: Path = field(default=Path(), compare=False)

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of database ``dbname`` (no password: trust auth)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def libpq(self, dbname: str = "postgres") -> str:
        """libpq key/value connection string of database ``dbname``."""
        return _libpq(self.host, self.port, self.user, dbname)

    def create_database(self, name: str) -> str:
        """(Re)create an empty database ``name`` (dropped first if it exists); return its URL."""
        self.drop_database(name)
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing any open connections to it."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.libpq("postgres"), autocommit=True, connect_timeout=10)


def _libpq(host: str, port: int, user: str = "postgres", dbname: str = "postgres") -> str:
    return f"host={host} port={port} user={user} dbname={dbname}"


def find_bindir() -> Path:
    """The newest PostgreSQL ``bin`` folder holding ``initdb`` and ``pg_ctl``."""
    override = os.environ.get(BINDIR_ENV)
    candidates = [Path(override)] if override else Path("/").glob(BINDIR_GLOB.lstrip("/"))
    usable = [d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    if not usable:
        where = f"${BINDIR_ENV}={override}" if override else BINDIR_GLOB
        raise PostgresUnavailable(NOT_INSTALLED.format(where=where, env=BINDIR_ENV))
    return max(usable, key=_major_version)


def _major_version(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); anything unparsable sorts first
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (0,)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_postgres(bindir: Path | None = None, host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """Run a fresh PostgreSQL server for the duration of the ``with`` block.

    The server and its temporary folder are removed on exit, also when the block raises.
    """
    bindir = bindir or find_bindir()
    as_user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="kam-pg-"))
    data, sockets, log = root / "data", root / "socket", root / "server.log"
    try:
        sockets.mkdir()
        if as_user:
            for path in (root, sockets):
                shutil.chown(path, user=as_user.pw_uid, group=as_user.pw_gid)
        _run(
            as_user,
            root,
            bindir / "initdb",
            "--pgdata", data, "--username", "postgres", "--auth", "trust",
            "--encoding", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        for attempt in range(3):  # the free port can be taken between picking and binding it
            port = free_port(host)
            _write_settings(data / "postgresql.conf", port, sockets)
            try:
                _run(
                    as_user,
                    root,
                    bindir / "pg_ctl",
                    "start", "--pgdata", data, "--log", log, "--wait",
                    "--timeout", str(START_TIMEOUT_S),
                )  # fmt: skip
                break
            except PostgresUnavailable:
                if attempt == 2 or "already in use" not in _tail(log):
                    raise PostgresUnavailable(f"PostgreSQL did not start:\n{_tail(log)}") from None
        with psycopg.connect(_libpq(host, port), autocommit=True, connect_timeout=10) as conn:
            version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        yield PostgresServer(host=host, port=port, version=version, data_dir=data)
    finally:
        try:
            if (data / "postmaster.pid").exists():  # also after a start that timed out
                _stop(as_user, root, bindir, data)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The account to run the server as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"Running as root but there is no {SERVER_USER!r} system user to run PostgreSQL "
            "(PostgreSQL refuses to run as root). Run `make postgres`, which installs it."
        ) from None


def _run(as_user: pwd.struct_passwd | None, cwd: Path, *cmd: object) -> None:
    argv = [str(c) for c in cmd]
    if as_user:
        argv = ["runuser", "-u", as_user.pw_name, "--", *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # ignore the user's PG*
    proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _write_settings(conf: Path, port: int, sockets: Path) -> None:
    settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{sockets}'"}
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
    # initdb's postgresql.conf is kept; later lines win, so rewrite only our block.
    text = conf.read_text().split("# --- kam tests ---\n")[0]
    conf.write_text(f"{text}# --- kam tests ---\n{lines}")


def _stop(as_user: pwd.struct_passwd | None, root: Path, bindir: Path, data: Path) -> None:
    """Stop the server; the data is thrown away, so the immediate mode is fine."""
    try:
        _run(
            as_user,
            root,
            bindir / "pg_ctl",
            "stop", "--pgdata", data, "--mode", "immediate", "--wait", "--timeout", "30",
        )  # fmt: skip
    except PostgresUnavailable:
        _kill_postmaster(data)


def _kill_postmaster(data: Path) -> None:
    """Last resort when pg_ctl stop fails: SIGKILL the postmaster named in postmaster.pid."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, 9)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def index_scans(con, index: str, more_than: int | None = None) -> int:
    """idx_scan of a PostgreSQL index (`con`: a psycopg connection in autocommit); with
    `more_than`, waits up to 5 s for the other sessions' statistics, which each server process
    reports at most once a second."""
    import time

    for _ in range(50):
        con.execute("SELECT pg_stat_clear_snapshot()")
        (scans,) = con.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s",
                               [index]).fetchone()
        if more_than is None or scans > more_than:
            return scans
        time.sleep(0.1)
    return scans
