"""The warehouse: Delta Lake tables in one folder per layer, the only place that reads or writes them.

Every write is a single Delta commit, so a BI tool reading while the nightly run writes sees either
the previous complete version or the new one, never half a table; a run that dies mid-write leaves
an uncommitted Parquet file behind and the table at its last good version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable, write_deltalake

LAYERS = ("raw", "staging", "marts")
_PREFIX_LAYER = {"raw_": "raw", "stg_": "staging", "quarantine_": "staging"}


def layer_of(table: str) -> str:
    """Layer a table belongs to, from its name: raw_* → raw, stg_*/quarantine_* → staging, else marts."""
    for prefix, layer in _PREFIX_LAYER.items():
        if table.startswith(prefix):
            return layer
    return "marts"


@dataclass(frozen=True)
class Warehouse:
    root: Path

    def path(self, table: str) -> Path:
        return self.root / layer_of(table) / table

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(str(self.path(table)))

    def tables(self, layer: str | None = None) -> list[str]:
        layers = [layer] if layer else LAYERS
        found = []
        for name in layers:
            folder = self.root / name
            if folder.is_dir():
                found += sorted(p.name for p in folder.iterdir() if DeltaTable.is_deltatable(str(p)))
        return found

    def table(self, table: str) -> DeltaTable:
        if not self.exists(table):
            raise FileNotFoundError(
                f"warehouse table {table!r} not found under {self.root}; run the step that builds it"
            )
        return DeltaTable(str(self.path(table)))

    def version(self, table: str) -> int | None:
        return self.table(table).version() if self.exists(table) else None

    def dataset(self, table: str) -> ds.Dataset:
        """A lazily scanned Arrow dataset of the table's current version (filters push down)."""
        return self.table(table).to_pyarrow_dataset()

    def read(self, table: str, columns: Iterable[str] | None = None) -> pa.Table:
        return self.dataset(table).to_table(columns=list(columns) if columns else None)

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        partition_by: list[str] | None = None,
        replace_where: str | None = None,
    ) -> int:
        """Replace the table (or, with `replace_where`, only the matching rows) in one commit.

        Returns the new Delta version. Writing the same data again replaces it with equal content,
        which is what makes a re-run for the same as-of date idempotent.
        """
        path = self.path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        if replace_where and self.exists(table):
            write_deltalake(str(path), data, mode="overwrite", predicate=replace_where)
        else:
            write_deltalake(
                str(path), data, mode="overwrite", schema_mode="overwrite", partition_by=partition_by
            )
        return DeltaTable(str(path)).version()
