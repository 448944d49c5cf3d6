"""The run ledger (`kam_run`): every run and step, its status, row counts, time and lineage.

A step appends a `running` row when it starts and a `success` or `failed` row when it ends, so a
step whose process was killed is visible as one that never finished. Lineage is the Delta version
of every table the step read and wrote: with it, any mart can be traced to the raw batches behind
it, and any table can be read back at the version a run saw (`DeltaTable(..., version=N)`).

The ledger holds wall-clock times because they describe the run; no result is computed from them.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa

from pipelines.results import StepResult
from pipelines.warehouse import Warehouse, tracking

RUN_TABLE = "kam_run"

_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("as_of", pa.date32()), ("step", pa.string()), ("status", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")), ("ended_at", pa.timestamp("us", tz="UTC")),
    ("seconds", pa.float64()), ("rows", pa.string()), ("versions_read", pa.string()),
    ("versions_written", pa.string()), ("message", pa.string()),
])


def new_run_id(as_of: date) -> str:
    """`<as-of>-<random>`: readable, sortable by as-of date, and unique across re-runs."""
    return f"{as_of.isoformat()}-{uuid.uuid4().hex[:8]}"


@dataclass
class StepRecord:
    run_id: str
    as_of: date
    step: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    result: StepResult | None = None


def _row(rec: StepRecord, status: str, *, ended: datetime | None = None, lineage=None,
         message: str | None = None) -> dict:
    result = rec.result
    return {
        "run_id": rec.run_id, "as_of": rec.as_of, "step": rec.step, "status": status,
        "started_at": rec.started_at, "ended_at": ended,
        "seconds": (ended - rec.started_at).total_seconds() if ended else None,
        "rows": json.dumps(result.rows, sort_keys=True) if result else None,
        "versions_read": json.dumps(lineage.read, sort_keys=True) if lineage else None,
        "versions_written": json.dumps(lineage.written, sort_keys=True) if lineage else None,
        "message": message,
    }


def _append(warehouse: Warehouse, row: dict) -> None:
    warehouse.append(RUN_TABLE, pa.Table.from_pylist([row], schema=_SCHEMA))


@contextmanager
def recorded(warehouse: Warehouse, run_id: str, as_of: date, step: str) -> Iterator[StepRecord]:
    """Record a step in the ledger around the block; set `.result` inside it."""
    rec = StepRecord(run_id, as_of, step)
    _append(warehouse, _row(rec, "running"))
    with tracking() as lineage:
        try:
            yield rec
        except BaseException as exc:
            if rec.result is None:  # a step that stops on purpose still reports its counts
                rec.result = getattr(exc, "result", None)
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-4000:]
            _append(warehouse, _row(rec, "failed", ended=datetime.now(UTC), lineage=lineage,
                                    message=message))
            raise
    _append(warehouse, _row(rec, "success", ended=datetime.now(UTC), lineage=lineage,
                            message="; ".join(rec.result.notes)[-4000:] if rec.result else None))


def runs(warehouse: Warehouse, *, run_id: str | None = None, limit: int | None = None) -> list[dict]:
    """Each run step's final state, newest run first: a step with only its `running` row is
    reported `unfinished` (its process died without saying so)."""
    if not warehouse.exists(RUN_TABLE):
        return []
    rows = warehouse.read(RUN_TABLE).to_pylist()
    latest: dict[tuple[str, str], dict] = {}
    for row in sorted(rows, key=lambda r: (r["started_at"], r["ended_at"] is not None)):
        if run_id is None or row["run_id"] == run_id:
            latest[(row["run_id"], row["step"])] = row
    out = []
    for row in latest.values():
        row = dict(row)
        if row["status"] == "running":
            row["status"] = "unfinished"
        out.append(row)
    out.sort(key=lambda r: r["started_at"], reverse=True)
    if limit:
        run_ids = list(dict.fromkeys(r["run_id"] for r in out))[:limit]
        out = [r for r in out if r["run_id"] in run_ids]
    return out
