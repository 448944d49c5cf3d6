"""`invoice_payment`, every invoice with the day its payments covered it, kept in the warehouse as
`fct_invoice_payment` and brought up to date from what staging re-checked, instead of summed again
from every invoice and payment each night.

The day an invoice was paid does not depend on the as-of date: the running total of its payments,
in date order, first reaches the amount on one day whatever night asks. A night knows that day
when it is on or before its as-of date and not otherwise, which is what summing only the payments
up to the as-of date gives: over that prefix of the dates the running total reaches the amount on
the same first day, or not at all (transforms/marts/invoice_payment.sql; tests/test_invoice_payment.py
checks it against the rule on payments after the as-of date and refunds). So the fact holds the day
over every staged payment and each night reads it through its as-of date (`as_of_sql`). At 1M
customers summing 7.9M payments into 8.3M invoices took 4.4 s of every build; a night's re-checked
invoices and payments are a few ten thousand.

Only the invoices staging re-checked, or whose payments it re-checked (where a payment is now and
where it was), are computed again; when they come out as they were, the fact is not written.
pipelines/kept_facts.py says when the fact can be updated at all and keeps its record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from pipelines import kept_facts, stage_state
from pipelines.duckdb_session import Session, sql_file

FACT = "fct_invoice_payment"
INPUTS = ("invoice", "payment")
COLUMNS = ("invoice_id", "customer_id", "invoice_date", "due_date", "amount", "paid_on")


def recipe() -> str:
    """A fingerprint of the SQL the fact is computed with: a changed transform computes it whole."""
    return hashlib.sha256(sql_file("marts", "invoice_payment").encode()).hexdigest()[:16]


def as_of_sql(fact: str) -> str:
    """The invoices known on the session's as-of date, paid on a day not after it or not yet."""
    return (f"SELECT invoice_id, customer_id, invoice_date, due_date, amount, "
            f"CASE WHEN paid_on <= getvariable('as_of') THEN paid_on END AS paid_on "
            f'FROM "{fact}" WHERE invoice_date <= getvariable(\'as_of\')')


def computed_sql(session: Session, invoices: str | None = None) -> str:
    """invoice_payment.sql over every staged invoice and payment, or over the invoices whose ids
    are in table `invoices` (column invoice_id) and their payments."""
    if invoices is None:
        session.con.execute("CREATE OR REPLACE TEMP VIEW paid_invoices AS SELECT * FROM stg_invoice")
        session.con.execute("CREATE OR REPLACE TEMP VIEW paid_payments AS SELECT * FROM stg_payment")
    else:
        wanted = f'invoice_id IN (SELECT invoice_id FROM "{invoices}")'
        session.con.execute(f"CREATE OR REPLACE TEMP VIEW paid_invoices AS SELECT * FROM stg_invoice "
                            f"WHERE {wanted}")
        session.con.execute(f"CREATE OR REPLACE TEMP VIEW paid_payments AS SELECT * FROM stg_payment "
                            f"WHERE {wanted}")
    return sql_file("marts", "invoice_payment")


def _touched(session: Session, plan: dict[str, bool], summed: dict[str, int | None]) -> None:
    """`_paid_touched`: the invoices to compute again — those staging re-checked, and those of every
    payment it re-checked, as the payment is now and as it was (it can move to another invoice)."""
    parts = []
    if plan["invoice"]:
        parts.append("SELECT k0 AS invoice_id FROM _stage_changes WHERE entity = 'invoice'")
    if plan["payment"]:
        payments = "payment_id IN (SELECT k0 FROM _stage_changes WHERE entity = 'payment')"
        session.expose("stg_payment", alias="_paid_payments_before", version=summed["payment"])
        parts += [f"SELECT invoice_id FROM stg_payment WHERE {payments}",
                  f"SELECT invoice_id FROM _paid_payments_before WHERE {payments}"]
    session.materialize("_paid_touched", f"SELECT DISTINCT invoice_id FROM ({' UNION ALL '.join(parts)}) "
                                         "WHERE invoice_id IS NOT NULL")


def materialize(session: Session, mapped: Collection[str], *, keep: bool) -> dict:
    """The view `invoice_payment` in the session (stg_invoice and stg_payment exposed) as its as-of
    date sees it, from the fact table where it can be; with `keep`, the fact is written when it
    changed. Returns how it was made, for the step's details."""
    warehouse = session.warehouse
    versions = {e: warehouse.version(f"stg_{e}") if e in mapped else None for e in INPUTS}
    built = kept_facts.record(warehouse, FACT)
    changes_version = warehouse.version(stage_state.CHANGES_TABLE)
    plan = kept_facts.update_plan(built, recipe(), versions, stage_state.load(warehouse), changes_version,
                                  merged=INPUTS)
    columns = ", ".join(COLUMNS)
    if plan is None:
        session.materialize("_paid", f"SELECT {columns} FROM ({computed_sql(session)})")
        how, changed = {"invoice_payment": "computed"}, True
    elif not any(plan.values()):
        session.expose(FACT, alias="_paid")
        how, changed = {"invoice_payment": "kept"}, False
    else:
        session.expose(stage_state.CHANGES_TABLE, alias="_stage_changes")
        _touched(session, plan, built["versions"])
        again = computed_sql(session, "_paid_touched")
        session.materialize("_paid_again", f"SELECT {columns} FROM ({again})")
        session.expose(FACT, alias="_paid_kept")
        mine = 'invoice_id IN (SELECT invoice_id FROM "_paid_touched")'
        before = f"SELECT {columns} FROM _paid_kept WHERE {mine}"
        changed = session.con.execute(
            f"SELECT EXISTS ({before} EXCEPT ALL SELECT * FROM _paid_again) "
            f"OR EXISTS (SELECT * FROM _paid_again EXCEPT ALL {before})").fetchone()[0]
        if changed:
            session.materialize("_paid", f"SELECT {columns} FROM _paid_kept WHERE NOT {mine} "
                                         "UNION ALL SELECT * FROM _paid_again")
        else:
            session.con.execute("CREATE OR REPLACE TEMP VIEW _paid AS SELECT * FROM _paid_kept")
        how = {"invoice_payment": "updated" if changed else "kept",
               "invoices_computed_again": session.count("_paid_touched")}
    if keep and changed:
        session.write(FACT, "SELECT * FROM _paid", metadata=kept_facts.built_from(recipe(), versions))
    elif keep and built is not None and built.get("versions") != versions:
        # the same rows, from the staged tables' new versions: the record follows them (no rows written)
        session.warehouse.annotate(FACT, kept_facts.built_from(recipe(), versions))
    session.con.execute(f"CREATE OR REPLACE TEMP VIEW invoice_payment AS {as_of_sql('_paid')}")
    return how
