"""Rules every DAG must follow, and real `dag.test()` runs of the KAM DAGs on demo data:
three nights in a row, a task cleared and re-run, a source down for one attempt, a missed night."""

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.airflow_env import DAGS, REPO, migrate_metadata_db

ALLOWED_TOP_LEVEL_IMPORTS = {"__future__", "os", "datetime", "pendulum", "airflow.sdk"}
KAM_DAGS = {"kam_nightly", "kam_mining", "kam_quarterly_credit"}
NIGHTS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


# --- integrity: parse fast and offline, owners, retries, timeouts, no cycles ---

PARSE_PROBE = r"""
import json, socket, sys, time
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(str(address))
    raise OSError("network is off for this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: v[-300:] for k, v in bag.import_errors.items()},
    "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "dags": sorted(bag.dags),
    "network": attempts,
}))
"""


def test_dag_files_parse_in_under_two_seconds_without_database_or_network(tmp_path):
    """Each file is parsed in a fresh process whose metadata database cannot exist and whose
    sockets refuse to connect: any query or connection at parse time would show up here."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/no/such/dir/airflow.db"}
    out = subprocess.run([sys.executable, "-c", PARSE_PROBE, str(DAGS)], env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert set(report["dags"]) == KAM_DAGS
    assert report["network"] == []
    assert not (tmp_path / "no").exists()
    assert set(report["files"]) == {p.name for p in DAGS.glob("*.py")}
    for name, seconds in report["files"].items():
        assert seconds < 2.0, f"{name} took {seconds:.2f} s to parse"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == KAM_DAGS


def test_every_dag_has_owner_docs_retries_timeouts_and_one_run_at_a_time(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and "When it fails" in dag.doc_md, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.dagrun_timeout is not None, dag_id
        dag.check_cycle()  # raises on a cycle
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)
            assert task.execution_timeout is not None, (dag_id, task.task_id)
            assert task.on_failure_callback, (dag_id, task.task_id)


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_only_wire_no_work_at_import_time(path):
    """Top-level imports are Airflow and dates only; the pipeline is imported inside tasks."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        assert set(names) <= ALLOWED_TOP_LEVEL_IMPORTS, f"{path.name}: top-level import of {names}"


def test_nightly_maps_extraction_per_source_then_runs_every_step_in_order(dagbag):
    from pipelines import dag_support
    from pipelines.nightly import STEPS

    dag = dagbag.dags["kam_nightly"]
    sources = dag_support.source_names()
    assert sources == ["crm", "erp", "scm"]
    for source in sources:
        task = dag.get_task(f"extract_{source}")
        assert type(task).__name__.endswith("MappedOperator"), source
        assert task.pool == f"kam_source_{source}"
        assert task.retries >= 3 and task.retry_exponential_backoff > 1
        assert [a.uri for a in task.outlets] == [f"kam://warehouse/raw/{source}"]
        assert set(task.downstream_task_ids) == {"stage"}
    order = [t.task_id for t in dag.topological_sort()]
    steps = [s for s in STEPS if s != "extract"]
    assert [t for t in order if t in steps] == steps
    assert order.index("extract_scm") < order.index("stage")
    assert order[-1] == "run_summary"
    assert dag.get_task("publish").retries >= 3
    assert dag.get_task("build").pool == dag.get_task("mine").pool.replace("mining", "marts")


def test_mining_dag_is_scheduled_on_the_customer_value_asset(dagbag):
    mining = dagbag.dags["kam_mining"]
    build = dagbag.dags["kam_nightly"].get_task("build")
    trigger = "kam://warehouse/marts/customer_value"
    assert trigger in {a.uri for a in build.outlets}
    assert [a.uri for a in mining.timetable.asset_condition.objects] == [trigger]
    assert mining.get_task("mine").pool == build.dag.get_task("mine").pool == "kam_mining"


# --- real runs with dag.test() on the demo data ---

@pytest.fixture(scope="module")
def three_nights(dagbag, _demo_sqlite_files, tmp_path_factory):
    """kam_nightly under dag.test() for three consecutive logical dates, in a fresh workspace."""
    root = tmp_path_factory.mktemp("three-nights")
    (root / "demo").mkdir()
    for db in _demo_sqlite_files.glob("*.db"):
        shutil.copy(db, root / "demo" / db.name)
    shutil.copy(REPO / "kam.yaml", root / "kam.yaml")
    migrate_metadata_db()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KAM_CRM_URL", "KAM_ERP_URL", "KAM_SCM_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("KAM_CONFIG", str(root / "kam.yaml"))
        dag = dagbag.dags["kam_nightly"]
        runs = {}
        for night in NIGHTS:
            run = dag.test(logical_date=_utc(night))
            runs[night] = (run.state, {(ti.task_id, ti.map_index): (ti.state, ti.try_number)
                                       for ti in run.get_task_instances()})
        yield SimpleNamespace(root=root, warehouse=root / "warehouse", crm_db=root / "demo" / "crm.db",
                              config=root / "kam.yaml", runs=runs, dag=dag, mp=mp)


def test_three_consecutive_nights_run_green_with_one_task_per_source_table(three_nights):
    from pipelines.config import load_config
    from pipelines.extract import planned_reads

    tables = planned_reads(load_config(three_nights.config))
    for night, (state, tis) in three_nights.runs.items():
        assert state == "success", (night, tis)
        assert {s for s, _ in tis.values()} == {"success"}, (night, tis)
        mapped = [(t, i) for t, i in tis if t.startswith("extract_")]
        assert len(mapped) == len(tables), night
        for raw in tables:
            assert sum(t == f"extract_{raw.source}" for t, _ in mapped) == sum(
                r.source == raw.source for r in tables)
    # run_summary delivers what `kam run` does at the end of a night: exports and the run report
    settings = load_config(three_nights.config)
    for night in NIGHTS:
        folder = settings.exports_path / night.isoformat()
        assert (folder / "all_accounts.csv").stat().st_size > 0 and list((folder / "by_owner").glob("*.xlsx"))
        assert list(settings.reports_path.glob(f"kam_report_{night.isoformat()}_*.html"))
    assert f"as of {NIGHTS[-1].isoformat()}" in (settings.reports_path / "latest.html").read_text()


def test_three_nights_leave_the_tier_history_of_each_night_in_order(three_nights):
    import pyarrow.compute as pc

    from pipelines.warehouse import Warehouse

    wh = Warehouse(three_nights.warehouse)
    state = wh.read("kam_tier_state").to_pandas()
    customers = wh.read("customer_value").num_rows
    assert sorted(state["as_of_date"].unique()) == NIGHTS
    per_night = state.groupby("as_of_date").size()
    assert (per_night == customers).all(), per_night
    first, second = (state[state["as_of_date"] == d].set_index("customer_id") for d in NIGHTS[:2])
    # each night's stability rule started from the night before: its previous tier is that night's tier
    joined = second.join(first[["tier"]].rename(columns={"tier": "tier_before"}))
    assert (joined["previous_tier"] == joined["tier_before"]).all()
    value = wh.read("customer_value", ["as_of_date"])
    assert pc.unique(value.column("as_of_date")).to_pylist() == [NIGHTS[-1]]
    # tier_history holds exactly the state's changes of the three nights, each with its reason
    moved = state[state["previous_tier"].notna() & (state["tier"] != state["previous_tier"])]
    history = wh.read("tier_history").to_pandas()
    assert sorted(zip(history["customer_id"], history["changed_on"], history["from_tier"],
                      history["to_tier"], strict=True)) == sorted(
        zip(moved["customer_id"], moved["as_of_date"], moved["previous_tier"], moved["tier"], strict=True))
    assert history["reason"].str.len().gt(0).all()
    ledger = wh.read("kam_run").to_pandas()
    done = ledger[(ledger["step"] == "build") & (ledger["status"] == "success")]
    assert sorted(done["as_of"].unique()) == NIGHTS


def test_each_task_declares_as_assets_the_tables_the_ledger_saw_it_write(three_nights):
    """The Assets are the tables each step wrote in a real run (the ledger's lineage)."""
    from pipelines import dag_support
    from pipelines.warehouse import Warehouse

    ledger = Warehouse(three_nights.warehouse).read("kam_run").to_pandas()
    ledger = ledger[(ledger["status"] == "success") & (ledger["as_of"] == NIGHTS[-1])]
    dag = three_nights.dag
    for step, rows in ledger.groupby("step"):
        written = set()
        for value in rows["versions_written"].dropna():
            written |= set(json.loads(value))
        if step == "extract":
            declared = {f"kam://warehouse/raw/{s}" for s in dag_support.source_names()}
            sources = {t.split("__")[0].removeprefix("raw_") for t in written}
            assert {f"kam://warehouse/raw/{s}" for s in sources} == declared
            continue
        declared = {a.uri for a in dag.get_task(step).outlets}
        assert {dag_support.table_uri(t) for t in written} <= declared, step
        # every declared warehouse table exists (kam_ tables are not in lineage, so checked here)
        for uri in (u for u in declared if u.startswith("kam://warehouse/")):
            layer, table = uri.removeprefix("kam://warehouse/").split("/")
            assert (three_nights.warehouse / layer / table).is_dir(), uri


def _fingerprint(warehouse: Path) -> dict[str, int]:
    """Order-independent content hash of every warehouse table but the ledger and batch registry."""
    import pandas as pd

    from pipelines.warehouse import Warehouse

    wh = Warehouse(warehouse)
    out = {}
    for table in wh.tables():
        if table in ("kam_run", "kam_batch"):
            continue
        frame = wh.read(table).to_pandas().astype(str)
        out[table] = int(pd.util.hash_pandas_object(frame, index=False).sum()), len(frame)
    return out


def _crm_rows(crm_db: Path) -> list[tuple]:
    with sqlite3.connect(crm_db) as con:
        return con.execute("SELECT * FROM kam_account_tier ORDER BY crm_account_id").fetchall()


def test_clearing_build_and_rerunning_it_changes_nothing_in_warehouse_or_crm(three_nights):
    """Clear one mid-DAG task of the last night and run it again: same tables, same CRM."""
    before, crm_before = _fingerprint(three_nights.warehouse), _crm_rows(three_nights.crm_db)
    assert crm_before and "customer_value" in before
    build_only = three_nights.dag.partial_subset(task_ids=["build"], include_upstream=False,
                                                 include_downstream=False)
    run = build_only.test(logical_date=_utc(NIGHTS[-1]))
    tis = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert run.state == "success" and tis == {"build": ("success", 1)}, tis
    from pipelines.warehouse import Warehouse

    ledger = Warehouse(three_nights.warehouse).read("kam_run").to_pandas()
    builds = ledger[(ledger["step"] == "build") & (ledger["as_of"] == NIGHTS[-1])
                    & (ledger["status"] == "success")]
    assert len(builds) == 2  # it really ran again
    assert _fingerprint(three_nights.warehouse) == before
    assert _crm_rows(three_nights.crm_db) == crm_before


def test_the_mining_dag_mines_changed_marts_once_and_then_skips(three_nights, dagbag):
    """The build re-run above wrote a new customer_value version: the mining DAG mines it; run
    again on the same version, it finds the ledger says so and does nothing."""
    from pipelines.warehouse import Warehouse

    def mines():
        ledger = Warehouse(three_nights.warehouse).read("kam_run").to_pandas()
        done = ledger[(ledger["step"] == "mine") & (ledger["as_of"] == NIGHTS[-1])]
        return int((done["status"] == "success").sum())

    mining = dagbag.dags["kam_mining"]
    before = mines()
    receipts = []
    for _ in range(2):
        run = mining.test(logical_date=_utc(NIGHTS[-1]))
        (ti,) = run.get_task_instances()
        assert run.state == "success", ti.state
        receipts.append(ti.xcom_pull(task_ids="mine"))
    assert mines() == before + 1
    assert "skipped" not in receipts[0] and receipts[0]["as_of"] == "2026-11-22"
    assert receipts[1]["skipped"] == "already mined"


def test_quarterly_credit_rates_the_quarter_from_the_staged_night(three_nights, dagbag):
    from pipelines.warehouse import Warehouse

    run = dagbag.dags["kam_quarterly_credit"].test(logical_date=_utc(NIGHTS[-1]))
    assert run.state == "success"
    wh = Warehouse(three_nights.warehouse)
    rating = wh.read("credit_rating").to_pandas()
    assert set(rating["rating_quarter"]) == {"2026Q4"}
    assert len(rating) >= 1000
    ledger = wh.read("kam_run").to_pandas()
    assert ((ledger["step"] == "credit") & (ledger["status"] == "success")).sum() == 1


def test_a_skipped_night_is_detected_and_reported_by_the_next_run(three_nights, caplog):
    """After the 20th-22nd, a run for the 24th reports the 23rd as missed (plan task alone)."""
    night = date(2026, 11, 24)
    plan_only = three_nights.dag.partial_subset(task_ids=["plan"], include_upstream=False,
                                                include_downstream=False)
    run = plan_only.test(logical_date=_utc(night))
    assert run.state == "success"
    (ti,) = run.get_task_instances()
    plan = ti.xcom_pull(task_ids="plan")
    assert plan["missed_nights"] == ["2026-11-23"]
    assert plan["tables"]["crm"] and plan["as_of"] == "2026-11-24"
    gap = [r for r in caplog.records if r.name == "kam.notify"]
    assert gap and gap[0].levelname == "WARNING"
    assert "1 night(s) before 2026-11-24 never ran to the end: 2026-11-23" in gap[0].getMessage()


def test_catchup_in_order_gives_the_same_tiers_as_the_cli_backfill(three_nights, _demo_sqlite_files,
                                                                    tmp_path):
    """Airflow's nights in date order (what catchup and `airflow backfill` do with max_active_runs=1)
    leave the same tier history and customer_value as `kam backfill` over the same dates."""
    from pipelines.nightly import backfill
    from pipelines.warehouse import Warehouse

    (tmp_path / "demo").mkdir()
    for db in _demo_sqlite_files.glob("*.db"):
        shutil.copy(db, tmp_path / "demo" / db.name)
    shutil.copy(REPO / "kam.yaml", tmp_path / "kam.yaml")
    backfill(NIGHTS[0], NIGHTS[-1], str(tmp_path / "kam.yaml"), steps=["extract", "stage", "build"])

    def table(root: Path, name: str):
        frame = Warehouse(root).read(name).to_pandas()
        return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)

    for name in ("kam_tier_state", "customer_value"):
        cli, airflow = table(tmp_path / "warehouse", name), table(three_nights.warehouse, name)
        assert cli.equals(airflow), name


# --- a source down for the first attempt ---

def test_a_source_down_for_the_first_attempt_is_retried_and_the_run_ends_green(
        demo_workspace, monkeypatch, capfd):
    """The CRM URL comes from an Airflow connection (kam_crm_url) pointing at a database that is not
    there yet; it appears once the first attempt has failed. The retry lands the table."""
    from pipelines.ledger import runs
    from pipelines.warehouse import Warehouse

    migrate_metadata_db()
    monkeypatch.setenv("KAM_CONFIG", str(demo_workspace.config))
    later = demo_workspace.root / "crm-server" / "crm.db"
    later.parent.mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_KAM_CRM_URL", f"sqlite:///{later}")
    warehouse = Warehouse(demo_workspace.warehouse)

    def bring_back():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if any(r["status"] == "failed" for r in runs(warehouse)):
                    shutil.move(demo_workspace.crm_db, later)
                    return
            except Exception:  # the ledger is being written; look again
                pass
            time.sleep(0.1)

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).dags["kam_nightly"]  # its own copy: retry delays shortened
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)
    keep = {"plan", "tables_crm", "tables_erp", "tables_scm", "extract_crm"}
    others = "|".join(t for t in dag.task_ids if t not in keep)
    healer = threading.Thread(target=bring_back, daemon=True)
    healer.start()
    try:
        run = dag.test(logical_date=_utc(date(2026, 11, 22)), mark_success_pattern=others)
    finally:
        os.environ.pop("KAM_CRM_URL", None)  # exported from the connection by the in-process task
    healer.join(timeout=5)
    tis = {(ti.task_id, ti.map_index): (ti.state, ti.try_number) for ti in run.get_task_instances()
           if ti.task_id == "extract_crm"}
    assert run.state == "success", tis
    assert {s for s, _ in tis.values()} == {"success"}
    retried = [key for key, (_, tries) in tis.items() if tries == 2]
    assert retried and max(t for _, t in tis.values()) == 2  # the first CRM table(s) needed a retry
    ledger = [r for r in warehouse.read("kam_run").to_pylist() if r["step"] == "extract"]
    failed = [r["message"] for r in ledger if r["status"] == "failed"]
    assert len(failed) == len(retried)  # each failed attempt was retried, once, successfully
    assert all("does not exist" in message for message in failed)
    assert warehouse.exists("raw_crm__accounts")
    log = capfd.readouterr()
    text = log.out + log.err
    assert "SourceUnavailable" in text and "up_for_retry" in text


# --- failure notices ---

def test_a_failure_summary_reaches_the_configured_webhook(monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipelines import notify
    from pipelines.sources import SourceUnavailable

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KAM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        monkeypatch.delenv("KAM_ALERT_EMAIL", raising=False)
        ti = SimpleNamespace(dag_id="kam_nightly", task_id="extract_crm", map_index=2, try_number=4,
                             run_id="scheduled__2026-11-22T02:00:00+00:00")
        context = {"ti": ti, "logical_date": datetime(2026, 11, 22, 2, tzinfo=UTC),
                   "exception": SourceUnavailable("cannot connect to postgresql+psycopg://kam:***@db/crm")}
        assert notify.on_failure(context) == ["webhook"]
    finally:
        server.shutdown()
    (message,) = received
    assert message["kind"] == "failure"
    text = message["text"]
    assert "kam_nightly failed for as-of 2026-11-22" in text
    assert "extract_crm [map 2], try 4" in text
    assert "source database could not be reached" in text
    assert "airflow tasks clear kam_nightly -s 2026-11-22 -e 2026-11-22" in text


def test_missed_nights_are_the_dates_between_the_last_built_night_and_this_one(tmp_path):
    import pyarrow as pa

    from pipelines.ledger import _SCHEMA, RUN_TABLE
    from pipelines.orchestration import missed_nights
    from pipelines.warehouse import Warehouse

    wh = Warehouse(tmp_path)
    assert missed_nights(wh, date(2026, 11, 5)) == []
    t = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [{"run_id": f"r{d}", "as_of": date(2026, 11, d), "step": step, "status": status,
             "started_at": t, "ended_at": t, "seconds": 0.0, "rows": None, "versions_read": None,
             "versions_written": None, "message": None}
            for d, step, status in [(1, "build", "success"), (2, "build", "success"), (3, "stage", "success"),
                                    (4, "build", "failed")]]
    wh.append(RUN_TABLE, pa.Table.from_pylist(rows, schema=_SCHEMA))
    assert missed_nights(wh, date(2026, 11, 3)) == []
    assert missed_nights(wh, date(2026, 11, 6)) == [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    assert missed_nights(wh, date(2026, 11, 2)) == []  # the first night has no predecessor
