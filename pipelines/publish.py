"""Publish (reverse ETL): write `crm_account_tier` into the CRM, changed rows only, in one transaction.

Sales ops see the table in their CRM the next morning. Writing only what changed keeps the CRM's
own change tracking meaningful (a row's `updated_as_of` moves only when its tier or figures do), and
one transaction means the CRM shows either last night's table or tonight's, never a mix.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.results import StepResult
from pipelines.sources import safe_url
from pipelines.warehouse import Warehouse

KEY = "crm_account_id"
VALUE_COLUMNS = [
    "customer_id", "tier", "abc_class", "key_account", "revenue_12m", "orders_12m",
    "gross_margin_12m", "last_order_date",
]
CHUNK = 50_000


def target_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        name, metadata or sa.MetaData(),
        sa.Column(KEY, sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("abc_class", sa.String(1), nullable=False),
        sa.Column("key_account", sa.Boolean, nullable=False),
        sa.Column("revenue_12m", sa.Numeric(18, 2), nullable=False),
        sa.Column("orders_12m", sa.Integer, nullable=False),
        sa.Column("gross_margin_12m", sa.Numeric(18, 2)),
        sa.Column("last_order_date", sa.Date),
        sa.Column("updated_as_of", sa.Date, nullable=False,
                  comment="as-of date of the KAM run that last changed this row"),
    )


def _comparable(column: str, value):
    """Values as they compare equal across Arrow, SQLite and PostgreSQL round trips."""
    if value is None:
        return None
    if column in ("revenue_12m", "gross_margin_12m"):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if column == "last_order_date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if column == "key_account":
        return bool(value)
    if column == "orders_12m":
        return int(value)
    return str(value)


def _row_values(row: dict) -> tuple:
    return tuple(_comparable(c, row[c]) for c in VALUE_COLUMNS)


def plan_changes(desired: list[dict], current: list[dict]) -> tuple[list[dict], list[dict], list[str]]:
    """Rows to insert, rows to update and keys to delete to turn `current` into `desired`."""
    now = {r[KEY]: _row_values(r) for r in current}
    inserts, updates = [], []
    for row in desired:
        values = _row_values(row)
        before = now.pop(row[KEY], None)
        if before is None:
            inserts.append(row)
        elif before != values:
            updates.append(row)
    return inserts, updates, sorted(now)


def publish(settings: Settings, as_of: date) -> StepResult:
    started = time.perf_counter()
    target = settings.config.publish
    if target is None:
        return StepResult("publish", notes=["no publish target configured"])
    desired = Warehouse(settings.warehouse_path).read("crm_account_tier").to_pylist()
    url = settings.source_url(target.target)
    engine = sa.create_engine(url)
    table = target_table(target.table)
    try:
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
            current = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            inserts, updates, deletes = plan_changes(desired, current)

            def record(row: dict) -> dict:
                out = {c: _comparable(c, row[c]) for c in VALUE_COLUMNS}
                return {**out, KEY: row[KEY], "updated_as_of": as_of}

            for i in range(0, len(deletes), CHUNK):
                conn.execute(sa.delete(table).where(table.c[KEY].in_(deletes[i:i + CHUNK])))
            if updates:
                stmt = (
                    sa.update(table)
                    .where(table.c[KEY] == sa.bindparam("_key"))
                    .values({c: sa.bindparam(c) for c in [*VALUE_COLUMNS, "updated_as_of"]})
                )
                for i in range(0, len(updates), CHUNK):
                    conn.execute(stmt, [
                        {**{k: v for k, v in record(r).items() if k != KEY}, "_key": r[KEY]}
                        for r in updates[i:i + CHUNK]
                    ])
            for i in range(0, len(inserts), CHUNK):
                conn.execute(sa.insert(table), [record(r) for r in inserts[i:i + CHUNK]])
    except sa.exc.OperationalError as exc:
        raise RuntimeError(
            f"publish to {safe_url(url)} failed, nothing was changed there: {exc.orig}"
        ) from None
    finally:
        engine.dispose()
    result = StepResult("publish", seconds=time.perf_counter() - started)
    result.rows = {"inserted": len(inserts), "updated": len(updates), "deleted": len(deletes)}
    result.details.update(
        target=f"{safe_url(url)} table {target.table}",
        changed=len(inserts) + len(updates) + len(deletes),
        unchanged=len(desired) - len(inserts) - len(updates),
    )
    return result
