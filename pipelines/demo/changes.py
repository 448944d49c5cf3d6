"""A day of business in the demo sources: a share of rows changed and new orders placed.

Incremental extraction, backfills and the incremental benchmark need sources that move from one
night to the next the way real ones do: rows updated in place with their change stamp moved to
the day, and new orders with their lines. Works on SQLite and PostgreSQL alike (SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import sqlalchemy as sa


@dataclass(frozen=True)
class _TextKeyedChange:
    system: str
    table: str
    key: str
    set_sql: str  # assignments; :stamp is the day's change stamp


_TEXT_KEYED = (
    _TextKeyedChange("erp", "customers", "customer_no",
                     "credit_limit = ROUND(credit_limit * 1.1, 2), changed_on = :stamp"),
    _TextKeyedChange("crm", "accounts", "account_id", "last_modified = :stamp"),
    _TextKeyedChange("crm", "cases", "case_id", "status = 'Closed', last_modified = :stamp"),
    _TextKeyedChange("scm", "shipments", "shipment_id",
                     "freight_cost = freight_cost + 1, last_update = :stamp"),
)


def simulate_day(urls: dict[str, str], day: date, *, share: float = 0.01, seed: int = 0) -> dict[str, int]:
    """Apply one day's changes to the demo databases at `urls` (system -> SQLAlchemy URL).

    About `share` of the order lines and of each text-keyed table are updated, and about
    `share / 2` of the orders are copied as new orders placed on `day`. Returns rows touched per
    table. The same seed and day touch the same rows.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    text_stamp = day.strftime("%Y%m%d")
    time_stamp = datetime(day.year, day.month, day.day, 12, 0, 0)
    touched: dict[str, int] = {}
    modulus = max(int(round(1 / share)), 1)
    pick = int(rng.integers(modulus))
    engine = sa.create_engine(urls["erp"])
    with engine.begin() as con:
        offset = con.execute(sa.text("SELECT max(order_no) FROM sales_orders")).scalar() or 0
        new_every = modulus * 2
        touched["erp.sales_orders (new)"] = con.execute(sa.text(
            "INSERT INTO sales_orders SELECT order_no + :offset, customer_no, :d, requested_delivery_date,"
            " currency, status, sales_channel, :d FROM sales_orders WHERE order_no % :m = :r"
            " AND order_no <= :last"
        ), {"offset": offset, "d": text_stamp, "m": new_every, "r": pick, "last": offset}).rowcount
        touched["erp.sales_order_lines (new)"] = con.execute(sa.text(
            "INSERT INTO sales_order_lines SELECT order_no + :offset, line_no, product_no, quantity,"
            " unit_price, discount_pct, :d FROM sales_order_lines WHERE order_no % :m = :r"
            " AND order_no <= :last"
        ), {"offset": offset, "d": text_stamp, "m": new_every, "r": pick, "last": offset}).rowcount
        touched["erp.sales_order_lines"] = con.execute(sa.text(
            "UPDATE sales_order_lines SET quantity = quantity + 1, changed_on = :d"
            " WHERE (order_no + line_no) % :m = :r AND order_no <= :last"
        ), {"d": text_stamp, "m": modulus, "r": pick, "last": offset}).rowcount
        touched["erp.sales_orders"] = con.execute(sa.text(
            "UPDATE sales_orders SET changed_on = :d WHERE order_no % :m = :r AND order_no <= :last"
        ), {"d": text_stamp, "m": modulus, "r": (pick + 1) % modulus, "last": offset}).rowcount
    engine.dispose()
    for change in _TEXT_KEYED:
        engine = sa.create_engine(urls[change.system])
        with engine.begin() as con:
            keys = [r[0] for r in con.execute(sa.text(
                f"SELECT {change.key} FROM {change.table} WHERE {change.key} IS NOT NULL ORDER BY 1"
            ))]
            chosen = rng.choice(len(keys), size=int(len(keys) * share), replace=False) if keys else []
            stamp = text_stamp if change.table == "customers" else time_stamp
            params = [{"k": keys[i], "stamp": stamp} for i in sorted(chosen)]
            if params:
                con.execute(sa.text(
                    f"UPDATE {change.table} SET {change.set_sql} WHERE {change.key} = :k"
                ), params)
            touched[f"{change.system}.{change.table}"] = len(params)
        engine.dispose()
    return touched
