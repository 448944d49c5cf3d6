"""Publishing into a CRM on a real PostgreSQL server: the bulk path (COPY + one upsert) and what
happens when the connection is broken in the middle of a publish."""

from __future__ import annotations

import sqlite3
from datetime import date

import psycopg
import pytest
import yaml

from pipelines import publish as publish_module
from pipelines.config import load_config
from pipelines.nightly import run_nightly
from pipelines.publish import desired_rows, publish
from tests.tiny_sources import tiny_config, write_tiny_sources

pytestmark = pytest.mark.postgres
AS_OF = date(2026, 6, 30)
BUILD = ["extract", "stage", "build"]


@pytest.fixture()
def crm_pg(tmp_path, postgres, monkeypatch):
    write_tiny_sources(tmp_path)
    url = postgres.create_database("kam_crm_publish")
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["sources"]["crm_pg"] = {"url_env": "KAM_TEST_CRM_PG_URL"}
    config["publish"] = {"target": "crm_pg", "table": "kam_account_tier"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("KAM_TEST_CRM_PG_URL", url)
    run_nightly(AS_OF, str(path), steps=BUILD)
    yield tmp_path, str(path), postgres.libpq("kam_crm_publish")
    monkeypatch.setattr(publish_module, "checkpoint", None)
    postgres.drop_database("kam_crm_publish")


def _table(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT * FROM kam_account_tier ORDER BY 1").fetchall()


def _tiers(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT crm_account_id, tier FROM kam_account_tier").fetchall())


def _change_the_night(folder) -> None:
    with sqlite3.connect(folder / "erp.db") as erp:  # Borealis buys big
        erp.execute("INSERT INTO sales_orders VALUES (11, '1000002', '20260601', 'INVOICED')")
        erp.execute("INSERT INTO sales_order_lines VALUES (11, 1, 'P1', 100, 100.0, 0.0)")


def test_bulk_publish_to_postgres_writes_changed_rows_only_and_reruns_change_nothing(crm_pg):
    folder, config, dsn = crm_pg
    first = publish(load_config(config), AS_OF, run_id="pg-1")
    assert first.rows == {"inserted": 4, "updated": 0, "deleted": 0}
    assert _tiers(dsn) == {"001A": "Gold", "001B": "Silver", "001C": "Silver", "001D": "Bronze"}
    before = _table(dsn)
    assert publish(load_config(config), AS_OF, run_id="pg-2").details["changed"] == 0
    assert _table(dsn) == before
    _change_the_night(folder)
    run_nightly(AS_OF, config, steps=BUILD)
    third = publish(load_config(config), AS_OF, run_id="pg-3")
    assert third.rows == {"inserted": 0, "updated": 3, "deleted": 0}
    assert _tiers(dsn) == {"001A": "Silver", "001B": "Gold", "001C": "Silver", "001D": "Bronze"}


def test_postgres_reads_the_drifting_figures_back_and_rewrites_only_those_past_their_tolerance(crm_pg):
    folder, config, dsn = crm_pg
    path = folder / "kam.yaml"
    loose = yaml.safe_load(path.read_text())
    loose["publish"]["tolerance"] = {"profit_12m": {"relative": 0.01, "absolute": 1.0}}
    path.write_text(yaml.safe_dump(loose, sort_keys=False))
    publish(load_config(config), AS_OF, run_id="pg-1")
    with psycopg.connect(dsn, autocommit=True) as conn:  # the CRM's values drift from tonight's
        conn.execute("UPDATE kam_account_tier SET profit_12m = profit_12m + 0.9 "
                     "WHERE crm_account_id = '001A'")
        conn.execute("UPDATE kam_account_tier SET profit_12m = NULL WHERE crm_account_id = '001C'")
    result = publish(load_config(config), AS_OF, run_id="pg-2")
    assert result.rows["updated"] == 1 and result.details["unchanged"] == 3
    runs = dict(_figure(dsn, "run_id"))
    assert runs == {"001A": "pg-1", "001B": "pg-1", "001C": "pg-2", "001D": "pg-1"}  # a lost value is a move


def _figure(dsn: str, column: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT crm_account_id, {column} FROM kam_account_tier").fetchall()


def test_a_row_deleted_from_the_crm_table_while_publish_plans_is_written_all_the_same(crm_pg, monkeypatch):
    """Publish plans from the table as it read it; a row deleted after that (a CRM admin cleaning
    up) is still written, because every changed row goes through one upsert, never a plain update
    (an `UPDATE … FROM` the staged rows, tried as a faster path, was slower at 1M accounts:
    10.6–11.4 s against 7.1–7.7 s, benchmarks/README.md)."""
    folder, config, dsn = crm_pg
    publish(load_config(config), AS_OF, run_id="pg-1")
    _change_the_night(folder)
    run_nightly(AS_OF, config, steps=BUILD)
    expected = {"001A": "Silver", "001B": "Gold", "001C": "Silver", "001D": "Bronze"}
    read = publish_module._current

    def read_then_someone_deletes(conn, table, figures=()):
        current = read(conn, table, figures)
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("DELETE FROM kam_account_tier WHERE crm_account_id = '001B'")
        return current

    monkeypatch.setattr(publish_module, "_current", read_then_someone_deletes)
    night = publish(load_config(config), AS_OF, run_id="pg-2")
    assert night.rows == {"inserted": 0, "updated": 3, "deleted": 0}
    assert _tiers(dsn) == expected
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT run_id FROM kam_account_tier WHERE crm_account_id = '001B'").fetchone()
    assert row == ("pg-2",)


def _fillfactor(dsn: str) -> list[str] | None:
    with psycopg.connect(dsn) as conn:
        query = "SELECT reloptions FROM pg_class WHERE relname = 'kam_account_tier'"
        return conn.execute(query).fetchone()[0]


def test_kams_table_leaves_room_on_each_page_for_the_nights_row_versions(crm_pg):
    """Most rows are rewritten every night: with half of each page free, the new version stays on
    its page (a HOT update, no index entry). A table made before KAM set it gets it on the next run."""
    _, config, dsn = crm_pg
    publish(load_config(config), AS_OF, run_id="pg-1")
    assert _fillfactor(dsn) == [f"fillfactor={publish_module.POSTGRES_FILLFACTOR}"]
    with psycopg.connect(dsn) as conn:
        conn.execute("ALTER TABLE kam_account_tier RESET (fillfactor)")
    assert _fillfactor(dsn) is None
    publish(load_config(config), AS_OF, run_id="pg-2")
    assert _fillfactor(dsn) == [f"fillfactor={publish_module.POSTGRES_FILLFACTOR}"]


def test_the_session_killed_mid_publish_leaves_the_crm_table_as_before_and_the_next_run_publishes(
        crm_pg, postgres, monkeypatch):
    folder, config, dsn = crm_pg
    publish(load_config(config), AS_OF, run_id="pg-1")
    before = _table(dsn)
    _change_the_night(folder)
    run_nightly(AS_OF, config, steps=BUILD)

    def kill_my_session(stage, conn):  # every changed row is in the server, uncommitted
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(postgres.libpq(), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]

    monkeypatch.setattr(publish_module, "checkpoint", kill_my_session)
    with pytest.raises(RuntimeError, match="failed, nothing was changed there"):
        publish(load_config(config), AS_OF, run_id="pg-killed")
    assert _table(dsn) == before

    monkeypatch.setattr(publish_module, "checkpoint", None)
    result = publish(load_config(config), AS_OF, run_id="pg-next")
    assert result.rows == {"inserted": 0, "updated": 3, "deleted": 0}
    desired = {r["crm_account_id"]: r["tier"] for r in desired_rows(load_config(config), AS_OF).to_pylist()}
    assert _tiers(dsn) == desired


def test_a_row_postgres_refuses_is_set_aside_and_the_rest_commit(crm_pg):
    folder, config, dsn = crm_pg
    publish(load_config(config), AS_OF, run_id="pg-1")
    with psycopg.connect(dsn) as conn:  # a CRM-side rule: Borealis may not be Gold
        conn.execute("ALTER TABLE kam_account_tier ADD CONSTRAINT no_gold_borealis "
                     "CHECK (NOT (crm_account_id = '001B' AND tier = 'Gold'))")
    _change_the_night(folder)
    run_nightly(AS_OF, config, steps=BUILD)
    result = publish(load_config(config), AS_OF, run_id="pg-2")
    assert result.details["rejected"] == 1 and result.rows["updated"] == 2
    assert result.details["rejects"][0][:2] == ("kam_account_tier", "001B")
    assert "no_gold_borealis" in result.details["rejects"][0][2]
    assert _tiers(dsn) == {"001A": "Silver", "001B": "Silver", "001C": "Silver", "001D": "Bronze"}


def test_the_server_stopped_mid_publish_leaves_the_crm_table_as_before_and_the_next_run_publishes(
        tmp_path, monkeypatch):
    from tests.postgres_server import _run, _server_user, find_bindir, start_postgres

    write_tiny_sources(tmp_path)
    with start_postgres() as server:  # a server of its own: this test stops it
        url = server.create_database("kam_crm_stop")
        path = tiny_config(tmp_path)
        config = yaml.safe_load(path.read_text())
        config["sources"]["crm_pg"] = {"url_env": "KAM_TEST_CRM_PG_URL"}
        config["publish"] = {"target": "crm_pg", "table": "kam_account_tier"}
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        monkeypatch.setenv("KAM_TEST_CRM_PG_URL", url)
        config = str(path)
        dsn = server.libpq("kam_crm_stop")
        run_nightly(AS_OF, config, steps=BUILD)
        publish(load_config(config), AS_OF, run_id="pg-1")
        before = _table(dsn)
        _change_the_night(tmp_path)
        run_nightly(AS_OF, config, steps=BUILD)

        pg_ctl, user, data = find_bindir() / "pg_ctl", _server_user(), server.data_dir

        def stop_the_server(stage, conn):
            _run(user, data.parent, pg_ctl, "stop", "--pgdata", data, "--mode", "immediate", "--wait")

        monkeypatch.setattr(publish_module, "checkpoint", stop_the_server)
        with pytest.raises(RuntimeError, match="failed, nothing was changed there"):
            publish(load_config(config), AS_OF, run_id="pg-stopped")
        monkeypatch.setattr(publish_module, "checkpoint", None)
        _run(user, data.parent, pg_ctl, "start", "--pgdata", data, "--log", data.parent / "server.log",
             "--wait", "--timeout", "60")
        assert _table(dsn) == before  # crash recovery: the uncommitted publish is gone

        result = publish(load_config(config), AS_OF, run_id="pg-next")
        assert result.rows == {"inserted": 0, "updated": 3, "deleted": 0}
        desired = desired_rows(load_config(config), AS_OF).to_pylist()
        assert _tiers(dsn) == {r["crm_account_id"]: r["tier"] for r in desired}
