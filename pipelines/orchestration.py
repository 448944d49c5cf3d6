"""What an Airflow task needs beyond the step itself: the as-of date from the run, a small receipt.

Kept out of `dags/` so the DAG file only wires, and importable without Airflow so it is tested
like any other function.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any

from pipelines.config import CONFIG_ENV
from pipelines.nightly import run_step


def as_of_from_context(context: dict[str, Any]) -> date:
    """The run's as-of date: its logical date, or for a run without one (a manual trigger in
    Airflow 3) the moment it was scheduled to run after. Never the wall clock."""
    for key in ("logical_date", "data_interval_end"):
        value = context.get(key)
        if value is not None:
            return _to_date(value)
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    if run_after is not None:
        return _to_date(run_after)
    raise ValueError("the task context has no logical date and no run_after: cannot pick an as-of date")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def run_task(step: str, context: dict[str, Any]) -> dict[str, Any]:
    """Run one nightly step for the task's run; returns a receipt small enough for XCom."""
    as_of = as_of_from_context(context)
    params = context.get("params") or {}
    config = params.get("config") or os.environ.get(CONFIG_ENV)
    run_id = context.get("run_id")
    result = run_step(step, as_of, config, run_id=f"{as_of.isoformat()}-{run_id}" if run_id else None)
    return {
        "step": step,
        "as_of": as_of.isoformat(),
        "rows": result.total_rows,
        "tables": sorted(result.rows),
        "seconds": round(result.seconds, 3),
    }
