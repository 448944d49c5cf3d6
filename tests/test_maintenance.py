"""Compaction and vacuum keep the warehouse from growing without bound, and change no content."""

from __future__ import annotations

from datetime import date, timedelta

import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.nightly import run_nightly, run_step
from pipelines.warehouse import Warehouse
from tests.tiny_sources import tiny_config, write_tiny_sources

SATURDAY = date(2026, 6, 27)
STEPS = ["extract", "stage", "build"]


def _files(warehouse: Warehouse, table: str) -> int:
    return sum(1 for _ in warehouse.path(table).rglob("*.parquet"))


def test_maintenance_compacts_and_vacuums_without_changing_any_table(tmp_path):
    write_tiny_sources(tmp_path)
    config = tiny_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["warehouse"]["retention_days"] = 0  # vacuum everything no current version needs
    config.write_text(yaml.safe_dump(data))
    settings = load_config(config)
    for night in (1, 1, 0, 0):  # two nights, each run twice: two raw batches in each partition
        run_nightly(SATURDAY - timedelta(days=night), settings, steps=STEPS)
    warehouse = Warehouse(settings.warehouse_path)
    contents = {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in warehouse.tables()}
    raw_files = _files(warehouse, "raw_erp__sales_order_lines")
    mart_files = _files(warehouse, "customer_value")
    assert raw_files == 4 and mart_files == 4

    skipped = run_step("maintain", SATURDAY, settings)  # Saturday is not the configured Sunday
    assert skipped.details == {} and "not a maintenance night" in skipped.notes[0]
    assert _files(warehouse, "customer_value") == mart_files

    result = run_step("maintain", SATURDAY + timedelta(days=1), settings)  # Sunday: due
    assert result.details["files_compacted"] > 0 and result.details["files_vacuumed"] > 0
    assert _files(warehouse, "raw_erp__sales_order_lines") == 2  # one file per night
    assert _files(warehouse, "customer_value") == 1  # the old versions' files are gone
    # The run ledger records the step, and staging's record follows the versions maintenance committed.
    kept = {"kam_run", "kam_stage_state"}
    after = {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in warehouse.tables() if t not in kept}
    assert after == {t: rows for t, rows in contents.items() if t not in kept}
    for state in warehouse.read("kam_stage_state").to_pylist():
        assert state["stg_version"] == warehouse.version(f"stg_{state['entity']}")
        assert state["quarantine_version"] == warehouse.version(f"quarantine_{state['entity']}")
    # The next night after maintenance still runs, incrementally or not, on the compacted raw.
    run_nightly(SATURDAY + timedelta(days=1), settings, steps=STEPS)


def test_kam_runs_shows_each_step_with_its_status_and_the_failure(tmp_path):
    write_tiny_sources(tmp_path)
    config = tiny_config(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(main, ["run", "--as-of", "2026-06-30", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    (tmp_path / "scm.db").unlink()
    failed = runner.invoke(main, ["run", "--as-of", "2026-07-01", "--config", str(config)])
    assert failed.exit_code == 1 and "`kam runs` shows the ledger" in failed.output
    shown = runner.invoke(main, ["runs", "--config", str(config)], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    for step in ("extract", "stage", "build", "publish", "maintain"):
        assert any("2026-06-30" in line and f" {step} " in line and "success" in line for line in lines), step
    assert any("2026-07-01" in line and " extract " in line and "failed" in line for line in lines)
    assert any("scm.db does not exist" in line for line in lines)
    assert any("customer_value@" in line for line in lines)  # lineage: versions written


def test_maintenance_deletes_old_runs_data_docs_and_keeps_their_reports(tmp_path):
    from pipelines.maintenance import prune_data_docs

    write_tiny_sources(tmp_path)
    settings = load_config(tiny_config(tmp_path))
    keep = settings.config.quality.keep_docs_days
    sunday = SATURDAY + timedelta(days=1)
    runs = {f"{(sunday - timedelta(days=age)).isoformat()}-0000000{i}": age
            for i, age in enumerate((keep + 40, keep + 1, keep, 0))}
    for run in runs:
        folder = settings.warehouse_path / "quality" / run
        for step in ("validate", "check"):
            (folder / f"{step}_docs" / "validations").mkdir(parents=True)
            (folder / f"{step}_docs" / "index.html").write_text("<html></html>")
            (folder / f"{step}.json").write_text("{}")
    (settings.warehouse_path / "quality" / "notes").mkdir()  # not a run: left alone

    pruned = prune_data_docs(settings, sunday)
    assert pruned == sorted(run for run, age in runs.items() if age > keep)
    for run, age in runs.items():
        folder = settings.warehouse_path / "quality" / run
        assert (folder / "validate.json").exists() and (folder / "check.json").exists()
        assert (folder / "validate_docs").exists() == (folder / "check_docs").exists() == (age <= keep)
    assert (settings.warehouse_path / "quality" / "notes").is_dir()
    assert prune_data_docs(settings, sunday) == []  # nothing left to prune
