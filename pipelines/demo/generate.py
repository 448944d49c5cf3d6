"""Putting the demo business together, in the order its facts depend on each other.

Latent customers first, then master data, orders, lines (which yield order values and weights),
then what follows from orders: invoices, payments, shipments, returns, service cases. Faults are
planted last, table by table, so every derived table was computed from clean data, as in a real
landscape where the mess is in the records and not in the business.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from pipelines.demo import dirty, finance, logistics, service, vocab
from pipelines.demo.churn import churn_parts
from pipelines.demo.customers import build_parties, erp_customers, salesforce_pod
from pipelines.demo.lines import build_lines
from pipelines.demo.orders import CANCELLED, draw_orders, orders_table
from pipelines.demo.population import build_population
from pipelines.demo.products import build_catalogue
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline
from pipelines.demo.truth import build_truth


class DemoSystems(dict):
    """{"crm": {table: pyarrow.Table}, "erp": {...}, "scm": {...}} plus what is not source data.

    Attributes: `truth` (one row per ERP customer: true keys in every system and the planted
    patterns), `dirty` (rows of each fault kind planted per table), `as_of`, `seed`, `customers`.
    Only the three systems are keys, so iterating never meets the ground truth.
    """

    truth: pa.Table
    dirty: pa.Table
    as_of: date
    seed: int
    customers: int


def generate_demo(customers: int, as_of: date, seed: int = 42,
                  dirty_share: float = 0.01) -> DemoSystems:
    """Generate the CRM, ERP and SCM of a demo distributor with `customers` ERP customers.

    Three years of history up to and including `as_of`; identical output for identical
    arguments. `dirty_share` is the share of rows of each table given a fault (0: clean data).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if not 0 <= dirty_share <= 0.5:
        raise ValueError("dirty_share must be between 0 and 0.5")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")

    timeline = Timeline(as_of)
    pop = build_population(customers, timeline, seed)
    parties = build_parties(pop, timeline, seed)
    catalogue = build_catalogue(customers, timeline, seed)
    book = draw_orders(pop, timeline, seed)
    plan = logistics.plan_shipments(book, timeline)
    context = dirty.Context(as_of_day=timeline.end_day, salesforce_pod=salesforce_pod(seed))
    lines = build_lines(book, pop, catalogue, plan, timeline, seed, dirty_share, context)

    fx = np.array(vocab.FX_PER_EUR)[pop.currency[book.customer]]
    sold = np.where(book.status == CANCELLED, 0.0, lines.order_value / fx)
    annual_revenue = np.bincount(book.customer, weights=sold, minlength=pop.n) / timeline.years

    systems = DemoSystems(
        crm={
            "accounts": parties.accounts,
            "contacts": parties.contacts,
            "opportunities": service.opportunities_table(pop, parties, timeline, seed),
            "cases": service.cases_table(pop, parties, book, timeline, seed),
        },
        erp={
            "customers": None,  # needs the churn label, measured on the tables below
            "products": catalogue.table,
            "sales_orders": orders_table(book, pop, parties.customer_no, timeline),
            "sales_order_lines": lines.table,
            "invoices": finance.invoices_table(book, pop, parties.customer_no,
                                               lines.order_value, timeline),
            "payments": finance.payments_table(book, pop, parties.customer_no,
                                               lines.order_value, timeline, seed),
            "customer_financials": finance.financials_table(pop, parties.customer_no,
                                                            timeline, seed),
        },
        scm={
            "shipments": logistics.shipments_table(plan, book, pop, parties.consignee_code,
                                                   lines.weight_kg, timeline, seed),
            "returns": logistics.returns_table(lines.returns, plan, catalogue.product_no,
                                               timeline),
        },
    )
    churn = churn_parts(systems["erp"], systems["crm"], systems["scm"], parties,
                        timeline.dates(pop.created), as_of)
    systems["erp"]["customers"] = erp_customers(pop, parties, timeline, seed, annual_revenue,
                                                churn[0] | churn[1])
    truth = build_truth(pop, parties, timeline, churn)
    lines_counts = lines.dirty_counts
    # At a million customers the working arrays take gigabytes; free them before the faults
    # copy the tables they touch.
    del pop, parties, catalogue, book, plan, lines, fx, sold, annual_revenue

    log = []
    for system, tables in systems.items():
        for name, table in tables.items():
            if (system, name) == ("erp", "sales_order_lines"):
                counts = lines_counts
            else:
                tables[name], counts = dirty.inject(
                    table, system, name, dirty_share, stream(seed, f"dirty.{system}.{name}"),
                    context)
            log.extend((system, name, kind, rows) for kind, rows in counts.items())
    systems.truth = truth
    systems.dirty = pa.table({
        "system": pa.array([r[0] for r in log], pa.string()),
        "table": pa.array([r[1] for r in log], pa.string()),
        "kind": pa.array([r[2] for r in log], pa.string()),
        "rows": pa.array([r[3] for r in log], pa.int64()),
    })
    systems.as_of, systems.seed, systems.customers = as_of, seed, customers
    return systems
