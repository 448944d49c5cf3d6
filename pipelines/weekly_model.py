"""Models a week of nights shares: fitted on one as-of weekday, stored as one row per fit date in a
meta table (`kam_mining_model`, `kam_clv_model`), and read back by the nights in between.

Which model a night uses depends only on its as-of date and what earlier nights stored, so a
re-run or a backfill of the same nights gives the same tables. A night fits when it falls on the
refit weekday, when the weekday is null (refit every night), and when no model of the same
configuration (`fingerprint`) was fitted since the last refit day (the first night, a gap in the
schedule, a changed configuration). A model fitted on tonight's own date is the one a re-run of
tonight fits again, so it is never kept.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.warehouse import Warehouse


def fingerprint(shaping: dict) -> str:
    """A short digest of the configuration that shapes a model: a change to it means a refit."""
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:16]


def refit_day(as_of: date, weekday: int) -> date:
    """The latest scheduled refit day on or before `as_of`."""
    return as_of - timedelta(days=(as_of.weekday() - weekday) % 7)


def kept_row(warehouse: Warehouse, table: str, as_of: date, weekday: int | None,
             fingerprint_: str) -> dict | None:
    """The stored row (fit_date, fingerprint, model) of this week's model for the night `as_of`,
    or None when tonight fits one."""
    if weekday is None or not warehouse.exists(table):
        return None
    start = refit_day(as_of, weekday)
    if start == as_of:
        return None
    stored = warehouse.dataset(table).to_table(
        filter=(pc.field("fit_date") >= pa.scalar(start, pa.date32()))
        & (pc.field("fit_date") < pa.scalar(as_of, pa.date32()))
        & (pc.field("fingerprint") == fingerprint_)).to_pylist()
    return max(stored, key=lambda row: row["fit_date"]) if stored else None


def save_row(warehouse: Warehouse, table: str, fit_date: date, fingerprint_: str, model: str) -> None:
    """Store the model fitted on `fit_date` (a re-run replaces its own night's row)."""
    data = pa.table({"fit_date": pa.array([fit_date], pa.date32()),
                     "fingerprint": pa.array([fingerprint_], pa.string()),
                     "model": pa.array([model], pa.string())})
    warehouse.write(table, data, replace_where=f"fit_date = '{fit_date.isoformat()}'")
