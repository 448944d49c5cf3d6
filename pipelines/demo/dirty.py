"""The mess real source systems hold, planted on purpose and counted.

A pipeline that was only ever fed clean data has never been tested. Each table gets the faults
its kind of system really shows (double-posted ERP rows, headers lost under their lines, dates
typed as '20241345', contacts without an account, a company entered twice in the CRM), about
`share` of its rows in all, split evenly over its kinds. Nothing here runs when share is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.demo import text

EXACT_DUPLICATE = "exact_duplicate"  # the same row twice
KEY_DUPLICATE = "key_duplicate"  # a second version of a row under the same business key
DUPLICATE_RECORD = "duplicate_record"  # the same company again under a new id
NULL_KEY = "null_key"
ORPHAN_KEY = "orphan_key"  # points to a parent that does not exist
NEGATIVE_QUANTITY = "negative_quantity"
FUTURE_DATE = "future_date"  # dated after the as-of date
UNPARSEABLE_DATE = "unparseable_date"

# What an ERP date field holds when someone or some interface got it wrong.
BAD_DATES = ["20241345", "00000000", "", "20230230", "99999999", "2O240115"]

# The faults each table can carry. The order of the kinds is part of the seed's contract.
KINDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("crm", "accounts"): (DUPLICATE_RECORD,),
    ("crm", "contacts"): (NULL_KEY, ORPHAN_KEY),
    ("crm", "opportunities"): (ORPHAN_KEY,),
    ("crm", "cases"): (ORPHAN_KEY,),
    ("erp", "customers"): (UNPARSEABLE_DATE,),
    ("erp", "products"): (UNPARSEABLE_DATE,),
    ("erp", "sales_orders"): (EXACT_DUPLICATE, KEY_DUPLICATE, NULL_KEY, ORPHAN_KEY, FUTURE_DATE,
                              UNPARSEABLE_DATE),
    ("erp", "sales_order_lines"): (EXACT_DUPLICATE, KEY_DUPLICATE, NULL_KEY, NEGATIVE_QUANTITY,
                                   ORPHAN_KEY, UNPARSEABLE_DATE),
    ("erp", "invoices"): (ORPHAN_KEY, UNPARSEABLE_DATE),
    ("erp", "payments"): (ORPHAN_KEY, UNPARSEABLE_DATE),
    ("erp", "customer_financials"): (EXACT_DUPLICATE, UNPARSEABLE_DATE),
    ("scm", "shipments"): (ORPHAN_KEY,),
    ("scm", "returns"): (ORPHAN_KEY, NEGATIVE_QUANTITY),
}


@dataclass(frozen=True)
class Context:
    """What the faults need to know to look plausible."""

    as_of_day: int  # days since 1970-01-01
    salesforce_pod: str


# Per table: the column each fault hits, and how a wrong value of it is made.
def _missing_account(rng: np.random.Generator, n: int, ctx: Context) -> pa.Array:
    # Deleted accounts: their record numbers lie in a range this org never handed out.
    return text.salesforce_ids("001", ctx.salesforce_pod, rng.integers(62**8, 62**9, n))


def _missing_customer(rng: np.random.Generator, n: int, ctx: Context) -> pa.Array:
    return text.number_text(rng.integers(9_000_000, 9_999_999, n))


def _missing_number(low: int) -> Callable[[np.random.Generator, int, Context], pa.Array]:
    return lambda rng, n, ctx: pa.array(rng.integers(low, low + 10_000_000, n))


def _missing_order_ref(rng: np.random.Generator, n: int, ctx: Context) -> pa.Array:
    return text.join("SO-", text.number_text(rng.integers(900_000_000, 910_000_000, n)))


def _missing_shipment(rng: np.random.Generator, n: int, ctx: Context) -> pa.Array:
    return text.code("SHP", rng.integers(900_000_000, 910_000_000, n), 9)


_ORPHANS = {
    ("crm", "contacts"): ("account_id", _missing_account),
    ("crm", "opportunities"): ("account_id", _missing_account),
    ("crm", "cases"): ("account_id", _missing_account),
    ("erp", "sales_orders"): ("customer_no", _missing_customer),
    ("erp", "sales_order_lines"): ("order_no", _missing_number(900_000_000)),
    ("erp", "invoices"): ("order_no", _missing_number(900_000_000)),
    ("erp", "payments"): ("invoice_no", _missing_number(990_000_000)),
    ("scm", "shipments"): ("sales_order_ref", _missing_order_ref),
    ("scm", "returns"): ("shipment_id", _missing_shipment),
}
_NULL_KEYS = {
    ("crm", "contacts"): "account_id",
    ("erp", "sales_orders"): "customer_no",
    ("erp", "sales_order_lines"): "order_no",
}
_DATES = {
    ("erp", "customers"): "created_on",
    ("erp", "products"): "changed_on",
    ("erp", "sales_orders"): "order_date",
    ("erp", "sales_order_lines"): "changed_on",
    ("erp", "invoices"): "invoice_date",
    ("erp", "payments"): "payment_date",
    ("erp", "customer_financials"): "reported_on",
}


def inject(table: pa.Table, system: str, name: str, share: float, rng: np.random.Generator,
           ctx: Context) -> tuple[pa.Table, dict[str, int]]:
    """The table with about share * rows faulty rows, and how many of each kind it got."""
    kinds = KINDS.get((system, name), ())
    n = table.num_rows
    if share <= 0 or not kinds or n == 0:
        return table, {}
    per_kind = max(1, int(round(share * n / len(kinds))))
    picked = rng.choice(n, size=min(n, per_kind * len(kinds)), replace=False)
    counts: dict[str, int] = {}
    appended: list[pa.Table] = []
    for i, kind in enumerate(kinds):
        rows = np.sort(picked[i * per_kind:(i + 1) * per_kind])
        if len(rows) == 0:
            continue
        counts[kind] = len(rows)
        key = (system, name)
        if kind == EXACT_DUPLICATE:
            appended.append(table.take(pa.array(rows)))
        elif kind == KEY_DUPLICATE:
            appended.append(_second_version(table.take(pa.array(rows)), rng, ctx))
        elif kind == DUPLICATE_RECORD:
            appended.append(_duplicate_accounts(table.take(pa.array(rows)), rng, ctx))
        elif kind == NULL_KEY:
            table = _replace(table, _NULL_KEYS[key], rows, None)
        elif kind == ORPHAN_KEY:
            column, make = _ORPHANS[key]
            table = _replace(table, column, rows, make(rng, len(rows), ctx))
        elif kind == NEGATIVE_QUANTITY:
            table = _replace(table, "quantity", rows, pc.negate(table["quantity"].take(rows)))
        elif kind == FUTURE_DATE:
            days = ctx.as_of_day + rng.integers(1, 400, len(rows))
            table = _replace(table, _DATES[key], rows, text.yyyymmdd(days))
        elif kind == UNPARSEABLE_DATE:
            table = _replace(table, _DATES[key], rows,
                             text.pick(BAD_DATES, rng.integers(0, len(BAD_DATES), len(rows))))
    return pa.concat_tables([table, *appended]), counts


def _replace(table: pa.Table, column: str, rows: np.ndarray,
             values: pa.Array | pa.ChunkedArray | None) -> pa.Table:
    """The table with `column` at the (sorted) `rows` set to `values` (None: null)."""
    i = table.schema.get_field_index(column)
    array = table.column(i).combine_chunks()
    if values is None:
        values = pa.nulls(len(rows), array.type)
    elif isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    replaced = pc.replace_with_mask(array, pa.array(mask), values.cast(array.type))
    return table.set_column(i, table.schema.field(i), replaced)


def _second_version(rows: pa.Table, rng: np.random.Generator, ctx: Context) -> pa.Table:
    """The same key edited later: a changed status (orders) or quantity (lines)."""
    n = rows.num_rows
    everywhere = np.arange(n)
    later = text.yyyymmdd(ctx.as_of_day - rng.integers(0, 30, n))
    rows = _replace(rows, "changed_on", everywhere, later)
    if "status" in rows.column_names:
        status = text.pick(["OPEN", "DELIVERED", "INVOICED", "CANCELLED"], rng.integers(0, 4, n))
        return _replace(rows, "status", everywhere, status)
    factor = pa.array(rng.choice([0.5, 2.0, 3.0, 10.0], n))
    return _replace(rows, "quantity", everywhere, pc.multiply(rows["quantity"], factor))


def _duplicate_accounts(rows: pa.Table, rng: np.random.Generator, ctx: Context) -> pa.Table:
    """A sales rep enters an existing company again: new id, name typed in capitals or not."""
    n = rows.num_rows
    everywhere = np.arange(n)
    ids = text.salesforce_ids("001", ctx.salesforce_pod, rng.integers(62**7, 62**8, n))
    rows = _replace(rows, "account_id", everywhere, ids)
    upper = pa.array(rng.random(n) < 0.5)
    names = pc.if_else(upper, pc.utf8_upper(rows["account_name"]), rows["account_name"])
    rows = _replace(rows, "account_name", everywhere, names.combine_chunks())
    keep_number = pa.array(rng.random(n) < 0.5)
    numbers = pc.if_else(keep_number, rows["erp_customer_number"], pa.scalar(None, pa.string()))
    return _replace(rows, "erp_customer_number", everywhere, numbers.combine_chunks())
