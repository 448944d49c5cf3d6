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
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.batches import BASE_KINDS, Batch, known_on, record
from pipelines.canonical import ENTITIES
from pipelines.config import EntityMapping, IncrementalConfig, Settings
from pipelines.duck import sql_identifier as _q
from pipelines.results import StepResult
from pipelines.source_scan import SourceConnections, SourceScan
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
    by_index: bool = False  # the source finds the increment through an index on the watermark column


def _shift(value: str, fmt: str | None, days: int) -> str:
    if fmt:
        return (datetime.strptime(value, fmt) - timedelta(days=days)).strftime(fmt)
    return (datetime.fromisoformat(value) - timedelta(days=days)).isoformat(sep=" ")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column_sql(inc: IncrementalConfig, column_type: str) -> tuple[str, bool]:
    """The watermark column as SQL, and whether it compares as a timestamp (else as text)."""
    col = _q(inc.column)
    if inc.format:
        return col, False
    if column_type.upper().startswith(("TIMESTAMP", "DATE")):
        return col, True
    return f"TRY_CAST({col} AS TIMESTAMP)", True


def upper_bound_sql(inc: IncrementalConfig, column_type: str, as_of: date) -> tuple[str | None, str]:
    """Rows the as-of date could have seen: the watermark is the highest change stamp among them,
    so a mistyped future date in the source cannot push it past every real change."""
    if inc.kind == "key":
        return None, ""
    col, as_timestamp = _column_sql(inc, column_type)
    if as_timestamp:
        high = (as_of + timedelta(days=1)).isoformat()
        return f"{col} < TIMESTAMP {_lit(high)}", high
    high = as_of.strftime(inc.format)
    return f"{col} <= {_lit(high)}", high


def window_sql(inc: IncrementalConfig, column_type: str, watermark: str, as_of: date) -> tuple[str, str, str]:
    """WHERE clause for an increment: everything from the watermark less the look-back.

    No upper bound: a row stamped after the night (a clock ahead, a mistyped date) is read every
    night until the watermark passes it, exactly as a full read would see it. Text dates are
    compared as text, so their format must sort like the date (%Y%m%d, %Y-%m-%d).
    """
    col, as_timestamp = _column_sql(inc, column_type)
    if inc.kind == "key":
        return f"{col} > {watermark}", watermark, ""
    low = _shift(watermark, inc.format, inc.lookback_days)
    _, high = upper_bound_sql(inc, column_type, as_of)
    lower = f"{col} >= TIMESTAMP {_lit(low)}" if as_timestamp else f"{col} >= {_lit(low)}"
    return lower, low, high


def plan_read(raw: RawTable, history: list[Batch], scan_types: dict[str, str], as_of: date, *,
              full_refresh: bool) -> Plan:
    data = [b for b in history if b.carries_data and b.extract_date < as_of.isoformat()]
    previous = data[-1] if data else None
    inc = raw.incremental
    column_type = scan_types.get(inc.column, "") if inc else ""
    if full_refresh or inc is None or not any(b.kind in BASE_KINDS for b in data):
        return Plan("full", previous=previous)
    mark = newest_watermark(data, inc)
    if mark is None:
        return Plan("full", previous=previous, notes=[f"{raw.label}: no watermark yet; read in full"])
    where, low, high = window_sql(inc, column_type, mark, as_of)
    return Plan("incremental", where, low, high, previous)


def newest_watermark(batches: list[Batch], inc: IncrementalConfig) -> str | None:
    """The highest watermark among data batches (key watermarks compare as numbers)."""
    marks = [b.watermark for b in batches if b.carries_data and b.watermark is not None]
    return max(marks, key=(int if inc.kind == "key" else str)) if marks else None


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


def batch_id_for(raw_name: str, as_of: date, warehouse: Warehouse) -> str:
    """Unique and replayable: the date plus the raw table version this batch's commit creates (so
    batch ids sort in commit order, which staging's newest-row-wins relies on)."""
    version = warehouse.version(raw_name)
    return f"{as_of.isoformat()}.v{0 if version is None else version + 1:06d}"


def _watermark(files: list[Path], inc: IncrementalConfig, column_type: str, as_of: date) -> str | None:
    """The batch's highest watermark value the as-of date could have seen."""
    import duckdb

    col, _ = _column_sql(inc, column_type)
    upper, _ = upper_bound_sql(inc, column_type, as_of)
    paths = ", ".join(_lit(str(f)) for f in files)
    where = f" WHERE {upper}" if upper else ""
    with duckdb.connect() as con:
        value = con.execute(f"SELECT max({col}) FROM read_parquet([{paths}]){where}").fetchone()[0]
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, date) else str(value)


def _use_index(raw: RawTable, scan: SourceScan, plan: Plan) -> bool:
    """Whether tonight's increment is read through the source's index on the watermark column (the
    table has one, and the server's plan for tonight's window uses it); a PostgreSQL table without
    one is read whole every night, and the notes say so."""
    column = raw.incremental.column
    if _column_sql(raw.incremental, scan.landed.get(column, ""))[0] != _q(column):
        return False  # compared through a cast (text stamps without a format): no index serves it
    indexed = scan.indexed(column)
    if indexed is False:
        plan.notes.append(f"{raw.label}: no index on the watermark column {column!r}, so every "
                          f"incremental read scans the whole table (an index on {column} lets the "
                          "source find the changed rows)")
    return bool(indexed) and scan.index_serves(plan.where)


def land(warehouse: Warehouse, scan: SourceScan, raw: RawTable, as_of: date, plan: Plan,
         run_id: str | None) -> Batch:
    """Write one batch's Parquet files into the raw table's folder, then commit them at once.

    A crash before the commit leaves unreferenced files that no reader sees (vacuum removes them).
    """
    batch_id = batch_id_for(raw.warehouse_name, as_of, warehouse)
    partition = {EXTRACT_DATE: as_of.isoformat()}
    folder = warehouse.path(raw.warehouse_name) / f"{EXTRACT_DATE}={as_of.isoformat()}" / f"batch={batch_id}"
    if folder.exists():
        shutil.rmtree(folder)  # files of an attempt that never committed
    columns = list(raw.key_columns) if plan.kind == "keys" else None
    extra = {BATCH_ID: batch_id, SOURCE: raw.source}
    files = scan.to_parquet(folder, columns=columns, where=plan.where, constants=extra,
                            by_index=plan.by_index)
    version = warehouse.commit_files(raw.warehouse_name, files, partition, append_only=True)
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    watermark = None
    if raw.incremental and plan.kind != "keys":
        column_type = scan.landed.get(raw.incremental.column, "")
        watermark = _watermark(files, raw.incremental, column_type, as_of) if rows else None
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


def select_reads(settings: Settings, tables: Collection[str] | None) -> list[RawTable]:
    """The planned reads named in `tables` (raw table names, e.g. raw_erp__customers); all if None."""
    reads = planned_reads(settings)
    if tables is None:
        return reads
    known = {raw.warehouse_name for raw in reads}
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ValueError(f"not a mapped source table: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return [raw for raw in reads if raw.warehouse_name in set(tables)]


def extract(settings: Settings, as_of: date, *, full_refresh: bool = False, run_id: str | None = None,
            on_table: Callable[[str, int], None] | None = None,
            tables: Collection[str] | None = None) -> StepResult:
    """Land tonight's batch of every mapped source table (incremental where configured).

    For a date in the past that already has batches, nothing is read: the night is replayed from
    what raw knew then. Each batch is registered right after its commit, so the registry never
    names a batch that is not readable. `tables` limits the run to those raw tables (one Airflow
    task per table); the schema check then covers only them.
    """
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("extract")
    todo = []
    for raw in select_reads(settings, tables):
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
    with SourceConnections() as sources:
        scans, drift = [], []
        for raw, history in todo:
            scan = sources.scan(settings.source_url(raw.source), table=raw.table, query=raw.query)
            plan = plan_read(raw, history, scan.landed, as_of, full_refresh=full_refresh)
            if plan.kind == "incremental":
                plan.by_index = _use_index(raw, scan, plan)
            try:
                result.notes += check_drift(raw, scan.schema, plan.previous) + plan.notes
            except SchemaDrift as exc:
                drift.append(str(exc))
            scans.append((raw, scan, plan))
        if drift:
            raise SchemaDrift("\n".join(drift))
        for raw, scan, plan in scans:
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

