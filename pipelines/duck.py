"""DuckDB connections with the SQLite and PostgreSQL scanners (and the Excel writer) loaded from
their PyPI wheels.

DuckDB would normally download extensions on first use; production hosts and CI often have no
route to that server, so we ship the extensions as pinned Python packages and load them by file
path with auto-install switched off. One place does this so every caller gets the same setup.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:  # SQLAlchemy takes 0.35 s to import: not for every `kam` start
    from sqlalchemy.engine import URL

_EXTENSION_PACKAGES = {
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "excel": "duckdb_extension_excel",
}


@cache
def extension_path(name: str) -> Path:
    """Path of the bundled `<name>.duckdb_extension` matching the installed DuckDB version."""
    package = importlib.import_module(_EXTENSION_PACKAGES[name])
    root = Path(package.__path__[0]) / "extensions" / f"v{duckdb.__version__}"
    path = root / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"DuckDB extension {name!r} for DuckDB {duckdb.__version__} not found at {path}; "
            f"install {package.__name__.replace('_', '-')}=={duckdb.__version__}"
        )
    return path


def connect(*extensions: str, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the named scanners loaded (e.g. "sqlite_scanner")."""
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    for name in extensions:
        con.execute(f"LOAD '{extension_path(name)}'")
    return con


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier: source and canonical column names may hold any character."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A SQL string literal, for statements that take no bound parameters (ATTACH)."""
    return "'" + value.replace("'", "''") + "'"


def libpq_dsn(url: URL) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string (what DuckDB's ATTACH takes)."""
    parts = {
        "host": url.host, "port": url.port, "dbname": url.database,
        "user": url.username, "password": url.password,
    }
    parts.update({k: v for k, v in url.query.items() if isinstance(v, str)})

    def quote(value) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={quote(v)}" for k, v in parts.items() if v not in (None, ""))


def attach_postgres(con: duckdb.DuckDBPyConnection, url: URL, alias: str, *, read_only: bool) -> None:
    mode = ", READ_ONLY" if read_only else ""
    con.execute(f"ATTACH {sql_literal(libpq_dsn(url))} AS {alias} (TYPE postgres{mode})")
