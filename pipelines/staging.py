"""Stage: typed, de-duplicated, checked canonical entities, and one customer id across systems.

Each mapped entity goes through the same chain — project the source columns onto the canonical
names and types, apply the entity's rules (`transforms/staging/stg_<entity>.sql`), keep the latest
version per key, check foreign keys against the parents staged before it — and every row comes out
either in `stg_<entity>` or in `quarantine_<entity>` with the reason. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from pipelines import stage_state
from pipelines.batches import Snapshot, known_on, registered, snapshot, stored_in
from pipelines.canonical import ENTITIES, FOREIGN_KEYS, SQL_TYPES, build_order
from pipelines.config import ColumnSource, ConfigError, EntityMapping, Settings
from pipelines.duck import sql_identifier as _q
from pipelines.duckdb_session import Session, sql_file
from pipelines.extract import BATCH_ID, EXTRACT_DATE, raw_table_for
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse

REJECT = "_reject_reason"


def _source_expr(src: ColumnSource) -> str:
    return f"({src.expr})" if src.expr else _q(src.column)


def _typed_expr(raw: str, ctype: str, fmt: str | None) -> str:
    sql_type = SQL_TYPES[ctype]
    if ctype == "text":
        return f"NULLIF(TRIM(CAST({raw} AS VARCHAR)), '')"
    if fmt and ctype in ("date", "timestamp"):
        return f"CAST(try_strptime(CAST({raw} AS VARCHAR), '{fmt}') AS {sql_type})"
    if ctype == "date":
        return f"CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE)"
    return f"TRY_CAST({raw} AS {sql_type})"


def typed_projection_sql(entity: str, mapping: EntityMapping, raw_view: str) -> str:
    """SELECT the canonical columns, typed, plus `_problem` (why the row cannot be used) and
    `_nulled` (optional values that did not parse and were set to NULL).

    A row is rejected only for its required columns: a customer with an unreadable founding date
    is still a customer, and rejecting it would orphan every order it placed. Unmapped optional
    columns come out as typed NULLs, so downstream SQL can rely on every canonical column.
    """
    spec = ENTITIES[entity]
    selects, problems, nulled = [], [], []
    for name, column in spec.columns.items():
        src = mapping.columns.get(name)
        if src is None:
            selects.append(f"CAST(NULL AS {SQL_TYPES[column.type]}) AS {_q(name)}")
            continue
        raw = _source_expr(src)
        typed = _typed_expr(raw, column.type, src.format)
        selects.append(f"{typed} AS {_q(name)}")
        if column.type != "text":
            unparseable = f"CASE WHEN {raw} IS NOT NULL AND {typed} IS NULL THEN 'unparseable {name}' END"
            (problems if column.required else nulled).append(unparseable)
        if column.required:
            problems.append(f"CASE WHEN {typed} IS NULL THEN 'missing {name}' END")
    return (
        f"SELECT {', '.join(selects)}, {_reasons(problems)} AS _problem, {_reasons(nulled)} AS _nulled "
        f"FROM {_q(raw_view)}"
    )


def _reasons(cases: list[str]) -> str:
    return f"NULLIF(concat_ws('; ', {', '.join(cases)}), '')" if cases else "CAST(NULL AS VARCHAR)"


def checked_entity_sql(entity: str, mapping: EntityMapping, raw_view: str, staged: set[str], *,
                       few_rows: bool = False) -> str:
    """All rows of an entity with `_reject_reason` NULL for good rows, the first failure otherwise.

    `few_rows`: the raw rows are a night's re-checked keys, not the whole table, so each foreign
    key is looked up among the parent keys those rows name (a semi join probing the parent's key
    column) rather than in a hash table of every staged parent key: at 1M customers the shipments'
    0.17M rows against 8.8M order ids. The same rows come out (staged keys are never NULL)."""
    spec = ENTITIES[entity]
    columns = list(spec.columns)
    rules = _rules_sql(entity)
    key = ", ".join(_q(k) for k in spec.key)
    order = [f"{_q(spec.version_column)} DESC NULLS LAST"] if spec.version_column else []
    order += [f"{_q(c)} NULLS LAST" for c in columns]

    def parent_keys(col: str, parent: str, pcol: str) -> str:
        keys = f"SELECT {_q(pcol)} FROM {_q('stg_' + parent)}"
        return keys + (f" WHERE {_q(pcol)} IN (SELECT {_q(col)} FROM typed)" if few_rows else "")

    fk_checks = [
        f"CASE WHEN r.{_q(col)} IS NOT NULL AND r.{_q(col)} NOT IN "
        f"({parent_keys(col, parent, pcol)}) THEN 'unknown {col}' END"
        for col, parent, pcol in FOREIGN_KEYS.get(entity, [])
        if parent in staged
    ]
    duplicate = "CASE WHEN r._dup > 1 THEN 'duplicate of a newer row' END"
    reasons = ["r._problem", "r._rule", duplicate, *fk_checks]
    typed = "typed AS MATERIALIZED" if few_rows and fk_checks else "typed AS"
    return f"""
WITH {typed} ({typed_projection_sql(entity, mapping, raw_view)}),
ruled AS ({rules}),
ranked AS (
    SELECT *,
        CASE WHEN _problem IS NULL AND _rule IS NULL
             THEN row_number() OVER (PARTITION BY {key}, (_problem IS NULL AND _rule IS NULL)
                                     ORDER BY {', '.join(order)}) END AS _dup
    FROM ruled
)
SELECT {', '.join('r.' + _q(c) for c in columns)}, COALESCE({', '.join(reasons)}) AS {REJECT},
       r._nulled
FROM ranked r
"""


def empty_entity_sql(entity: str) -> str:
    """A typed, empty stand-in for an unmapped optional entity, so every transform still runs."""
    cols = ", ".join(
        f"CAST(NULL AS {SQL_TYPES[c.type]}) AS {_q(n)}" for n, c in ENTITIES[entity].columns.items()
    )
    return f"SELECT {cols} WHERE FALSE"


def _ids(batch_ids) -> str:
    return ", ".join(f"'{b}'" for b in sorted(batch_ids))


def _expose_batches(session: Session, alias: str, chosen: list) -> None:
    """The rows of some raw batches of one table: only their extraction dates' partitions are read."""
    (table,) = {stored_in(b) for b in chosen}
    session.expose(table, alias=alias, row_filter=f"{BATCH_ID} IN ({_ids(b.batch_id for b in chosen)})",
                   partitions={EXTRACT_DATE: {str(b.extract_date) for b in chosen}})


@dataclass(frozen=True)
class RawSnapshot:
    """An entity's raw rows on the as-of date, as `prepare_snapshot` laid them out: the full batch
    as a view, the newest increment rows per key and the reconciled keys as small temp tables,
    and the SQL that lets those supersede and delete full-batch rows."""

    full: str  # view of the full batch's rows
    keyed: str  # the identity columns a row gets for matching across batches
    knames: str
    same: str  # join condition: a and b are the same row identity
    increments: str | None  # view of the newest increment rows per identity
    earlier: str | None  # view: tonight's identities as the newest earlier increment held them
    tonight: frozenset[str]  # tonight's new batches (the ids `earlier` is relative to)
    unseen: str | None  # temp table of the identities the key reconciliation did not see
    keys_batch: str | None

    def view(self, session: Session, alias: str, full_rows: str | None = None) -> str:
        """Create the view `alias` of the snapshot. `full_rows`, a relation over some of the full
        batch's rows, stands in for the full batch: a merge re-checks a few percent of the keys,
        and filtering the 30M-row full batch before it meets the increments is the same as
        filtering the snapshot (superseding and deleting keep or drop each full row on its own),
        only without carrying every row through the anti join."""
        base = full_rows or self.full
        if not self.increments and not self.unseen:
            session.con.execute(f'CREATE OR REPLACE TEMP VIEW "{alias}" AS SELECT * FROM "{base}"')
            return alias
        parts = [f'SELECT *, {self.keyed} FROM "{base}"']
        if self.increments:
            parts = [f'SELECT a.* FROM ({parts[0]}) a ANTI JOIN "{self.increments}" b ON {self.same}',
                     f'SELECT * FROM "{self.increments}"']
        if self.unseen:  # deletions: the rows, older than the reconciliation, of the keys it did not see
            parts = [f'SELECT a.* FROM ({part}) a ANTI JOIN "{self.unseen}" b '
                     f"ON {self.same} AND a.{BATCH_ID} <= '{self.keys_batch}'" for part in parts]
        union = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
        session.con.execute(
            f'CREATE OR REPLACE TEMP VIEW "{alias}" AS SELECT * EXCLUDE ({self.knames}) FROM ({union})'
        )
        return alias

    def changed_rows(self, session: Session) -> str:
        """SQL of tonight's snapshot rows whose identity has other rows now than before tonight's
        batches.

        The look-back re-reads a few days of rows each night: at 1M customers 1.10M of the
        1.55M order lines the third night extracted were rows an earlier increment already held,
        unchanged. Those identities come out of a re-check exactly as they went in, so only the
        others are re-checked. An identity is unchanged when it has one row tonight and one row in
        the newest earlier increment that holds it, and every source value is the same.
        Everything else counts as changed: several rows of one key (a multiset compare cost 2.2 s
        against 0.3 s at 1M), an identity last seen in the base batch (comparing would mean
        reading it), or one last seen before a key reconciliation (which may have dropped it).
        Re-checking an unchanged identity is harmless; missing a changed one is not."""
        tonight = f'SELECT * FROM "{self.increments}" WHERE {BATCH_ID} IN ({_ids(self.tonight)})'
        content = [c for c, *_ in session.con.execute(f'DESCRIBE "{self.increments}"').fetchall()
                   if not c.startswith("_")]
        differs = " OR ".join(["b._kh IS NULL",
                               *(f"a.{_q(c)} IS DISTINCT FROM b.{_q(c)}" for c in content)])
        identity = ", ".join(f"a.{k.strip()}" for k in self.knames.split(","))
        return f"""
            WITH tonight AS ({tonight}),
            changed AS (
                SELECT {identity} FROM tonight a LEFT JOIN "{self.earlier}" b ON {self.same}
                GROUP BY ALL HAVING count(*) > 1 OR bool_or({differs})
            )
            SELECT a.* EXCLUDE ({self.knames}) FROM tonight a SEMI JOIN changed b ON {self.same}
        """


def prepare_snapshot(session: Session, entity: str, mapping: EntityMapping, as_of: date,
                     snap: Snapshot | None, tonight: set[str] | frozenset[str] = frozenset()) -> RawSnapshot:
    """The raw rows that make up the entity's source table on the as-of date (see `RawSnapshot`).

    The snapshot is the last full batch plus the increments after it: per source key only the rows
    of the newest batch count (an updated row supersedes its older versions, which are history,
    not duplicates), and keys absent from a later key reconciliation are deletions. Rows that
    share a key within one batch all stay, so staging still quarantines real duplicates.
    `snap` is the entity's batches on the as-of date (`batches.snapshot`), None if it has none;
    `tonight`, the ids of the increments a merge adds tonight (see `RawSnapshot.changed_rows`).
    """
    raw = raw_table_for(entity, mapping)
    if snap is None:
        raise RuntimeError(
            f"{raw.warehouse_name} has no full extract on or before {as_of}; "
            f"run `kam extract --as-of {as_of}` first"
        )

    def batches(name: str, chosen: list) -> None:
        _expose_batches(session, name, chosen)

    full, increments = snap.data[0], snap.data[1:]
    batches(f"_full_{entity}", [full])
    # The full batch is tens of millions of rows, the increments a few percent: only the small side
    # is ranked, and the full batch meets it in a hash anti-join that streams.
    # A row without a complete key has no identity but its content: such rows match across
    # batches when every source column is equal (a re-read), so they are neither lost nor doubled.
    exprs = [_source_expr(mapping.columns[k]) for k in ENTITIES[entity].key]
    source_columns = [
        c for c, *_ in session.con.execute(f'DESCRIBE "_full_{entity}"').fetchall() if not c.startswith("_")
    ]
    incomplete = " OR ".join(f"({e}) IS NULL" for e in exprs)
    content = f"hash({', '.join(_q(c) for c in source_columns)})"
    key_values = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    key_names = [f"_k{i}" for i in range(len(exprs))]
    keyed = f"{key_values}, CASE WHEN {incomplete} THEN {content} ELSE 0 END AS _kh"
    knames = ", ".join([*key_names, "_kh"])
    same = " AND ".join([f"a._k{i} IS NOT DISTINCT FROM b._k{i}" for i in range(len(exprs))]
                        + ["a._kh = b._kh"])
    newest = earlier = unseen = None
    tonight = frozenset(tonight) & {b.batch_id for b in increments}
    if increments:
        # One ranking gives both the newest rows and, for tonight's identities, the rows of the
        # newest earlier increment, which `RawSnapshot.changed_rows` compares them with. Views
        # of it, not copies: copying its two parts cost 1.2 s at 1M.
        batches(f"_incb_{entity}", increments)
        newest = f"_inc_{entity}"
        earlier_rows, also_kept = "NULL", ""
        if tonight:
            comparable = f"{BATCH_ID} NOT IN ({_ids(tonight)})" + (
                f" AND {BATCH_ID} > '{snap.keys.batch_id}'" if snap.keys else "")
            earlier_rows = f"max({BATCH_ID}) FILTER (WHERE {comparable}) OVER identity"
            also_kept = f" OR ({BATCH_ID} = _earlier AND _newest IN ({_ids(tonight)}))"
        session.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE "_ranked_{entity}" AS
            SELECT * FROM (
                SELECT *, {keyed}, max({BATCH_ID}) OVER identity AS _newest, {earlier_rows} AS _earlier
                FROM "_incb_{entity}" WINDOW identity AS (PARTITION BY {knames})
            ) WHERE {BATCH_ID} = _newest{also_kept}
        """)
        ranked = f'SELECT * EXCLUDE (_newest, _earlier) FROM "_ranked_{entity}" WHERE {BATCH_ID} = '
        session.con.execute(f'CREATE OR REPLACE TEMP VIEW "{newest}" AS {ranked} _newest')
        if tonight:
            earlier = f"_earlier_{entity}"
            session.con.execute(f'CREATE OR REPLACE TEMP VIEW "{earlier}" AS {ranked} _earlier '
                                f"AND _newest IN ({_ids(tonight)})")
    if snap.keys is not None:
        # The identities a key reconciliation did not see are the few keys deleted from the source:
        # found in one anti join of the older keyed rows with the reconciled keys, they are all a
        # snapshot read needs. Keeping every distinct reconciled key instead (30M for the order
        # lines at 1M customers) and left-joining the rows with them cost the Sunday's stage 77.1
        # against 53.0 s, and its consolidation 64.0 against 35.4 s (benchmarks/README.md).
        # Rows without a complete key (`_kh` <> 0) have no identity a reconciliation can confirm:
        # they stay, as an equality on their NULL key columns never matches.
        batches(f"_keysb_{entity}", [snap.keys])
        unseen = f"_unseen_{entity}"
        only_keys = ", ".join(key_names)
        older = f"{BATCH_ID} <= '{snap.keys.batch_id}' AND _kh = 0"
        identities = [f'SELECT {only_keys} FROM (SELECT {keyed}, {BATCH_ID} FROM "_full_{entity}") '
                      f"WHERE {older}"]
        if newest:
            identities.append(f'SELECT {only_keys} FROM "{newest}" WHERE {older}')
        matched = " AND ".join(f"a.{k} = b.{k}" for k in key_names)
        session.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE "{unseen}" AS
            SELECT DISTINCT a.*, 0 AS _kh FROM ({" UNION ALL ".join(identities)}) a
            ANTI JOIN (SELECT {key_values} FROM "_keysb_{entity}") b ON {matched}
        """)
    return RawSnapshot(full=f"_full_{entity}", keyed=keyed, knames=knames, same=same, increments=newest,
                       earlier=earlier, tonight=tonight, unseen=unseen,
                       keys_batch=snap.keys.batch_id if snap.keys else None)


def _check_mapped_columns(settings: Settings, entity: str, mapping: EntityMapping, raw: str,
                          available: list[str]) -> None:
    missing = [
        f"{name} <- {src.column}" for name, src in mapping.columns.items()
        if src.column and src.column not in available
    ]
    if missing:
        raise ConfigError(
            f"{settings.path}: entities.{entity}: source columns not found in {mapping.source}."
            f"{mapping.table or '(query)'} (raw table {raw}): {', '.join(missing)}; "
            f"the source has: {', '.join(c for c in available if not c.startswith('_'))}"
        )


def typed_keys(entity: str, mapping: EntityMapping) -> list[str] | None:
    """The canonical key as typed from the raw columns (the identity staging de-duplicates on)."""
    exprs = []
    for name in ENTITIES[entity].key:
        src = mapping.columns.get(name)
        if src is None:
            return None
        exprs.append(_typed_expr(_source_expr(src), ENTITIES[entity].columns[name].type, src.format))
    return exprs


@dataclass(frozen=True)
class KeyProbe:
    """How the raw rows of one key column meet a list of typed keys `k`."""

    typed: str  # the typed key of a raw row
    probe: str  # what is matched, on the raw row `r`
    key_side: str  # what it is matched with, on the key `k`
    guard: str | None  # keys that pass it are the only ones a raw value can type to
    keyless: str  # the raw row has no key in this column
    projected: str | None = None  # the column `typed` is computed into once per raw row


_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}


def key_probes(entity: str, mapping: EntityMapping, raw_types: dict[str, str]) -> list[KeyProbe]:
    """Per key column, the cheapest exact way to find the raw rows of some typed keys.

    A raw integer typed as text or int is one-to-one: the key is cast back to the raw type on
    the key list (a few thousand rows), keeping only keys that type back to themselves, and the
    30M raw rows are matched on their own column (at 1M, casting the order numbers to text took
    2.1 s of the 4.3 s re-check of the order lines). Any other column, which typing can fold
    (trimmed text), is matched on its typed value, computed once per row in a projection.
    """
    probes = []
    for i, (name, typed) in enumerate(zip(ENTITIES[entity].key, typed_keys(entity, mapping), strict=True)):
        src = mapping.columns[name]
        ctype = ENTITIES[entity].columns[name].type
        raw_type = raw_types.get(src.column) if src.column and not src.expr and not src.format else None
        if raw_type in _INTEGER_TYPES and ctype in ("text", "int"):
            back = f"TRY_CAST(k._k{i} AS {raw_type})"
            keyless = f"r.{_q(src.column)} IS NULL" if ctype == "text" else f"({typed}) IS NULL"
            probes.append(KeyProbe(typed, f"r.{_q(src.column)}", back,
                                    f"{_typed_expr(back, ctype, None)} = k._k{i}", keyless))
        else:
            column = f"_typed_key{i}"
            probes.append(KeyProbe(typed, f"r.{column}", f"k._k{i}", None, f"r.{column} IS NULL", column))
    return probes


def pulled_rows_sql(relation: str, keys: str, probes: list[KeyProbe]) -> str:
    """The raw rows of `relation` a merge re-checks: those whose typed key is in the table `keys`
    (columns `_k0`, `_k1`…), and those without a complete key.

    Plain hash joins, not correlated EXISTS: DuckDB unnests those with a de-duplication of all
    30M outer rows (at 1M customers, 38 s of the 45 s the order lines took)."""
    projected = [p for p in probes if p.projected]
    inner = ", ".join(["*"] + [f"{p.typed} AS {p.projected}" for p in projected])
    outer = f"r.* EXCLUDE ({', '.join(p.projected for p in projected)})" if projected else "r.*"
    wanted = ", ".join(f"{p.key_side} AS _p{i}" for i, p in enumerate(probes))
    inverse = " AND ".join(p.guard for p in probes if p.guard) or "TRUE"
    keyless = " OR ".join(p.keyless for p in probes)
    matches = " AND ".join(f"k._p{i} = {p.probe}" for i, p in enumerate(probes))
    return (f'SELECT {outer} FROM (SELECT {inner} FROM "{relation}") r '
            f'LEFT JOIN (SELECT {wanted}, true AS _hit FROM "{keys}" k WHERE {inverse}) k '
            f"ON {matches} WHERE {keyless} OR k._hit")


def _stage_full(session: Session, entity: str, checked_sql: str) -> None:
    """Check every row of the snapshot; `stg_<entity>` stays in the session for the children."""
    session.materialize(f"_checked_{entity}", checked_sql)
    columns = ", ".join(_q(c) for c in ENTITIES[entity].columns)
    session.materialize(f"stg_{entity}", f"SELECT {columns} FROM _checked_{entity} WHERE {REJECT} IS NULL")
    session.write(f"stg_{entity}", f"SELECT * FROM stg_{entity}")
    session.write(f"quarantine_{entity}", f"SELECT *, getvariable('as_of') AS as_of_date FROM "
                                          f"_checked_{entity} WHERE {REJECT} IS NOT NULL")


def _merge_staged(session: Session, table: str, replaced: str, checked_good: str, kept: str) -> None:
    """Write the merge of a staged table: its kept rows and tonight's good rows of the re-checked keys.

    Many re-checked keys come out as they were: a row re-read from the base batch by the
    look-back, held rows that stay held. When no staged row is lost, the table is left alone or only
    gains the new rows (an append of a few, not a rewrite of millions: at 1M the invoices, payments
    and returns only gain rows that left quarantine, and four tables do not change at all). A
    changed or removed row rewrites the whole table: without deletion vectors, which delta-rs
    cannot write, that is the only way to drop rows from files holding millions. The rewrite puts
    the re-checked keys' rows in a file of their own, the last of the commit's parts
    (`Warehouse.write_parts`): validate reads them from it (`rechecked_rows_file`)."""
    lost = session.con.execute(
        f'SELECT count(*) FROM (SELECT * FROM "{replaced}" EXCEPT ALL {checked_good})').fetchone()[0]
    if lost:
        if session.warehouse.write_parts(table, session.con, [kept, checked_good]) is None:
            session.write(table, f"{kept} UNION ALL {checked_good}")  # types differ: one file, as they unite
        return
    added = f'({checked_good}) EXCEPT ALL (SELECT * FROM "{replaced}")'
    if session.con.execute(f"SELECT count(*) FROM ({added})").fetchone()[0]:
        session.append(table, added)


def dropped_by_reconciliation(rows: RawSnapshot, typed: list[str], knames: list[str]) -> str:
    """The typed keys of the raw rows the snapshot's key reconciliation drops (keyed rows older
    than it whose identity it did not see; `RawSnapshot.view` drops the same rows). Re-checking
    them is what a full rebuild does with them: a key whose every row was dropped leaves staging.
    It finds every row dropped since the full batch, not just tonight's: a key re-checked for
    nothing comes out as it was. The identities come from `RawSnapshot.unseen`, the few the
    reconciliation did not see, where a full rebuild re-checked every line."""
    as_keys = ", ".join(f"{t} AS {k}" for t, k in zip(typed, knames, strict=True))
    parts = [f'SELECT *, {rows.keyed} FROM "{rows.full}"']
    if rows.increments:
        parts.append(f'SELECT * FROM "{rows.increments}"')
    dropped = " UNION ALL BY NAME ".join(  # by name: a later batch may carry a new source column
        f'(SELECT a.* FROM ({part}) a SEMI JOIN "{rows.unseen}" b ON {rows.same} '
        f"WHERE a.{BATCH_ID} <= '{rows.keys_batch}')" for part in parts)
    return f"SELECT {as_keys} FROM ({dropped})"


# The staged columns the customer xref reads (transforms/staging/stg_customer_xref.sql).
XREF_INPUTS = {"customer": ("customer_id", "name"), "account": ("account_id", "customer_ref", "name"),
               "shipment": ("order_id", "consignee_code"), "order": ("order_id", "customer_id")}
XREF = "stg_customer_xref"


def _keep_xref_inputs(session: Session, entity: str, good: str, same_key: str) -> None:
    """The xref's columns of the re-checked keys' rows: as staged before tonight (`_xref_before_*`),
    as merged tonight (`_xref_after_*`), and as held before tonight (`_xref_held_*`, any reason:
    a row validate held was in the staged tables the last xref was built from)."""
    columns = ", ".join(_q(c) for c in XREF_INPUTS[entity])
    session.materialize(f"_xref_before_{entity}", f'SELECT {columns} FROM "_replaced_{entity}"')
    session.materialize(f"_xref_after_{entity}", f"SELECT {columns} FROM ({good})")
    held = ", ".join("o." + _q(c) for c in XREF_INPUTS[entity])
    session.materialize(f"_xref_held_{entity}",
                        f'SELECT {held} FROM "_old_q_{entity}" o SEMI JOIN "_keys_{entity}" k ON {same_key}')


def _differ(session: Session, a: str, b: str) -> bool:
    """The two queries' rows differ as multisets."""
    return session.con.execute(f"SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) "
                               f"+ (SELECT count(*) FROM ({b} EXCEPT ALL {a}))").fetchone()[0] > 0


def _xref_scope(session: Session, incremental: set[str]) -> tuple[bool, int] | None:
    """What of last night's xref tonight's merges can have changed, or None to build it whole.

    Every staged row the xref reads that differs from last night's belongs to a re-checked key. The
    CRM matches (names normalised and compared across all customers) are rebuilt when a customer
    or account row of those keys changed, or was held; a consignee's vote when a shipment row of
    those keys named it, or a shipment of its is of a re-checked order (`_xref_consignees`). The
    rest is last night's rows. Returns (CRM matches rebuilt, consignees revoted)."""
    if not set(XREF_INPUTS) <= incremental or not session.warehouse.exists(XREF):
        return None
    crm_changed = False
    for entity in ("customer", "account"):
        crm_changed = (crm_changed or session.count(f"_xref_held_{entity}") > 0
                       or _differ(session, f'SELECT * FROM "_xref_before_{entity}"',
                                  f'SELECT * FROM "_xref_after_{entity}"'))
    consignees = session.materialize("_xref_consignees", """
        SELECT DISTINCT consignee_code FROM (
            SELECT consignee_code FROM _xref_before_shipment
            UNION ALL SELECT consignee_code FROM _xref_after_shipment
            UNION ALL SELECT consignee_code FROM _xref_held_shipment
            UNION ALL
            SELECT s.consignee_code FROM stg_shipment s SEMI JOIN _keys_order k ON k._k0 = s.order_id
        ) WHERE consignee_code IS NOT NULL""")
    return crm_changed, consignees


def _build_xref(session: Session, incremental: set[str]) -> tuple[int, str]:
    """`stg_customer_xref` in the session and in the warehouse; returns its rows and how it was made.

    A merged night rebuilds only what its re-checked keys can have changed (`_xref_scope`) and
    keeps last night's version when nothing differs: at 1M customers the whole xref took 4.0 s
    and its write 0.9 s a night (the name normalisation of 2M names and the consignee votes over
    8.5M shipments), though a night rarely renames a customer or moves a consignee. The ERP rows
    (the customer ids) are always rebuilt; they change only with a customer row, which rebuilds
    the CRM matches too."""
    scope = _xref_scope(session, incremental)
    sql = sql_file("staging", "stg_customer_xref")
    if scope is None:
        session.con.execute("SET VARIABLE xref_all = true")
        session.con.execute("SET VARIABLE xref_crm = true")
        session.con.execute("CREATE OR REPLACE TEMP TABLE _xref_consignees (consignee_code VARCHAR)")
        n = session.materialize(XREF, sql)
        session.write(XREF, f"SELECT * FROM {XREF} ORDER BY system, source_key")
        return n, "rebuilt"
    crm_changed, consignees = scope
    session.con.execute("SET VARIABLE xref_all = false")
    session.con.execute(f"SET VARIABLE xref_crm = {str(crm_changed).lower()}")
    session.materialize("_xref_part", sql)  # the ERP rows, the revoted consignees, the CRM rows if rebuilt
    session.expose(XREF, alias="_xref_last")
    rebuilt = "system = 'erp'" + (" OR system = 'crm'" if crm_changed else "")
    revoted = "system = 'scm' AND source_key IN (SELECT consignee_code FROM _xref_consignees)"
    n = session.materialize(XREF, f"""
        SELECT x.* FROM _xref_last x WHERE NOT ({rebuilt}) AND NOT ({revoted})
        UNION ALL SELECT * FROM _xref_part""")
    # Unchanged CRM inputs leave the customer ids as they were too (the ERP rows): only the revoted
    # consignees need comparing (comparing the whole table cost more than writing it).
    old, new = f"SELECT * FROM _xref_last WHERE {revoted}", "SELECT * FROM _xref_part WHERE system = 'scm'"
    differ = crm_changed or _differ(session, old, new)
    how = f"merged ({consignees:,} consignees revoted{', CRM matches rebuilt' if crm_changed else ''})"
    if differ:
        session.write(XREF, f"SELECT * FROM {XREF} ORDER BY system, source_key")
        return n, how
    return n, how + ", unchanged"


def _held_may_change(entity: str, mapping: EntityMapping, merged_parents: set[str]) -> str:
    """Which held rows of the entity's quarantine are re-checked tonight although no new row of
    their key arrived: a predicate over a row of `_held_rows_ruled` (the held rows with `_rule`).

    A row held by staging for what it holds itself (a required value missing or unparseable), or
    as an older duplicate of its key, comes out the same until a new row of its key arrives or a
    key reconciliation drops it, and both put the key on tonight's list anyway. So does a row held
    by a rule that, evaluated again tonight on the row's own values, gives the same reason (a
    quantity that is not positive; an order date still after tonight's as-of date): a rule goes
    before the duplicate and parent checks, so the row's reason is that rule's again. A row held
    because its parent was not staged comes out differently only when that parent is among
    tonight's re-checked keys. Everything else is re-checked: a row whose rule no longer holds (a
    date the as-of date has reached), and whatever validate held. At 1M customers most held rows are
    orphans (order lines, payments, invoices, shipments without their parent: 0.67M rows) or held
    by a rule; re-checking the rule's rows, and with the held orders their children, every night
    put 163,885 keys on a night with no changes, 3,005 now (benchmarks/README.md)."""
    spec = ENTITIES[entity]
    problems = []  # what typed_projection_sql can say of a required column
    for name, column in spec.columns.items():
        if column.required and name in mapping.columns:
            problems += ([f"unparseable {name}"] if column.type != "text" else []) + [f"missing {name}"]
    stable = ["'duplicate of a newer row'"]
    arrived = []
    for col, parent, pcol in FOREIGN_KEYS.get(entity, []):
        if parent in merged_parents and ENTITIES[parent].key == (pcol,):
            stable.append(f"'unknown {col}'")
            arrived.append(f'{_q(col)} IN (SELECT _k0 FROM "_keys_{parent}")')
    listed = ", ".join(f"'{p}'" for p in problems)
    held_for_itself = (f"list_has_all([{listed}]::VARCHAR[], string_split({REJECT}, '; '))"
                       if problems else "FALSE")
    same_rule = f"{REJECT} = _rule"  # NULL when no rule holds: COALESCE reads it as may change
    may_change = f"NOT COALESCE({REJECT} IN ({', '.join(stable)}) OR {held_for_itself} OR {same_rule}, FALSE)"
    return " OR ".join([may_change, *arrived])


def _rules_sql(entity: str) -> str:
    """The entity's rules (transforms/staging/stg_<entity>.sql) over `typed`: its rows with `_rule`."""
    return sql_file("staging", f"stg_{entity}") or "SELECT *, CAST(NULL AS VARCHAR) AS _rule FROM typed"


def _held_rows_ruled(entity: str) -> str:
    """The held rows of the entity's quarantine (`_old_q_<entity>`), each with the reason its rules
    give it tonight (`_rule`): the rules read the typed columns, which the quarantine keeps."""
    return f'(WITH typed AS (SELECT * FROM "_old_q_{entity}") {_rules_sql(entity)})'


def _stage_increment(session: Session, entity: str, mapping: EntityMapping, rows: RawSnapshot,
                     staged: set[str], incremental_parents: set[str], *,
                     reconciled: bool = False) -> None:
    """Re-check only the keys that can have changed and merge them into the staged tables by key.

    A key can change when a new batch brings other rows for it than it had
    (`RawSnapshot.changed_rows`), when it is held in quarantine (every held row is re-checked:
    its parent may have arrived, a date that was in the future may no longer be), when a parent
    it references left staging tonight, or (`reconciled`, a key reconciliation staging has not
    seen) when its rows are gone from the source. For those keys every row of the snapshot is
    checked exactly as a full rebuild would check it (de-duplication is per key, every rule is per
    row), so the merged tables equal a full rebuild's; rows without a key are always re-read (they
    can only be quarantined, and a re-read may supersede them).
    """
    spec = ENTITIES[entity]
    typed = typed_keys(entity, mapping)
    keys = [_q(k) for k in spec.key]
    knames = [f"_k{i}" for i in range(len(keys))]

    def on_key(exprs: list[str]) -> str:
        """Join condition: `exprs` (one per key column) equal the key `k` of a key list."""
        return " AND ".join(f"k.{k} = {e}" for k, e in zip(knames, exprs, strict=True))

    session.expose(f"stg_{entity}", alias=f"_old_stg_{entity}")
    session.expose(f"quarantine_{entity}", alias=f"_old_q_{entity}")
    as_keys = ", ".join(f"{c} AS {k}" for c, k in zip(keys, knames, strict=True))
    held = _held_may_change(entity, mapping, incremental_parents)
    sources = [f'SELECT {as_keys} FROM {_held_rows_ruled(entity)} WHERE {held}']
    if rows.tonight:  # new batches
        typed_as_keys = ", ".join(f"{t} AS {k}" for t, k in zip(typed, knames, strict=True))
        sources.append(f"SELECT {typed_as_keys} FROM ({rows.changed_rows(session)})")
    if reconciled:
        sources.append(dropped_by_reconciliation(rows, typed, knames))
    for col, parent, _ in FOREIGN_KEYS.get(entity, []):
        if parent in incremental_parents:
            sources.append(f'SELECT {as_keys} FROM "_old_stg_{entity}" '
                           f'WHERE {_q(col)} IN (SELECT _k0 FROM "_removed_{parent}")')
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in knames)
    union = " UNION ".join(f"({s})" for s in sources)
    session.materialize(f"_keys_{entity}", f"SELECT * FROM ({union}) WHERE {not_null}")

    raw_types = dict(row[:2] for row in session.con.execute(f'DESCRIBE "{rows.full}"').fetchall())
    probes = key_probes(entity, mapping, raw_types)
    wanted_full = pulled_rows_sql(rows.full, f"_keys_{entity}", probes)
    session.con.execute(f'CREATE OR REPLACE TEMP VIEW "_pulled_full_{entity}" AS {wanted_full}')
    snapshot_rows = rows.view(session, f"_pulled_snapshot_{entity}", full_rows=f"_pulled_full_{entity}")
    wanted = pulled_rows_sql(snapshot_rows, f"_keys_{entity}", probes)
    session.con.execute(f'CREATE OR REPLACE TEMP VIEW "_pulled_{entity}" AS {wanted}')
    checked = checked_entity_sql(entity, mapping, f"_pulled_{entity}", staged, few_rows=True)
    session.materialize(f"_checked_{entity}", checked)
    columns = ", ".join(_q(c) for c in spec.columns)
    old_columns = ", ".join("o." + _q(c) for c in spec.columns)
    good = f"SELECT {columns} FROM _checked_{entity} WHERE {REJECT} IS NULL"
    same_key = on_key([f"o.{c}" for c in keys])
    kept = f'ANTI JOIN "_keys_{entity}" k ON {same_key}'
    # The staged rows of the re-checked keys, which tonight's checked rows replace.
    session.materialize(f"_replaced_{entity}", f'SELECT {old_columns} FROM "_old_stg_{entity}" o '
                                               f'SEMI JOIN "_keys_{entity}" k ON {same_key}')
    # Keys that were staged and are not any more: the children that reference them are re-checked.
    staged_before = " AND ".join(f"o.{c} = r.{k}" for c, k in zip(keys, knames, strict=True))
    still_good = " AND ".join(f"g.{c} = r.{k}" for c, k in zip(keys, knames, strict=True))
    session.materialize(f"_removed_{entity}", f"""
        SELECT r.* FROM "_keys_{entity}" r
        SEMI JOIN "_replaced_{entity}" o ON {staged_before}
        ANTI JOIN ({good}) g ON {still_good}""")
    if entity in XREF_INPUTS:
        _keep_xref_inputs(session, entity, good, same_key)
    _merge_staged(session, f"stg_{entity}", f"_replaced_{entity}", good,
                  f'SELECT {old_columns} FROM "_old_stg_{entity}" o {kept}')
    session.con.execute(f'DROP TABLE "_replaced_{entity}"')
    with_key = " AND ".join(f"o.{c} IS NOT NULL" for c in keys)
    session.write(
        f"quarantine_{entity}",
        f"SELECT o.* REPLACE (getvariable('as_of') AS as_of_date) FROM \"_old_q_{entity}\" o {kept} "
        f"WHERE {with_key} "
        f"UNION ALL BY NAME SELECT *, getvariable('as_of') AS as_of_date FROM _checked_{entity} "
        f"WHERE {REJECT} IS NOT NULL",
    )
    session.expose(f"stg_{entity}")  # the merged table, for the children's foreign-key checks


KEY_WIDTH = max(len(spec.key) for spec in ENTITIES.values())


def _record_changes(session: Session, entities: list[str]) -> int:
    """Write the keys each merged entity re-checked tonight (`_keys_<entity>`) to
    `kam_stage_changes` in one commit, as text (one table for every entity's key types); returns
    its version. validate reads them (see pipelines/stage_state.py)."""
    parts = []
    for entity in entities:
        width = len(ENTITIES[entity].key)
        keys = ", ".join(f"CAST(_k{i} AS VARCHAR) AS k{i}" if i < width else f"CAST(NULL AS VARCHAR) AS k{i}"
                         for i in range(KEY_WIDTH))
        parts.append(f"SELECT '{entity}' AS entity, {keys} FROM \"_keys_{entity}\"")
    session.write(stage_state.CHANGES_TABLE, " UNION ALL ".join(parts))
    return session.warehouse.version(stage_state.CHANGES_TABLE)


def stage(settings: Settings, as_of: date, *, full_refresh: bool = False,
          on_table: Callable[[str, int], None] | None = None) -> StepResult:
    """Build every stg_* and quarantine_* table, then the cross-system customer xref.

    An entity whose staged tables were built from an earlier part of tonight's snapshot is merged
    incrementally (see `_stage_increment`); otherwise, or with `full_refresh`, it is rebuilt."""
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("stage")
    mapped = settings.mapped_entities
    previous = {} if full_refresh else stage_state.load(warehouse)
    states: list[stage_state.StagedFrom] = []
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        staged: set[str] = set()
        incremental: set[str] = set()
        registry = registered(warehouse)  # every raw table's batches, read once
        for entity in build_order(mapped):
            mapping = settings.config.entities[entity]
            raw_name = raw_table_for(entity, mapping).warehouse_name
            snap = snapshot(known_on(warehouse, raw_name, as_of, registry))
            checked_sql = checked_entity_sql(entity, mapping, "{raw}", staged)
            new_batches = None if snap is None else stage_state.new_increments(
                previous.get(entity), snap, as_of, checked_sql, warehouse)
            rows = prepare_snapshot(session, entity, mapping, as_of, snap,
                                    tonight={b.batch_id for b in new_batches or []})
            raw = rows.view(session, f"_raw_{entity}")
            available = [c[0] for c in session.con.execute(f'DESCRIBE "{raw}"').fetchall()]
            _check_mapped_columns(settings, entity, mapping, raw, available)
            parents = {p for _, p, _ in FOREIGN_KEYS.get(entity, []) if p in staged}
            if new_batches is not None and parents <= incremental and typed_keys(entity, mapping):
                _stage_increment(session, entity, mapping, rows, staged, incremental & parents,
                                 reconciled=stage_state.reconciled(previous[entity], snap))
                incremental.add(entity)
            else:
                _stage_full(session, entity, checked_entity_sql(entity, mapping, raw, staged))
            good = warehouse.rows(f"stg_{entity}")
            bad = warehouse.rows(f"quarantine_{entity}")
            nulled = session.con.execute(
                f"SELECT count(*) FROM _checked_{entity} WHERE {REJECT} IS NULL AND _nulled IS NOT NULL"
            ).fetchone()[0]
            if nulled:
                result.details.setdefault("nulled", {})[entity] = nulled
            session.con.execute(f"DROP TABLE _checked_{entity}")
            states.append(stage_state.StagedFrom(
                entity=entity, as_of=as_of.isoformat(), recipe=stage_state.recipe(checked_sql),
                full_batch=snap.data[0].batch_id, keys_batch=snap.keys.batch_id if snap.keys else None,
                batches=json.dumps(sorted(b.batch_id for b in snap.data[1:])),
                stg_version=warehouse.version(f"stg_{entity}"),
                quarantine_version=warehouse.version(f"quarantine_{entity}"),
            ))
            if entity in incremental:
                states[-1] = replace(states[-1], merged_from=previous[entity].stg_version,
                                     merged_to=states[-1].stg_version, unique_at=previous[entity].unique_at)
            how = "incremental" if entity in incremental else "full"
            result.details.setdefault("staged", {})[entity] = how
            staged.add(entity)
            result.rows[f"stg_{entity}"] = good
            result.rows[f"quarantine_{entity}"] = bad
            if bad:
                result.details.setdefault("quarantined", {})[entity] = bad
            if on_table:
                on_table(f"stg_{entity}", good)
        for entity in ENTITIES:
            if entity not in staged:
                session.materialize(f"stg_{entity}", empty_entity_sql(entity))
        n, result.details["xref"] = _build_xref(session, incremental)
        if incremental:
            version = _record_changes(session, sorted(incremental))
            states = [replace(s, changes_version=version) if s.entity in incremental else s for s in states]
        stage_state.save(warehouse, states)
        result.rows["stg_customer_xref"] = n
        matching = session.con.execute(
            "SELECT system, match_method, count(*) FROM stg_customer_xref GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        result.details["matching"] = {(s, m): c for s, m, c in matching}
        if on_table:
            on_table("stg_customer_xref", n)
    result.seconds = time.perf_counter() - started
    return result

