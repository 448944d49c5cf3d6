"""fct_invoice_payment: kept in the warehouse and computed again only for the invoices staging
re-checked or whose payments it re-checked; after every kind of night it equals the whole
computation over the staged tables, and each night reads it through its as-of date."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from pipelines import invoice_payment, kept_facts
from pipelines.config import load_config
from pipelines.duckdb_session import Session
from pipelines.nightly import run_nightly, run_step
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

D1 = date.fromisoformat(DEMO_AS_OF)
BUILD = ["extract", "stage", "build"]


def _fact_and_scratch(warehouse: Warehouse, as_of: date) -> tuple[list, list, list]:
    """The fact's rows, the whole computation over every staged invoice and payment, and the
    fact as the as-of date reads it."""
    with Session(warehouse, as_of) as session:
        for entity in invoice_payment.INPUTS:
            session.expose(f"stg_{entity}")
        scratch = session.con.execute(f"{invoice_payment.computed_sql(session)} ORDER BY ALL").fetchall()
        session.expose(invoice_payment.FACT, alias="fact")
        fact = session.con.execute("SELECT * FROM fact ORDER BY ALL").fetchall()
        seen = session.con.execute(f"{invoice_payment.as_of_sql('fact')} ORDER BY ALL").fetchall()
    return fact, scratch, seen


def _paid_on(rows: list, invoice: str):
    return next(r[5] for r in rows if r[0] == invoice)


def test_the_invoice_fact_is_computed_again_only_for_re_checked_invoices_and_payments(demo_workspace):
    demo_workspace.config.write_text(demo_workspace.config.read_text().replace(
        "retention_days: 7", "retention_days: 0"))  # maintenance below vacuums every file it can
    settings = load_config(demo_workspace.config)
    warehouse = Warehouse(settings.warehouse_path)
    assert run_nightly(D1, settings, steps=BUILD)[-1].details["invoice_payment"] == "computed"
    assert run_step("build", D1, settings).details["invoice_payment"] == "kept"  # staging did not move
    fact, scratch, _ = _fact_and_scratch(warehouse, D1)
    assert fact == scratch

    # Night 2: a payment moves from a paid invoice to an open one, and an open invoice is paid in
    # full; both payments are dated that day, so the incremental read brings them.
    d2 = D1 + timedelta(days=1)
    stamp = d2.strftime("%Y%m%d")
    with sqlite3.connect(demo_workspace.root / "demo" / "erp.db") as erp:
        moved_no, paid_invoice = erp.execute(
            "SELECT p.payment_no, p.invoice_no FROM payments p JOIN invoices i USING (invoice_no) "
            "WHERE p.amount = i.amount AND (SELECT count(*) FROM payments q WHERE q.invoice_no = "
            "p.invoice_no) = 1 ORDER BY 1 LIMIT 1").fetchone()
        open_invoices = [r[0] for r in erp.execute(
            "SELECT invoice_no FROM invoices i WHERE amount > 0 AND invoice_date <= ? AND NOT EXISTS "
            "(SELECT 1 FROM payments p WHERE p.invoice_no = i.invoice_no) ORDER BY 1 LIMIT 2",
            (D1.strftime("%Y%m%d"),))]
        erp.execute("UPDATE payments SET invoice_no = ?, payment_date = ? WHERE payment_no = ?",
                    (open_invoices[0], stamp, moved_no))
        erp.execute("INSERT INTO payments SELECT (SELECT max(payment_no) + 1 FROM payments), invoice_no, "
                    "customer_no, ?, amount FROM invoices WHERE invoice_no = ?", (stamp, open_invoices[1]))
    before = kept_facts.record(warehouse, invoice_payment.FACT)["versions"]
    night = run_nightly(d2, settings, steps=BUILD)
    assert night[1].details["staged"]["payment"] == "incremental"
    assert night[-1].details["invoice_payment"] == "updated"
    fact, scratch, seen = _fact_and_scratch(warehouse, d2)
    assert fact == scratch
    assert 0 < night[-1].details["invoices_computed_again"] < len(fact) / 5
    assert _paid_on(fact, str(paid_invoice)) is None  # its payment moved away
    assert _paid_on(seen, str(open_invoices[1])) == d2
    assert kept_facts.record(warehouse, invoice_payment.FACT)["versions"] != before

    # The night before reads the same fact without what it could not know yet.
    _, _, earlier = _fact_and_scratch(warehouse, D1)
    assert _paid_on(earlier, str(open_invoices[1])) is None

    # Maintenance compacts and vacuums every table (new versions, the same rows): the record follows
    # the staged tables, so the next night still computes again only what staging re-checked.
    run_step("maintain", d2, settings, force=True)
    after = {e: warehouse.version(f"stg_{e}") for e in invoice_payment.INPUTS}
    assert kept_facts.record(warehouse, invoice_payment.FACT)["versions"] == after
    night = run_nightly(d2 + timedelta(days=1), settings, steps=BUILD)
    assert night[-1].details["invoice_payment"] in ("updated", "kept")
    fact, scratch, _ = _fact_and_scratch(warehouse, d2 + timedelta(days=1))
    assert fact == scratch

    # A full refresh rebuilds the staged tables: the fact is computed whole again.
    night = run_nightly(d2 + timedelta(days=1), settings, steps=BUILD, full_refresh=True)
    assert night[-1].details["invoice_payment"] == "computed"
