"""Publish (reverse ETL): KAM's tiers into the CRM — diff-based, all-or-nothing, and explained.

Two targets in the CRM database (any SQLAlchemy database; PostgreSQL gets a bulk path):

- KAM's own table (`publish.table`, one row per matched CRM account): tier, previous tier, tier
  since, reason, key-account flag, ABC class, segment and its rule, CLV, probability alive, expected
  purchases, revenue, profit, credit grade, alerts, next-best product lines, and the as-of date and
  run id of the night that last changed the row.
- Optionally, KAM-owned columns on the CRM's existing accounts table (`publish.accounts`), matched by
  its external id: update only. KAM never inserts or deletes a CRM record there and never writes a
  column it does not own, so what a salesperson typed in any other column stays.

Only changed rows are written (a row hash of the value columns is stored beside them; the figures
`publish.tolerance` names count as changed only when they moved by more than it), the whole
publish is one transaction (it commits entirely or not at all), and re-running it changes nothing.
Accounts that left the book are kept, flagged (`in_book = false`) or removed from KAM's table, as
configured. Before writing, a circuit breaker stops a publish that would change more than the
configured share of published tiers unless forced; `--dry-run` shows the plan without writing.

A row the database refuses (a CRM validation rule, a constraint) is set aside inside the same
transaction (savepoints, bisecting to the offending rows), kept with the database's error in
`kam_publish_rejected`, and retried on the next run — the diff sees it as still changed. Every publish
is logged in `kam_publish_log` (run, target, inserted, updated, unchanged, rejected, duration).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from pipelines.config import Settings, Tolerance
from pipelines.duckdb_session import Session, sql_file
from pipelines.results import StepResult
from pipelines.sources import safe_url
from pipelines.warehouse import Warehouse

KEY = "crm_account_id"
PUBLISH_LOG = "kam_publish_log"
REJECTED = "kam_publish_rejected"
CHUNK = 20_000
# KAM's table on PostgreSQL keeps half of each page free: many of its rows are rewritten every night
# (a sixth at 1M with kam.yaml's tolerances, all without), and a new row version on the same page is
# a HOT update, with no index entry to add (at 1M accounts the upsert took 7.4 s instead of 9.1 s).
POSTGRES_FILLFACTOR = 50

# name, SQLAlchemy type, nullable — the value columns, in the order of crm_account_publish.sql.
VALUE_SPEC: list[tuple[str, sa.types.TypeEngine, bool]] = [
    ("customer_id", sa.String(64), False),
    ("tier", sa.String(32), False),
    ("previous_tier", sa.String(32), True),
    ("tier_since", sa.Date(), True),
    ("tier_reason", sa.String(400), True),
    ("key_account", sa.Boolean(), False),
    ("abc_class", sa.String(1), False),
    ("segment_id", sa.Integer(), True),
    ("segment_name", sa.String(200), True),
    ("segment_rule", sa.String(1000), True),
    ("clv", sa.Numeric(18, 2), True),
    ("probability_alive", sa.Numeric(9, 4), True),
    ("expected_purchases", sa.Numeric(14, 4), True),
    ("revenue_12m", sa.Numeric(18, 2), False),
    ("orders_12m", sa.Integer(), False),
    ("gross_margin_12m", sa.Numeric(18, 2), True),
    ("profit_12m", sa.Numeric(18, 2), True),
    ("last_order_date", sa.Date(), True),
    ("credit_grade", sa.String(8), True),
    ("alerts", sa.String(1000), True),
    ("next_best", sa.String(1000), True),
]
VALUE_COLUMNS = [name for name, _, _ in VALUE_SPEC]
BOOK_COLUMNS = ["in_book", "row_hash", "as_of_date", "run_id"]
ALL_COLUMNS = [KEY, *VALUE_COLUMNS, *BOOK_COLUMNS]

# Fault injection for the tests (and a tracing hook): called with a stage name and the open
# SQLAlchemy connection — "written" after every row is sent, just before the commit.
checkpoint: Callable[[str, sa.Connection], None] | None = None


class PublishBlocked(RuntimeError):
    """The circuit breaker stopped a publish before anything was written."""


def target_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    columns = [sa.Column(KEY, sa.String(64), primary_key=True)]
    columns += [sa.Column(n, t, nullable=null) for n, t, null in VALUE_SPEC]
    columns += [
        sa.Column("in_book", sa.Boolean, nullable=False,
                  comment="false once the account left the book (publish.left_book: flag)"),
        sa.Column("row_hash", sa.String(32), nullable=False,
                  comment="md5 of the value columns compared exactly (all but publish.tolerance's)"),
        sa.Column("as_of_date", sa.Date, nullable=False,
                  comment="as-of date of the KAM run that last changed this row"),
        sa.Column("run_id", sa.String(64), nullable=False, comment="KAM run that last changed this row"),
    ]
    return sa.Table(name, metadata or sa.MetaData(), *columns,
                    postgresql_with={"fillfactor": POSTGRES_FILLFACTOR})


# --- what to publish -----------------------------------------------------------------------------

_EMPTY_INPUTS = {  # stand-ins when the mine or credit steps have not written their marts
    "customer_segment": "SELECT NULL::VARCHAR AS customer_id, NULL::BIGINT AS segment_id, "
                        "NULL::VARCHAR AS segment_name, NULL::DATE AS as_of_date WHERE false",
    "segment_rule": "SELECT NULL::DOUBLE AS segment_id, NULL::VARCHAR AS \"rule\", NULL::BIGINT AS rule_no, "
                    "NULL::VARCHAR AS target, NULL::DATE AS as_of_date WHERE false",
    "credit_rating": "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS grade, "
                     "NULL::VARCHAR AS rating_quarter WHERE false",
    "customer_alert": "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS alert, "
                      "NULL::DATE AS as_of_date WHERE false",
    "account_next_best": "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS product_line, "
                         "NULL::VARCHAR AS because, NULL::BIGINT AS rank, NULL::DATE AS as_of_date "
                         "WHERE false",
    "tier_history": "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS from_tier, "
                    "NULL::DATE AS changed_on, NULL::VARCHAR AS reason WHERE false",
}


def _hash_sql(columns: list[str]) -> str:
    parts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '\\N')" for c in columns)
    return f"md5(concat_ws('|', {parts}))"


def expose_publish_rows(session: Session, view: str = "crm_account_publish") -> None:
    """`view` in the session: transforms/marts/crm_account_publish.sql over the marts it reads
    (empty stand-ins for the ones not written yet). The exports read it too, in their session."""
    session.expose("crm_account_tier")
    session.expose("customer_value")
    for name, empty in _EMPTY_INPUTS.items():
        if session.warehouse.exists(name):
            session.expose(name)
        else:
            session.con.execute(f"CREATE TEMP VIEW {name} AS {empty}")
    session.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql_file('marts', 'crm_account_publish')}")


def exact_columns(tolerance: dict[str, Tolerance]) -> list[str]:
    """The value columns the row hash covers: all but the figures compared within a tolerance."""
    return [c for c in VALUE_COLUMNS if c not in tolerance]


def desired_rows(settings: Settings, as_of: date) -> pa.Table:
    """crm_account_publish for the as-of date, with its row hash (transforms/marts), in no
    particular order: the plan joins it by key and sorts what it writes (sorting the 951,243 rows
    at 1M cost 0.5-0.7 s of the 2.4 s this takes)."""
    warehouse = Warehouse(settings.warehouse_path)
    hashed = exact_columns(settings.config.publish.tolerance if settings.config.publish else {})
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        expose_publish_rows(session)
        return session.con.execute(
            f"SELECT *, {_hash_sql(hashed)} AS row_hash FROM crm_account_publish d").to_arrow_table()


# --- the plan ------------------------------------------------------------------------------------

@dataclass
class Plan:
    inserts: pa.Table  # rows of `desired`
    updates: pa.Table  # rows of `desired`
    left: list[str]  # keys in the book before, not in it now (flagged or removed per the rule)
    unchanged: int
    current_in_book: int
    tier_changes: int  # published tiers that would change (updates of tier + accounts leaving)
    changed_tiers: list[tuple[str, str, str]] = field(default_factory=list)  # sample

    @property
    def tier_change_share(self) -> float:
        return self.tier_changes / self.current_in_book if self.current_in_book else 0.0


def _moved(tolerance: dict[str, Tolerance]) -> str:
    """SQL: a figure of `d` (tonight) moved past its tolerance from `c` (the CRM's value)."""
    return " OR ".join(f"({t.moved_sql(f'd.{c}', f'c.{c}')})" for c, t in tolerance.items()) or "false"


def plan_changes(desired: pa.Table, current: pa.Table, left_book: str,
                 tolerance: dict[str, Tolerance] | None = None) -> Plan:
    """Compare the desired rows with what the target holds (key, row_hash, tier, in_book, and the
    figures `tolerance` names): a row is updated when its exact columns differ (the hash), when
    it was out of the book, or when one of those figures moved past its tolerance. A figure is
    compared with the value the CRM holds, not with last night's, so small moves add up: the CRM
    never drifts further than the tolerance from the warehouse."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("d", desired)
        con.register("c", current)
        con.execute(f"""
            CREATE TEMP TABLE diff AS
            SELECT d.{KEY}, CASE WHEN c.{KEY} IS NULL THEN 'insert'
                                 WHEN d.row_hash <> c.row_hash OR NOT c.in_book
                                      OR {_moved(tolerance or {})} THEN 'update'
                                 ELSE 'same' END AS action,
                   c.tier AS old_tier, d.tier AS new_tier
            FROM d LEFT JOIN c USING ({KEY})""")

        def rows(action: str) -> pa.Table:
            table = con.execute(f"""SELECT d.* FROM d SEMI JOIN (SELECT {KEY} FROM diff WHERE action = ?)
                                    USING ({KEY}) ORDER BY {KEY}""", [action]).to_arrow_table()
            return table.cast(desired.schema)

        inserts, updates = rows("insert"), rows("update")
        unchanged = con.execute("SELECT count(*) FROM diff WHERE action = 'same'").fetchone()[0]
        left = [] if left_book == "keep" else [k for (k,) in con.execute(
            f"SELECT {KEY} FROM c WHERE in_book AND {KEY} NOT IN (SELECT {KEY} FROM d) ORDER BY 1"
        ).fetchall()]
        in_book = con.execute("SELECT count(*) FROM c WHERE in_book").fetchone()[0]
        moves = con.execute("""SELECT count(*) FROM diff
                               WHERE action = 'update' AND old_tier <> new_tier""").fetchone()[0]
        sample = con.execute(f"""SELECT {KEY}, old_tier, new_tier FROM diff
                                 WHERE action = 'update' AND old_tier <> new_tier
                                 ORDER BY 1 LIMIT 20""").fetchall()
    finally:
        con.close()
    return Plan(inserts, updates, left, unchanged, in_book, moves + len(left), [tuple(m) for m in sample])


# --- reading and writing the target --------------------------------------------------------------

def _is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _engine(url: sa.engine.URL) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        # pysqlite starts transactions lazily and not before DDL; let SQLAlchemy emit BEGIN itself
        # so the whole publish, table creation included, is one transaction with working savepoints.
        @sa.event.listens_for(engine, "connect")
        def _no_implicit(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


def _ensure_table(conn: sa.Connection, table: sa.Table) -> None:
    """Create KAM's table, or add the columns a newer KAM brings (it is KAM's own table)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name):
        conn.execute(CreateTable(table))
        return
    if conn.dialect.name == "postgresql":  # a table created before KAM set its fillfactor
        options = conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE oid = to_regclass(%(name)s)",
                                       {"name": table.name}).scalar()
        if not any(o.startswith("fillfactor=") for o in options or []):
            conn.exec_driver_sql(f"ALTER TABLE {table.name} SET (fillfactor = {POSTGRES_FILLFACTOR})")
    have = {c["name"] for c in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in have:
            kind = column.type.compile(conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}')
            if column.name == "in_book":
                conn.exec_driver_sql(f"UPDATE {table.name} SET in_book = TRUE")
            if column.name == "row_hash":
                conn.exec_driver_sql(f"UPDATE {table.name} SET row_hash = ''")


def _current(conn: sa.Connection, table: sa.Table, figures: Iterable[str] = ()) -> pa.Table:
    """What the target holds per key: row hash, tier, in_book and the `figures` (as floats)."""
    figures = list(figures)
    schema = pa.schema([(KEY, pa.string()), ("row_hash", pa.string()), ("tier", pa.string()),
                        ("in_book", pa.bool_()), *((f, pa.float64()) for f in figures)])
    if _is_postgres(conn):  # COPY out: a million keys in a second
        buffer = io.BytesIO()
        extra = "".join(f", {f}" for f in figures)
        with conn.connection.driver_connection.cursor() as cur:
            query = (f"COPY (SELECT {KEY}, row_hash, tier, coalesce(in_book, true){extra} FROM {table.name}) "
                     "TO STDOUT (FORMAT csv)")
            with cur.copy(query) as copy:
                for chunk in copy:
                    buffer.write(chunk)
        if not buffer.tell():
            return schema.empty_table()
        buffer.seek(0)
        return pacsv.read_csv(buffer, read_options=pacsv.ReadOptions(column_names=schema.names),
                              convert_options=pacsv.ConvertOptions(
                                  column_types=schema, true_values=["t"], false_values=["f"],
                                  strings_can_be_null=False, quoted_strings_can_be_null=False))
    result = conn.execute(sa.select(table.c[KEY], table.c.row_hash, table.c.tier, table.c.in_book,
                                    *(table.c[f] for f in figures)))
    rows = [(k, h, t, True if b is None else bool(b), *(None if v is None else float(v) for v in rest))
            for k, h, t, b, *rest in result]
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)


def _records(data: pa.Table, as_of: date, run_id: str) -> list[dict]:
    records = data.select([KEY, *VALUE_COLUMNS, "row_hash"]).to_pylist()
    for r in records:
        r["in_book"], r["as_of_date"], r["run_id"] = True, as_of, run_id
    return records


@dataclass
class Rejected:
    key: str
    target: str
    error: str


def _data_error(exc: BaseException) -> bool:
    """A row the database refuses (constraint, type, validation trigger) — not a lost connection."""
    if isinstance(exc, sa.exc.DBAPIError):
        return not exc.connection_invalidated and not isinstance(exc, sa.exc.OperationalError)
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, psycopg.errors.IntegrityError | psycopg.errors.DataError
                      | psycopg.errors.RaiseException | psycopg.errors.CheckViolation)


def _apply_isolating(conn: sa.Connection, keys: list[str], apply: Callable[[list[str]], None],
                     target: str, rejected: list[Rejected]) -> None:
    """apply(keys) inside a savepoint; if the database refuses a row, bisect to find it, set it
    aside with the error, and write the rest — all inside the one transaction."""
    if not keys:
        return
    try:
        with conn.begin_nested():
            apply(keys)
        return
    except Exception as exc:  # noqa: BLE001 - classified just below
        if not _data_error(exc):
            raise
        if len(keys) == 1:
            message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:1000]
            rejected.append(Rejected(keys[0], target, message))
            return
    middle = len(keys) // 2
    _apply_isolating(conn, keys[:middle], apply, target, rejected)
    _apply_isolating(conn, keys[middle:], apply, target, rejected)


def _write_generic(conn: sa.Connection, table: sa.Table, plan: Plan, as_of: date, run_id: str,
                   left_book: str, rejected: list[Rejected]) -> None:
    inserts = {r[KEY]: r for r in _records(plan.inserts, as_of, run_id)}
    updates = {r[KEY]: r for r in _records(plan.updates, as_of, run_id)}
    update_stmt = (sa.update(table).where(table.c[KEY] == sa.bindparam("_key"))
                   .values({c: sa.bindparam(c) for c in ALL_COLUMNS if c != KEY}))

    def insert(keys: list[str]) -> None:
        conn.execute(sa.insert(table), [inserts[k] for k in keys])

    def update(keys: list[str]) -> None:
        conn.execute(update_stmt, [{**{c: v for c, v in updates[k].items() if c != KEY}, "_key": k}
                                   for k in keys])

    for rows, apply in ((inserts, insert), (updates, update)):
        keys = sorted(rows)
        for i in range(0, len(keys), CHUNK):
            _apply_isolating(conn, keys[i:i + CHUNK], apply, table.name, rejected)
    _write_left(conn, table, plan.left, as_of, run_id, left_book)


def _write_left(conn: sa.Connection, table: sa.Table, left: list[str], as_of: date, run_id: str,
                left_book: str) -> None:
    for i in range(0, len(left), CHUNK):
        part = left[i:i + CHUNK]
        if left_book == "remove":
            conn.execute(sa.delete(table).where(table.c[KEY].in_(part)))
        elif left_book == "flag":
            conn.execute(sa.update(table).where(table.c[KEY].in_(part))
                         .values(in_book=False, as_of_date=as_of, run_id=run_id))


def _csv_bytes(data: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, write_options=pacsv.WriteOptions(include_header=False,
                                                                   quoting_style="needed"))
    return buffer.getvalue()


def _write_postgres(conn: sa.Connection, table: sa.Table, plan: Plan, as_of: date, run_id: str,
                    left_book: str, rejected: list[Rejected]) -> None:
    """COPY the changed rows into a temp table, then one INSERT … ON CONFLICT DO UPDATE."""
    changed = pa.concat_tables([plan.inserts, plan.updates]).select([KEY, *VALUE_COLUMNS, "row_hash"])
    if changed.num_rows:
        n = changed.num_rows
        changed = (changed.append_column("in_book", pa.array([True] * n, pa.bool_()))
                   .append_column("as_of_date", pa.array([as_of] * n, pa.date32()))
                   .append_column("run_id", pa.array([run_id] * n, pa.string()))).select(ALL_COLUMNS)
        columns = ", ".join(ALL_COLUMNS)
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE kam_publish_stage (LIKE {table.name}) ON COMMIT DROP")
            with cur.copy(f"COPY kam_publish_stage ({columns}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(_csv_bytes(changed))
        assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in ALL_COLUMNS if c != KEY)
        upsert = (f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM kam_publish_stage "
                  "{where} ON CONFLICT ({key}) DO UPDATE SET {set}")

        def apply(keys: list[str] | None) -> None:
            with raw.cursor() as cur:
                if keys is None:
                    cur.execute(upsert.format(where="", key=KEY, set=assignments))
                else:
                    cur.execute(upsert.format(where=f"WHERE {KEY} = ANY(%s)", key=KEY, set=assignments),
                                [keys])

        try:
            with conn.begin_nested():
                apply(None)
        except Exception as exc:  # noqa: BLE001 - a refused row: find it, write the rest
            if not _data_error(exc):
                raise
            keys = sorted(changed.column(KEY).to_pylist())
            for i in range(0, len(keys), CHUNK):
                _apply_isolating(conn, keys[i:i + CHUNK], apply, table.name, rejected)
    if plan.left:
        with conn.connection.driver_connection.cursor() as cur:
            if left_book == "remove":
                cur.execute(f"DELETE FROM {table.name} WHERE {KEY} = ANY(%s)", [plan.left])
            elif left_book == "flag":
                cur.execute(f"UPDATE {table.name} SET in_book = false, as_of_date = %s, run_id = %s "
                            f"WHERE {KEY} = ANY(%s)", [as_of, run_id, plan.left])


# --- KAM-owned columns on the CRM's accounts table -----------------------------------------------

def _comparable(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:  # a number or a date kept as text by a loosely typed CRM column
        return date.fromisoformat(text[:10]) if len(text) >= 10 and text[4] == "-" else text
    except ValueError:
        return text


def _bindable(values: dict, conn: sa.Connection) -> dict:
    """SQLite's driver binds no Decimal (an exact figure such as CLV in an owned column): as float."""
    if conn.dialect.name != "sqlite":
        return values
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _differs(new, held, rule: Tolerance | None) -> bool:
    """A KAM-owned column's value against the CRM's: exactly, or a drifting figure by its tolerance
    (the same rule as KAM's own table)."""
    if rule is None or not all(isinstance(v, Decimal | None) for v in (new, held)):
        return new != held  # a text column of a loosely typed CRM: exactly
    return rule.moved(None if new is None else float(new), None if held is None else float(held))


def _write_accounts(conn: sa.Connection, settings: Settings, desired: pa.Table, left: list[str],
                    left_book: str, rejected: list[Rejected], dry_run: bool) -> dict[str, int]:
    """UPDATE the owned columns of existing accounts whose values differ; never INSERT or DELETE."""
    spec = settings.config.publish.accounts
    inspector = sa.inspect(conn)
    if not inspector.has_table(spec.table):
        raise RuntimeError(f"publish.accounts: table {spec.table!r} not found in the CRM database")
    have = {c["name"] for c in inspector.get_columns(spec.table)}
    missing = [c for c in (spec.key, *spec.columns) if c not in have]
    if missing:
        raise RuntimeError(
            f"publish.accounts: {spec.table} has no column(s) {', '.join(missing)}; KAM does not alter "
            "the CRM's tables: ask the CRM admin to add the KAM-owned columns")
    accounts = sa.table(spec.table, sa.column(spec.key), *(sa.column(c) for c in spec.columns))
    owned = list(spec.columns)
    current = {str(r[0]): tuple(_comparable(v) for v in r[1:])
               for r in conn.execute(sa.select(accounts.c[spec.key], *(accounts.c[c] for c in owned)))}
    wanted = desired.select([KEY, *spec.columns.values()]).to_pylist()
    tolerance = settings.config.publish.tolerance
    rules = [tolerance.get(spec.columns[c]) for c in owned]  # a drifting figure's, else exact
    changes: dict[str, dict] = {}
    for row in wanted:
        key = row[KEY]
        if key not in current:
            continue  # the CRM record is gone: KAM never creates one
        values = {c: row[spec.columns[c]] for c in owned}
        if any(_differs(_comparable(values[c]), held, rule)
               for c, held, rule in zip(owned, current[key], rules, strict=True)):
            changes[key] = values
    if left_book == "remove":
        for key in left:
            if key in current and any(v is not None for v in current[key]):
                changes[key] = dict.fromkeys(owned)
    counts = {"accounts_updated": len(changes), "accounts_not_found": sum(r[KEY] not in current
                                                                          for r in wanted)}
    if dry_run or not changes:
        return counts
    stmt = (sa.update(accounts).where(accounts.c[spec.key] == sa.bindparam("_key"))
            .values({c: sa.bindparam(c) for c in owned}))

    def apply(keys: list[str]) -> None:
        conn.execute(stmt, [{**_bindable(changes[k], conn), "_key": k} for k in keys])

    before = len(rejected)
    keys = sorted(changes)
    for i in range(0, len(keys), CHUNK):
        _apply_isolating(conn, keys[i:i + CHUNK], apply, spec.table, rejected)
    counts["accounts_updated"] -= len(rejected) - before
    return counts


# --- the step ------------------------------------------------------------------------------------

def _field_changes(conn: sa.Connection, table: sa.Table, plan: Plan, limit: int = 10) -> list[tuple]:
    """(account, column, before, after) for a sample of the updated rows."""
    sample = plan.updates.slice(0, limit).to_pylist()
    if not sample:
        return []
    keys = [r[KEY] for r in sample]
    before = {r[KEY]: r for r in (dict(m._mapping) for m in conn.execute(
        sa.select(table).where(table.c[KEY].in_(keys))))}
    out = []
    for row in sample:
        old = before.get(row[KEY], {})
        for column in VALUE_COLUMNS:
            if _comparable(old.get(column)) != _comparable(row[column]):
                out.append((row[KEY], column, old.get(column), row[column]))
        if old and not old.get("in_book", True):
            out.append((row[KEY], "in_book", False, True))
    return out


def _log(warehouse: Warehouse, record: dict, rejected: list[Rejected], run_id: str, as_of: date) -> None:
    warehouse.append(PUBLISH_LOG, pa.Table.from_pylist([record], schema=pa.schema([
        ("run_id", pa.string()), ("as_of", pa.date32()), ("target", pa.string()),
        ("status", pa.string()), ("logged_at", pa.timestamp("us", tz="UTC")),
        ("inserted", pa.int64()), ("updated", pa.int64()), ("unchanged", pa.int64()),
        ("left_book", pa.int64()), ("rejected", pa.int64()), ("retried", pa.int64()),
        ("accounts_updated", pa.int64()), ("tier_changes", pa.int64()), ("seconds", pa.float64()),
        ("message", pa.string()),
    ])))
    warehouse.write(REJECTED, pa.table({
        "run_id": pa.array([run_id] * len(rejected), pa.string()),
        "as_of": pa.array([as_of] * len(rejected), pa.date32()),
        "target": pa.array([r.target for r in rejected], pa.string()),
        KEY: pa.array([r.key for r in rejected], pa.string()),
        "error": pa.array([r.error for r in rejected], pa.string()),
    }))


def _previous_rejects(warehouse: Warehouse) -> set[str]:
    if not warehouse.exists(REJECTED):
        return set()
    return set(warehouse.read(REJECTED, [KEY]).column(KEY).to_pylist())


def publish(settings: Settings, as_of: date, *, run_id: str | None = None, dry_run: bool = False,
            force: bool = False, desired: pa.Table | None = None) -> StepResult:
    """Publish the night's rows (`desired`: crm_account_publish with row_hash; read from the marts
    unless given, as the benchmark does)."""
    started = time.perf_counter()
    config = settings.config.publish
    if config is None:
        return StepResult("publish", notes=["no publish target configured"])
    run_id = run_id or f"publish-{as_of.isoformat()}"
    warehouse = Warehouse(settings.warehouse_path)
    desired = desired_rows(settings, as_of) if desired is None else desired
    url = settings.source_url(config.target)
    target = f"{safe_url(url)} table {config.table}"
    engine = _engine(url)
    table = target_table(config.table)
    rejected: list[Rejected] = []
    timings: dict[str, float] = {"read marts": time.perf_counter() - started}
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            tick = time.perf_counter()
            _ensure_table(conn, table)
            plan = plan_changes(desired, _current(conn, table, config.tolerance), config.left_book,
                                config.tolerance)
            timings["diff"] = time.perf_counter() - tick
            share = plan.tier_change_share
            blocked = (plan.current_in_book >= config.breaker_min_accounts
                       and share > config.max_tier_change_share)
            samples = _field_changes(conn, table, plan) if dry_run else []
            if dry_run or (blocked and not force):
                accounts = (_write_accounts(conn, settings, desired, plan.left, config.left_book,
                                            rejected, dry_run=True) if config.accounts else {})
                transaction.rollback()
            else:
                tick = time.perf_counter()
                write = _write_postgres if _is_postgres(conn) else _write_generic
                write(conn, table, plan, as_of, run_id, config.left_book, rejected)
                accounts = (_write_accounts(conn, settings, desired, plan.left, config.left_book,
                                            rejected, dry_run=False) if config.accounts else {})
                if checkpoint:
                    checkpoint("written", conn)
                transaction.commit()
                timings["write"] = time.perf_counter() - tick
    except sa.exc.DBAPIError as exc:
        raise RuntimeError(f"publish to {target} failed, nothing was changed there: "
                           f"{str(exc.orig).strip()}") from None
    except Exception as exc:
        if exc.__class__.__module__.startswith("psycopg"):
            raise RuntimeError(f"publish to {target} failed, nothing was changed there: "
                               f"{str(exc).strip()}") from None
        raise
    finally:
        engine.dispose()

    rejected_keys = {r.key for r in rejected}
    inserted = plan.inserts.num_rows - len(rejected_keys & set(plan.inserts.column(KEY).to_pylist()))
    updated = plan.updates.num_rows - len(rejected_keys & set(plan.updates.column(KEY).to_pylist()))
    changed_keys = set(plan.inserts.column(KEY).to_pylist()) | set(plan.updates.column(KEY).to_pylist())
    retried = len(_previous_rejects(warehouse) & changed_keys) if not dry_run else 0
    result = StepResult("publish", seconds=time.perf_counter() - started)
    left_label = {"keep": "kept", "flag": "flagged", "remove": "removed"}[config.left_book]
    result.details.update(
        target=target, dry_run=dry_run, unchanged=plan.unchanged, left_book=len(plan.left),
        left_book_rule=left_label, rejected=len(rejected), retried=retried,
        tier_changes=plan.tier_changes, tier_change_share=share, current_in_book=plan.current_in_book,
        field_changes=samples, tier_moves=plan.changed_tiers, timings=timings,
        rejects=[(r.target, r.key, r.error) for r in rejected[:20]], **accounts,
    )
    if dry_run:
        result.rows = {}
        result.details.update(would_insert=plan.inserts.num_rows, would_update=plan.updates.num_rows,
                              changed=0)
        result.notes.append("dry run: nothing was written")
        return result
    removed = len(plan.left) if config.left_book == "remove" else 0
    flagged = len(plan.left) if config.left_book == "flag" else 0
    result.rows = {"inserted": inserted, "updated": updated + flagged, "deleted": removed}
    result.details["changed"] = inserted + updated + flagged + removed
    record = {
        "run_id": run_id, "as_of": as_of, "target": target, "logged_at": datetime.now(UTC),
        "inserted": inserted, "updated": updated, "unchanged": plan.unchanged,
        "left_book": len(plan.left), "rejected": len(rejected), "retried": retried,
        "accounts_updated": accounts.get("accounts_updated", 0), "tier_changes": plan.tier_changes,
        "seconds": result.seconds, "status": "committed", "message": None,
    }
    if blocked and not force:
        record.update(status="blocked", inserted=0, updated=0, left_book=0, rejected=0, message=(
            f"{plan.tier_changes} of {plan.current_in_book} tiers would change"))
        _log(warehouse, record, [], run_id, as_of)
        raise PublishBlocked(
            f"publish to {target} stopped before writing: {plan.tier_changes:,} of "
            f"{plan.current_in_book:,} published tiers would change ({share:.1%}), more than "
            f"publish.max_tier_change_share ({config.max_tier_change_share:.0%}). Nothing was written. "
            "Check the night's data (`kam publish --dry-run` shows the changes); if they are right, "
            "publish with `kam publish --force`.")
    if blocked:
        result.notes.append(f"circuit breaker overridden (--force): {share:.1%} of tiers changed")
    if rejected:
        result.notes.append(f"{len(rejected)} row(s) refused by the CRM database, kept in {REJECTED} "
                            "and retried next run: " + "; ".join(
                                f"{r.key}: {r.error}" for r in rejected[:3]))
    _log(warehouse, record, rejected, run_id, as_of)
    return result


def describe_plan(result: StepResult) -> Iterable[str]:
    """Lines for `kam publish --dry-run`."""
    d = result.details
    yield (f"Dry run against {d['target']}: {d['would_insert']:,} to insert, {d['would_update']:,} to "
           f"update, {d['unchanged']:,} unchanged, {d['left_book']:,} left the book (would be "
           f"{d['left_book_rule']}).")
    yield (f"Tier changes: {d['tier_changes']:,} of {d['current_in_book']:,} published "
           f"({d['tier_change_share']:.1%}).")
    if "accounts_updated" in d:
        yield (f"Accounts table: {d['accounts_updated']:,} account(s) to update, "
               f"{d['accounts_not_found']:,} not found in the CRM (never created).")
    if d["field_changes"]:
        yield "Sample of field-level changes (account, column: before -> after):"
        for key, column, old, new in d["field_changes"]:
            yield f"  {key}  {column}: {old!r} -> {new!r}"

