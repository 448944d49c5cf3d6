"""What each staged entity was built from (`kam_stage_state`), so the next night re-checks only
what changed instead of the whole history.

A night may stage an entity incrementally only when tonight's snapshot extends the one its
staged tables were built from: the same full batch and key reconciliation, the same checking SQL
(mapping, rules, parents), an as-of date not earlier, and the staged tables still at the versions
recorded here; or extends it with a newer key reconciliation, whose deletions the merge re-checks.
Anything else — a full refresh, a replay of an earlier night, a changed mapping, a
crash between a table's commit and this record's — falls back to a full rebuild, which is always
correct; the incremental path is only ever an optimisation of it.

A merge also records the version it started from and the keys it re-checked (`kam_stage_changes`,
one commit for the night): every other staged row is the one of that version. `validate` records
the versions whose keys it found unique, and on a night merged from such a version checks only the
re-checked keys (a duplicate needs a row of one of them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipelines.batches import Snapshot
from pipelines.warehouse import Warehouse

STATE_TABLE = "kam_stage_state"
CHANGES_TABLE = "kam_stage_changes"


@dataclass(frozen=True)
class StagedFrom:
    entity: str
    as_of: str
    recipe: str
    full_batch: str
    keys_batch: str | None
    batches: str  # JSON list of the increment batch ids already staged
    stg_version: int
    quarantine_version: int
    merged_from: int | None = None  # the stg version tonight's merge started from; None: rebuilt
    changes_version: int | None = None  # the version of CHANGES_TABLE holding the merge's keys
    merged_to: int | None = None  # the stg version tonight's merge left (validate may move stg_version on)
    unique_at: int | None = None  # the last stg version validate found the keys of unique

    @property
    def increment_ids(self) -> set[str]:
        return set(json.loads(self.batches))


def recipe(sql: str) -> str:
    """A fingerprint of the SQL that checks an entity: a change to it invalidates what was staged."""
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def load(warehouse: Warehouse) -> dict[str, StagedFrom]:
    if not warehouse.exists(STATE_TABLE):
        return {}
    return {row["entity"]: StagedFrom(**row) for row in warehouse.read(STATE_TABLE).to_pylist()}


def save(warehouse: Warehouse, states: list[StagedFrom]) -> None:
    """Replace the whole record in one commit, written after every staged table it describes."""
    warehouse.write(STATE_TABLE, pa.Table.from_pylist([asdict(s) for s in states]))


def new_increments(previous: StagedFrom | None, snap: Snapshot, as_of: date, sql: str,
                   warehouse: Warehouse) -> list | None:
    """The increment batches to add to what is staged, or None when the entity must be rebuilt."""
    if previous is None or previous.as_of > as_of.isoformat() or previous.recipe != recipe(sql):
        return None
    if snap.data[0].batch_id != previous.full_batch:
        return None
    tonight_keys = snap.keys.batch_id if snap.keys else None
    if tonight_keys != previous.keys_batch and (tonight_keys is None or
                                                 (previous.keys_batch or "") > tonight_keys):
        return None  # a newer key reconciliation is merged (`reconciled`); any other change is not
    staged = previous.increment_ids
    ids = {b.batch_id for b in snap.data[1:]}
    if not staged <= ids:  # a staged batch is no longer in tonight's snapshot
        return None
    entity = previous.entity
    if (warehouse.version(f"stg_{entity}"), warehouse.version(f"quarantine_{entity}")) != (
        previous.stg_version, previous.quarantine_version
    ):
        return None
    return [b for b in snap.data[1:] if b.batch_id not in staged]


def changed_keys_only(state: StagedFrom | None, stg_version: int | None, changes_version: int | None) -> bool:
    """The staged table is a merge, unchanged since, of a version whose keys were found unique:
    only the keys the merge re-checked can be duplicated."""
    return (state is not None and state.merged_from is not None and state.unique_at == state.merged_from
            and state.stg_version == stg_version and state.changes_version is not None
            and state.changes_version == changes_version)


def rechecked_rows_file(warehouse: Warehouse, state: StagedFrom | None,
                        stg_version: int | None) -> Path | None:
    """The file holding exactly the staged rows of the keys tonight's merge re-checked, while the
    staged table is still the version that merge rewrote: staging writes them as the last part of
    its rewrite (`Warehouse.write_parts`). None after an append or no change (the rows are spread
    over the table's files; the latest commit may be an earlier night's rewrite), a rebuild, or any
    later commit."""
    if (state is None or state.merged_from is None or state.merged_to is None
            or state.merged_to == state.merged_from or state.merged_to != stg_version):
        return None
    files = warehouse.part_files(f"stg_{state.entity}")
    return files[-1] if files is not None and len(files) == 2 else None


def reconciled(previous: StagedFrom, snap: Snapshot) -> bool:
    """Tonight's snapshot holds a key reconciliation the staged tables have not seen."""
    return snap.keys is not None and snap.keys.batch_id != previous.keys_batch
