"""Maintenance: compact small files and vacuum what no current version needs, on a schedule.

Raw gains a batch a night and every derived table a version a night; without this the warehouse
grows without bound. First the per-night slices past `warehouse.history` are deleted
(pipelines/history.py) and each raw table's batches since its base are folded into a new base
(pipelines/consolidate.py), so a night's work does not grow with the weeks since the first
extract; then compaction rewrites small files into large ones (a data-neutral commit, so
append-only raw tables accept it); vacuum deletes files that left the table more than the retention
ago, which keeps time travel (and readers that opened an older version) safe within the retention.
Each run's Data Docs (megabytes of HTML per step) are deleted `quality.keep_docs_days` after the
run's as-of date; its JSON report, which `kam quality` reads, stays.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import date, timedelta

from pipelines import customer_day, history, stage_state
from pipelines.config import Settings
from pipelines.consolidate import consolidate
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse


def due(settings: Settings, as_of: date) -> bool:
    weekday = settings.config.warehouse.maintain_weekday
    return weekday is not None and as_of.weekday() == weekday


def maintain(settings: Settings, as_of: date, *, force: bool = False,
             run_id: str | None = None) -> StepResult:
    started = time.perf_counter()
    result = StepResult("maintain")
    if not (force or due(settings, as_of)):
        result.notes.append(f"not a maintenance night ({as_of:%A}); `kam maintain --force` runs it now")
        return result
    warehouse = Warehouse(settings.warehouse_path)
    pruned_rows = history.prune(warehouse, as_of, settings.config.warehouse.history)
    hours = settings.config.warehouse.retention_days * 24
    compacted = removed = 0
    if settings.config.warehouse.consolidate:
        folded, notes = consolidate(settings, as_of, warehouse, run_id)  # the registry names the run
        result.notes += notes
        if folded:
            result.details["consolidated"] = {c.batch.raw_table: c.batch.rows for c in folded}
            result.notes.append(
                f"consolidated {len(folded)} raw table(s) into new base batches "
                f"({sum(c.batch.rows for c in folded):,} rows from {sum(c.folded for c in folded)} batches)")
    states = stage_state.load(warehouse)
    summed = customer_day.record(warehouse)
    moved: dict[tuple[str, int], int] = {}  # (table, version before) -> version after
    for name in warehouse.tables():
        table = warehouse.table(name)
        before = table.version()
        metrics = table.optimize.compact()
        compacted += metrics.get("numFilesRemoved", 0)
        table = warehouse.table(name)
        removed += len(table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False))
        table.cleanup_metadata()
        moved[(name, before)] = warehouse.version(name)
        result.rows[name] = metrics.get("numFilesAdded", 0)
    _carry_stage_state(warehouse, states, moved)
    customer_day.carry(warehouse, summed, moved)
    pruned = prune_data_docs(settings, as_of)
    result.details.update(files_compacted=compacted, files_vacuumed=removed, data_docs_pruned=pruned,
                          history_pruned=pruned_rows)
    if pruned_rows:
        policy = settings.config.warehouse.history
        kept = ("each month's last night for " + (f"{policy.month_end_months} months"
                if policy.month_end_months is not None else "ever"))
        result.notes.append(
            f"deleted {sum(pruned_rows.values()):,} rows of nights older than {policy.nightly_days} days "
            f"({', '.join(f'{t} {n:,}' for t, n in sorted(pruned_rows.items()))}); kept {kept}, "
            "and every tier change")
    result.notes.append(
        f"compacted {compacted:,} small files, vacuumed {removed:,} files older than "
        f"{settings.config.warehouse.retention_days} days; deleted the Data Docs of {len(pruned):,} runs "
        f"older than {settings.config.quality.keep_docs_days} days"
    )
    result.seconds = time.perf_counter() - started
    return result


def _carry_stage_state(warehouse: Warehouse, states: dict[str, stage_state.StagedFrom],
                       moved: dict[tuple[str, int], int]) -> None:
    """Compaction and vacuum commit new versions of unchanged content: the staged tables that were
    at their recorded versions are recorded at their new ones, so the next night still merges
    instead of rebuilding every entity (and, for the order lines, re-checking 30M rows at 1M), and
    validate still checks only the merged keys of a table whose keys it found unique."""
    carried = []
    for state in states.values():
        stg = moved.get((f"stg_{state.entity}", state.stg_version))
        quarantine = moved.get((f"quarantine_{state.entity}", state.quarantine_version))
        if stg is not None and quarantine is not None:
            unique_at = stg if state.unique_at == state.stg_version else None
            state = replace(state, stg_version=stg, quarantine_version=quarantine, unique_at=unique_at)
        carried.append(state)
    if carried and carried != list(states.values()):
        stage_state.save(warehouse, carried)


def prune_data_docs(settings: Settings, as_of: date) -> list[str]:
    """Delete the `*_docs` folders of runs whose as-of date is more than `keep_docs_days` before
    `as_of` (the run id starts with its as-of date); returns the run ids pruned."""
    root = settings.warehouse_path / "quality"
    cutoff = as_of - timedelta(days=settings.config.quality.keep_docs_days)
    pruned = []
    for run in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            run_as_of = date.fromisoformat(run.name[:10])
        except ValueError:
            continue  # not a run folder
        docs = [d for d in run.glob("*_docs") if d.is_dir()]
        if run_as_of < cutoff and docs:
            for folder in docs:
                shutil.rmtree(folder)
            pruned.append(run.name)
    return pruned
