"""The hidden truth about every demo customer: how valuable it is and which pattern it was given.

Everything the three systems record (orders, invoices, cases, shipments) is drawn from these
latent traits, and the ground-truth table is a copy of them. Planting the patterns here, once, is
what lets a later job's test ask "did you find the decliners?" and get a real answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.demo import vocab
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

VALUE_SIGMA = 1.35  # spread of log value: sets how much the top customers carry

# Share of customers given each planted pattern (they may overlap unless stated).
SHARE_DECLINING = 0.02  # from the top 7% by value (so they were top-decile buyers)
SHARE_GROWING = 0.03
SHARE_COSTLY_SMALL = 0.04  # from the bottom half by value
SHARE_LATE_PAYER = 0.04
SHARE_COMPLAINER = 0.03  # CRM customers only (complaints are recorded in the CRM)
SHARE_CHURNED = 0.05  # quietly stop ordering; not planted as "declining" so kept out of the top
SHARE_NO_CRM = 0.03  # ERP customers nobody created a CRM account for

# The planted churn rule (the label is the ERP status LOST, set from the facts in churn.py):
# churn = (no order for > 20 weeks AND >= 5 service cases in 12 months)
#      OR (payment delay > 25 days AND on-time delivery rate < 0.85).
# Customers are steered into each part so both are common enough to learn, each from its own
# random stream so every other draw of the demo stays as it was.
SHARE_SERVICE_CHURNERS = 0.5  # of the churned who could have stopped 160-330 days ago
SERVICE_CHURN_STOP_DAYS = (160, 330)  # they stop this many days before the as-of date
SHARE_POORLY_SERVED = 0.6  # of the late payers: their deliveries often arrive late

COSTLY_SMALL_ORDERS_PER_YEAR = 30.0
COSTLY_SMALL_QUANTITY = 0.08  # their quantity scale: a median customer's is about 1


@dataclass
class Population:
    """One entry per ERP customer, sorted by creation date (so customer numbers rise with it).

    Days are window-day indexes: 0 is the first day of the history window, n_days - 1 the as-of
    date; negative values lie before the window.
    """

    created: np.ndarray  # day the customer was created in the ERP
    stop: np.ndarray  # first day it no longer orders (n_days when it never stops)
    weight: np.ndarray  # latent value: expected revenue per day before planted patterns, mean 1
    value_rank: np.ndarray  # percentile of weight, 0 (smallest) .. 1
    country: np.ndarray  # index into vocab.COUNTRIES
    industry: np.ndarray  # index into vocab.INDUSTRIES
    employee_band: np.ndarray  # index into vocab.EMPLOYEE_BANDS
    has_crm: np.ndarray
    is_declining: np.ndarray
    is_growing: np.ndarray
    is_costly_small: np.ndarray
    is_late_payer: np.ndarray
    is_complainer: np.ndarray
    is_churned: np.ndarray
    is_service_churner: np.ndarray  # had a burst of service cases, then stopped (churn part 1)
    is_poorly_served: np.ndarray  # late payer whose deliveries run late (churn part 2)
    trend_slope: np.ndarray  # log order-rate change per year
    decline_drop: np.ndarray  # fall of the order rate in the last 12 months (decliners)
    line_share: np.ndarray  # (n, n_lines): share of each product line in the customer's buying
    affinity_fired: np.ndarray  # (n, n_pairs): the planted pair added its second line
    order_rate: np.ndarray  # relative order frequency (scaled to the target volume later)
    extra_lines: np.ndarray  # mean number of lines per order beyond the first
    quantity_scale: np.ndarray
    discount: np.ndarray  # customer-specific discount off list price, 0 .. 0.30
    payment_terms: np.ndarray  # days
    days_late: np.ndarray  # mean payment delay after the due date (late payers)
    channel: np.ndarray  # index into vocab.SALES_CHANNELS: the customer's usual channel
    carrier: np.ndarray  # index into vocab.CARRIERS: the usual carrier to this customer

    @property
    def n(self) -> int:
        return len(self.weight)

    @property
    def currency(self) -> np.ndarray:
        """Index into vocab.CURRENCIES of the currency the customer is invoiced in."""
        by_country = np.array([vocab.CURRENCIES.index(c[2]) for c in vocab.COUNTRIES])
        return by_country[self.country]

    def rate_profile(self, timeline: Timeline, rows: slice) -> np.ndarray:
        """Relative order intensity of customers `rows` in each period (rows x periods).

        Combines each customer's trend, its planted decline, the season (through the day
        weights) and the days of the period it existed and still ordered.
        """
        bounds = timeline.period_bounds
        years = timeline.period_years[None, :]
        lo = np.maximum(self.created[rows, None], bounds[None, :-1])
        hi = np.minimum(self.stop[rows, None], bounds[None, 1:])
        exposure = timeline.weight_between(lo, hi)
        # Trends pivot on the middle of the window, so growth neither inflates nor deflates volume.
        trend = np.exp(self.trend_slope[rows, None] * (years + timeline.years / 2))
        last_year = years > -1.0
        trend = np.where(last_year, trend * (1.0 - self.decline_drop[rows, None]), trend)
        return trend * exposure


def _choose(rng: np.random.Generator, candidates: np.ndarray, share: float, n: int,
            p: np.ndarray | None = None) -> np.ndarray:
    """Indices of round(share * n) customers drawn from `candidates` (boolean mask)."""
    pool = np.flatnonzero(candidates)
    k = min(len(pool), int(round(share * n)))
    if k == 0:
        return np.array([], dtype=np.int64)
    if p is not None:
        p = p[pool] / p[pool].sum()
    return rng.choice(pool, size=k, replace=False, p=p)


def _flag(n: int, rows: np.ndarray) -> np.ndarray:
    flag = np.zeros(n, dtype=bool)
    flag[rows] = True
    return flag


def _weighted_choice(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def build_population(n: int, timeline: Timeline, seed: int) -> Population:
    rng = stream(seed, "population")
    days = timeline.n_days

    # Company size drives how often, how broadly and how much a customer buys; the value
    # weight is what those add up to: its expected revenue per day, before any planted pattern.
    size = np.exp(rng.normal(0.0, VALUE_SIGMA, n))
    order_rate = size**0.55 * np.exp(rng.normal(0.0, 0.25, n))
    extra_lines = np.clip(2.9 * size**0.12 * np.exp(rng.normal(0.0, 0.25, n)), 0.3, 12.0)
    quantity_scale = size**0.3 * np.exp(rng.normal(0.0, 0.2, n))
    weight = order_rate * (1 + extra_lines) * quantity_scale
    weight /= weight.mean()
    value_rank = np.argsort(np.argsort(weight, kind="stable"), kind="stable") / max(n - 1, 1)

    # Bigger customers tend to be older relationships; about a third joined during the window.
    existed_before = rng.random(n) < 0.45 + 0.4 * value_rank
    created = np.where(
        existed_before,
        rng.integers(-15 * 365, 0, n),
        rng.integers(0, max(days - 30, 1), n),
    )
    order = np.argsort(created, kind="stable")
    size, weight, value_rank, created = size[order], weight[order], value_rank[order], created[order]
    order_rate, extra_lines = order_rate[order], extra_lines[order]
    quantity_scale = quantity_scale[order]

    country = _weighted_choice(rng, n, [c[1] for c in vocab.COUNTRIES])
    industry = _weighted_choice(rng, n, [i[2] for i in vocab.INDUSTRIES])
    log_employees = 4.5 + 0.8 * np.log(size) + rng.normal(0.0, 1.0, n)
    employee_band = np.searchsorted(np.log([50, 250, 1000]), log_employees)
    has_crm = rng.random(n) >= SHARE_NO_CRM

    old = created < 0
    # Decliners must have bought often enough for a fall in their order rate to show.
    frequent = order_rate >= np.quantile(order_rate, 0.6)
    declining = _flag(n, _choose(rng, old & frequent & (value_rank >= 0.93), SHARE_DECLINING, n))
    growing = _flag(n, _choose(
        rng, old & ~declining & (value_rank >= 0.2) & (value_rank < 0.9), SHARE_GROWING, n))
    costly_small = _flag(n, _choose(
        rng, ~declining & ~growing & (value_rank < 0.5), SHARE_COSTLY_SMALL, n))
    late_payer = _flag(n, _choose(rng, np.ones(n, bool), SHARE_LATE_PAYER, n))
    complainer = _flag(n, _choose(rng, has_crm, SHARE_COMPLAINER, n, p=weight**0.4))
    churned = _flag(n, _choose(
        rng, ~(declining | growing | costly_small) & (value_rank < 0.8), SHARE_CHURNED, n))

    first_active = np.maximum(created, 0) + 60
    stop = np.full(n, days, dtype=np.int64)
    stop_at = first_active + rng.random(n) * np.maximum(days - first_active, 0)
    stop = np.where(churned & (first_active < days), stop_at.astype(np.int64), stop)
    plant = stream(seed, "population.churn_rule")
    lo, hi = SERVICE_CHURN_STOP_DAYS
    service_churner = (churned & (first_active < days - hi)
                       & (plant.random(n) < SHARE_SERVICE_CHURNERS))
    stop = np.where(service_churner, days - plant.integers(lo, hi + 1, n), stop)
    poorly_served = late_payer & (plant.random(n) < SHARE_POORLY_SERVED)

    trend_slope = rng.normal(0.0, 0.12, n)
    trend_slope = np.where(growing, rng.uniform(0.45, 0.8, n), trend_slope)
    trend_slope = np.where(declining, rng.normal(0.0, 0.05, n), trend_slope)
    decline_drop = np.where(declining, rng.uniform(0.6, 0.9, n), 0.0)

    line_share, affinity_fired = _product_preferences(rng, n, costly_small)

    extra_lines = np.where(costly_small, 0.3, extra_lines)
    quantity_scale = np.where(costly_small, COSTLY_SMALL_QUANTITY, quantity_scale)

    discount = np.clip(0.03 + 0.17 * value_rank + rng.normal(0.0, 0.04, n), 0.0, 0.30)
    discount = np.round(discount / 0.005) * 0.005
    terms_by_size = np.array([[0.35, 0.5, 0.1, 0.05], [0.1, 0.5, 0.25, 0.15], [0.02, 0.3, 0.38, 0.3],
                              [0.0, 0.2, 0.4, 0.4]])
    size_class = np.minimum((value_rank * 4).astype(int), 3)
    cumulative = terms_by_size.cumsum(axis=1)[size_class]
    payment_terms = np.array([14, 30, 45, 60])[(rng.random(n)[:, None] > cumulative).sum(axis=1)]
    days_late = np.where(late_payer, rng.uniform(25.0, 75.0, n), 0.0)

    # Big accounts order by EDI or through their field rep, small ones in the web shop.
    channel_by_size = np.array([[0.05, 0.2, 0.45, 0.05, 0.25], [0.15, 0.3, 0.3, 0.1, 0.15],
                                [0.3, 0.3, 0.15, 0.2, 0.05], [0.4, 0.15, 0.05, 0.38, 0.02]])
    cumulative = channel_by_size.cumsum(axis=1)[size_class]
    channel = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), 4)
    is_us = np.array([c[0] for c in vocab.COUNTRIES])[country] == "US"
    carrier = np.where(is_us, vocab.CARRIERS.index("UPS"),
                       rng.integers(0, len(vocab.CARRIERS), n))

    return Population(
        created=created, stop=stop, weight=weight, value_rank=value_rank, country=country,
        industry=industry, employee_band=employee_band, has_crm=has_crm,
        is_declining=declining, is_growing=growing, is_costly_small=costly_small,
        is_late_payer=late_payer, is_complainer=complainer, is_churned=churned,
        is_service_churner=service_churner, is_poorly_served=poorly_served,
        trend_slope=trend_slope, decline_drop=decline_drop, line_share=line_share,
        affinity_fired=affinity_fired, order_rate=order_rate, extra_lines=extra_lines,
        quantity_scale=quantity_scale, discount=discount, payment_terms=payment_terms,
        days_late=days_late, channel=channel, carrier=carrier,
    )


def _product_preferences(rng: np.random.Generator, n: int,
                         costly_small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer buys from 1-4 product lines, plus the lines its planted pairs add.

    Lines are chosen by popularity without replacement (Gumbel top-k), then every planted pair
    (A, B, p) adds line B to buyers of A with probability p. Purchases spread over the chosen
    lines with random (Dirichlet) shares and leak 1% to the rest of the range.
    """
    names = [line[0] for line in vocab.PRODUCT_LINES]
    popularity = np.array([line[1] for line in vocab.PRODUCT_LINES])
    n_lines = len(names)
    k = rng.choice([1, 2, 3, 4], size=n, p=[0.3, 0.33, 0.23, 0.14])
    k = np.where(costly_small, np.minimum(k, 2), k)
    keys = np.log(popularity)[None, :] + rng.gumbel(size=(n, n_lines))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    chosen = rank < k[:, None]

    fired = np.zeros((n, len(vocab.AFFINITY_PAIRS)), dtype=bool)
    for j, (a, b, p) in enumerate(vocab.AFFINITY_PAIRS):  # a handful of pairs, not customers
        ia, ib = names.index(a), names.index(b)
        fired[:, j] = chosen[:, ia] & ~chosen[:, ib] & (rng.random(n) < p)
        chosen[:, ib] |= fired[:, j]

    share = np.where(chosen, rng.gamma(1.5, size=(n, n_lines)), 0.0)
    share /= share.sum(axis=1, keepdims=True)
    share = 0.99 * share + 0.01 * popularity[None, :] / popularity.sum()
    return share, fired
