"""Accounts receivable and the customers' own balance sheets.

Payment behaviour is a trait of the customer, not of the invoice: most pay within terms, some a
few days late, and the planted late payers 20-90 days after the due date. An invoice whose
payment would fall after the as-of date is simply still open, as in a real ledger. The quarterly
financials give the credit rating its 30 financial points; late payers' balance sheets are
weaker, as they tend to be.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.demo import text, vocab
from pipelines.demo.orders import INVOICED, OrderBook
from pipelines.demo.population import Population
from pipelines.demo.schema import TABLES
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

FIRST_INVOICE = 900_000_001
FIRST_PAYMENT = 1_400_000_001
NEVER_PAID = 0.002  # share of invoices written off (late payers: 10 times as many)
SHARE_WITH_FINANCIALS = 0.4


def invoice_plan(book: OrderBook) -> np.ndarray:
    """Positions of invoiced orders, in invoice-number (= invoice-date) order."""
    invoiced = np.flatnonzero(book.status == INVOICED)
    return invoiced[np.lexsort((invoiced, book.invoice_day[invoiced]))]


def invoices_table(book: OrderBook, pop: Population, customer_no: pa.StringArray,
                   order_value: np.ndarray, timeline: Timeline) -> pa.Table:
    orders = invoice_plan(book)
    customer = book.customer[orders]
    return TABLES["erp"]["invoices"].build({
        "invoice_no": FIRST_INVOICE + np.arange(len(orders), dtype=np.int64),
        "order_no": book.order_no[orders],
        "customer_no": customer_no.take(pa.array(customer)),
        "invoice_date": timeline.text_dates(book.invoice_day[orders]),
        "due_date": timeline.text_dates(book.invoice_day[orders] + pop.payment_terms[customer]),
        "amount": order_value[orders],
        "currency": text.pick(vocab.CURRENCIES, pop.currency[customer]),
    })


def payments_table(book: OrderBook, pop: Population, customer_no: pa.StringArray,
                   order_value: np.ndarray, timeline: Timeline, seed: int) -> pa.Table:
    rng = stream(seed, "payments")
    end = timeline.n_days - 1
    orders = invoice_plan(book)
    n = len(orders)
    customer = book.customer[orders]
    terms = pop.payment_terms[customer]
    due = book.invoice_day[orders] + terms

    # Days after the due date: most pay early or on the day, some a little late.
    kind = rng.random(n)
    punctual = -rng.integers(0, np.maximum(terms - 3, 1))
    slightly_late = rng.integers(1, 11, n)
    late = rng.integers(11, 31, n)
    delay = np.select([kind < 0.85, kind < 0.97], [punctual, slightly_late], late)
    late_payer = pop.is_late_payer[customer]
    planted = np.clip(pop.days_late[customer] + rng.normal(0.0, 10.0, n), 20, 90).astype(np.int64)
    delay = np.where(late_payer, planted, delay)
    pay_day = due + delay
    written_off = rng.random(n) < np.where(late_payer, 10 * NEVER_PAID, NEVER_PAID)
    paid = ~written_off & (pay_day <= end)

    rows = np.flatnonzero(paid)
    rows = rows[np.lexsort((rows, pay_day[rows]))]
    return TABLES["erp"]["payments"].build({
        "payment_no": FIRST_PAYMENT + np.arange(len(rows), dtype=np.int64),
        "invoice_no": FIRST_INVOICE + rows.astype(np.int64),
        "customer_no": customer_no.take(pa.array(customer[rows])),
        "payment_date": timeline.text_dates(pay_day[rows]),
        "amount": order_value[orders[rows]],
    })


def financials_table(pop: Population, customer_no: pa.StringArray, timeline: Timeline,
                     seed: int) -> pa.Table:
    """Quarterly statements of a subset of customers, larger ones more often, as reported."""
    rng = stream(seed, "financials")
    n = pop.n
    chance = np.clip(SHARE_WITH_FINANCIALS * 2.5 * pop.value_rank**1.5, 0.05, 0.95)
    reporting = np.flatnonzero(rng.random(n) < chance)

    first_month = timeline.dates(np.array([0])).astype("datetime64[M]")[0]
    last_month = np.datetime64(timeline.as_of, "M")
    first_q = first_month.astype(int) // 3
    quarters = np.arange(first_q, last_month.astype(int) // 3)  # quarters ended before as-of
    q_end = ((quarters + 1) * 3).astype("datetime64[M]").astype("datetime64[D]") - 1
    q_end_day = q_end.astype(np.int64) - timeline.start_day

    m, k = len(reporting), len(quarters)
    employees = np.exp(5.2 + 0.8 * np.log(pop.weight[reporting]) + rng.normal(0.0, 0.5, m))
    annual = employees * rng.uniform(120_000, 260_000, m)
    weak = pop.is_late_payer[reporting]
    growth = np.where(pop.is_growing[reporting], 0.25, rng.normal(0.02, 0.05, m))
    years = (q_end_day[None, :] - timeline.n_days) / 365.25
    revenue = (annual[:, None] / 4 * np.exp(growth[:, None] * years)
               * rng.normal(1.0, 0.06, (m, k)).clip(0.7))
    assets = annual * rng.uniform(0.5, 1.2, m)
    leverage = np.where(weak, rng.uniform(0.75, 1.05, m), rng.uniform(0.3, 0.7, m))
    current_share = rng.uniform(0.3, 0.6, m)
    current_ratio = np.where(weak, rng.uniform(0.6, 1.05, m), rng.uniform(1.1, 2.5, m))
    margin = np.where(weak, rng.uniform(-0.08, 0.02, m), rng.uniform(0.01, 0.12, m))
    drift = rng.normal(1.0, 0.03, (m, k)).cumprod(axis=1)
    total_assets = assets[:, None] * drift
    current_assets = total_assets * current_share[:, None]
    net_income = revenue * (margin[:, None] + rng.normal(0.0, 0.015, (m, k)))

    reported = q_end_day[None, :] + rng.integers(25, 80, (m, k))
    # Statements arrive only once the customer exists and before the as-of date.
    exists = q_end_day[None, :] >= pop.created[reporting, None]
    keep = exists & (reported <= timeline.n_days - 1)
    row, col = np.nonzero(keep)
    period = text.join(
        text.number_text(quarters // 4 + 1970),
        text.join("Q", text.number_text(quarters % 4 + 1)),
    )
    return TABLES["erp"]["customer_financials"].build({
        "customer_no": customer_no.take(pa.array(reporting[row])),
        "fiscal_period": period.take(pa.array(col)),
        "revenue": np.round(revenue[row, col], 2),
        "total_assets": np.round(total_assets[row, col], 2),
        "total_liabilities": np.round((total_assets * leverage[:, None])[row, col], 2),
        "current_assets": np.round(current_assets[row, col], 2),
        "current_liabilities": np.round((current_assets / current_ratio[:, None])[row, col], 2),
        "net_income": np.round(net_income[row, col], 2),
        "reported_on": timeline.text_dates(reported[row, col]),
    })
