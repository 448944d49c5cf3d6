"""Session.expose reads Delta tables with DuckDB's Parquet reader from the version's file list
(partitioned ones a partition at a time); a query sees exactly the table's current version."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from pipelines.duckdb_session import Session
from pipelines.warehouse import Warehouse


def _plan(session: Session, view: str) -> str:
    return " ".join(row[1] for row in session.con.execute(f'EXPLAIN SELECT * FROM "{view}"').fetchall())


def _rows(session: Session, sql: str) -> list[tuple]:
    return session.con.execute(sql).fetchall()


def _version_one() -> pa.Table:
    return pa.table({
        "order_id": pa.array(["o1", "o2", None], pa.string()),
        "amount": pa.array([Decimal("10.25"), None, Decimal("-3.10")], pa.decimal128(18, 2)),
        "order_date": pa.array([date(2026, 1, 2), date(2026, 2, 3), None], pa.date32()),
        "updated_at": pa.array([datetime(2026, 1, 2, 3, 4, tzinfo=UTC), None,
                                datetime(2026, 5, 6, 7, 8, tzinfo=UTC)], pa.timestamp("us", "UTC")),
        "is_cancelled": pa.array([False, True, None], pa.bool_()),
    })


def _native_equals_dataset(session: Session, warehouse: Warehouse, table: str) -> pa.Table:
    """The exposed table is read by DuckDB's Parquet reader and gives the dataset's columns,
    types and rows exactly; returns its rows."""
    assert "READ_PARQUET" in _plan(session, table).upper()
    session.con.register("via_dataset", warehouse.dataset(table))
    assert (session.con.execute(f'DESCRIBE SELECT * FROM "{table}"').fetchall()
            == session.con.execute("DESCRIBE SELECT * FROM via_dataset").fetchall())
    native = session.con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').to_arrow_table()
    assert native.equals(session.con.execute("SELECT * FROM via_dataset ORDER BY ALL").to_arrow_table())
    return native


def test_an_unpartitioned_table_is_read_natively_with_the_datasets_exact_rows_and_types(tmp_path):
    warehouse = Warehouse(tmp_path)
    warehouse.write("stg_order", _version_one())
    warehouse.write("stg_order", _version_one().append_column("channel", pa.array(["web", None, "edi"])))
    with Session(warehouse, date(2026, 6, 30)) as session:
        session.expose("stg_order")
        native = _native_equals_dataset(session, warehouse, "stg_order")
        assert native.num_rows == 3 and native.column("amount").null_count == 1
        # the second version only: three rows, the new column filled where it was given
        assert _rows(session, 'SELECT count(*), count(channel) FROM "stg_order"') == [(3, 2)]


def test_a_partitioned_table_is_read_natively_and_a_partition_filter_opens_only_its_files(tmp_path):
    warehouse = Warehouse(tmp_path)
    dates = pa.array(["2026-06-29", "2026-06-30", "2026-06-30"])
    batch = _version_one().append_column("_extract_date", dates)
    warehouse.write("raw_erp__orders", batch, partition_by=["_extract_date"])
    warehouse.append("raw_erp__orders", batch.slice(2).append_column("channel", pa.array(["edi"])),
                     partition_by=["_extract_date"])  # a later batch with a new column
    with Session(warehouse, date(2026, 6, 30)) as session:
        session.expose("raw_erp__orders")
        assert _native_equals_dataset(session, warehouse, "raw_erp__orders").num_rows == 4
        # an older partition alone has no file with the new column: it is there, NULL, as the dataset has it
        session.expose("raw_erp__orders", alias="older", partitions={"_extract_date": {"2026-06-29"}})
        assert "READ_PARQUET" in _plan(session, "older").upper()
        assert (session.con.execute('DESCRIBE SELECT * FROM "older"').fetchall()
                == session.con.execute("DESCRIBE SELECT * FROM via_dataset").fetchall())
        assert _rows(session, 'SELECT order_id, _extract_date, channel FROM "older"') == [
            ("o1", "2026-06-29", None)]

    # The other partition's files are gone from disk: a scan of 2026-06-30 alone never opens them.
    for file in (tmp_path / "raw" / "raw_erp__orders").glob("_extract_date=2026-06-29/*.parquet"):
        file.unlink()
    with Session(warehouse, date(2026, 6, 30)) as session:
        session.expose("raw_erp__orders", partitions={"_extract_date": {"2026-06-30"}})
        query = 'SELECT order_id, _extract_date, channel FROM "raw_erp__orders" ORDER BY ALL'
        assert _rows(session, query) == [
            ("o2", "2026-06-30", None), (None, "2026-06-30", "edi"), (None, "2026-06-30", None)]


def test_a_view_keeps_the_version_it_was_exposed_at(tmp_path):
    warehouse = Warehouse(tmp_path)
    warehouse.write("stg_order", _version_one())
    with Session(warehouse, date(2026, 6, 30)) as session:
        session.expose("stg_order")
        warehouse.write("stg_order", _version_one().slice(0, 1))  # a later commit, e.g. another process
        assert _rows(session, 'SELECT count(*) FROM "stg_order"') == [(3,)]
        session.expose("stg_order")
        assert _rows(session, 'SELECT count(*) FROM "stg_order"') == [(1,)]
