"""DuckDB connections with the SQLite and PostgreSQL scanners loaded from their PyPI wheels.

DuckDB would normally download extensions on first use; production hosts and CI often have no
route to that server, so we ship the extensions as pinned Python packages and load them by file
path with auto-install switched off. One place does this so every caller gets the same setup.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

import duckdb

_EXTENSION_PACKAGES = {
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
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
