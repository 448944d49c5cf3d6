"""Writing the demo systems into real databases: SQLite files or PostgreSQL.

DuckDB does the copying: it scans the Arrow tables in place and streams them into SQLite
(about two million rows a second) or into PostgreSQL over COPY, where row-by-row inserts through
a driver would take an hour at a million customers. The tables themselves are created with the
DDL in `schema.py` through each database's own dialect, so a SQLite file declares CHAR(8) and
NUMERIC(12,2) like the real systems do instead of DuckDB's own type names.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from sqlalchemy.engine import URL, make_url

from pipelines import duck
from pipelines.demo.schema import SYSTEMS, TABLES, index_ddl


def write_demo(systems: Mapping[str, Mapping[str, pa.Table]],
               urls: Mapping[str, str | URL]) -> dict[tuple[str, str], int]:
    """Write each system named in `urls` to its database; returns rows written per table.

    URLs are SQLAlchemy style: `sqlite:///relative.db`, `sqlite:////absolute.db` (parent folders
    are created) or `postgresql://user@host:port/dbname` (the database must exist; a password
    may come from the URL or the usual PG* environment variables). The demo's tables are dropped
    and created again, other tables are left alone, so writing twice gives the same result.
    """
    unknown = set(urls) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)}; expected some of {list(SYSTEMS)}")
    missing = set(urls) - set(systems)
    if missing:
        raise ValueError(f"no data generated for {sorted(missing)}")
    counts: dict[tuple[str, str], int] = {}
    for system, raw_url in urls.items():
        url = make_url(raw_url)
        backend = url.get_backend_name()
        if backend == "sqlite":
            written = _write_sqlite(system, systems[system], url)
        elif backend == "postgresql":
            written = _write_postgres(system, systems[system], url)
        else:
            raise ValueError(f"{system}: cannot write demo data to {backend!r} databases "
                             "(use sqlite:/// or postgresql://)")
        counts.update({(system, name): rows for name, rows in written.items()})
    return counts


def _write_sqlite(system: str, tables: Mapping[str, pa.Table], url: URL) -> dict[str, int]:
    if not url.database or url.database == ":memory:":
        raise ValueError(f"{system}: a SQLite URL needs a file path, got {url}")
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        for name in tables:
            db.execute(f"DROP TABLE IF EXISTS {name}")
            db.execute(TABLES[system][name].ddl())
    db.close()
    con = duck.connect("sqlite_scanner")
    try:
        con.execute(f"ATTACH {duck.sql_literal(str(path))} AS target (TYPE sqlite)")
        written = _insert(con, system, tables, "target")
    finally:
        con.close()
    with sqlite3.connect(path) as db:  # indexes after the rows: one sort instead of a tree grown row by row
        for name in tables:
            for statement in index_ddl(system, name):
                db.execute(statement)
    db.close()
    return written


def _write_postgres(system: str, tables: Mapping[str, pa.Table], url: URL) -> dict[str, int]:
    con = duck.connect("postgres_scanner")
    try:
        duck.attach_postgres(con, url, "target", read_only=False)
        statements = []
        for name in tables:
            statements.append(f"DROP TABLE IF EXISTS public.{name}")
            statements.append(TABLES[system][name].ddl(f"public.{name}"))
        con.execute(f"CALL postgres_execute('target', {duck.sql_literal(';'.join(statements))})")
        con.execute("CALL pg_clear_cache()")
        written = _insert(con, system, tables, "target.public")
        indexes = [i for name in tables for i in index_ddl(system, name, f"public.{name}")]
        if indexes:
            con.execute(f"CALL postgres_execute('target', {duck.sql_literal(';'.join(indexes))})")
        return written
    finally:
        con.close()


def _insert(con, system: str, tables: Mapping[str, pa.Table], target: str) -> dict[str, int]:
    written = {}
    for name, table in tables.items():
        columns = ", ".join(TABLES[system][name].column_names)
        con.register("demo_source", table)
        try:
            con.execute(f"INSERT INTO {target}.{name} ({columns}) "
                        f"SELECT {columns} FROM demo_source")
            written[name] = table.num_rows
        finally:
            con.unregister("demo_source")
    return written
