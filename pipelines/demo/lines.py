"""Order lines: what was bought on each order, how many and at what price.

At a million customers this is 30 million rows, so it is built in chunks of orders: memory
stays flat and each chunk draws from its own random stream. Each chunk also hands back what the
order-level tables need from its lines (order value, shipped weight) and the returns drawn for
its delivered lines, so the lines are never held twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.demo import dirty, logistics, vocab
from pipelines.demo.orders import OrderBook
from pipelines.demo.population import Population
from pipelines.demo.products import Catalogue
from pipelines.demo.schema import TABLES
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

ORDER_CHUNK = 250_000
PRICE_RISE_PER_YEAR = 0.035  # the price list goes up every 1 January
PROMOTION_SHARE = 0.08  # lines with an extra promotional discount


def cents(amount: np.ndarray) -> np.ndarray:
    """Commercial rounding to cents (half away from zero), as the ERP posts line amounts.

    The inputs are exact decimals (3, 2 and 4 places) carried in doubles; the small nudge keeps a
    true half-cent that the double holds as ...4999999 rounding up, like DECIMAL arithmetic.
    """
    return np.sign(amount) * np.floor(np.abs(amount) * 100 + 0.5 + 1e-6) / 100


@dataclass
class LineBook:
    table: pa.Table  # erp.sales_order_lines, dirty rows included
    order_value: np.ndarray  # per order: sum of line net amounts, in the order currency
    weight_kg: np.ndarray  # (orders, 2): weight shipped in each order's first and second part
    returns: list[logistics.LineReturns]
    dirty_counts: dict[str, int]


def build_lines(book: OrderBook, pop: Population, catalogue: Catalogue,
                plan: logistics.ShipmentPlan, timeline: Timeline, seed: int,
                dirty_share: float, dirt: dirty.Context) -> LineBook:
    first_line = book.first_line
    line_cum = np.cumsum(pop.line_share, axis=1).astype(np.float32)
    line_cum[:, -1] = 1.0
    day_year = timeline.dates(np.arange(timeline.n_days)).astype("datetime64[Y]").astype(int)
    price_index = (1 + PRICE_RISE_PER_YEAR) ** (day_year - (timeline.as_of.year - 1970))
    fx = np.array(vocab.FX_PER_EUR)[pop.currency]

    order_value = np.zeros(book.n)
    weight_kg = np.zeros((book.n, 2))
    tables, returns, counts = [], [], {}
    for chunk, start in enumerate(range(0, book.n, ORDER_CHUNK)):
        stop = min(start + ORDER_CHUNK, book.n)
        rng = stream(seed, "lines", chunk)
        n_lines = book.n_lines[start:stop].astype(np.int64)
        order = np.repeat(np.arange(start, stop), n_lines)
        position = np.arange(len(order)) - (first_line[order] - first_line[start])
        customer = book.customer[order]

        product_line = (rng.random(len(order), dtype=np.float32)[:, None]
                        > line_cum[customer]).sum(axis=1)
        product = catalogue.draw(np.minimum(product_line, line_cum.shape[1] - 1), rng)

        quantity = (catalogue.typical_quantity[product] * pop.quantity_scale[customer]
                    * np.exp(rng.normal(0.0, 0.7, len(order))))
        quantity = np.select(
            [catalogue.sold_by_volume[product], catalogue.typical_quantity[product] >= 50],
            [np.maximum(np.round(quantity * 2) / 2, 0.5), np.maximum(np.round(quantity, -1), 10)],
            np.maximum(np.round(quantity), 1),
        )
        unit_price = np.round(catalogue.list_price[product] * price_index[book.day[order]]
                              * fx[customer], 2).clip(0.01)
        promotion = np.where(rng.random(len(order)) < PROMOTION_SHARE,
                             rng.uniform(0.02, 0.08, len(order)), 0.0)
        discount = np.round(np.clip(pop.discount[customer] + promotion, 0.0, 0.30), 4)
        net_price = unit_price * (1 - discount)
        net = cents(quantity * unit_price * (1 - discount))

        # A back-ordered order ships its later lines in the second part.
        second = (book.second_ship_day[order] < np.iinfo(np.int32).max) & (
            position >= (n_lines[order - start] + 1) // 2)
        local = order - start
        order_value[start:stop] = np.bincount(local, weights=net, minlength=stop - start)
        kg = quantity * catalogue.weight_kg[product]
        weight_kg[start:stop, 0] = np.bincount(local, weights=np.where(second, 0, kg),
                                               minlength=stop - start)
        weight_kg[start:stop, 1] = np.bincount(local, weights=np.where(second, kg, 0),
                                               minlength=stop - start)
        returns.append(logistics.draw_returns(rng, book, pop, plan, timeline, order,
                                              second.astype(np.int64), product, quantity,
                                              net_price))

        table = TABLES["erp"]["sales_order_lines"].build({
            "order_no": book.order_no[order],
            "line_no": ((position + 1) * 10).astype(np.int32),  # SAP numbers items 10, 20, 30
            "product_no": catalogue.product_no.take(pa.array(product)),
            "quantity": quantity,
            "unit_price": unit_price,
            "discount_pct": discount,
            "changed_on": timeline.text_dates(book.changed_day[order]),
        })
        table, faults = dirty.inject(table, "erp", "sales_order_lines", dirty_share,
                                     stream(seed, "dirty.lines", chunk), dirt)
        for kind, rows in faults.items():
            counts[kind] = counts.get(kind, 0) + rows
        tables.append(table)
    table = (pa.concat_tables(tables) if tables
             else TABLES["erp"]["sales_order_lines"].arrow_schema.empty_table())
    return LineBook(table=table, order_value=np.round(order_value, 2), weight_kg=weight_kg,
                    returns=returns, dirty_counts=counts)
