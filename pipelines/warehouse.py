"""The warehouse: Delta Lake tables in one folder per layer, the only place that reads or writes them.

Every write is a single Delta commit, so a BI tool reading while the nightly run writes sees either
the previous complete version or the new one, never half a table; a run that dies mid-write leaves
an uncommitted Parquet file behind and the table at its last good version.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Field, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

from pipelines.duck import sql_literal

if TYPE_CHECKING:  # imported by delta-rs when a dataset is made: it imports pandas (0.8 s a start)
    import pyarrow.dataset as ds

LAYERS = ("raw", "staging", "marts", "meta")
# DuckDB column types its Parquet writer stores as its Arrow export gives them
_PARQUET_SAFE = re.compile(r"^(VARCHAR|BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|FLOAT|DOUBLE|DATE|TIMESTAMP"
                           r"|DECIMAL\(\d+,\d+\))$")
METADATA_PREFIX = "kam."  # the keys KAM puts into a commit's info (`Warehouse.write(metadata=...)`)
PARTS = "kam.parts"  # the files `write_parts` wrote, one per part
_PREFIX_LAYER = {"raw_": "raw", "stg_": "staging", "quarantine_": "staging", "kam_": "meta"}


@dataclass
class Lineage:
    """Delta versions a step read and wrote: what the run ledger records as lineage. A table read
    at two versions (an earlier one to see what changed since) is recorded at the newer."""

    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)


_LINEAGE: ContextVar[Lineage | None] = ContextVar("kam_lineage", default=None)


@contextmanager
def tracking() -> Iterator[Lineage]:
    """Collect every table version read or written inside the block (per thread/task)."""
    lineage = Lineage()
    token = _LINEAGE.set(lineage)
    try:
        yield lineage
    finally:
        _LINEAGE.reset(token)


def _note(kind: str, table: str, version: int) -> None:
    lineage = _LINEAGE.get()
    if lineage is not None and not table.startswith("kam_"):
        noted = getattr(lineage, kind)
        noted[table] = max(version, noted.get(table, version))


def _properties(metadata: dict[str, str] | None) -> CommitProperties | None:
    if not metadata:
        return None
    assert all(k.startswith(METADATA_PREFIX) for k in metadata), metadata
    return CommitProperties(custom_metadata=metadata)


def layer_of(table: str) -> str:
    """Layer of a table, from its name: raw_* → raw, stg_*/quarantine_* → staging, kam_* → meta
    (the run ledger and the extract batch registry), anything else → marts."""
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

    def table(self, table: str, version: int | None = None) -> DeltaTable:
        if not self.exists(table):
            raise FileNotFoundError(
                f"warehouse table {table!r} not found under {self.root}; run the step that builds it"
            )
        return DeltaTable(str(self.path(table)), version=version)

    def version(self, table: str) -> int | None:
        return self.table(table).version() if self.exists(table) else None

    def dataset(self, table: str) -> ds.Dataset:
        """A lazily scanned Arrow dataset of the table's current version (filters push down)."""
        delta = self.table(table)
        _note("read", table, delta.version())
        return self._arrow_dataset(table, delta)

    def _arrow_dataset(self, table: str, delta: DeltaTable) -> ds.Dataset:
        """The version's files on Arrow's own local file system. delta-rs' default wraps its
        storage in a Python file system, which Arrow's reader threads release holding Python's
        lock: when a scan's readahead ended after the interpreter began its exit, that release
        aborted the process ("terminate called without an active exception"; 2 of 15 runs of a
        script writing the run report twice, gdb: `~PyFileSystem` on an Arrow thread)."""
        local = SubTreeFileSystem(str(self.path(table)), LocalFileSystem())
        return delta.to_pyarrow_dataset(filesystem=local)

    def scan(self, table: str, version: int | None = None
             ) -> tuple[ds.Dataset, list[tuple[dict[str, str | None], list[str]]]]:
        """One version of the table (the current one unless `version`) two ways: as an Arrow
        dataset, and as its Parquet files grouped by partition values (one group with no values
        for an unpartitioned table). Partition values live in the log, not in the files, so a
        reader of the files adds them per group. KAM writes no deletion vectors, so the files are
        exactly the rows."""
        delta = self.table(table, version)
        _note("read", table, delta.version())
        partitions = delta.metadata().partition_columns
        uris = list(delta.file_uris())
        if not partitions:
            return self._arrow_dataset(table, delta), [({}, uris)] if uris else []
        actions = pa.table(delta.get_add_actions(flatten=True))
        values = [actions.column(f"partition.{c}").to_pylist() for c in partitions]
        root = str(self.path(table))
        groups: dict[tuple, list[str]] = {}
        for i, path in enumerate(actions.column("path").to_pylist()):
            key = tuple(str(v[i]) if v[i] is not None else None for v in values)
            groups.setdefault(key, []).append(path if os.path.isabs(path) else os.path.join(root, path))
        return self._arrow_dataset(table, delta), [(dict(zip(partitions, k, strict=True)), f)
                                            for k, f in sorted(groups.items(), key=lambda kv: str(kv[0]))]

    def rows(self, table: str) -> int:
        """Rows of the table's current version, from the Delta log (no data read)."""
        actions = pa.table(self.table(table).get_add_actions(flatten=True))
        return int(pc.sum(actions.column("num_records")).as_py() or 0)

    def read(self, table: str, columns: Iterable[str] | None = None) -> pa.Table:
        return self.dataset(table).to_table(columns=list(columns) if columns else None)

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        partition_by: list[str] | None = None,
        replace_where: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> int:
        """Replace the table (or, with `replace_where`, only the matching rows) in one commit.

        Returns the new Delta version. Writing the same data again replaces it with equal content,
        which is what makes a re-run for the same as-of date idempotent. `metadata` goes into the
        commit (`commit_metadata` reads it back): what the rows were made from, atomically with them.
        """
        path = self.path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        if replace_where and self.exists(table):
            write_deltalake(str(path), data, mode="overwrite", predicate=replace_where,
                            commit_properties=_properties(metadata))
        else:
            write_deltalake(
                str(path), data, mode="overwrite", schema_mode="overwrite", partition_by=partition_by,
                commit_properties=_properties(metadata),
            )
        return self._committed(table)

    def commit_metadata(self, table: str) -> dict[str, str]:
        """The `metadata` the table's latest commit was written with (empty if none, or if a later
        commit, such as a compaction, carries none)."""
        if not self.exists(table):
            return {}
        latest = self.table(table).history(1)[0]
        return {k: v for k, v in latest.items() if k.startswith(METADATA_PREFIX)}

    def annotate(self, table: str, metadata: dict[str, str]) -> int:
        """A commit that changes no rows and carries `metadata`: what `commit_metadata` says from now
        on. Not lineage (no data changes), as compaction and vacuum are not."""
        delta = self.table(table)
        delta.create_write_transaction([], mode="append", schema=delta.schema(),
                                       commit_properties=_properties(metadata))
        return self.table(table).version()

    def append(self, table: str, data: pa.Table | pa.RecordBatchReader,
               partition_by: list[str] | None = None) -> int:
        """Add rows in one commit (new columns are merged into the table's schema)."""
        path = self.path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), data, mode="append", schema_mode="merge", partition_by=partition_by)
        return self._committed(table)

    def write_query(self, table: str, con, sql: str, mode: str = "overwrite",
                    metadata: dict[str, str] | None = None) -> int:
        """Replace the table with a DuckDB query's result (or, with mode "append", add its rows) in
        one commit: DuckDB writes the Parquet file into the table's folder (its writer encodes on
        every core), the commit records it.

        At a million customers staging rewrites 75M rows a night; through Arrow into delta-rs'
        writer that took about a third longer (30M order lines: 5.7 s against 3.8 s). Column
        types DuckDB stores differently in Parquet than it hands to Arrow (HUGEINT as DOUBLE,
        time zones) take the Arrow path (`write`), so a table's schema is the same either way."""
        types = [row[1] for row in con.execute(f"DESCRIBE {sql}").fetchall()]
        if not all(_PARQUET_SAFE.match(t) for t in types):
            rows = con.execute(sql).to_arrow_reader(256_000)
            if mode == "append":
                assert metadata is None, "metadata is for the commits that replace a table"
                return self.append(table, rows)
            return self.write(table, rows, metadata=metadata)
        return self.commit_files(table, [self._parquet_file(table, con, sql)], {}, mode=mode,
                                 metadata=metadata)

    def write_parts(self, table: str, con, parts: list[str]) -> int | None:
        """Replace the table with the rows of several DuckDB queries of one schema, each in its own
        Parquet file, in one commit that names the files in the order of `parts` (`PARTS` in its
        metadata, `part_files` reads them back); returns the version, or None, writing nothing,
        when the queries' columns differ or are not all types DuckDB writes as `write` would.
        A reader can then find one part's rows in its file alone: staging's merge writes tonight's
        re-checked rows apart from the rows it kept, and validate reads those 0.84M order lines
        instead of scanning 30M for their keys."""
        described = [con.execute(f"DESCRIBE {sql}").fetchall() for sql in parts]
        columns = [[(row[0], row[1]) for row in d] for d in described]
        if any(c != columns[0] for c in columns) or not all(_PARQUET_SAFE.match(t) for _, t in columns[0]):
            return None
        files = [self._parquet_file(table, con, sql) for sql in parts]
        return self.commit_files(table, files, {}, mode="overwrite",
                                 metadata={PARTS: json.dumps([f.name for f in files])})

    def _parquet_file(self, table: str, con, sql: str) -> Path:
        """A DuckDB query's rows in a new Parquet file in the table's folder, for a commit to
        record (a file no commit records is left to vacuum)."""
        path = self.path(table)
        path.mkdir(parents=True, exist_ok=True)
        file = path / f"part-{uuid.uuid4()}.parquet"
        con.execute(f"COPY ({sql}) TO {sql_literal(str(file))} (FORMAT parquet)")
        return file

    def part_files(self, table: str) -> list[Path] | None:
        """The files of the parts of the table's latest commit if `write_parts` made it, else None."""
        named = self.commit_metadata(table).get(PARTS)
        return None if named is None else [self.path(table) / name for name in json.loads(named)]

    def commit_files(self, table: str, files: list[Path], partition: dict[str, str], *,
                     append_only: bool = False, mode: str = "append",
                     metadata: dict[str, str] | None = None) -> int:
        """Commit Parquet files already written inside the table's folder, in one Delta commit.

        This is how extraction stays near the speed of the source's bulk export: DuckDB writes
        the Parquet straight from the source scan, and the commit only records the files. New
        columns are added to the table first (a metadata-only commit), so a source that gained a
        column keeps landing; files without a column read it as NULL.
        """
        path = self.path(table)
        schema = pq.read_schema(files[0]).remove_metadata()
        for name in partition:
            schema = schema.append(pa.field(name, pa.string()))
        now = int(time.time() * 1000)
        actions = []
        for file in files:
            rows = pq.read_metadata(file).num_rows
            actions.append(AddAction(
                path=os.path.relpath(file, path), size=file.stat().st_size,
                partition_values=dict(partition), modification_time=now, data_change=True,
                stats=json.dumps({"numRecords": rows}),
            ))
        if not self.exists(table):
            create_table_with_add_actions(
                str(path), DeltaSchema.from_arrow(schema), actions, mode="error",
                partition_by=list(partition),
                configuration={"delta.appendOnly": "true"} if append_only else None,
                commit_properties=_properties(metadata),
            )
            return self._committed(table)
        delta = DeltaTable(str(path))
        if mode == "overwrite":  # the files are the whole table now, schema included
            delta.create_write_transaction(actions, mode="overwrite", schema=DeltaSchema.from_arrow(schema),
                                           partition_by=list(partition) or None,
                                           commit_properties=_properties(metadata))
            return self._committed(table)
        known = set(delta.schema().to_arrow().names)
        new = [f for f in schema if f.name not in known]
        if new:
            delta.alter.add_columns([Field.from_arrow(f) for f in new])
            delta = DeltaTable(str(path))
        delta.create_write_transaction(
            actions, mode="append", schema=delta.schema(), partition_by=list(partition),
            commit_properties=_properties(metadata),
        )
        return self._committed(table)

    def _committed(self, table: str) -> int:
        version = DeltaTable(str(self.path(table))).version()
        _note("written", table, version)
        return version


class WritesBeside:
    """Warehouse writes run in turn on a thread of their own while the caller computes the next
    table. delta-rs encodes and writes without holding Python's lock, so a mart's write overlaps the
    pandas and NumPy work that follows it (at 1M customers, customer_value's 1.2 s write beside the
    alerts). Each write is still one commit, in the order given; the lineage of the caller's
    `tracking()` block records them. A RecordBatchReader streams from the caller's DuckDB
    connection, which one thread must use at a time: it is written on the caller's thread, after the
    writes before it. Made by `writes_beside()`."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kam-write")
        self._context = copy_context()  # the same Lineage: its notes reach the caller's
        self._pending: list[Future] = []

    def write(self, table: str, data: pa.Table | pa.RecordBatchReader, **options) -> None:
        """`Warehouse.write` after the writes before it; queued unless `data` streams."""
        if isinstance(data, pa.RecordBatchReader):
            self.wait()
            self.warehouse.write(table, data, **options)
            return
        self._pending.append(self._pool.submit(self._context.run, self.warehouse.write, table, data,
                                               **options))

    def wait(self) -> None:
        """Return when every write given so far is committed (re-raising the first that failed)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@contextmanager
def writes_beside(warehouse: Warehouse) -> Iterator[WritesBeside]:
    """A `WritesBeside` for the block; the block ends when its writes are committed. If the block
    fails, the writes it gave are still finished (or fail) before its error goes on."""
    writer = WritesBeside(warehouse)
    try:
        yield writer
        writer.wait()
    finally:
        writer.close()
