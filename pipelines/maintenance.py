"""Maintenance: compact small files and vacuum what no current version needs, on a schedule.

Raw gains a batch a night and every derived table a version a night; without this the warehouse
grows without bound. Compaction rewrites small files into large ones (a data-neutral commit, so
append-only raw tables accept it); vacuum deletes files that left the table more than the retention
ago, which keeps time travel (and readers that opened an older version) safe within the retention.
"""

from __future__ import annotations

import time
from datetime import date

from pipelines.config import Settings
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse


def due(settings: Settings, as_of: date) -> bool:
    weekday = settings.config.warehouse.maintain_weekday
    return weekday is not None and as_of.weekday() == weekday


def maintain(settings: Settings, as_of: date, *, force: bool = False) -> StepResult:
    started = time.perf_counter()
    result = StepResult("maintain")
    if not (force or due(settings, as_of)):
        result.notes.append(f"not a maintenance night ({as_of:%A}); `kam maintain --force` runs it now")
        return result
    warehouse = Warehouse(settings.warehouse_path)
    hours = settings.config.warehouse.retention_days * 24
    compacted = removed = 0
    for name in warehouse.tables():
        table = warehouse.table(name)
        metrics = table.optimize.compact()
        compacted += metrics.get("numFilesRemoved", 0)
        table = warehouse.table(name)
        removed += len(table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False))
        table.cleanup_metadata()
        result.rows[name] = metrics.get("numFilesAdded", 0)
    result.details.update(files_compacted=compacted, files_vacuumed=removed)
    result.notes.append(
        f"compacted {compacted:,} small files, vacuumed {removed:,} files older than "
        f"{settings.config.warehouse.retention_days} days"
    )
    result.seconds = time.perf_counter() - started
    return result
