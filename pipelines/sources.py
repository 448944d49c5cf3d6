"""Source connections: errors worded for people, URLs safe for logs, and the generic reader.

Any database SQLAlchemy speaks is read here as Arrow batches (and any hand-written `query:`); the
SQLite and PostgreSQL tables take DuckDB's faster bulk path in `pipelines/source_scan.py`. Either
way callers never hold a whole table in memory on our account.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL

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
                batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatchReader]:
    """Stream one source table (or query result) as Arrow batches through SQLAlchemy.

    This is the path for any database and for `query:` mappings; SQLite and PostgreSQL tables are
    read faster by DuckDB's scanners (`pipelines/source_scan.py`).
    """
    with _sqlalchemy(url, table, query, batch_rows) as reader:
        yield reader


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
