"""Reading source systems into Arrow record batches.

SQLite and PostgreSQL tables are read through DuckDB's scanners, which stream typed Arrow batches
several times faster than going through Python rows; any other database (and any hand-written
`query:` for SQLite) goes through SQLAlchemy, which speaks every dialect. Callers get the same
`RecordBatchReader` either way and never hold a whole table in memory on our account.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL

from pipelines import duck

BATCH_ROWS = 256_000


class SourceUnavailable(RuntimeError):
    """The source database cannot be reached or opened; nothing was written."""


def safe_url(url: URL) -> str:
    """The URL as it may appear in logs and messages: never with its password."""
    return url.render_as_string(hide_password=True)


def backend(url: URL) -> str:
    return url.get_backend_name()


@contextmanager
def read_source(url: URL, *, table: str | None = None, query: str | None = None,
                batch_rows: int = BATCH_ROWS, as_text: bool = False) -> Iterator[pa.RecordBatchReader]:
    """Stream one source table (or query result) as Arrow batches.

    `as_text` reads every SQLite column as text: SQLite lets a column hold values of any type,
    and the typed read fails on the first that does not fit its declared type.
    """
    kind = backend(url)
    if kind == "sqlite" and table:
        with _duckdb_sqlite(url, table, batch_rows, all_varchar=as_text) as reader:
            yield reader
    elif kind == "postgresql":
        with _duckdb_postgres(url, table, query, batch_rows) as reader:
            yield reader
    else:
        with _sqlalchemy(url, table, query, batch_rows) as reader:
            yield reader


@contextmanager
def _duckdb_sqlite(url: URL, table: str, batch_rows: int,
                   all_varchar: bool = False) -> Iterator[pa.RecordBatchReader]:
    if not url.database or not Path(url.database).exists():
        raise SourceUnavailable(f"SQLite database {url.database} does not exist")
    con = duck.connect("sqlite_scanner")
    try:
        if all_varchar:
            con.execute("SET sqlite_all_varchar = true")
        con.execute(f"ATTACH {duck.sql_literal(url.database)} AS src (TYPE sqlite, READ_ONLY)")
        sql = f'SELECT * FROM src."{table}"'
        try:
            reader = con.execute(sql).to_arrow_reader(batch_rows)
        except duckdb.CatalogException as exc:
            raise SourceUnavailable(f"table {table!r} not found in {url.database}: {exc}") from None
        yield reader
    finally:
        con.close()


@contextmanager
def _duckdb_postgres(url: URL, table: str | None, query: str | None,
                     batch_rows: int) -> Iterator[pa.RecordBatchReader]:
    con = duck.connect("postgres_scanner")
    try:
        try:
            duck.attach_postgres(con, url, "src", read_only=True)
        except duckdb.Error as exc:
            raise SourceUnavailable(f"cannot connect to {safe_url(url)}: {exc}") from None
        if table:
            sql = f'SELECT * FROM src.public."{table}"'
        else:
            con.execute("SET VARIABLE kam_source_query = $q", {"q": query})
            sql = "SELECT * FROM postgres_query('src', getvariable('kam_source_query'))"
        try:
            reader = con.execute(sql).to_arrow_reader(batch_rows)
        except duckdb.CatalogException as exc:
            raise SourceUnavailable(f"table {table!r} not found in {safe_url(url)}: {exc}") from None
        yield reader
    finally:
        con.close()


@contextmanager
def _sqlalchemy(url: URL, table: str | None, query: str | None,
                batch_rows: int) -> Iterator[pa.RecordBatchReader]:
    engine = sa.create_engine(url)
    try:
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(f"cannot connect to {safe_url(url)}: {exc.orig}") from None
        with conn:
            stmt = sa.select(sa.text("*")).select_from(sa.table(table)) if table else sa.text(query)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(stmt)
            names = list(result.keys())

            gen = (_to_batch(rows, names) for rows in result.partitions(batch_rows))
            first = next(gen, None)
            if first is None:
                schema = pa.schema([(n, pa.string()) for n in names])
                yield pa.RecordBatchReader.from_batches(schema, [])
                return
            # A column that is all-null in the first batch has no type yet: read it as text.
            schema = pa.schema(
                [pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                 for f in first.schema]
            )

            def conformed() -> Iterator[pa.RecordBatch]:
                for b in itertools.chain([first], gen):
                    yield pa.RecordBatch.from_arrays(
                        [_cast(col, f.type) for col, f in zip(b.columns, schema, strict=True)],
                        schema=schema,
                    )

            yield pa.RecordBatchReader.from_batches(schema, conformed())
    finally:
        engine.dispose()


def _to_batch(rows, names: list[str]) -> pa.RecordBatch:
    arrays = []
    for values in zip(*rows, strict=True):
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _cast(column: pa.Array, target: pa.DataType) -> pa.Array:
    if column.type == target:
        return column
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()]).cast(target)


def is_type_mismatch(exc: BaseException) -> bool:
    """Did a typed SQLite read fail on a value of another type than its column's?"""
    return isinstance(exc, duckdb.Error) and "mismatch" in str(exc).lower()
