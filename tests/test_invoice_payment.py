"""transforms/marts/invoice_payment.sql against the rule written out in Python: an invoice is paid on
the day the running total of its payments up to the as-of date (in payment-date, then payment-id
order) reaches its amount, less half a cent."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import numpy as np

from pipelines.duckdb_session import sql_file
from pipelines.staging import empty_entity_sql

AS_OF = date(2026, 6, 30)


def _by_rule(invoices: list[tuple], payments: list[tuple]) -> set[tuple]:
    out = set()
    for invoice_id, customer_id, invoice_date, due_date, amount in invoices:
        if invoice_date > AS_OF or amount <= 0:
            continue
        mine = sorted((d, pid, a) for pid, iid, d, a in payments if iid == invoice_id and d <= AS_OF)
        running, paid_on = Decimal(0), None
        for day, _, paid in mine:
            running += paid
            if running >= amount - Decimal("0.005"):
                paid_on = day
                break
        out.add((invoice_id, customer_id, invoice_date, due_date, amount, paid_on))
    return out


def _cases(rng: np.random.Generator) -> tuple[list[tuple], list[tuple]]:
    invoices, payments = [], []
    for n in range(600):
        invoice_id = f"9{n:05d}"
        invoice_date = AS_OF - timedelta(days=int(rng.integers(-20, 400)))
        amount = Decimal(int(rng.integers(-2, 200_000))) / 100  # some zero and negative amounts
        invoices.append((invoice_id, f"C{n % 97}", invoice_date, invoice_date + timedelta(days=30), amount))
        shape = n % 6  # none, one full, one short, several reaching it, several short, same-day parts
        parts = {0: [], 1: [amount], 2: [amount - Decimal("0.01")],
                 3: [amount / 3, amount / 3, amount - 2 * (amount / 3) + Decimal("0.004")],
                 4: [amount / 4, amount / 4], 5: [amount / 2, amount / 2]}[shape]
        for k, part in enumerate(parts):
            day = invoice_date + timedelta(days=0 if shape == 5 else int(rng.integers(0, 90)))
            payments.append((f"P{n}-{k}", invoice_id, day, part.quantize(Decimal("0.01"))))
    payments.append(("P-orphan", "no-such-invoice", AS_OF, Decimal("5.00")))
    return invoices, payments


def test_invoices_are_paid_on_the_day_their_payments_add_up_to_the_amount():
    invoices, payments = _cases(np.random.default_rng(7))
    con = duckdb.connect()
    con.execute(f"SET VARIABLE as_of = DATE '{AS_OF.isoformat()}'")
    for entity in ("invoice", "payment"):
        con.execute(f"CREATE TABLE stg_{entity} AS {empty_entity_sql(entity)}")
    invoice_columns = "invoice_id, customer_id, invoice_date, due_date, amount"
    con.executemany(f"INSERT INTO stg_invoice ({invoice_columns}) VALUES (?, ?, ?, ?, ?)", invoices)
    payment_columns = "payment_id, invoice_id, payment_date, amount"
    con.executemany(f"INSERT INTO stg_payment ({payment_columns}) VALUES (?, ?, ?, ?)", payments)
    got = {tuple(r) for r in con.execute(sql_file("marts", "invoice_payment")).fetchall()}
    expected = _by_rule(invoices, payments)
    assert got == expected
    paid = [r for r in expected if r[5] is not None]
    later = [r for r in paid if r[5] != min(p[2] for p in payments if p[1] == r[0])]
    assert len(paid) > 100 and len(later) > 20 and len(expected) - len(paid) > 100  # every shape is there
