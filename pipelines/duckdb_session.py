"""A DuckDB session over the warehouse: Delta tables exposed as views, results written back.

Transforms are plain SQL files; this module is the edge that feeds them tables and takes their
results, so the SQL never touches paths, and the warehouse module stays the only writer.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines import duck
from pipelines.duck import sql_identifier as _q
from pipelines.warehouse import Warehouse

TRANSFORMS = Path(__file__).resolve().parent.parent / "transforms"


def sql_file(layer: str, name: str) -> str | None:
    path = TRANSFORMS / layer / f"{name}.sql"
    return path.read_text() if path.exists() else None


def _native_union(groups: list[tuple[dict[str, str | None], list[str]]]) -> str:
    """The files of each partition read by DuckDB, partition values added as strings (as the
    Delta log and the Arrow dataset give them)."""
    parts = []
    for values, files in groups:
        constants = "".join(
            f", CAST({duck.sql_literal(v) if v is not None else 'NULL'} AS VARCHAR) AS {_q(k)}"
            for k, v in values.items()
        )
        listed = ", ".join(duck.sql_literal(f) for f in files)
        parts.append(f"SELECT *{constants} FROM read_parquet([{listed}], union_by_name = true, "
                     "hive_partitioning = false)")  # the values come from the log, not the paths
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def _in_order(union: str, present: set[str], expected: list[tuple[str, str]]) -> str:
    """The union with the dataset's columns in its order; a column that only newer files have
    (added by schema drift, none of the chosen partitions holds it) is NULL, as the dataset gives it."""
    columns = ", ".join(_q(c) if c in present else f"CAST(NULL AS {t}) AS {_q(c)}" for c, t in expected)
    return f"(SELECT {columns} FROM ({union}))"


class Session:
    def __init__(self, warehouse: Warehouse, as_of: date, memory_limit: str | None = None):
        self.warehouse = warehouse
        self.as_of = as_of
        spill = warehouse.root / ".duckdb_tmp"
        spill.mkdir(parents=True, exist_ok=True)
        self.con = duck.connect()
        self.con.execute(f"SET temp_directory = '{spill}'")
        if memory_limit:  # past it DuckDB spills to temp_directory instead of growing
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute(f"SET VARIABLE as_of = DATE '{as_of.isoformat()}'")

    def expose(self, table: str, alias: str | None = None, row_filter: str | None = None, *,
               partitions: dict[str, set[str]] | None = None, version: int | None = None) -> None:
        """Make a warehouse table queryable as `alias` (a lazy scan; filters push down).

        The table is read by DuckDB's own Parquet reader from the Delta version's file list: 3×
        faster than scanning the Arrow dataset (30M staged order lines: 2.3 s against 7.5 s, same
        rows and hashes). A partitioned table (raw) is read one partition at a time, its values
        added as constants; `partitions` (column: values) keeps only those partitions' files, so
        the others are never opened (a year of nightly raw batches stays out of a night's scan);
        `version` reads an earlier version of the table.
        The native read is used only when it yields the dataset's exact columns and types; the
        Arrow dataset, the fallback, is filtered to the same partitions."""
        name = alias or table
        where = f" WHERE {row_filter}" if row_filter else ""
        dataset, groups = self.warehouse.scan(table, version)
        if partitions:
            groups = [(v, f) for v, f in groups if all(v.get(c) in ok for c, ok in partitions.items())]
            kept = " AND ".join(f"{_q(c)} IN ({', '.join(duck.sql_literal(x) for x in sorted(ok))})"
                                for c, ok in partitions.items())
            where = f" WHERE {kept}" + (f" AND ({row_filter})" if row_filter else "")
        self.con.register(f"__ds_{name}", dataset)
        source = f'"__ds_{name}"'
        if groups:
            expected = self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            union = _native_union(groups)
            present = {row[0] for row in self.con.execute(f"DESCRIBE SELECT * FROM ({union})").fetchall()}
            native = _in_order(union, present, [(row[0], row[1]) for row in expected])
            if self.con.execute(f"DESCRIBE SELECT * FROM {native}").fetchall() == expected:
                source = native
        self.con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {source}{where}')

    def materialize(self, name: str, sql: str) -> int:
        self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
        return self.count(name)

    def count(self, name: str) -> int:
        return self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]

    def reader(self, sql: str) -> pa.RecordBatchReader:
        return self.con.execute(sql).to_arrow_reader(256_000)

    def write(self, table: str, sql: str, metadata: dict[str, str] | None = None) -> int:
        """Write a query's result to the warehouse as one commit; returns the Delta version."""
        return self.warehouse.write_query(table, self.con, sql, metadata=metadata)

    def append(self, table: str, sql: str) -> int:
        """Add a query's rows to a warehouse table in one commit; returns the Delta version."""
        return self.warehouse.write_query(table, self.con, sql, mode="append")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        return self.con
