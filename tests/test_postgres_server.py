"""The session's throwaway PostgreSQL server (tests/postgres_server.py) is real and usable."""

import psycopg
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres


def test_server_is_real_and_recent(postgres):
    with psycopg.connect(postgres.libpq(), autocommit=True) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
    assert version >= 130000
    assert version == postgres.version
    assert listen == "127.0.0.1"
    assert (postgres.host, postgres.user) == ("127.0.0.1", "postgres")
    assert postgres.url("x") == f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/x"


def test_databases_are_separate_and_round_trip_through_sqlalchemy(postgres):
    crm_url = postgres.create_database("kam_test_crm")
    erp_url = postgres.create_database("kam_test_erp")
    assert crm_url == postgres.url("kam_test_crm")

    crm = sa.create_engine(crm_url)
    erp = sa.create_engine(erp_url)
    try:
        with crm.begin() as conn:
            conn.execute(sa.text("CREATE TABLE accounts (account_id text PRIMARY KEY, tier text)"))
            conn.execute(
                sa.text("INSERT INTO accounts VALUES (:id, :tier)"),
                [{"id": "A-1", "tier": "VIP"}, {"id": "A-2", "tier": "Small"}],
            )
        with crm.connect() as conn:
            rows = conn.execute(sa.text("SELECT account_id, tier FROM accounts ORDER BY 1")).all()
        assert [tuple(r) for r in rows] == [("A-1", "VIP"), ("A-2", "Small")]

        with erp.connect() as conn:  # the other database does not see the table
            assert sa.inspect(conn).get_table_names() == []
    finally:
        crm.dispose()
        erp.dispose()


def test_create_database_starts_empty_even_if_it_existed(postgres):
    url = postgres.create_database("kam_test_again")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
    open_conn = engine.connect()  # an open connection must not block the drop
    try:
        url = postgres.create_database("kam_test_again")
    finally:
        open_conn.close()
        engine.dispose()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
    postgres.drop_database("kam_test_again")
    with psycopg.connect(postgres.libpq(), autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
    assert "kam_test_again" not in names
