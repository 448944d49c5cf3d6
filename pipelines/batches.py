"""The extract batch registry (`kam_batch`): which raw batches were committed, and their watermarks.

Raw tables are append-only, so a batch that was written but never registered (the run died between
the two commits) is simply invisible: staging reads only registered batches, and the next run's
watermark comes only from them. That is what makes "a failed run re-extracts what it lost" true
without any clean-up step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import pyarrow as pa

from pipelines.warehouse import Warehouse

BATCH_TABLE = "kam_batch"
KINDS = ("full", "incremental", "keys", "consolidated")
# A table's state is a base batch plus what came after it: a full read of the source, or a
# consolidation of earlier batches (pipelines/consolidate.py) that holds exactly their state.
BASE_KINDS = ("full", "consolidated")


@dataclass(frozen=True)
class Batch:
    raw_table: str
    batch_id: str
    extract_date: str
    kind: str
    rows: int
    raw_version: int
    watermark: str | None = None
    window_from: str | None = None
    window_to: str | None = None
    source_schema: str = "{}"
    run_id: str | None = None
    covers: str | None = None  # a consolidated batch: JSON list of the batch ids it folds together

    @property
    def carries_data(self) -> bool:
        return self.kind in ("full", "incremental", "consolidated")


_SCHEMA = pa.schema([
    ("raw_table", pa.string()), ("batch_id", pa.string()), ("extract_date", pa.string()),
    ("kind", pa.string()), ("rows", pa.int64()), ("raw_version", pa.int64()),
    ("watermark", pa.string()), ("window_from", pa.string()), ("window_to", pa.string()),
    ("source_schema", pa.string()), ("run_id", pa.string()), ("covers", pa.string()),
])


def stored_in(batch: Batch) -> str:
    """The warehouse table holding a batch's rows: its raw table, or for a consolidated batch the
    raw table's `__base` table beside it (not append-only: a newer base replaces it)."""
    return f"{batch.raw_table}__base" if batch.kind == "consolidated" else batch.raw_table


def replace_base(warehouse: Warehouse, base: Batch) -> None:
    """Register a consolidated batch and forget the raw table's earlier ones, in one commit: a
    night before the new base then reads the batches they folded."""
    kept = [b for b in registered(warehouse)
            if not (b.raw_table == base.raw_table and b.kind == "consolidated")] + [base]
    warehouse.write(BATCH_TABLE, pa.Table.from_pylist([asdict(b) for b in kept], schema=_SCHEMA))


def record(warehouse: Warehouse, batches: list[Batch]) -> None:
    """Register committed raw batches (one commit for all of them)."""
    if batches:
        warehouse.append(BATCH_TABLE, pa.Table.from_pylist([asdict(b) for b in batches], schema=_SCHEMA))


def registered(warehouse: Warehouse, raw_table: str | None = None) -> list[Batch]:
    if not warehouse.exists(BATCH_TABLE):
        return []
    rows = warehouse.read(BATCH_TABLE).to_pylist()
    found = [Batch(**row) for row in rows if raw_table is None or row["raw_table"] == raw_table]
    # a consolidated batch shares its raw version with the last batch it folds; its id sorts after
    return sorted(found, key=lambda b: (b.extract_date, b.raw_version, b.batch_id))


def known_on(warehouse: Warehouse, raw_table: str, as_of: date,
             registry: list[Batch] | None = None) -> list[Batch]:
    """Batches of a raw table extracted on or before the as-of date, oldest first; from `registry`
    (`registered(warehouse)`, read once for every table of a step) when given."""
    day = as_of.isoformat()
    found = registered(warehouse, raw_table) if registry is None else [
        b for b in registry if b.raw_table == raw_table]
    return [b for b in found if b.extract_date <= day]


@dataclass(frozen=True)
class Snapshot:
    """The batches that make up a raw table's state on a date: the last base (a full extract or a
    consolidation), the increments after it, and the latest key reconciliation after it (for
    deletions), if any."""

    data: list[Batch]
    keys: Batch | None

    @property
    def batch_ids(self) -> list[str]:
        return [b.batch_id for b in self.data]


def snapshot(batches: list[Batch]) -> Snapshot | None:
    fulls = [i for i, b in enumerate(batches) if b.kind in BASE_KINDS]
    if not fulls:
        return None
    after = batches[fulls[-1]:]
    keys = [b for b in after[1:] if b.kind == "keys"]
    return Snapshot([b for b in after if b.carries_data], keys[-1] if keys else None)
