"""Extract: copy every mapped source table into the raw layer, untouched, one partition per as-of date.

Raw keeps the source's own column names and types so that any night can be rebuilt from it and a
mapping mistake is fixed by re-running staging, not by re-reading the source. Each source table is
read once even when several entities map it; each raw table is one Delta commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from pipelines.config import EntityMapping, Settings
from pipelines.results import StepResult
from pipelines.sources import is_type_mismatch, read_source
from pipelines.warehouse import Warehouse

EXTRACT_DATE = "_extract_date"
BATCH_ID = "_batch_id"
SOURCE = "_source"


@dataclass(frozen=True)
class RawTable:
    """One source read: a table, or a query named after the entity it feeds."""

    source: str
    table: str | None
    query: str | None
    name: str

    @property
    def warehouse_name(self) -> str:
        return f"raw_{self.source}__{self.name}"


def raw_table_for(entity: str, mapping: EntityMapping) -> RawTable:
    return RawTable(mapping.source, mapping.table, mapping.query, mapping.table or entity)


def planned_reads(settings: Settings) -> list[RawTable]:
    seen: dict[str, RawTable] = {}
    for entity, mapping in settings.config.entities.items():
        raw = raw_table_for(entity, mapping)
        seen.setdefault(raw.warehouse_name, raw)
    return list(seen.values())


def _with_batch_columns(reader: pa.RecordBatchReader, as_of: date, raw: RawTable) -> pa.RecordBatchReader:
    """Tag every row with the partition it lands in and the batch that brought it."""
    batch_id = f"{raw.warehouse_name}@{as_of.isoformat()}"
    schema = (
        reader.schema.append(pa.field(EXTRACT_DATE, pa.string()))
        .append(pa.field(BATCH_ID, pa.string()))
        .append(pa.field(SOURCE, pa.string()))
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            n = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [
                    *batch.columns,
                    pa.array([as_of.isoformat()] * n, pa.string()),
                    pa.array([batch_id] * n, pa.string()),
                    pa.array([raw.source] * n, pa.string()),
                ],
                schema=schema,
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


class _Counting:
    """Counts rows as the Delta writer pulls batches through, without materialising them."""

    def __init__(self, reader: pa.RecordBatchReader):
        self.rows = 0
        self.schema = reader.schema
        self._reader = reader

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            for batch in self._reader:
                self.rows += batch.num_rows
                yield batch

        return pa.RecordBatchReader.from_batches(self.schema, batches())


def _land(warehouse: Warehouse, url, raw: RawTable, as_of: date, *, as_text: bool) -> _Counting:
    with read_source(url, table=raw.table, query=raw.query, as_text=as_text) as reader:
        counting = _Counting(_with_batch_columns(reader, as_of, raw))
        warehouse.write(
            raw.warehouse_name,
            counting.reader(),
            partition_by=[EXTRACT_DATE],
            replace_where=f"{EXTRACT_DATE} = '{as_of.isoformat()}'",
        )
    return counting


def extract(settings: Settings, as_of: date, *,
            on_table: Callable[[str, int], None] | None = None) -> StepResult:
    """Land every mapped source table in raw, replacing only this as-of date's partition."""
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("extract")
    for raw in planned_reads(settings):
        url = settings.source_url(raw.source)
        try:
            counting = _land(warehouse, url, raw, as_of, as_text=False)
        except Exception as exc:  # a failed write commits nothing, so reading again is safe
            if not is_type_mismatch(exc):
                raise
            counting = _land(warehouse, url, raw, as_of, as_text=True)
            result.notes.append(
                f"{raw.source}.{raw.table}: values that do not fit their declared column type; "
                "landed every column as text (staging quarantines what does not parse)"
            )
        result.rows[raw.warehouse_name] = counting.rows
        if on_table:
            on_table(raw.warehouse_name, counting.rows)
    result.seconds = time.perf_counter() - started
    return result
