"""The warehouse and transport system: shipments, freight and returns.

The SCM knows orders only as a text reference ('SO-' + the ERP number) and customers only by its
own consignee code, as separate systems do. Freight is a per-shipment base charge plus weight,
so many tiny orders cost far more to ship per euro of sales than a few big ones; that, and
their returns, is what makes the planted costly small customers unprofitable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from pipelines.demo import text, vocab
from pipelines.demo.orders import CANCELLED, OrderBook
from pipelines.demo.population import Population
from pipelines.demo.schema import TABLES, to_arrow
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

FIRST_SHIPMENT = 300_000_001
FIRST_RETURN = 50_000_001
RETURN_RATE = 0.012  # of delivered order lines
RETURN_RATE_COSTLY = 0.12
EXPRESS_SHARE_COSTLY = 0.6  # costly small customers ask for express delivery this often
EXPRESS_FACTOR = 2.2
# Per carrier: base charge per shipment (EUR) and charge per kg.
_BASE = np.array([14.0, 12.5, 16.0, 13.0, 12.0, 8.5, 11.0, 15.5])
_PER_KG = np.array([0.22, 0.18, 0.25, 0.2, 0.19, 0.3, 0.35, 0.21])


@dataclass
class ShipmentPlan:
    """Shipments that left the warehouse by the as-of date, in shipment-number order."""

    order: np.ndarray  # order position in the book
    part: np.ndarray  # 0: (first) shipment of the order, 1: its back-ordered rest
    ship_day: np.ndarray
    delivered_day: np.ndarray  # may lie after the as-of date (still in transit)
    promised_day: np.ndarray
    of_order: np.ndarray  # (orders, 2): shipment position of each order's part, -1 if none

    @property
    def n(self) -> int:
        return len(self.order)


def plan_shipments(book: OrderBook, timeline: Timeline) -> ShipmentPlan:
    end = timeline.n_days - 1
    first = np.flatnonzero((book.status != CANCELLED) & (book.ship_day <= end))
    second = np.flatnonzero(book.second_ship_day <= end)
    order = np.concatenate([first, second])
    part = np.concatenate([np.zeros(len(first), np.int64), np.ones(len(second), np.int64)])
    ship = np.where(part == 0, book.ship_day[order], book.second_ship_day[order]).astype(np.int64)
    sequence = np.lexsort((part, order, ship))
    order, part, ship = order[sequence], part[sequence], ship[sequence]
    delivered = np.where(part == 0, book.delivered_day[order], book.second_delivered_day[order])
    delivered = delivered.astype(np.int64)
    of_order = np.full((book.n, 2), -1, dtype=np.int64)
    of_order[order, part] = np.arange(len(order))
    return ShipmentPlan(order=order, part=part, ship_day=ship, delivered_day=delivered,
                        promised_day=book.promised_day[order].astype(np.int64), of_order=of_order)


@dataclass
class LineReturns:
    """Returns drawn for one chunk of order lines."""

    shipment: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    reason: np.ndarray
    day: np.ndarray
    credit: np.ndarray


def draw_returns(rng: np.random.Generator, book: OrderBook, pop: Population, plan: ShipmentPlan,
                 timeline: Timeline, order: np.ndarray, part: np.ndarray, product: np.ndarray,
                 quantity: np.ndarray, net_price: np.ndarray) -> LineReturns:
    """Some delivered lines come back: about 1%, but 12% for the costly small customers."""
    end = timeline.n_days - 1
    n = len(order)
    shipment = plan.of_order[order, part]
    has = shipment >= 0
    delivered = np.where(has, plan.delivered_day[np.maximum(shipment, 0)], np.iinfo(np.int64).max // 2)
    costly = pop.is_costly_small[book.customer[order]]
    day = delivered + 2 + rng.exponential(8.0, n).astype(np.int64)
    chosen = (delivered <= end) & (day <= end)
    chosen &= rng.random(n) < np.where(costly, RETURN_RATE_COSTLY, RETURN_RATE)
    rows = np.flatnonzero(chosen)

    late = delivered[rows] > plan.promised_day[shipment[rows]]
    base = np.array([0.25, 0.2, 0.3, 0.05, 0.2])
    costly_mix = np.array([0.15, 0.35, 0.15, 0.05, 0.3])
    late_mix = np.array([0.15, 0.1, 0.15, 0.45, 0.15])
    mix = np.where(late[:, None], late_mix, np.where(costly[rows, None], costly_mix, base))
    reason = (rng.random(len(rows))[:, None] > mix.cumsum(axis=1)).sum(axis=1).clip(max=4)

    qty = quantity[rows]
    whole = np.round(qty) == qty
    fraction = rng.uniform(0.05, 1.0, len(rows))
    returned = np.where(whole, np.clip(np.ceil(qty * fraction), 1, qty), np.round(qty * fraction, 3))
    restocking = np.where(reason == vocab.RETURN_REASONS.index("No longer needed"), 0.85, 1.0)
    credit = np.round(returned * net_price[rows] * restocking, 2)
    return LineReturns(shipment=shipment[rows], product=product[rows], quantity=returned,
                       reason=reason, day=day[rows], credit=credit)


def returns_table(parts: list[LineReturns], plan: ShipmentPlan, product_no: pa.StringArray,
                  timeline: Timeline) -> pa.Table:
    if not parts:
        return TABLES["scm"]["returns"].arrow_schema.empty_table()
    merged = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
              for f in fields(LineReturns)}
    sequence = np.lexsort((merged["shipment"], merged["day"]))
    r = {k: v[sequence] for k, v in merged.items()}
    return TABLES["scm"]["returns"].build({
        "return_id": text.code("RMA", FIRST_RETURN + np.arange(len(sequence)), 8),
        "shipment_id": shipment_ids(r["shipment"]),
        "product_ref": product_no.take(pa.array(r["product"])),
        "quantity": r["quantity"],
        "reason": text.pick(vocab.RETURN_REASONS, r["reason"]),
        "return_date": timeline.dates(r["day"]),
        "credit_amount": r["credit"],
    })


def shipment_ids(position: np.ndarray) -> pa.StringArray:
    return text.code("SHP", FIRST_SHIPMENT + np.asarray(position), 9)


def shipments_table(plan: ShipmentPlan, book: OrderBook, pop: Population,
                    consignee_code: pa.StringArray, weight_kg: np.ndarray, timeline: Timeline,
                    seed: int) -> pa.Table:
    """`weight_kg` is (orders, 2): the weight of each order's first and back-ordered part."""
    rng = stream(seed, "shipments")
    end = timeline.n_days - 1
    n = plan.n
    customer = book.customer[plan.order]
    carrier = book.carrier[plan.order]
    codes = np.array([c[0] for c in vocab.COUNTRIES])[pop.country[customer]]
    distance = np.select([codes == "DE", codes == "US"], [1.0, 3.2], 1.45)
    kg = weight_kg[plan.order, plan.part]
    express = pop.is_costly_small[customer] & (rng.random(n) < EXPRESS_SHARE_COSTLY)
    freight = (_BASE[carrier] + _PER_KG[carrier] * kg) * distance * rng.uniform(0.95, 1.05, n)
    freight = np.round(np.where(express, freight * EXPRESS_FACTOR, freight), 2)

    in_transit = plan.delivered_day > end
    scanned = np.minimum(plan.ship_day + rng.integers(0, 3, n), end)
    last_update = np.where(in_transit, scanned, plan.delivered_day)
    delivered = to_arrow(timeline.dates(np.where(in_transit, 0, plan.delivered_day)),
                         mask=in_transit)
    return TABLES["scm"]["shipments"].build({
        "shipment_id": shipment_ids(np.arange(n)),
        "sales_order_ref": text.join("SO-", text.number_text(book.order_no[plan.order])),
        "consignee_code": consignee_code.take(pa.array(customer)),
        "carrier": text.pick(vocab.CARRIERS, carrier),
        "promised_date": timeline.dates(plan.promised_day),
        "shipped_date": timeline.dates(plan.ship_day),
        "delivered_date": delivered,
        "freight_cost": freight,
        "last_update": timeline.timestamps(last_update, rng),
    })
