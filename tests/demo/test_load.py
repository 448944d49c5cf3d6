"""write_demo and write_truth: real SQLite files (and a real PostgreSQL), read back."""

from __future__ import annotations

import sqlite3

import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import make_url

from pipelines.demo import generate_demo, write_demo, write_truth
from pipelines.demo.schema import TABLES
from pipelines.duck import libpq_dsn
from tests.demo.common import AS_OF


@pytest.fixture(scope="module")
def small():
    return generate_demo(customers=300, as_of=AS_OF, seed=2, dirty_share=0.02)


def _sqlite_urls(folder):
    return {system: f"sqlite:///{folder}/{system}/{system}.db" for system in TABLES}


def test_sqlite_round_trip(small, tmp_path):
    counts = write_demo(small, _sqlite_urls(tmp_path))
    assert set(counts) == {(s, t) for s in TABLES for t in TABLES[s]}
    for system in TABLES:
        with sqlite3.connect(tmp_path / system / f"{system}.db") as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            assert names == set(TABLES[system])
            for table in TABLES[system]:
                rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                assert rows == counts[(system, table)] == small[system][table].num_rows
    with sqlite3.connect(tmp_path / "erp" / "erp.db") as db:
        declared = {r[1]: r[2] for r in db.execute("PRAGMA table_info(sales_orders)")}
        assert declared["order_date"] == "CHAR(8)" and declared["order_no"] == "BIGINT"
        kinds = {r[0] for r in db.execute("SELECT DISTINCT typeof(order_date) FROM sales_orders")}
        assert kinds == {"text"}
        first = db.execute("SELECT order_date FROM sales_orders ORDER BY order_no LIMIT 1")
        assert len(first.fetchone()[0]) == 8
        declared = {r[1]: r[2] for r in db.execute("PRAGMA table_info(sales_order_lines)")}
        assert declared["quantity"] == "NUMERIC(12,3)"
    with sqlite3.connect(tmp_path / "crm" / "crm.db") as db:
        pk = [r[1] for r in db.execute("PRAGMA table_info(accounts)") if r[5]]
        assert pk == ["account_id"]


def test_writing_twice_replaces_and_keeps_other_tables(small, tmp_path):
    urls = _sqlite_urls(tmp_path)
    write_demo(small, urls)
    with sqlite3.connect(tmp_path / "crm" / "crm.db") as db:
        db.execute("CREATE TABLE account_tiers (account_id TEXT, tier TEXT)")
    counts = write_demo(small, urls)
    with sqlite3.connect(tmp_path / "crm" / "crm.db") as db:
        assert db.execute("SELECT count(*) FROM accounts").fetchone()[0] == counts[
            ("crm", "accounts")]
        assert db.execute("SELECT count(*) FROM account_tiers").fetchone()[0] == 0


def test_only_the_named_systems_are_written_and_truth_stays_out(small, tmp_path):
    counts = write_demo(small, {"erp": f"sqlite:///{tmp_path}/erp.db"})
    assert {system for system, _ in counts} == {"erp"}
    with sqlite3.connect(tmp_path / "erp.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "truth" not in names and not any("truth" in n for n in names)


def test_bad_targets_are_refused(small, tmp_path):
    with pytest.raises(ValueError, match="unknown systems"):
        write_demo(small, {"wms": f"sqlite:///{tmp_path}/x.db"})
    with pytest.raises(ValueError, match="cannot write"):
        write_demo(small, {"crm": "mysql://user@host/crm"})


def test_truth_goes_to_parquet(small, tmp_path):
    path = write_truth(small, tmp_path / "nested" / "truth.parquet")
    table = pq.read_table(path)
    assert table.equals(small.truth)
    assert "is_declining" in table.column_names


def test_libpq_dsn_from_sqlalchemy_url():
    dsn = libpq_dsn(make_url("postgresql+psycopg://kam:s'cret@db.local:5433/erp?sslmode=require"))
    assert dsn == ("host='db.local' port='5433' dbname='erp' user='kam' "
                   "password='s\\'cret' sslmode='require'")


@pytest.mark.postgres
def test_postgres_round_trip(small, postgres):
    import psycopg

    urls = {system: postgres.create_database(f"kam_demo_{system}") for system in TABLES}
    write_demo(small, urls)
    counts = write_demo(small, urls)  # the second write replaces the first
    with psycopg.connect(postgres.libpq("kam_demo_erp")) as conn:
        rows = conn.execute("SELECT count(*) FROM sales_order_lines").fetchone()[0]
        assert rows == counts[("erp", "sales_order_lines")]
        kind = conn.execute("""SELECT data_type, character_maximum_length FROM
            information_schema.columns WHERE table_name = 'invoices'
            AND column_name = 'invoice_date'""").fetchone()
        assert kind == ("character", 8)
    with psycopg.connect(postgres.libpq("kam_demo_crm")) as conn:
        rows = conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
        assert rows == counts[("crm", "accounts")]


def test_the_demo_sources_index_every_column_kam_yaml_reads_increments_by(small, tmp_path):
    from pathlib import Path

    from pipelines.config import load_config
    from pipelines.extract import planned_reads

    write_demo(small, _sqlite_urls(tmp_path))
    settings = load_config(Path(__file__).resolve().parents[2] / "kam.yaml")
    watermarks = {(r.source, r.table): r.incremental.column for r in planned_reads(settings) if r.incremental}
    assert len(watermarks) == 13
    for (system, table), column in watermarks.items():
        with sqlite3.connect(tmp_path / system / f"{system}.db") as db:
            indexes = [name for name, *_ in db.execute(f"SELECT name FROM pragma_index_list('{table}')")]
            leading = {db.execute(f"SELECT name FROM pragma_index_info('{i}') WHERE seqno = 0").fetchone()[0]
                       for i in indexes}
        assert column in leading, (system, table, column)
