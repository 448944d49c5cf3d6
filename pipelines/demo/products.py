"""The product catalogue: what the demo distributor sells, at what cost, price and weight.

Kept small and independent of the number of customers (a real range does not grow with the
customer base), with a few best-sellers per line so baskets look like real ones. Weight and
typical quantity never reach the ERP table; they drive freight cost and basket size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.demo import text, vocab
from pipelines.demo.schema import TABLES
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

FIRST_PRODUCT = 10_001


@dataclass
class Catalogue:
    """Products sorted by product line; arrays indexed by product position."""

    line: np.ndarray  # index into vocab.PRODUCT_LINES
    unit_cost: np.ndarray  # EUR
    list_price: np.ndarray  # EUR, current price list
    weight_kg: np.ndarray
    typical_quantity: np.ndarray
    sold_by_volume: np.ndarray  # litres/kilograms: fractional quantities
    popularity_cum: np.ndarray  # line l's products split [l, l + 1) by popularity (length n+1)
    line_start: np.ndarray  # first product position of each line (length n_lines + 1)
    product_no: pa.StringArray
    table: pa.Table

    @property
    def n(self) -> int:
        return len(self.line)

    def draw(self, line: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A product position for each requested product line, best-sellers more often."""
        u = line + rng.random(len(line))
        pos = np.searchsorted(self.popularity_cum, u, side="right") - 1
        return np.clip(pos, self.line_start[line], self.line_start[line + 1] - 1)


def n_products(customers: int) -> int:
    return int(np.clip(customers // 5, 300, 3000))


def build_catalogue(customers: int, timeline: Timeline, seed: int) -> Catalogue:
    rng = stream(seed, "products")
    n = n_products(customers)
    shares = np.array([line[1] for line in vocab.PRODUCT_LINES])
    per_line = np.maximum(np.round(n * shares / shares.sum()).astype(int), 5)
    line = np.repeat(np.arange(len(vocab.PRODUCT_LINES)), per_line)
    n = len(line)
    line_start = np.concatenate([[0], np.cumsum(per_line)])

    cost_scale = np.array([v[2] for v in vocab.PRODUCT_LINES])[line]
    unit_cost = np.round(cost_scale * np.exp(rng.normal(0.0, 0.8, n)), 2).clip(0.2)
    margin = rng.uniform(0.10, 0.60, n)
    # Keep the margin within 10-60% after rounding the price to cents.
    list_price = np.clip(np.round(unit_cost / (1.0 - margin), 2),
                         np.ceil(unit_cost / 0.9 * 100) / 100, np.floor(unit_cost / 0.4 * 100) / 100)
    weight_kg = np.array([v[3] for v in vocab.PRODUCT_LINES])[line] * np.exp(rng.normal(0, 0.5, n))
    typical = np.array([v[4] for v in vocab.PRODUCT_LINES])[line] * np.exp(rng.normal(0, 0.4, n))
    sold_by_volume = line == [v[0] for v in vocab.PRODUCT_LINES].index("Lubricants")

    # Zipf-like popularity inside each line: a few best-sellers, a long tail.
    position = np.arange(n) - line_start[line]
    popularity = 1.0 / (1.0 + position) ** 0.9 * np.exp(rng.normal(0.0, 0.3, n))
    share = popularity / np.bincount(line, weights=popularity)[line]
    popularity_cum = np.concatenate([[0.0], np.cumsum(share)])

    product_no = text.code("P-", FIRST_PRODUCT + np.arange(n), 5)
    nouns = np.concatenate([
        rng.integers(0, len(v[5]), per_line[i]) for i, v in enumerate(vocab.PRODUCT_LINES)
    ])
    noun_words = [noun for v in vocab.PRODUCT_LINES for noun in v[5]]
    noun_offset = np.cumsum([0] + [len(v[5]) for v in vocab.PRODUCT_LINES])[:-1]
    description = text.join(
        text.pick(noun_words, noun_offset[line] + nouns),
        text.pick(vocab.SPEC_SIZES, rng.integers(0, len(vocab.SPEC_SIZES), n)),
        text.pick(vocab.SPEC_GRADES, rng.integers(0, len(vocab.SPEC_GRADES), n)),
        sep=" ",
    )
    changed = rng.integers(-3 * 365, 0, n) + timeline.n_days
    table = TABLES["erp"]["products"].build({
        "product_no": product_no,
        "description": description,
        "product_line": text.pick([v[0] for v in vocab.PRODUCT_LINES], line),
        "unit_cost": unit_cost,
        "list_price": list_price,
        "changed_on": text.yyyymmdd(changed + timeline.start_day),
    })
    return Catalogue(
        line=line, unit_cost=unit_cost, list_price=list_price, weight_kg=weight_kg,
        typical_quantity=typical, sold_by_volume=sold_by_volume, popularity_cum=popularity_cum,
        line_start=line_start, product_no=product_no, table=table,
    )
