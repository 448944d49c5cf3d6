"""Source scans against a real PostgreSQL: each scan of a night reads what it was made for, and an
increment read through the watermark's index lands what the parallel page-range read lands."""

from __future__ import annotations

import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import make_url

from pipelines.source_scan import SourceConnections
from tests.postgres_server import index_scans

pytestmark = pytest.mark.postgres


@pytest.fixture()
def source(postgres):
    url = postgres.create_database("kam_scan")
    with psycopg.connect(postgres.libpq("kam_scan"), autocommit=True) as con:
        con.execute("CREATE TABLE lines (id bigint PRIMARY KEY, qty numeric(12,3), changed_on char(8))")
        con.execute("INSERT INTO lines SELECT i, i / 7.0, to_char(DATE '2026-01-01' + i % 300, 'YYYYMMDD') "
                    "FROM generate_series(1, 20000) i")
        con.execute("CREATE TABLE notes (id bigint, body text)")
        con.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')")
    yield make_url(url), postgres.libpq("kam_scan")
    postgres.drop_database("kam_scan")


def _read(files) -> list[tuple]:
    table = pq.read_table(files[0]) if len(files) == 1 else None
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_every_query_scan_of_a_night_lands_its_own_rows(source, tmp_path):
    url, _ = source
    with SourceConnections() as sources:  # a night makes every scan before it lands the first
        first = sources.scan(url, query="SELECT id, body FROM notes WHERE id = 1")
        second = sources.scan(url, query="SELECT id, body FROM notes WHERE id = 2")
        assert _read(first.to_parquet(tmp_path / "first")) == [(1, "a")]
        assert _read(second.to_parquet(tmp_path / "second")) == [(2, "b")]


def test_an_increment_read_through_the_index_lands_what_the_page_range_read_lands(source, tmp_path):
    url, libpq = source
    where = "\"changed_on\" >= '20261001'"
    with SourceConnections() as sources:
        scan = sources.scan(url, table="lines")
        assert scan.indexed("changed_on") is False and scan.indexed("id") is True
        by_pages = _read(scan.to_parquet(tmp_path / "pages", where=where, constants={"_batch": "b1"}))
        with psycopg.connect(libpq, autocommit=True) as con:
            con.execute("CREATE INDEX lines_changed_on ON lines (changed_on)")
            con.execute("ANALYZE lines")
        assert scan.indexed("changed_on") is True
        # the server reads a few weeks' rows through the index, nearly all of them by a scan
        assert scan.index_serves(where) and not scan.index_serves("\"changed_on\" >= '20260102'")
        by_index = _read(scan.to_parquet(tmp_path / "index", where=where, constants={"_batch": "b1"},
                                         by_index=True))
        assert pq.read_schema(tmp_path / "index" / "part-0.parquet") == pq.read_schema(
            tmp_path / "pages" / "part-0.parquet")
    with psycopg.connect(libpq, autocommit=True) as con:
        (wanted,) = con.execute(f"SELECT count(*) FROM lines WHERE {where}").fetchone()
        assert index_scans(con, "lines_changed_on", more_than=0) > 0  # the server used the index
    assert by_index == by_pages and len(by_index) == wanted > 0
