"""What an Airflow task needs beyond the step itself: the as-of date from the run, the source URLs
from Airflow connections, the extraction plan, gap detection and a small receipt.

Kept out of `dags/` so the DAG files only wire, and importable without a running Airflow so it is
tested like any other function. Receipts go to XCom: table names and counts, never a URL or a value.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timedelta
from typing import Any

from pipelines import dag_support, notify
from pipelines.airflow_conn import export_source_urls
from pipelines.config import CONFIG_ENV, Settings, load_config
from pipelines.extract import planned_reads
from pipelines.ledger import RUN_TABLE, runs
from pipelines.nightly import run_step
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse

log = logging.getLogger("kam.orchestration")

NIGHT_DONE_STEP = "build"  # a night counts as run once its marts were built


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


def config_for(context: dict[str, Any]) -> str:
    """The `config` param, else $KAM_CONFIG, else the repository's kam.yaml (what the DAG parsed)."""
    params = context.get("params") or {}
    return str(params.get("config") or os.environ.get(CONFIG_ENV) or dag_support.config_file())


def settings_for(context: dict[str, Any]) -> Settings:
    """Load kam.yaml and make every source URL kept in an Airflow connection visible to the step."""
    settings = load_config(config_for(context))
    export_source_urls([s.url_env for s in settings.config.sources.values() if s.url_env])
    return settings


def ledger_run_id(context: dict[str, Any], as_of: date) -> str | None:
    run_id = context.get("run_id")
    return f"{as_of.isoformat()}-{run_id}" if run_id else None


def receipt(result: StepResult, as_of: date) -> dict[str, Any]:
    return {
        "step": result.step,
        "as_of": as_of.isoformat(),
        "rows": result.total_rows,
        "tables": sorted(result.rows),
        "seconds": round(result.seconds, 3),
    }


def mark_outlets(context: dict[str, Any], as_of: date) -> None:
    """Stamp this task's Asset events with the as-of date, so DAGs they trigger know the night."""
    task = context.get("task")
    events = context.get("outlet_events")
    if task is None or events is None:
        return
    for outlet in getattr(task, "outlets", None) or []:
        events[outlet].extra = {"as_of": as_of.isoformat(), "run_id": context.get("run_id")}


def run_task(step: str, context: dict[str, Any], *, as_of: date | None = None, **options) -> dict[str, Any]:
    """Run one nightly step for the task's run; returns a receipt small enough for XCom."""
    as_of = as_of or as_of_from_context(context)
    settings = settings_for(context)
    result = run_step(step, as_of, settings, run_id=ledger_run_id(context, as_of), **options)
    for note in result.notes:
        log.warning("%s: %s", step, note)
    mark_outlets(context, as_of)
    return receipt(result, as_of)


def extract_table(table: str, context: dict[str, Any]) -> dict[str, Any]:
    """One mapped extract task: land tonight's batch of one raw table."""
    out = run_task("extract", context, tables=[table])
    out["table"] = table
    return out


# --- the night's plan: which tables each source task extracts, and which nights were missed ---

def missed_nights(warehouse: Warehouse, as_of: date) -> list[date]:
    """Dates between the latest earlier night that got as far as `build` and this one, none of
    which did: a schedule that was paused, a scheduler that was down, a run that failed for good."""
    if not warehouse.exists(RUN_TABLE):
        return []
    done = {r["as_of"] for r in runs(warehouse) if r["step"] == NIGHT_DONE_STEP and r["status"] == "success"}
    earlier = [d for d in done if d < as_of]
    if not earlier:
        return []
    last = max(earlier)
    return [last + timedelta(days=i) for i in range(1, (as_of - last).days)]


def describe_gap(missed: list[date], as_of: date) -> str:
    span = missed[0].isoformat() if len(missed) == 1 else f"{missed[0]} .. {missed[-1]}"
    return (f"{len(missed)} night(s) before {as_of} never ran to the end: {span}. Their tier "
            f"history and ledger rows are missing; backfill them: airflow backfill create --dag-id "
            f"kam_nightly --from-date {missed[0]} --to-date {missed[-1]} (or kam backfill --from "
            f"{missed[0]} --to {missed[-1]}).")


def plan_night(context: dict[str, Any], task_sources: list[str]) -> dict[str, Any]:
    """The raw tables each source's mapped extract task lands tonight, and the missed nights.

    `task_sources` are the sources the DAG was parsed with (one extract task each). A source with
    mapped tables but no task means the DAG file is older than kam.yaml: fail, saying so."""
    as_of = as_of_from_context(context)
    settings = settings_for(context)
    by_source: dict[str, list[str]] = {s: [] for s in task_sources}
    for raw in planned_reads(settings):
        if raw.source not in by_source:
            raise RuntimeError(
                f"source {raw.source!r} has mapped tables but the DAG has no extract_{raw.source} task: "
                f"it was parsed with a different kam.yaml than {settings.path}. Wait for the DAG "
                "processor to re-parse (or check KAM_CONFIG is the same for it and the workers)."
            )
        by_source[raw.source].append(raw.warehouse_name)
    missed = missed_nights(Warehouse(settings.warehouse_path), as_of)
    if missed:
        notify.send(f"KAM kam_nightly for {as_of}: missed nights detected", describe_gap(missed, as_of),
                    kind="gap")
    log.info("extract plan for %s: %s", as_of, json.dumps({s: len(t) for s, t in by_source.items()}))
    return {"as_of": as_of.isoformat(), "tables": by_source, "missed_nights": [d.isoformat() for d in missed]}


def summarize_run(context: dict[str, Any], missed: list[str] | None = None) -> dict[str, Any]:
    """The run's report: each step's status, rows and time from the ledger, and any missed nights;
    then what `kam run` also delivers at the end of a green night: the sales-ops exports and the
    HTML run report (this task runs only when every step succeeded)."""
    from pipelines.exports import write_exports
    from pipelines.report import write_run_report

    as_of = as_of_from_context(context)
    settings = settings_for(context)
    run_id = ledger_run_id(context, as_of)
    rows = runs(Warehouse(settings.warehouse_path), run_id=run_id) if run_id else []
    steps = {}
    for r in sorted(rows, key=lambda r: r["started_at"]):
        counts = json.loads(r["rows"]) if r["rows"] else {}
        steps[r["step"]] = {"status": r["status"], "rows": sum(counts.values()),
                            "seconds": round(r["seconds"] or 0.0, 1)}
    lines = [f"KAM night {as_of} (ledger run {run_id}):"]
    lines += [f"  {s:<10} {v['status']:<10} {v['rows']:>12,} rows {v['seconds']:>8.1f} s"
              for s, v in steps.items()]
    if missed:
        lines.append("  missed nights before this one: " + ", ".join(missed))
    written = write_exports(settings, as_of)
    report = write_run_report(settings, as_of, run_id)
    lines.append(f"  exports: {settings.exports_path / as_of.isoformat()} ({len(written) - 1} owners); "
                 f"run report: {report}")
    log.info("\n".join(lines))
    return {"as_of": as_of.isoformat(), "steps": steps, "missed_nights": list(missed or []),
            "exports": len(written), "report": str(report)}


# --- the mining DAG and the quarterly credit DAG ---

def as_of_from_assets(context: dict[str, Any]) -> date | None:
    """The latest as-of date stamped on the Asset events that triggered this run (None if none)."""
    found = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            value = (getattr(event, "extra", None) or {}).get("as_of")
            if value:
                found.append(date.fromisoformat(value))
    return max(found) if found else None


def mined_current_marts(warehouse: Warehouse, as_of: date) -> bool:
    """Whether a successful `mine` for this as-of date read today's customer_value version."""
    current = warehouse.version(dag_support.MINING_TRIGGER)
    for r in runs(warehouse):
        if r["step"] == "mine" and r["status"] == "success" and r["as_of"] == as_of and r["versions_read"]:
            if json.loads(r["versions_read"]).get(dag_support.MINING_TRIGGER) == current:
                return True
    return False


def mine_for_assets(context: dict[str, Any]) -> dict[str, Any]:
    """The mining DAG's task: mine the night the Asset events name, unless it is mined already."""
    as_of = as_of_from_assets(context) or as_of_from_context(context)
    settings = settings_for(context)
    if mined_current_marts(Warehouse(settings.warehouse_path), as_of):
        log.info("customer_value for %s is already mined at its current version: nothing to do", as_of)
        return {"step": "mine", "as_of": as_of.isoformat(), "skipped": "already mined"}
    return run_task("mine", context, as_of=as_of)


def staged_for(warehouse: Warehouse, as_of: date) -> bool:
    return any(r["step"] == "stage" and r["status"] == "success" and r["as_of"] >= as_of
               for r in runs(warehouse))


def rate_credit_task(context: dict[str, Any]) -> dict[str, Any]:
    """kam_quarterly_credit: rate the quarter once tonight's staging is there (else fail and retry)."""
    from pipelines.ledger import new_run_id, recorded
    from pipelines.marts import rate_credit

    as_of = as_of_from_context(context)
    settings = settings_for(context)
    warehouse = Warehouse(settings.warehouse_path)
    if not staged_for(warehouse, as_of):
        raise RuntimeError(
            f"staging for {as_of} is not done yet (kam_nightly for {as_of} has not staged): the credit "
            "rating waits for it and this task retries"
        )
    with recorded(warehouse, ledger_run_id(context, as_of) or new_run_id(as_of), as_of, "credit") as rec:
        rec.result = rate_credit(settings, as_of)
    mark_outlets(context, as_of)
    out = receipt(rec.result, as_of)
    out["rating_quarter"] = rec.result.details.get("rating_quarter")
    return out
