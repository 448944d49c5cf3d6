"""Extract: land each mapped source table in the append-only raw layer, as one batch per night.

Raw keeps the source's own column names and types so that any night can be rebuilt from it and a
mapping mistake is fixed by re-running staging, not by re-reading the source. A batch is never
rewritten: each night adds one (full, or only the rows past the table's watermark), and the batch
registry (`pipelines/batches.py`) says which batches make up a table's state on any date.

The source's schema is checked before anything is written: a mapped column that disappeared or
changed type stops the extract with the source, table and column named; a new column is carried
into raw and reported.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.batches import Batch, known_on, record
from pipelines.canonical import ENTITIES
from pipelines.config import EntityMapping, IncrementalConfig, Settings
from pipelines.results import StepResult
from pipelines.source_scan import SourceScan, open_scan
from pipelines.warehouse import Warehouse

EXTRACT_DATE = "_extract_date"
BATCH_ID = "_batch_id"
SOURCE = "_source"


class SchemaDrift(RuntimeError):
    """A mapped source column is missing or changed type; nothing was written."""


@dataclass(frozen=True)
class RawTable:
    """One source read: a table, or a query named after the entity it feeds."""

    source: str
    table: str | None
    query: str | None
    name: str
    incremental: IncrementalConfig | None = None
    key_columns: tuple[str, ...] = ()
    mapped_columns: tuple[tuple[str, str], ...] = ()  # (source column, "entities.<e>.columns.<c>")

    @property
    def warehouse_name(self) -> str:
        return f"raw_{self.source}__{self.name}"

    @property
    def label(self) -> str:
        return f"{self.source}.{self.table or self.name + ' (query)'}"


def raw_table_for(entity: str, mapping: EntityMapping) -> RawTable:
    spec = ENTITIES[entity]
    keys = tuple(
        mapping.columns[k].column for k in spec.key
        if k in mapping.columns and mapping.columns[k].column
    )
    mapped = tuple(
        (src.column, f"entities.{entity}.columns.{name}")
        for name, src in mapping.columns.items() if src.column
    )
    if mapping.incremental:
        mapped += ((mapping.incremental.column, f"entities.{entity}.incremental.column"),)
    return RawTable(
        mapping.source, mapping.table, mapping.query, mapping.table or entity,
        mapping.incremental, keys if len(keys) == len(spec.key) else (), mapped,
    )


def planned_reads(settings: Settings) -> list[RawTable]:
    """One read per raw table, however many entities it feeds (their mapped columns combined)."""
    seen: dict[str, RawTable] = {}
    for entity, mapping in settings.config.entities.items():
        raw = raw_table_for(entity, mapping)
        if raw.warehouse_name in seen:
            first = seen[raw.warehouse_name]
            raw = RawTable(first.source, first.table, first.query, first.name,
                           first.incremental or raw.incremental, first.key_columns or raw.key_columns,
                           first.mapped_columns + raw.mapped_columns)
        seen[raw.warehouse_name] = raw
    return list(seen.values())


@dataclass
class Plan:
    """What tonight's read of one raw table is: its kind and, for an increment, its window."""

    kind: str
    where: str | None = None
    window_from: str | None = None
    window_to: str | None = None
    previous: Batch | None = None
    notes: list[str] = field(default_factory=list)


def _shift(value: str, fmt: str | None, days: int) -> str:
    if fmt:
        return (datetime.strptime(value, fmt) - timedelta(days=days)).strftime(fmt)
    return (datetime.fromisoformat(value) - timedelta(days=days)).isoformat(sep=" ")


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def window_sql(inc: IncrementalConfig, column_type: str, watermark: str, as_of: date) -> tuple[str, str, str]:
    """WHERE clause for an increment: past the watermark less the look-back, up to the as-of date.

    The upper bound keeps a backfilled night to what its date could have seen; text dates are
    compared as text, so their format must sort like the date (e.g. %Y%m%d, %Y-%m-%d).
    """
    col = _q(inc.column)
    if inc.kind == "key":
        return f"{col} > {watermark}", watermark, ""
    low = _shift(watermark, inc.format, inc.lookback_days)
    if inc.format:
        high = as_of.strftime(inc.format)
        return f"{col} >= {_lit(low)} AND {col} <= {_lit(high)}", low, high
    high = (as_of + timedelta(days=1)).isoformat()
    if column_type.upper().startswith(("TIMESTAMP", "DATE")):
        return f"{col} >= TIMESTAMP {_lit(low)} AND {col} < TIMESTAMP {_lit(high)}", low, high
    typed = f"TRY_CAST({col} AS TIMESTAMP)"
    return f"{typed} >= TIMESTAMP {_lit(low)} AND {typed} < TIMESTAMP {_lit(high)}", low, high


def plan_read(raw: RawTable, history: list[Batch], schema: dict[str, str], as_of: date, *,
              full_refresh: bool) -> Plan:
    data = [b for b in history if b.carries_data and b.extract_date < as_of.isoformat()]
    previous = data[-1] if data else None
    inc = raw.incremental
    if full_refresh or inc is None or not any(b.kind == "full" for b in data):
        return Plan("full", previous=previous)
    marks = [b.watermark for b in data if b.watermark is not None]
    if not marks:
        return Plan("full", previous=previous, notes=[f"{raw.label}: no watermark yet; read in full"])
    mark = max(marks, key=(int if inc.kind == "key" else str))
    where, low, high = window_sql(inc, schema.get(inc.column, ""), mark, as_of)
    return Plan("incremental", where, low, high, previous)


def check_drift(raw: RawTable, schema: dict[str, str], previous: Batch | None) -> list[str]:
    """Fail on missing or retyped mapped columns; return notes on added or removed others."""
    before = json.loads(previous.source_schema) if previous else {}
    problems, notes = [], []
    for column, where in raw.mapped_columns:
        if column not in schema:
            problems.append(f"mapped column {column!r} ({where}) is missing from the source")
        elif column in before and before[column] != schema[column]:
            problems.append(
                f"mapped column {column!r} ({where}) changed type from {before[column]} to {schema[column]}"
            )
    if problems:
        raise SchemaDrift(
            f"{raw.label}: {'; '.join(dict.fromkeys(problems))}. Nothing was extracted; fix the source "
            f"or the mapping in kam.yaml. The source has: "
            + ", ".join(f"{c} {t}" for c, t in schema.items())
        )
    if before:
        added = [c for c in schema if c not in before]
        removed = [c for c in before if c not in schema]
        retyped = [c for c in schema if c in before and before[c] != schema[c]]
        if added:
            notes.append(f"{raw.label}: new source column(s) carried into raw: {', '.join(added)}")
        if removed:
            notes.append(f"{raw.label}: unmapped column(s) gone from the source: {', '.join(removed)}")
        if retyped:
            notes.append(f"{raw.label}: unmapped column(s) changed type: {', '.join(retyped)}")
    return notes


def batch_id_for(raw: RawTable, as_of: date, warehouse: Warehouse) -> str:
    """Unique and replayable: the date plus the raw table version this batch's commit creates."""
    version = warehouse.version(raw.warehouse_name)
    return f"{as_of.isoformat()}.v{0 if version is None else version + 1:06d}"


def _max_value(files: list[Path], column: str) -> str | None:
    import duckdb

    paths = ", ".join(_lit(str(f)) for f in files)
    with duckdb.connect() as con:
        value = con.execute(f"SELECT max({_q(column)}) FROM read_parquet([{paths}])").fetchone()[0]
    return None if value is None else str(value)


def land(warehouse: Warehouse, scan: SourceScan, raw: RawTable, as_of: date, plan: Plan,
         run_id: str | None) -> Batch:
    """Write one batch's Parquet files into the raw table's folder, then commit them at once.

    A crash before the commit leaves unreferenced files that no reader sees (vacuum removes them).
    """
    batch_id = batch_id_for(raw, as_of, warehouse)
    partition = {EXTRACT_DATE: as_of.isoformat()}
    folder = warehouse.path(raw.warehouse_name) / f"{EXTRACT_DATE}={as_of.isoformat()}" / f"batch={batch_id}"
    if folder.exists():
        shutil.rmtree(folder)  # files of an attempt that never committed
    columns = list(raw.key_columns) if plan.kind == "keys" else None
    extra = {BATCH_ID: batch_id, SOURCE: raw.source}
    files = scan.to_parquet(folder, columns=columns, where=plan.where, constants=extra)
    version = warehouse.commit_files(raw.warehouse_name, files, partition, append_only=True)
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    watermark = None
    if raw.incremental and plan.kind != "keys":
        watermark = _max_value(files, raw.incremental.column) if rows else None
        if watermark is None and plan.previous is not None:
            watermark = plan.previous.watermark
    return Batch(
        raw.warehouse_name, batch_id, as_of.isoformat(), plan.kind, rows, version, watermark,
        plan.window_from, plan.window_to, json.dumps(scan.schema), run_id,
    )


def reconciles_on(raw: RawTable, as_of: date) -> bool:
    inc = raw.incremental
    return bool(inc and inc.reconcile_every_days and raw.key_columns
                and as_of.toordinal() % inc.reconcile_every_days == 0)


def extract(settings: Settings, as_of: date, *, full_refresh: bool = False, run_id: str | None = None,
            on_table: Callable[[str, int], None] | None = None) -> StepResult:
    """Land tonight's batch of every mapped source table (incremental where configured).

    For a date in the past that already has batches, nothing is read: the night is replayed from
    what raw knew then. Each batch is registered right after its commit, so the registry never
    names a batch that is not readable.
    """
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("extract")
    todo = []
    for raw in planned_reads(settings):
        history = known_on(warehouse, raw.warehouse_name, date.max)
        later = [b for b in history if b.extract_date > as_of.isoformat()]
        tonight = [b for b in history if b.extract_date == as_of.isoformat() and b.carries_data]
        if later and tonight and not full_refresh:
            result.rows[raw.warehouse_name] = 0
            result.details.setdefault("replayed", []).append(raw.warehouse_name)
        else:
            todo.append((raw, history))
    # Every table's schema is checked before the first one is written: a drifted source stops
    # the night with raw exactly as it was.
    drift = []
    for raw, history in todo:
        with open_scan(settings.source_url(raw.source), table=raw.table, query=raw.query) as scan:
            plan = plan_read(raw, history, scan.schema, as_of, full_refresh=full_refresh)
            try:
                result.notes += check_drift(raw, scan.schema, plan.previous)
            except SchemaDrift as exc:
                drift.append(str(exc))
    if drift:
        raise SchemaDrift("\n".join(drift))
    for raw, history in todo:
        with open_scan(settings.source_url(raw.source), table=raw.table, query=raw.query) as scan:
            plan = plan_read(raw, history, scan.schema, as_of, full_refresh=full_refresh)
            result.notes += plan.notes
            batches = [land(warehouse, scan, raw, as_of, plan, run_id)]
            if plan.kind == "incremental" and reconciles_on(raw, as_of):
                keys = Plan("keys", previous=plan.previous)
                batches.append(land(warehouse, scan, raw, as_of, keys, run_id))
        record(warehouse, batches)
        result.rows[raw.warehouse_name] = batches[0].rows
        result.details.setdefault("kinds", {})[raw.warehouse_name] = plan.kind
        if on_table:
            on_table(raw.warehouse_name, batches[0].rows)
    if "replayed" in result.details:
        result.notes.append(
            f"{as_of} is in the past and already extracted: replayed "
            f"{len(result.details['replayed'])} raw table(s) from their batches, source not read"
        )
    result.seconds = time.perf_counter() - started
    return result

