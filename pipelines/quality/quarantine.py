"""What the quarantine holds, a run's quality report, and re-validating held rows after a rule change.

Held rows come back on their own when the source is corrected: staging rebuilds every entity
from the raw snapshot each night and `validate` re-applies the suite, so a fixed row passes. What
cannot wait for the next night — a rule widened in kam.yaml, a parent that arrived since — is
`revalidate`: it runs the current suite over the held rows and, with `release`, moves the rows that
now pass back into `stg_<entity>` (the next `build` uses them).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from pipelines.canonical import ENTITIES, build_order
from pipelines.config import Settings
from pipelines.duckdb_session import Session
from pipelines.ledger import runs
from pipelines.quality.suites import (
    DATE_AFTER_AS_OF,
    DATE_BEFORE_FLOOR,
    DUPLICATE_KEY,
    INVALID_CODE,
    MISSING_VALUE,
    NEGATIVE_VALUE,
    NOT_ALLOWED_VALUE,
    NOT_POSITIVE,
    OUT_OF_RANGE,
    UNKNOWN_REFERENCE,
    UNPARSEABLE_VALUE,
    entity_suite,
    q,
)
from pipelines.quality.validate import EXAMPLES, REASON_CODE, RUN_ID, _key_sql, quality_dir
from pipelines.warehouse import Warehouse

# Reasons the suite can decide again on a held row; others (a staging rule like "due_date before
# invoice_date") are decided by staging, on the next run.
RECHECKABLE = {MISSING_VALUE, UNPARSEABLE_VALUE, DUPLICATE_KEY, UNKNOWN_REFERENCE, DATE_AFTER_AS_OF,
               DATE_BEFORE_FLOOR, NOT_POSITIVE, NEGATIVE_VALUE, OUT_OF_RANGE, NOT_ALLOWED_VALUE, INVALID_CODE}


def held(settings: Settings, entities: list[str] | None = None) -> list[dict]:
    """Per entity, reason code and expectation: rows held, the run that held them, example keys."""
    warehouse = Warehouse(settings.warehouse_path)
    out = []
    with Session(warehouse, date.min) as session:  # nothing here depends on the as-of date
        for entity in build_order(settings.mapped_entities):
            table = f"quarantine_{entity}"
            if (entities and entity not in entities) or not warehouse.exists(table):
                continue
            session.expose(table)
            cols = {c for c, *_ in session.con.execute(f'DESCRIBE "{table}"').fetchall()}
            code = REASON_CODE if REASON_CODE in cols else "'(not validated yet)'"
            exp = "_expectation" if "_expectation" in cols else "_reject_reason"
            run = RUN_ID if RUN_ID in cols else "NULL"
            for reason, expectation, run_id, n, examples in session.con.execute(
                f"SELECT {code}, {exp}, {run}, count(*) AS n, "
                f"list({_key_sql(entity)} ORDER BY {_key_sql(entity)})[1:{EXAMPLES}] "
                f'FROM "{table}" GROUP BY ALL ORDER BY n DESC, 1, 2'
            ).fetchall():
                out.append({"entity": entity, "reason_code": reason, "expectation": expectation,
                            "run_id": run_id, "rows": n, "examples": examples})
    return out


def revalidate(settings: Settings, as_of: date, entities: list[str] | None = None, *,
               release: bool = False) -> list[dict]:
    """Run the current suite over the held rows; with `release`, move the rows that pass to stg_*.

    Returns per entity: rows held, rows that now pass, rows still failing, rows not re-checkable."""
    warehouse = Warehouse(settings.warehouse_path)
    out = []
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        for entity in build_order(settings.mapped_entities):
            table, stg = f"quarantine_{entity}", f"stg_{entity}"
            if (entities and entity not in entities) or not warehouse.exists(table):
                continue
            session.expose(table, alias="_held")
            if not warehouse.exists(stg):
                raise RuntimeError(f"{stg} not found: run `kam stage --as-of {as_of}` first")
            session.expose(stg, alias="_stg")
            cols = {c for c, *_ in session.con.execute('DESCRIBE "_held"').fetchall()}
            if REASON_CODE not in cols:
                raise RuntimeError(f"{table} has no reason codes yet: "
                                   f"run `kam validate --as-of {as_of}` first")
            suite = entity_suite(entity, settings, as_of)
            fails = [e.failing_sql() for e in suite if e.row_level and e.kind != "in_parent"]
            for e in suite:
                if e.kind == "in_parent":
                    parent, pcol = e.parent
                    if warehouse.exists(parent):
                        session.expose(parent, alias=f"_p_{parent}")
                        fails.append(f"COALESCE({q(e.columns[0])} NOT IN "
                                     f"(SELECT {q(pcol)} FROM _p_{parent}), FALSE)")
            key = ", ".join(q(k) for k in ENTITIES[entity].key)
            same = " AND ".join(f"s.{q(k)} = h.{q(k)}" for k in ENTITIES[entity].key)
            codes = ", ".join(f"'{c}'" for c in sorted(RECHECKABLE))
            session.con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _judged AS
                SELECT *, {REASON_CODE} IN ({codes}) AS _recheckable,
                       NOT ({' OR '.join(fails) if fails else 'FALSE'})
                       AND NOT EXISTS (SELECT 1 FROM _stg s WHERE {same}) AS _passes
                FROM _held h
            """)
            # Several held versions of one key: only the newest-looking one may go back.
            session.con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _judged AS
                SELECT * EXCLUDE (_rank), _passes AND _recheckable AND _rank = 1 AS _release FROM (
                    SELECT *, row_number() OVER (PARTITION BY {key}, (_passes AND _recheckable)
                                                 ORDER BY {RUN_ID} DESC NULLS LAST) AS _rank
                    FROM _judged)
            """)
            total, passing, fixed_later = session.con.execute(
                "SELECT count(*), count(*) FILTER (_release), count(*) FILTER (NOT _recheckable) FROM _judged"
            ).fetchone()
            row = {"entity": entity, "held": total, "now_pass": passing,
                   "still_failing": total - passing - fixed_later, "decided_by_staging": fixed_later,
                   "released": 0}
            if release and passing:
                canonical = ", ".join(q(c) for c in ENTITIES[entity].columns)
                session.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE _back AS SELECT {canonical} FROM _judged WHERE _release")
                warehouse.append(stg, session.con.execute("SELECT * FROM _back").to_arrow_table())
                session.write(table, "SELECT * EXCLUDE (_recheckable, _passes, _release) "
                                     "FROM _judged WHERE NOT _release")
                row["released"] = passing
            out.append(row)
    return out


def latest_run_with_report(settings: Settings) -> str | None:
    folder = settings.warehouse_path / "quality"
    for row in runs(Warehouse(settings.warehouse_path)):
        if row["step"] == "validate" and (folder / row["run_id"] / "validate.json").exists():
            return row["run_id"]
    return None


def report(settings: Settings, run_id: str) -> dict:
    """A run's quality reports (validate and check) and its ledger counts."""
    folder = quality_dir(settings, run_id)
    found: dict = {"run_id": run_id, "folder": str(folder)}
    for step in ("validate", "check"):
        path = folder / f"{step}.json"
        if path.exists():
            found[step] = json.loads(path.read_text())
    ledger = {r["step"]: r for r in runs(Warehouse(settings.warehouse_path), run_id=run_id)}
    found["ledger"] = {step: {"status": r["status"], "rows": json.loads(r["rows"]) if r["rows"] else {}}
                       for step, r in ledger.items() if step in ("validate", "check")}
    if "validate" not in found and "check" not in found:
        raise FileNotFoundError(f"no quality report for run {run_id} under {folder}")
    return found


def docs_index(settings: Settings, run_id: str, step: str = "validate") -> Path:
    return quality_dir(settings, run_id) / f"{step}_docs" / "index.html"

