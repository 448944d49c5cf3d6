"""Kill tests: a `kam run` process killed with SIGKILL at three points of a night.

After each kill every warehouse table must read (at its last committed version), the marts and
the CRM must be exactly as before the night, and the next run must end green with the same marts
and CRM rows as a night that was never interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401

from pipelines.config import load_config
from pipelines.demo.changes import simulate_day
from pipelines.ledger import runs
from pipelines.nightly import run_nightly
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

D1 = date.fromisoformat(DEMO_AS_OF)
D2 = D1 + timedelta(days=1)
KAM = [sys.executable, "-c", "from pipelines.cli import main; main()"]


def _contents(warehouse: Warehouse, layer: str) -> dict[str, list]:
    return {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in warehouse.tables(layer)}


def _crm(root: Path) -> list[tuple]:
    """KAM's CRM table, less the run id (unique to each run by design, also in the reference)."""
    with sqlite3.connect(root / "demo" / "crm.db") as crm:
        columns = [c[1] for c in crm.execute("PRAGMA table_info(kam_account_tier)") if c[1] != "run_id"]
        return crm.execute(f"SELECT {', '.join(columns)} FROM kam_account_tier ORDER BY 1").fetchall()


def _run_and_kill(root: Path, line_marker: str) -> list[str]:
    """Start `kam run --as-of D2` and SIGKILL it as soon as it prints a line with the marker."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "KAM_CONFIG": str(root / "kam.yaml")}
    proc = subprocess.Popen([*KAM, "run", "--as-of", D2.isoformat()], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line.rstrip())
            if line_marker in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=120)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "\n".join(seen)  # it really died mid-run
    return seen


def _every_table_reads(warehouse: Warehouse) -> None:
    """Each table reads in full, and holds exactly the rows its Delta log says it holds."""
    for table in warehouse.tables():
        actions = pa.table(warehouse.table(table).get_add_actions(flatten=True))
        assert warehouse.read(table).num_rows == (pa.compute.sum(actions["num_records"]).as_py() or 0), table


def test_a_night_killed_three_times_leaves_readable_tables_and_the_next_run_completes(
        demo_workspace, tmp_path):
    root = demo_workspace.root
    settings = load_config(demo_workspace.config)
    run_nightly(D1, settings)
    simulate_day({s: f"sqlite:///{root / 'demo' / s}.db" for s in ("crm", "erp", "scm")}, D2, seed=11)

    # The reference: the same night, never interrupted, on a copy.
    reference = tmp_path / "reference"
    shutil.copytree(root, reference, ignore=shutil.ignore_patterns("reference"))
    run_nightly(D2, load_config(reference / "kam.yaml"))
    expected_marts = _contents(Warehouse(reference / "warehouse"), "marts")
    expected_crm = _crm(reference)

    warehouse = Warehouse(settings.warehouse_path)
    marts_before, crm_before = _contents(warehouse, "marts"), _crm(root)
    assert marts_before != expected_marts  # the night changes the marts, so a half night would show
    kill_points = {
        "during extract": "extract: raw_erp__customers",   # more raw tables still to land
        "between staging commits": "stage: stg_customer",  # stg_customer committed, the rest not
        "during build": "build: started",                  # the build is under way
    }
    for point, marker in kill_points.items():
        output = _run_and_kill(root, marker)
        assert any(marker in line for line in output), point
        _every_table_reads(warehouse)
        assert _contents(warehouse, "marts") == marts_before, point
        assert _crm(root) == crm_before, point

    unfinished = [r["step"] for r in runs(warehouse) if r["status"] == "unfinished"]
    assert sorted(unfinished) == ["build", "extract", "stage"]

    env = {**os.environ, "KAM_CONFIG": str(root / "kam.yaml")}
    done = subprocess.run([*KAM, "run", "--as-of", D2.isoformat()], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _contents(warehouse, "marts") == expected_marts
    assert _crm(root) == expected_crm
