"""Consolidation: fold a raw table's increments and key reconciliation into a new base batch.

A raw table's state on a date is its last base batch plus every increment after it, the newest
row per key winning, less the keys a later reconciliation no longer saw (`staging.prepare_snapshot`).
Left alone, every night ranks all increments since the one full extract again and, after the first
weekly reconciliation, anti-joins the table's older rows with every key it saw once more: at 1M
customers the increments' ranking grew by about 0.7 s a night, and the Monday after the
reconciliation staged in 66.8 s against 41.1 s on a consolidated base (benchmarks/README.md;
replayed in process, 57.1 s, and 51.1 s once the reconciliation was read as the identities it
did not see). On the maintenance night each raw table whose state has anything after its base
gets a new batch of kind `consolidated` that holds exactly that state, so the week's nights start
again from one base and no reconciliation.

Raw stays append-only: the base is kept beside it, in `raw_<source>__<table>__base`, and the
registry records which batches it folds together (`covers`). Only the newest base is kept: the
older one leaves the registry in the commit that adds the new one, and its rows leave the base
table after it, so raw grows by one copy of each table, not one a week. A night before the newest
base reads the batches it folds, as it did before, so any night can still be replayed.
`warehouse.consolidate: false` turns it off.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from pipelines import stage_state
from pipelines.batches import Batch, known_on, registered, replace_base, snapshot, stored_in
from pipelines.config import Settings
from pipelines.duck import sql_identifier as _q
from pipelines.duck import sql_literal
from pipelines.duckdb_session import Session
from pipelines.extract import BATCH_ID, EXTRACT_DATE, newest_watermark, raw_table_for
from pipelines.source_scan import copy_to_folder
from pipelines.staging import prepare_snapshot
from pipelines.warehouse import Warehouse


@dataclass(frozen=True)
class Consolidated:
    batch: Batch
    folded: int  # batches folded together


def consolidate(settings: Settings, as_of: date, warehouse: Warehouse,
                run_id: str | None = None) -> tuple[list[Consolidated], list[str]]:
    """Give every raw table whose state on `as_of` is more than one batch a consolidated base.

    Skipped, with a note: a table with batches after `as_of` (consolidating the past helps no
    night), and a table read by entities that identify its rows by different keys (its state
    depends on the entity). Staging's record moves to the new base where it described exactly the
    folded batches, so the next night still merges (`stage_state.new_increments`)."""
    registry = registered(warehouse)
    by_raw: dict[str, list[str]] = {}
    for entity, mapping in settings.config.entities.items():
        by_raw.setdefault(raw_table_for(entity, mapping).warehouse_name, []).append(entity)
    done, notes, later = [], [], []
    carried = stage_state.load(warehouse)
    for raw_name, entities in sorted(by_raw.items()):
        if any(b.raw_table == raw_name and b.extract_date > as_of.isoformat() for b in registry):
            later.append(raw_name)
            continue
        snap = snapshot(known_on(warehouse, raw_name, as_of, registry))
        if snap is None or (len(snap.data) == 1 and snap.keys is None):
            continue
        with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
            laid_out = [prepare_snapshot(session, e, settings.config.entities[e], as_of, snap)
                        for e in entities]
            if len({(r.keyed, r.same) for r in laid_out}) > 1:
                notes.append(f"{raw_name}: not consolidated, its entities ({', '.join(entities)}) "
                             "identify its rows by different keys")
                continue
            batch = _write_base(session, warehouse, raw_name, laid_out[0].view(session, "_state"),
                                as_of, snap, settings.config.entities[entities[0]], run_id)
        replace_base(warehouse, batch)
        # staging's record follows at once: a night killed before it would rebuild these entities
        moved = {e: carried[e] for e in entities if e in carried and _describes(carried[e], snap)}
        if moved:
            carried.update({e: replace(s, full_batch=batch.batch_id, keys_batch=None, batches="[]")
                            for e, s in moved.items()})
            stage_state.save(warehouse, list(carried.values()))
        _drop_other_bases(warehouse, batch)
        done.append(Consolidated(batch, len(snap.data) + (snap.keys is not None)))
    if later:
        notes.append(f"{len(later)} raw table(s) not consolidated, they have batches after {as_of}: "
                     + ", ".join(later))
    return done, notes


def _describes(state: stage_state.StagedFrom, snap) -> bool:
    """The staged tables were built from exactly the snapshot that was folded."""
    return (state.full_batch == snap.data[0].batch_id
            and state.increment_ids == {b.batch_id for b in snap.data[1:]}
            and state.keys_batch == (snap.keys.batch_id if snap.keys else None))


def _drop_other_bases(warehouse: Warehouse, base: Batch) -> None:
    """Delete the base table's rows of any batch but `base`: the forgotten bases, and those of a
    consolidation that died before the registry named it (no reader saw either). Other dates'
    partitions go whole, from the log alone; rows are read only if `base`'s date holds others."""
    table = stored_in(base)
    warehouse.table(table).delete(f"{EXTRACT_DATE} <> {sql_literal(base.extract_date)}")
    _, groups = warehouse.scan(table)
    if any(Path(f).parent.name != f"batch={base.batch_id}" for _, files in groups for f in files):
        warehouse.table(table).delete(f"{BATCH_ID} <> {sql_literal(base.batch_id)}")


def _write_base(session: Session, warehouse: Warehouse, raw_name: str, view: str, as_of: date,
                snap, mapping, run_id: str | None) -> Batch:
    """Write the state's rows as one batch in the base table's as-of date partition, committed at
    once (a crash before the registry names it leaves rows no reader sees, as an extract's would).
    Its id and raw version are those of the raw table's last commit, the id marked `.base`: it
    sorts after every batch it folds and before any later extract."""
    raw_version = warehouse.version(raw_name)
    batch_id = f"{as_of.isoformat()}.v{raw_version:06d}.base"
    table = f"{raw_name}__base"
    folder = warehouse.path(table) / f"{EXTRACT_DATE}={as_of.isoformat()}" / f"batch={batch_id}"
    if folder.exists():
        shutil.rmtree(folder)  # files of an attempt that never committed
    # the table's columns in its order (columns a later batch added are NULL in earlier rows);
    # the extraction date is the partition's, not the file's
    columns = [c for c, *_ in session.con.execute(f'DESCRIBE "{view}"').fetchall() if c != EXTRACT_DATE]
    select = ", ".join(f"{sql_literal(batch_id)} AS {BATCH_ID}" if c == BATCH_ID else _q(c) for c in columns)
    files = copy_to_folder(session.con, f'SELECT {select} FROM "{view}"', folder)
    warehouse.commit_files(table, files, {EXTRACT_DATE: as_of.isoformat()})
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    data = snap.data
    folded = [b.batch_id for b in data] + ([snap.keys.batch_id] if snap.keys else [])
    watermark = newest_watermark(data, mapping.incremental) if mapping.incremental else None
    return Batch(raw_name, batch_id, as_of.isoformat(), "consolidated", rows, raw_version, watermark,
                 source_schema=data[-1].source_schema, run_id=run_id, covers=json.dumps(folded))

