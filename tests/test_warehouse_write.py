"""Warehouse.write_query: DuckDB writes the Parquet, one Delta commit records it. The table must
read back exactly as the Arrow path (`write`) would have stored it."""

import threading

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from pipelines.warehouse import Warehouse, tracking, writes_beside

QUERY = """SELECT CAST(i AS VARCHAR) AS k, i::BIGINT AS n, (i / 7)::DECIMAL(18, 3) AS d,
                  DATE '2020-01-01' + (i % 100)::INT AS day, TIMESTAMP '2020-01-01 10:00:00' AS ts,
                  i % 2 = 0 AS even, NULL::VARCHAR AS nothing
           FROM range(50000) t(i) ORDER BY k DESC"""


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # as the session sets it
    yield con
    con.close()


def test_a_query_reads_back_as_the_arrow_path_would_store_it(tmp_path, con):
    native, arrow = Warehouse(tmp_path / "a"), Warehouse(tmp_path / "b")
    native.write_query("stg_x", con, QUERY)
    arrow.write("stg_x", con.execute(QUERY).to_arrow_reader(10_000))
    got, expected = native.read("stg_x"), arrow.read("stg_x")
    assert got.schema == expected.schema
    assert got.sort_by("n").equals(expected.sort_by("n"))
    keys = got.column("k").to_pylist()
    assert keys == sorted(keys, reverse=True)  # the query's ORDER BY is the file's row order
    assert native.rows("stg_x") == 50_000


def test_each_write_replaces_the_table_schema_included(tmp_path, con):
    warehouse = Warehouse(tmp_path)
    first = warehouse.write_query("stg_x", con, QUERY)
    second = warehouse.write_query("stg_x", con, "SELECT 1::INTEGER AS only_column")
    assert second == first + 1
    assert warehouse.read("stg_x").to_pylist() == [{"only_column": 1}]
    warehouse.write_query("stg_x", con, "SELECT 1::INTEGER AS only_column WHERE false")
    assert warehouse.rows("stg_x") == 0 and warehouse.read("stg_x").column_names == ["only_column"]
    # earlier versions stay readable (time travel) until vacuum removes their files
    assert warehouse.table("stg_x").version() == second + 1
    assert len(list(warehouse.path("stg_x").glob("*.parquet"))) == 3
    old = warehouse.table("stg_x")
    old.load_as_version(first)
    assert old.to_pyarrow_table().num_rows == 50_000


def test_types_parquet_stores_differently_take_the_arrow_path(tmp_path, con):
    warehouse = Warehouse(tmp_path)
    warehouse.write_query("stg_x", con, "SELECT sum(i) AS total FROM range(10) t(i)")  # HUGEINT
    assert str(warehouse.read("stg_x").schema.field("total").type) == "decimal128(38, 0)"
    assert warehouse.read("stg_x").column("total").to_pylist()[0] == 45


def test_a_commit_carries_its_metadata_until_the_next_and_earlier_versions_stay_readable(tmp_path, con):
    from datetime import date

    from pipelines.duckdb_session import Session

    warehouse = Warehouse(tmp_path)
    made_from = {"kam.built_from": '{"stg_x": 4}'}
    first = warehouse.write_query("fct_x", con, "SELECT 1 AS n", metadata=made_from)  # DuckDB writes
    assert warehouse.commit_metadata("fct_x") == made_from
    # HUGEINT takes the Arrow path
    warehouse.write_query("fct_x", con, "SELECT 2::HUGEINT AS n", metadata={"kam.built_from": "{}"})
    assert warehouse.commit_metadata("fct_x") == {"kam.built_from": "{}"}
    warehouse.write_query("fct_x", con, "SELECT 3 AS n")
    assert warehouse.commit_metadata("fct_x") == {}  # a commit without it says nothing of its rows
    assert warehouse.commit_metadata("fct_missing") == {}
    with Session(warehouse, date(2026, 1, 1)) as session:
        session.expose("fct_x", alias="before", version=first)
        session.expose("fct_x", alias="now")
        assert session.con.execute("SELECT (SELECT n FROM before), (SELECT n FROM now)").fetchone() == (1, 3)


def test_parts_are_one_commit_with_a_file_each_named_in_order(tmp_path, con):
    """write_parts: staging's merge writes the rows it kept and tonight's re-checked rows as two
    files of one commit, so validate can read tonight's rows alone (`part_files`)."""
    warehouse = Warehouse(tmp_path)
    first = warehouse.write_query("stg_x", con, QUERY)
    kept = f"SELECT * FROM ({QUERY}) WHERE n >= 100"
    tonight = f"SELECT * FROM ({QUERY}) WHERE n < 100"
    version = warehouse.write_parts("stg_x", con, [kept, tonight])
    assert version == first + 1
    assert warehouse.read("stg_x").sort_by("n").equals(con.execute(QUERY).to_arrow_table().sort_by("n"))
    files = warehouse.part_files("stg_x")
    assert [f.parent for f in files] == [warehouse.path("stg_x")] * 2
    tonight_rows = con.execute(f"SELECT n FROM read_parquet('{files[1]}')").fetchall()
    assert sorted(tonight_rows) == [(i,) for i in range(100)]
    assert con.execute(f"SELECT count(*) FROM read_parquet('{files[0]}')").fetchone()[0] == 49_900
    # columns that differ between the parts: nothing written, the caller unites them itself
    retyped = f"SELECT * REPLACE (n::INTEGER AS n) FROM ({tonight})"
    assert warehouse.write_parts("stg_x", con, [kept, retyped]) is None
    assert warehouse.table("stg_x").version() == version
    warehouse.write_query("stg_x", con, tonight)
    assert warehouse.part_files("stg_x") is None  # a later commit: the parts are no longer the table


def test_tables_are_read_on_arrows_own_file_system_as_delta_rs_reads_them(tmp_path, con):
    # delta-rs' default dataset wraps its storage in a Python file system; Arrow's reader threads
    # release it holding Python's lock, which aborted processes at exit (pipelines/warehouse.py)
    warehouse = Warehouse(tmp_path)
    warehouse.write_query("stg_x", con, QUERY)
    days = con.execute(f"SELECT k, CAST(day AS VARCHAR) AS day FROM ({QUERY}) LIMIT 1000").to_arrow_table()
    warehouse.append("raw_x", days.slice(0, 600), partition_by=["day"])
    warehouse.append("raw_x", days.slice(600), partition_by=["day"])
    for table in ("stg_x", "raw_x"):
        dataset, _ = warehouse.scan(table)
        for data in (warehouse.dataset(table), dataset):
            assert not isinstance(data.filesystem, pafs.PyFileSystem)
            assert isinstance(data.filesystem, pafs.SubTreeFileSystem)
        theirs = DeltaTable(str(warehouse.path(table))).to_pyarrow_dataset().to_table()
        mine = warehouse.read(table)
        assert mine.schema == theirs.schema
        assert mine.sort_by("k").equals(theirs.sort_by("k"))
    # the partition values come from the log, not the files: a filter on them still prunes right
    one_day = ds.field("day") == "2020-01-02"
    expected = sum(1 for d in days.column("day").to_pylist() if d == "2020-01-02")
    assert warehouse.dataset("raw_x").to_table(filter=one_day).num_rows == expected > 0


def test_writes_beside_commit_in_order_before_the_block_ends_with_their_lineage(tmp_path, con, monkeypatch):
    warehouse = Warehouse(tmp_path)
    threads = []
    original = Warehouse.write

    def write(self, table, data, **options):  # which thread wrote what, and in which order
        threads.append((table, threading.current_thread().name))
        return original(self, table, data, **options)

    monkeypatch.setattr(Warehouse, "write", write)
    with tracking() as lineage, writes_beside(warehouse) as beside:
        beside.write("first", pa.table({"n": [1, 2]}))
        beside.write("second", pa.table({"n": [3]}))
        beside.wait()
        assert warehouse.rows("second") == 1  # wait() returns once they are committed
        beside.write("third", pa.table({"n": [4, 5, 6]}))
        beside.write("streamed", con.execute("SELECT 7 AS n").to_arrow_reader(10))
    assert [t for t, _ in threads] == ["first", "second", "third", "streamed"]
    caller = threading.current_thread().name
    assert [name == caller for _, name in threads] == [False, False, False, True]  # a stream: the caller's
    assert {t: warehouse.rows(t) for t in ("first", "third", "streamed")} == {"first": 2, "third": 3,
                                                                                "streamed": 1}
    assert set(lineage.written) == {"first", "second", "third", "streamed"}


def test_a_failed_write_beside_fails_the_block_and_a_failed_block_still_finishes_its_writes(tmp_path):
    warehouse = Warehouse(tmp_path)
    warehouse.write("kept", pa.table({"n": [1]}))
    with pytest.raises(Exception, match="No field named missing_column"), writes_beside(warehouse) as beside:
        # replacing the rows of a night by a predicate on a column the table does not have
        beside.write("kept", pa.table({"n": [2]}), replace_where="missing_column = 1")
    assert warehouse.read("kept").column("n").to_pylist() == [1]

    with pytest.raises(RuntimeError, match="the computation failed"), writes_beside(warehouse) as beside:
        beside.write("late", pa.table({"n": list(range(100_000))}))
        raise RuntimeError("the computation failed")
    assert warehouse.rows("late") == 100_000  # written before the error went on
