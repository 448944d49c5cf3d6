"""When each customer orders, and what then happens to each order (shipping, invoicing).

Order counts are Poisson draws per customer and ~monthly period from the customer's trend and
the season, scaled so the whole book averages the target number of lines per customer; days
inside a period follow the day weights (weekdays, Christmas). Everything here is one array per
order, a few bytes each, so even 10 million orders fit easily; the order lines, 30 times as
many, are made in chunks elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.demo import text, vocab
from pipelines.demo.population import COSTLY_SMALL_ORDERS_PER_YEAR, Population
from pipelines.demo.schema import TABLES
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

TARGET_LINES_PER_CUSTOMER = 30.0
MAX_LINES_PER_ORDER = 40
FIRST_ORDER_NO = 100_000_001
CUSTOMER_CHUNK = 100_000
STATUSES = ["OPEN", "DELIVERED", "INVOICED", "CANCELLED"]
OPEN, DELIVERED, INVOICED, CANCELLED = range(4)
NEVER = np.iinfo(np.int32).max  # day of an event that does not happen
POORLY_SERVED_LATE = 0.45  # share of a poorly served customer's deliveries that arrive late


@dataclass
class OrderBook:
    """One entry per order, in order-number (= order-date) order.

    Days are window days as int32 (NEVER for events that do not happen): widen to int64 before
    adding to them.
    """

    order_no: np.ndarray
    customer: np.ndarray  # population index
    day: np.ndarray
    n_lines: np.ndarray
    status: np.ndarray  # index into STATUSES
    requested_day: np.ndarray
    promised_day: np.ndarray
    ship_day: np.ndarray  # NEVER when cancelled
    delivered_day: np.ndarray
    invoice_day: np.ndarray
    second_ship_day: np.ndarray  # NEVER unless the order ships in two parts
    second_delivered_day: np.ndarray
    changed_day: np.ndarray
    channel: np.ndarray  # index into vocab.SALES_CHANNELS
    carrier: np.ndarray  # index into vocab.CARRIERS

    @property
    def n(self) -> int:
        return len(self.order_no)

    @property
    def first_line(self) -> np.ndarray:
        """Position of each order's first line in the line table (length n + 1)."""
        return np.concatenate([[0], np.cumsum(self.n_lines, dtype=np.int64)])


def _order_skeleton(pop: Population, timeline: Timeline, seed: int) -> tuple[np.ndarray, ...]:
    """(customer, day) of every order, unsorted."""
    rng = stream(seed, "orders.rate")
    n, periods = pop.n, timeline.n_periods
    chunks = [slice(s, min(s + CUSTOMER_CHUNK, n)) for s in range(0, n, CUSTOMER_CHUNK)]
    profile = np.concatenate(
        [pop.rate_profile(timeline, rows).astype(np.float32) for rows in chunks])
    exposure = profile.sum(axis=1, dtype=np.float64)
    lines_per_order = 1.0 + pop.extra_lines

    # Costly small customers order at a fixed, high rate; the others share what is left of
    # the target volume in proportion to their order rate.
    costly = pop.is_costly_small
    costly_rate = COSTLY_SMALL_ORDERS_PER_YEAR / 365.25 * np.exp(rng.normal(0.0, 0.3, n))
    costly_lines = (costly_rate * exposure * lines_per_order)[costly].sum()
    target = TARGET_LINES_PER_CUSTOMER * n - costly_lines
    regular = (pop.order_rate * exposure * lines_per_order)[~costly].sum()
    scale = max(target, 0.0) / regular if regular > 0 else 0.0
    rate = np.where(costly, costly_rate, scale * pop.order_rate)

    customers, days = [], []
    for i, rows in enumerate(chunks):  # ~10 chunks at a million customers
        draw = stream(seed, "orders.days", i)
        counts = draw.poisson(rate[rows, None] * profile[rows])
        cell = np.repeat(np.arange(counts.size), counts.ravel())
        customer = rows.start + cell // periods
        period = cell % periods
        lo = np.maximum(pop.created[customer], timeline.period_bounds[period])
        hi = np.minimum(pop.stop[customer], timeline.period_bounds[period + 1])
        customers.append(customer)
        days.append(timeline.draw_days(lo, hi, draw))
    return np.concatenate(customers), np.concatenate(days)


def draw_orders(pop: Population, timeline: Timeline, seed: int) -> OrderBook:
    customer, day = _order_skeleton(pop, timeline, seed)
    rng = stream(seed, "orders.lifecycle")
    n = len(customer)
    # ERPs number orders as they are entered: order number rises with the order date.
    order = np.lexsort((rng.random(n), day))
    customer, day = customer[order], day[order].astype(np.int64)
    end = timeline.n_days - 1

    n_lines = np.minimum(1 + rng.poisson(pop.extra_lines[customer]), MAX_LINES_PER_ORDER)
    costly = pop.is_costly_small[customer]
    cancelled = rng.random(n) < np.where(costly, 0.05, 0.03)
    requested = day + rng.choice([2, 3, 5, 7, 10, 14, 21], n,
                                 p=[0.05, 0.1, 0.15, 0.25, 0.2, 0.15, 0.1])
    ship = day + rng.choice([0, 1, 2, 3, 4, 6], n, p=[0.1, 0.4, 0.25, 0.12, 0.08, 0.05])
    ship = np.where(cancelled, NEVER, ship)
    carrier = np.where(rng.random(n) < 0.7, pop.carrier[customer],
                       rng.integers(0, len(vocab.CARRIERS), n))
    nominal = _nominal_transit(carrier, pop.country[customer])
    # The warehouse confirms the requested date, or the earliest it can make.
    promised = np.maximum(requested, np.minimum(ship, NEVER - 100) + nominal)
    promised += np.where(rng.random(n) < 0.15, rng.integers(1, 6, n), 0)
    delivered = np.where(cancelled, NEVER, ship + nominal + _delay(rng, carrier))
    # Planted: the poorly served customers' deliveries often arrive days after the promise.
    late = stream(seed, "orders.poorly_served")
    poor = ~cancelled & pop.is_poorly_served[customer] & (late.random(n) < POORLY_SERVED_LATE)
    delivered = np.where(poor, delivered + late.integers(3, 11, n), delivered)
    invoice = np.where(cancelled, NEVER, ship + rng.choice([0, 1, 2], n, p=[0.5, 0.3, 0.2]))

    split = ~cancelled & (n_lines >= 2) & (rng.random(n) < 0.03)
    second_ship = np.where(split, ship + rng.integers(2, 13, n), NEVER)
    second_delivered = np.where(split, second_ship + nominal + _delay(rng, carrier), NEVER)

    status = np.select(
        [cancelled, ship > end, invoice > end], [CANCELLED, OPEN, DELIVERED], INVOICED)
    changed = np.select(
        [status == CANCELLED, status == OPEN, status == DELIVERED],
        [day + rng.integers(0, 11, n), day, ship], invoice)
    channel = np.where(rng.random(n) < 0.75, pop.channel[customer],
                       rng.integers(0, len(vocab.SALES_CHANNELS), n))
    days = np.int32  # ten million orders: keep the book small (widen before adding to a day)
    return OrderBook(
        order_no=FIRST_ORDER_NO + np.arange(n, dtype=np.int64),
        customer=customer.astype(np.int32), day=day.astype(days),
        n_lines=n_lines.astype(np.int16), status=status.astype(np.int8),
        requested_day=requested.astype(days), promised_day=promised.astype(days),
        ship_day=ship.astype(days), delivered_day=delivered.astype(days),
        invoice_day=invoice.astype(days), second_ship_day=second_ship.astype(days),
        second_delivered_day=second_delivered.astype(days),
        changed_day=np.minimum(changed, end).astype(days), channel=channel.astype(np.int8),
        carrier=carrier.astype(np.int8),
    )


# Per carrier: usual transit days inside Europe and the chance a delivery runs late.
_CARRIER_TRANSIT = np.array([2, 2, 3, 2, 2, 1, 1, 3])
_CARRIER_LATE = np.array([0.06, 0.1, 0.05, 0.08, 0.04, 0.12, 0.07, 0.15])


def _nominal_transit(carrier: np.ndarray, country: np.ndarray) -> np.ndarray:
    codes = np.array([c[0] for c in vocab.COUNTRIES])[country]
    return _CARRIER_TRANSIT[carrier] + np.select([codes == "DE", codes == "US"], [0, 4], 1)


def _delay(rng: np.random.Generator, carrier: np.ndarray) -> np.ndarray:
    n = len(carrier)
    return np.where(rng.random(n) < _CARRIER_LATE[carrier], rng.integers(1, 9, n), 0)


def orders_table(book: OrderBook, pop: Population, customer_no: pa.StringArray,
                 timeline: Timeline) -> pa.Table:
    return TABLES["erp"]["sales_orders"].build({
        "order_no": book.order_no,
        "customer_no": customer_no.take(pa.array(book.customer)),
        "order_date": timeline.text_dates(book.day),
        "requested_delivery_date": timeline.text_dates(book.requested_day),
        "currency": text.pick(vocab.CURRENCIES, pop.currency[book.customer]),
        "status": text.pick(STATUSES, book.status),
        "sales_channel": text.pick(vocab.SALES_CHANNELS, book.channel),
        "changed_on": timeline.text_dates(book.changed_day),
    })
