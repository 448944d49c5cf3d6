"""The `validate` step (after `stage`) and the `check` step (after the marts, before `publish`).

validate, per mapped entity in dependency order:
1. rows in = the staged rows (`stg_<entity>`) + the rows staging held back (`quarantine_<entity>`);
2. every row-level expectation of the entity's suite runs over every staged row in one DuckDB scan;
   failing rows leave `stg_<entity>` for `quarantine_<entity>`, and so do children of a parent
   row that was held here (an order line of a quarantined order cannot go on alone);
3. every held row — staging's too — carries `_run_id`, `_expectation` and `_reason_code`;
4. table-level expectations (columns and types, unique key, rows at all) run on the rows passed;
5. stop rules: table-level failures, quarantined share, volume against the last good run, stale
   source. Any of them fails the step, after the quarantine and the report are written and
   before anything is built: the marts and the CRM keep last night's tables.

Counts (rows in = passed + quarantined) go to the run ledger; the report and the Data Docs go to
`<warehouse>/quality/<run id>/` (validate.json and validate_docs/index.html, check.json and
check_docs/index.html). `kam quality` reads them back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import closing, nullcontext
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipelines import stage_state
from pipelines.canonical import ENTITIES, FOREIGN_KEYS, SQL_TYPES, build_order
from pipelines.config import Settings
from pipelines.duck import sql_literal
from pipelines.duckdb_session import Session
from pipelines.ledger import new_run_id, runs
from pipelines.quality.suites import (
    Expectation,
    QualityFailure,
    entity_rules,
    entity_suite,
    mart_suites,
    q,
    staging_reason,
)
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse

RUN_ID, EXPECTATION, REASON_CODE, REJECT = "_run_id", "_expectation", "_reason_code", "_reject_reason"
EXAMPLES = 5
STAGING_FILE = "staging's file"  # how `_merged_rows` read the rows: a view of it


def quality_dir(settings: Settings, run_id: str) -> Path:
    """Where a run's quality report and Data Docs are kept: beside the warehouse, one folder per run."""
    return settings.warehouse_path / "quality" / run_id


def _key_sql(entity: str, alias: str = "") -> str:
    cols = [f"COALESCE(CAST({alias}{q(k)} AS VARCHAR), 'NULL')" for k in ENTITIES[entity].key]
    return cols[0] if len(cols) == 1 else f"concat_ws('/', {', '.join(cols)})"


def _last_good(warehouse: Warehouse, run_id: str, as_of: date) -> dict | None:
    """The latest successful `validate` of another run for this as-of date or before it."""
    for row in runs(warehouse):
        if (row["step"] == "validate" and row["status"] == "success" and row["run_id"] != run_id
                and row["as_of"] <= as_of and row["rows"]):
            return row
    return None


def _register_checks(session: Session, name: str, checks: list[Expectation]) -> None:
    table = pa.table({
        "_check": pa.array(range(len(checks)), pa.int32()),
        EXPECTATION: [e.name for e in checks],
        REASON_CODE: [e.reason for e in checks],
        REJECT: [f"{e.reason} ({', '.join(e.columns)})" for e in checks],
    })
    session.con.register(name, table)


def _annotate_held(session: Session, entity: str, run_id: str) -> str:
    """SQL of the rows staging held, each with the run id, the expectation and the reason code."""
    held = f"_held_{entity}"
    columns = {c for c, *_ in session.con.execute(f'DESCRIBE "{held}"').fetchall()}
    reasons = [r for (r,) in session.con.execute(f'SELECT DISTINCT {REJECT} FROM "{held}"').fetchall()]
    mapped = [staging_reason(entity, r) for r in reasons]
    session.con.register(f"_map_{entity}", pa.table({
        REJECT: pa.array(reasons, pa.string()),
        "_e": pa.array([m[0] for m in mapped], pa.string()),
        "_c": pa.array([m[1] for m in mapped], pa.string()),
    }))
    keep_e = f"h.{EXPECTATION}" if EXPECTATION in columns else "NULL"
    keep_c = f"h.{REASON_CODE}" if REASON_CODE in columns else "NULL"
    drop = [c for c in (RUN_ID, EXPECTATION, REASON_CODE) if c in columns]
    exclude = f" EXCLUDE ({', '.join(drop)})" if drop else ""
    return (
        f"SELECT h.*{exclude}, '{run_id}' AS {RUN_ID}, COALESCE({keep_e}, m._e) AS {EXPECTATION}, "
        f"COALESCE({keep_c}, m._c) AS {REASON_CODE} "
        f'FROM "{held}" h LEFT JOIN "_map_{entity}" m ON h.{REJECT} IS NOT DISTINCT FROM m.{REJECT}'
    )


def _schema_failures(session: Session, view: str, suite: list[Expectation]) -> list[str]:
    have = {c: t for c, t, *_ in session.con.execute(f'DESCRIBE "{view}"').fetchall()}
    problems = []
    for e in suite:
        if e.kind != "column_type":
            continue
        want = SQL_TYPES[e.type_]
        if e.columns[0] not in have:
            problems.append(f"column {e.columns[0]!r} is missing ({e.name})")
        elif have[e.columns[0]].replace(" ", "") != want.replace(" ", ""):
            problems.append(f"column {e.columns[0]!r} is {have[e.columns[0]]}, expected {want} ({e.name})")
    return problems


def _duplicate_keys(session: Session, view: str, columns: tuple[str, ...]) -> tuple[int, list[str]]:
    key = ", ".join(q(c) for c in columns)
    label = " || '/' || ".join(f"COALESCE(CAST({q(c)} AS VARCHAR), 'NULL')" for c in columns)
    n, examples = session.con.execute(
        f'SELECT count(*), list(k ORDER BY k)[1:{EXAMPLES}] FROM '
        f'(SELECT {label} AS k FROM "{view}" GROUP BY {key} HAVING count(*) > 1)'
    ).fetchone()
    return n, examples or []


def _changed_keys(session: Session, entity: str, view: str) -> str:
    """Tonight's re-checked keys of the entity from kam_stage_changes, typed as the view's key."""
    types = {c: t for c, t, *_ in session.con.execute(f'DESCRIBE "{view}"').fetchall()}
    typed = ", ".join(f"CAST(k{i} AS {types[c]}) AS _k{i}" for i, c in enumerate(ENTITIES[entity].key))
    session.materialize(f"_changed_{entity}", f"SELECT DISTINCT {typed} FROM _stage_changes "
                                              f"WHERE entity = '{entity}'")
    return f"_changed_{entity}"


def _merged_rows(session: Session, entity: str, view: str, changed: str,
                 file: Path | None = None) -> tuple[str, str]:
    """The rows of `view` whose key tonight's merge re-checked, which the unique-key check groups
    (at 1M customers 1.0 s against 3.4 s for grouping the 30M order lines) and Great Expectations
    takes its slice from. `file`: staging's file of exactly those rows
    (`stage_state.rechecked_rows_file`), read when it has the view's columns — the view must hold
    every staged row (nothing failed tonight) — as a view of the file: the key check reads its key
    columns and GX its first rows, where loading every column of the re-checked rows (2.4M order
    lines on a Monday at 1M) took 2 s a night; else one semi join of the view with the keys, kept
    as a table (order lines: 0.84M rows read against 30M scanned for their keys, 1.3 s at 1M).
    Returns the relation and which way it was read."""
    name = f"_merged_{entity}"
    if file is not None and file.exists():
        rows = f"SELECT * FROM read_parquet({sql_literal(str(file))})"
        if session.con.execute(f"DESCRIBE {rows}").fetchall() == session.con.execute(
                f'DESCRIBE SELECT * FROM "{view}"').fetchall():
            session.con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {rows}')
            return name, STAGING_FILE
    same = " AND ".join(f"k._k{i} = v.{q(c)}" for i, c in enumerate(ENTITIES[entity].key))
    session.materialize(name, f'SELECT v.* FROM "{view}" v SEMI JOIN "{changed}" k ON {same}')
    return name, "semi join"


def _gx_frame(session: Session, view: str, rows: int, limit: int, merged: str | None = None,
              key: tuple[str, ...] = ()):
    """The table as pandas for GX: all rows up to `limit`, else the first `limit` rows the scan
    yields (a sample would cost a full scan; the decisions were taken in SQL on every row, GX's
    part is its verdict on a slice and the Data Docs). On a merged night (`merged`, the table of
    the rows whose `key` the merge re-checked) the slice is those rows first, then the others:
    otherwise GX would judge the same first rows every night and never what changed.
    Decimals as floats: GX compares numbers."""
    described = session.con.execute(f'DESCRIBE "{view}"').fetchall()
    cols = ", ".join(
        f"CAST(v.{q(c)} AS DOUBLE) AS {q(c)}" if t.startswith("DECIMAL") else f"v.{q(c)}"
        for c, t, *_ in described if not c.startswith("_")
    )
    if rows <= limit or merged is None:
        cap = f" LIMIT {limit}" if rows > limit else ""
        return session.con.execute(f'SELECT {cols} FROM "{view}" v{cap}').to_arrow_table().to_pandas()
    first = session.con.execute(f'SELECT {cols} FROM "{merged}" v LIMIT {limit}').to_arrow_table()
    if first.num_rows < limit:
        keys = ", ".join(q(c) for c in key)
        on = " AND ".join(f"m.{q(c)} = v.{q(c)}" for c in key)
        others = session.con.execute(f'SELECT {cols} FROM "{view}" v ANTI JOIN (SELECT {keys} FROM '
                                     f'"{merged}") m ON {on} LIMIT {limit - first.num_rows}').to_arrow_table()
        first = pa.concat_tables([first, others])
    return first.to_pandas()


def _gx_run(settings: Settings, run_id: str, step: str):
    cfg = settings.config.quality
    if not cfg.data_docs:
        return None
    from pipelines.quality.gx_docs import GxRun

    return GxRun(quality_dir(settings, run_id) / f"{step}_docs", f"{run_id}-{step}")


def _closing(gx):
    """GX's thread ends with the step, also when the step stops early (queued tables dropped)."""
    return nullcontext() if gx is None else closing(gx)


def _judged(entries: dict[str, dict], verdicts: dict) -> list[str]:
    """Every entry's failures, in the entries' order, once GX's verdicts (queued on its thread)
    are in: each goes into its entry's report, and its failures after the entry's own when it
    counts (the table's schema held; else its own failures already say what is wrong)."""
    failures = []
    for name, entry in entries.items():
        if name in verdicts:
            judged, counted = verdicts[name]
            entry["great_expectations"] = judged.result()
            if counted:
                entry["failures"] += _gx_failures(counted, entry["great_expectations"])
        failures += entry["failures"]
    return failures


def _gx_failures(table: str, gx_result: dict) -> list[str]:
    out = []
    for c in gx_result["checks"]:
        if not c["success"]:
            args = ", ".join(f"{k}={v}" for k, v in c["kwargs"].items())
            rows = f" for {c['unexpected_count']:,} rows" if c["unexpected_count"] else ""
            out.append(f"{table}: Great Expectations: {c['expectation']}({args}) failed{rows}")
    return out


def _write_report(settings: Settings, run_id: str, step: str, report: dict) -> Path:
    folder = quality_dir(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{step}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def validate(settings: Settings, as_of: date, *, run_id: str | None = None,
             on_table: Callable[[str, int], None] | None = None) -> StepResult:
    """Check every staged entity against its suite; quarantine failing rows; apply the stop rules."""
    started = time.perf_counter()
    run_id = run_id or new_run_id(as_of)
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("validate")
    report: dict = {"run_id": run_id, "as_of": as_of.isoformat(), "step": "validate", "entities": {}}
    failures: list[str] = []
    last_good = _last_good(warehouse, run_id, as_of)
    last_rows = json.loads(last_good["rows"]) if last_good else {}
    gx = _gx_run(settings, run_id, "validate")
    sql_seconds = 0.0
    # Staging records the versions of the tables it built, to stage the next night incrementally;
    # the rows this step moves stay consistent with that (held keys are re-checked by staging each
    # night), so the record follows this step's commits instead of forcing a full rebuild.
    staged_from = stage_state.load(warehouse)
    state_moved = False
    changes_version = warehouse.version(stage_state.CHANGES_TABLE)
    verdicts: dict = {}  # entity -> (GX's future result, the table its failures count for, or None)
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session, _closing(gx):
        if changes_version is not None:
            session.expose(stage_state.CHANGES_TABLE, alias="_stage_changes")
        rejected: dict[str, str] = {}  # entity -> temp table of its keys held by this step
        for entity in build_order(settings.mapped_entities):
            t0 = time.perf_counter()
            stg, quarantine = f"stg_{entity}", f"quarantine_{entity}"
            if not warehouse.exists(stg):
                raise RuntimeError(f"{stg} not found: run `kam stage --as-of {as_of}` first")
            session.expose(stg, alias=f"_in_{entity}")
            suite = entity_suite(entity, settings, as_of)
            rules = entity_rules(settings, entity)
            checks = [e for e in suite if e.row_level and e.kind != "in_parent"]
            predicates = [e.failing_sql() for e in checks]
            for e in suite:  # cascade: rows whose parent row was held by this step
                parent = e.parent[0].removeprefix("stg_") if e.kind == "in_parent" else None
                if parent in rejected:
                    checks.append(e)
                    predicates.append(
                        f"COALESCE({q(e.columns[0])} IN (SELECT k FROM {rejected[parent]}), FALSE)")
            first = ("CASE " + " ".join(f"WHEN {p} THEN {i}" for i, p in enumerate(predicates)) + " END"
                     if predicates else "CAST(NULL AS INTEGER)")
            _register_checks(session, f"_checks_{entity}", checks)
            staged = session.count(f"_in_{entity}")
            failed = session.materialize(
                f"_failed_{entity}",
                f"SELECT * FROM (SELECT *, {first} AS _check FROM _in_{entity}) WHERE _check IS NOT NULL",
            )
            session.con.execute(
                f'CREATE OR REPLACE TEMP VIEW "_passed_{entity}" AS '
                f"SELECT * FROM _in_{entity} WHERE ({first}) IS NULL"
            )
            parts = []
            if warehouse.exists(quarantine):
                session.expose(quarantine, alias=f"_held_{entity}")
                parts.append(_annotate_held(session, entity, run_id))
            parts.append(
                f"SELECT f.* EXCLUDE (_check), c.{REJECT}, CAST(NULL AS VARCHAR) AS _nulled, "
                f"getvariable('as_of') AS as_of_date, '{run_id}' AS {RUN_ID}, "
                f"c.{EXPECTATION}, c.{REASON_CODE} "
                f'FROM "_failed_{entity}" f JOIN "_checks_{entity}" c USING (_check)'
            )
            held = session.materialize(f"_quarantine_{entity}", " UNION ALL BY NAME ".join(parts))
            before = (warehouse.version(stg), warehouse.version(quarantine))
            recorded = staged_from.get(entity)
            changed = (_changed_keys(session, entity, f"_in_{entity}")
                       if stage_state.changed_keys_only(recorded, before[0], changes_version) else None)
            session.write(quarantine, f'SELECT * FROM "_quarantine_{entity}"')
            if failed:
                # The Delta overwrite is one commit: readers see last version or this one.
                session.write(stg, f'SELECT * FROM "_passed_{entity}"')
                session.expose(stg, alias=f"_in_{entity}")
                session.con.execute(
                    f'CREATE OR REPLACE TEMP VIEW "_passed_{entity}" AS SELECT * FROM _in_{entity}')
                key = ENTITIES[entity].key
                if len(key) == 1 and any(p == entity for fks in FOREIGN_KEYS.values() for _, p, _ in fks):
                    session.materialize(f"_rejected_{entity}",
                                        f'SELECT DISTINCT {q(key[0])} AS k FROM "_failed_{entity}"')
                    rejected[entity] = f"_rejected_{entity}"
            passed = staged - failed
            quarantined = held  # staging's held rows and this step's
            rows_in = passed + quarantined
            result.rows[f"rows_in.{entity}"] = rows_in
            result.rows[f"passed.{entity}"] = passed
            result.rows[f"quarantined.{entity}"] = quarantined

            reasons = session.con.execute(
                f"SELECT {REASON_CODE}, {EXPECTATION}, count(*) AS n, "
                f"list({_key_sql(entity)} ORDER BY {_key_sql(entity)})[1:{EXAMPLES}] "
                f'FROM "_quarantine_{entity}" GROUP BY ALL ORDER BY n DESC, 1, 2'
            ).fetchall()
            entity_failures: list[str] = []
            schema = _schema_failures(session, f"_passed_{entity}", suite)
            entity_failures += [f"{entity}: table-level: {p}" for p in schema]
            unique = None
            # what the unique-key check grouped: every row, or the keys tonight's merge re-checked
            rechecked = (stage_state.rechecked_rows_file(warehouse, recorded, before[0])
                         if changed and not failed else None)
            merged, merged_from = (_merged_rows(session, entity, f"_passed_{entity}", changed, rechecked)
                                   if changed else (None, None))
            unique_checked = session.count(changed) if changed else passed
            for e in suite:
                if e.kind == "unique" and not schema:
                    rows = merged if merged and e.columns == ENTITIES[entity].key else f"_passed_{entity}"
                    dups, examples = _duplicate_keys(session, rows, e.columns)
                    unique = not dups if unique is None else unique and not dups
                    if dups:
                        entity_failures.append(
                            f"{entity}: table-level: {e.name}: {dups:,} keys occur more than once in {stg}, "
                            f"e.g. {', '.join(examples)}")
                if e.kind == "min_rows" and passed < e.min_value:
                    entity_failures.append(
                        f"{entity}: table-level: {e.name}: {passed:,} rows passed ({rows_in:,} rows in); "
                        f"the source table is empty or every row was held")
            if recorded is not None and (recorded.stg_version, recorded.quarantine_version) == before:
                # the record follows this step's commits; its keys are unique at the version passed
                after = warehouse.version(stg)
                staged_from[entity] = replace(recorded, stg_version=after,
                                              quarantine_version=warehouse.version(quarantine),
                                              unique_at=after if unique else None)
                state_moved = True
            share = quarantined / rows_in if rows_in else 0.0
            if rules.max_quarantined_share is not None and share > rules.max_quarantined_share:
                top = ", ".join(f"{code} {n:,} ({exp})" for code, exp, n, _ in reasons[:3])
                entity_failures.append(
                    f"{entity}: quarantined share {share:.1%} ({quarantined:,} of {rows_in:,} rows) is above "
                    f"quality max_quarantined_share {rules.max_quarantined_share:.1%}; top reasons: {top}")
            previous = last_rows.get(f"rows_in.{entity}")
            volume = None
            if previous is not None and previous > 0:
                volume = rows_in / previous - 1
            if (rules.max_volume_change is not None and volume is not None
                    and previous >= rules.volume_min_rows and abs(volume) > rules.max_volume_change):
                entity_failures.append(
                    f"{entity}: volume anomaly: {rows_in:,} rows in against {previous:,} in the last "
                    f"good run {last_good['run_id']} ({volume:+.1%}); quality max_volume_change is "
                    f"±{rules.max_volume_change:.0%}")
            newest = None
            if rules.stale_after_days is not None and rules.freshness_column:
                newest = session.con.execute(
                    f"SELECT CAST(max({q(rules.freshness_column)}) AS DATE) FROM _in_{entity}").fetchone()[0]
                age = (as_of - newest).days if newest else None
                if age is None or age > rules.stale_after_days:
                    column = rules.freshness_column
                    seen = (f"the newest {column} is {newest} ({age} days before the as-of date)"
                            if newest else f"no row has a {column}")
                    entity_failures.append(f"{entity}: stale source: {seen}; "
                                           f"quality stale_after_days is {rules.stale_after_days}")
            sql_seconds += time.perf_counter() - t0

            if gx is not None:
                t1 = time.perf_counter()
                frame = _gx_frame(session, f"_passed_{entity}", passed, settings.config.quality.gx_rows,
                                  merged, ENTITIES[entity].key)
                gx.frame_seconds += time.perf_counter() - t1
                verdicts[entity] = (gx.validate(stg, frame, [e for e in suite if e.kind != "in_parent"],
                                                rows_total=passed, merged_first=merged is not None),
                                    stg if not schema else None)
            if merged:
                session.con.execute(f'DROP {"VIEW" if merged_from == STAGING_FILE else "TABLE"} "{merged}"')
            report["entities"][entity] = {
                "rows_in": rows_in, "passed": passed, "quarantined": quarantined,
                "held_by_staging": held - failed, "held_by_validate": failed,
                "unique_checked": {"keys" if changed else "rows": unique_checked},
                "merged_rows_read_by": merged_from,
                "quarantined_share": round(share, 6), "volume_change": volume,
                "previous_rows_in": previous, "newest": newest,
                "reasons": [{"reason_code": c, "expectation": e, "rows": n, "examples": ex}
                            for c, e, n, ex in reasons],
                "failures": entity_failures, "great_expectations": None,
            }
            if on_table:
                on_table(stg, passed)
        failures += _judged(report["entities"], verdicts)
        if gx is not None:
            gx.build()
    if state_moved:
        stage_state.save(warehouse, list(staged_from.values()))
    result.seconds = time.perf_counter() - started
    result.details.update(
        quality_dir=str(quality_dir(settings, run_id)), failures=failures,
        sql_seconds=round(sql_seconds, 3), gx_seconds=round(gx.seconds, 3) if gx else 0.0,
        data_docs=str(gx.index()) if gx else None,
        quarantined={e: r["quarantined"] for e, r in report["entities"].items() if r["quarantined"]},
    )
    report.update(seconds=round(result.seconds, 3), sql_seconds=result.details["sql_seconds"],
                  gx_seconds=result.details["gx_seconds"], data_docs=result.details["data_docs"],
                  failures=failures, last_good_run=last_good["run_id"] if last_good else None)
    path = _write_report(settings, run_id, "validate", report)
    if failures:
        raise QualityFailure(_stop_message("validate", failures, run_id, path), result)
    return result


def _stop_message(step: str, failures: list[str], run_id: str, report: Path) -> str:
    lines = [f"data quality stop rule: {len(failures)} check(s) failed; nothing was built or published"
             if step == "validate" else
             f"mart check: {len(failures)} check(s) failed; nothing was published"]
    lines += [f"  - {f}" for f in failures[:20]]
    if len(failures) > 20:
        lines.append(f"  … and {len(failures) - 20} more")
    lines.append(f"Where to look: `kam quality --run-id {run_id}`, `kam quarantine list`, {report}")
    return "\n".join(lines)


def check(settings: Settings, as_of: date, *, run_id: str | None = None,
          on_table: Callable[[str, int], None] | None = None) -> StepResult:
    """The marts' suites and invariants; a failure stops the run before `publish`."""
    started = time.perf_counter()
    run_id = run_id or new_run_id(as_of)
    warehouse = Warehouse(settings.warehouse_path)
    cfg = settings.config.quality
    result = StepResult("check")
    report: dict = {"run_id": run_id, "as_of": as_of.isoformat(), "step": "check", "marts": {}}
    failures: list[str] = []
    gx = _gx_run(settings, run_id, "check")
    verdicts: dict = {}
    entries: dict[str, dict] = {}  # the report's entries, and a missing mart's failure, in table order
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session, _closing(gx):
        for table, suite in mart_suites(settings).items():
            if not warehouse.exists(table):
                if table in ("customer_value", "crm_account_tier"):
                    missing = f"{table}: missing; run `kam build --as-of {as_of}` first"
                    entries[table] = {"failures": [missing]}
                continue
            session.expose(table)
            have = {c for c, *_ in session.con.execute(f'DESCRIBE "{table}"').fetchall()}
            if "as_of_date" in have:  # marts that keep a slice per night: tonight's slice
                session.expose(table, row_filter=f"as_of_date = DATE '{as_of.isoformat()}'")
            rows = session.count(table)
            table_failures = []
            for e in suite:
                missing = [c for c in e.columns if c not in have]
                if missing:
                    table_failures.append(f"{table}: column {missing[0]!r} is missing ({e.name})")
                    continue
                if e.kind == "unique":
                    n, examples = _duplicate_keys(session, table, e.columns)
                else:
                    label = " || '/' || ".join(
                        f"COALESCE(CAST({q(c)} AS VARCHAR), 'NULL')" for c in e.columns)
                    n, examples = session.con.execute(
                        f"SELECT count(*), list({label})[1:{EXAMPLES}] "
                        f"FROM {q(table)} WHERE {e.failing_sql()}"
                    ).fetchone()
                if n:
                    table_failures.append(f"{table}: {e.name} fails for {n:,} rows, e.g. {examples}")
            if table == "customer_value":
                table_failures += _tier_invariants(session, settings, rows, cfg.tier_share_tolerance)
            result.rows[table] = rows
            if gx is not None:
                t1 = time.perf_counter()
                frame = _gx_frame(session, table, rows, cfg.gx_rows)
                gx.frame_seconds += time.perf_counter() - t1
                verdicts[table] = (gx.validate(table, frame, suite, rows_total=rows),
                                   table if not table_failures else None)
            report["marts"][table] = entries[table] = {"rows": rows, "failures": table_failures,
                                                       "great_expectations": None}
            if on_table:
                on_table(table, rows)
        failures += _judged(entries, verdicts)
        if gx is not None:
            gx.build()
    result.seconds = time.perf_counter() - started
    result.details.update(failures=failures, gx_seconds=round(gx.seconds, 3) if gx else 0.0,
                          data_docs=str(gx.index()) if gx else None)
    report.update(seconds=round(result.seconds, 3), failures=failures, data_docs=result.details["data_docs"])
    path = _write_report(settings, run_id, "check", report)
    if failures:
        raise QualityFailure(_stop_message("check", failures, run_id, path), result)
    return result


def _tier_invariants(session: Session, settings: Settings, rows: int, tolerance: float) -> list[str]:
    """Every staged customer has exactly one tier, and each tier's share is near its configured one."""
    problems = []
    if session.warehouse.exists("stg_customer"):
        session.expose("stg_customer", alias="_stg_customer")
        customers = session.count("_stg_customer")
        without = session.con.execute(
            "SELECT count(*) FROM _stg_customer c WHERE NOT EXISTS "
            "(SELECT 1 FROM customer_value v WHERE v.customer_id = c.customer_id AND v.tier IS NOT NULL)"
        ).fetchone()[0]
        if without:
            problems.append(f"customer_value: {without:,} of {customers:,} staged customers have no tier "
                            "(kam_every_customer_has_exactly_one_tier)")
    counts = dict(session.con.execute("SELECT tier, count(*) FROM customer_value GROUP BY tier").fetchall())
    for level in settings.config.tiers.levels:
        actual = counts.get(level.name, 0) / rows if rows else 0.0
        # One customer of slack: a 1% tier of 150 customers cannot hold exactly 1.5 of them.
        if abs(actual - level.share) > tolerance + (1 / rows if rows else 0):
            problems.append(
                f"customer_value: tier {level.name!r} holds {actual:.2%} of customers, configured "
                f"{level.share:.2%} (quality.tier_share_tolerance {tolerance:.0%}; "
                "kam_tier_shares_match_config)")
    return problems
