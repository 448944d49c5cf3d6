"""What the CRM records besides accounts: the sales pipeline and the service desk.

Opportunities follow account size (prospects have them too, and mostly lose them); service
cases follow order volume, with two planted exceptions: repeat complainers file several
high-priority complaints a year and rate the service poorly, and the costly small customers
keep the hotline busy for the little they buy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.demo import text, vocab
from pipelines.demo.customers import Parties, record_ids, salesforce_pod
from pipelines.demo.orders import OrderBook
from pipelines.demo.population import Population
from pipelines.demo.schema import TABLES, to_arrow
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
CASE_TYPES = ["Complaint", "Question", "Repair", "Delivery Issue"]
PRIORITIES = ["Low", "Medium", "High", "Critical"]
COMPLAINTS_PER_YEAR = (5.0, 9.0)  # planted repeat complainers, uniform in this range
COSTLY_CASES_PER_YEAR = 6.0
CHURN_BURST_CASES = (6, 9)  # service churners open this many cases ...
CHURN_BURST_DAYS = 120  # ... in the days before they stop ordering (within the last year)


def _pick_rows(rng: np.random.Generator, cumulative: np.ndarray) -> np.ndarray:
    """One category per row, given each row's cumulative probabilities (rows x categories)."""
    u = rng.random(len(cumulative))[:, None]
    return np.minimum((u > cumulative).sum(axis=1), cumulative.shape[1] - 1)


def opportunities_table(pop: Population, parties: Parties, timeline: Timeline,
                        seed: int) -> pa.Table:
    rng = stream(seed, "opportunities")
    end = timeline.n_days - 1
    prospect = parties.account_pop < 0
    pop_index = np.maximum(parties.account_pop, 0)
    lo = np.maximum(parties.account_created, -365)
    per_year = np.where(prospect, 1.2, 0.5 * parties.account_weight**0.3)
    count = rng.poisson(per_year * np.maximum(end - lo, 0) / 365.25)
    acc = np.repeat(np.arange(len(count)), count)
    n = len(acc)

    created = lo[acc] + (rng.random(n) * (end - lo[acc])).astype(np.int64)
    order = np.lexsort((acc, created))
    acc, created = acc[order], created[order]
    close = created + np.clip(rng.lognormal(np.log(60), 0.6, n), 14, 365).astype(np.int64)
    is_prospect = prospect[acc]
    won = rng.random(n) < np.where(is_prospect, 0.15, 0.5)
    progress = (end - created) / np.maximum(close - created, 1)
    open_stage = np.minimum((progress * 4).astype(np.int64), 3)
    stage = np.where(close <= end, np.where(won, 4, 5), open_stage)

    share = pop.line_share[pop_index[acc]]
    popularity = np.array([p[1] for p in vocab.PRODUCT_LINES])
    share = np.where((is_prospect | (rng.random(n) < 0.3))[:, None],
                     popularity / popularity.sum(), share)
    product_line = _pick_rows(rng, np.cumsum(share, axis=1))
    amount = np.round(rng.lognormal(np.log(15_000), 0.8, n) * parties.account_weight[acc]**0.5,
                      -2).clip(500)
    line_name = text.pick([p[0] for p in vocab.PRODUCT_LINES], product_line)
    kind = text.pick(vocab.OPPORTUNITY_KINDS, rng.integers(0, len(vocab.OPPORTUNITY_KINDS), n))
    name = parties.accounts["account_name"].combine_chunks().take(pa.array(acc))
    currency = np.array([vocab.CURRENCIES.index(c[2]) for c in vocab.COUNTRIES])
    return TABLES["crm"]["opportunities"].build({
        "opportunity_id": record_ids(rng, "006", salesforce_pod(seed), n),
        "account_id": parties.accounts["account_id"].combine_chunks().take(pa.array(acc)),
        "opportunity_name": text.join(name, " - ", line_name, " ", kind),
        "stage": text.pick(STAGES, stage),
        "amount": amount,
        "currency": text.pick(vocab.CURRENCIES, currency[parties.account_country[acc]]),
        "product_line": line_name,
        "created_date": timeline.dates(created),
        "close_date": timeline.dates(close),
        "last_modified": timeline.timestamps(np.minimum(close, end), rng),
    })


def cases_table(pop: Population, parties: Parties, book: OrderBook, timeline: Timeline,
                seed: int) -> pa.Table:
    rng = stream(seed, "cases")
    end = timeline.n_days - 1
    customer_rows = np.flatnonzero(parties.account_pop >= 0)
    customer = parties.account_pop[customer_rows]
    lo = np.maximum(pop.created[customer], 0)
    hi = np.minimum(pop.stop[customer], end)
    years = np.maximum(hi - lo, 0) / 365.25
    orders_per_year = np.bincount(book.customer, minlength=pop.n)[customer] / timeline.years

    usual_rate = 0.15 + 0.04 * np.minimum(orders_per_year, 50)
    usual_rate = np.where(pop.is_costly_small[customer], usual_rate + COSTLY_CASES_PER_YEAR,
                          usual_rate)
    complaint_rate = np.where(pop.is_complainer[customer], rng.uniform(*COMPLAINTS_PER_YEAR,
                                                                       len(customer)), 0.0)
    usual = rng.poisson(usual_rate * years)
    planted = rng.poisson(complaint_rate * years)
    # Planted churn part 1: a burst of repairs, delivery issues and questions, then silence.
    burst_rng = stream(seed, "cases.churn_rule")
    burst = np.where(pop.is_service_churner[customer],
                     burst_rng.integers(CHURN_BURST_CASES[0], CHURN_BURST_CASES[1] + 1, len(customer)), 0)
    row = np.concatenate([np.repeat(np.arange(len(customer)), usual),
                          np.repeat(np.arange(len(customer)), planted),
                          np.repeat(np.arange(len(customer)), burst)])
    is_planted = np.concatenate([np.zeros(usual.sum(), bool), np.ones(planted.sum(), bool),
                                 np.zeros(burst.sum(), bool)])
    is_burst = np.concatenate([np.zeros(usual.sum() + planted.sum(), bool), np.ones(burst.sum(), bool)])
    n = len(row)
    opened_day = lo[row] + (rng.random(n) * (hi[row] - lo[row] + 1)).astype(np.int64)
    burst_lo = np.maximum(np.maximum(hi - CHURN_BURST_DAYS, end - 355), lo)[row[is_burst]]
    burst_hi = np.maximum(hi[row[is_burst]] - 1, burst_lo)
    opened_day[is_burst] = burst_lo + (burst_rng.random(is_burst.sum())
                                       * (burst_hi - burst_lo + 1)).astype(np.int64)
    opened_day = np.minimum(opened_day, end)
    order = np.lexsort((row, opened_day))
    row, is_planted, opened_day = row[order], is_planted[order], opened_day[order]
    is_burst = is_burst[order]
    who = customer[row]
    costly = pop.is_costly_small[who]
    complainer = pop.is_complainer[who]

    type_mix = np.where(costly[:, None], [0.15, 0.35, 0.15, 0.35], [0.12, 0.45, 0.18, 0.25])
    case_type = np.where(is_planted, 0, _pick_rows(rng, np.cumsum(type_mix, axis=1)))
    case_type = np.where(is_burst, burst_rng.choice([1, 2, 3], n, p=[0.2, 0.4, 0.4]), case_type)
    priority_mix = np.where(is_planted[:, None], [0.0, 0.1, 0.55, 0.35], [0.3, 0.45, 0.2, 0.05])
    priority = _pick_rows(rng, np.cumsum(priority_mix, axis=1))

    opened = timeline.timestamps(opened_day, rng)
    hours = rng.exponential(np.array([120.0, 72.0, 30.0, 10.0])[priority])
    hours = np.where(case_type == 0, hours * 2, hours)
    closed = opened + (hours * 3600).astype("timedelta64[s]")
    end_of_as_of = np.datetime64(timeline.as_of, "s") + np.timedelta64(86_399, "s")
    is_open = closed > end_of_as_of

    score_mix = np.select(
        [is_planted[:, None], complainer[:, None]],
        [[0.55, 0.35, 0.1, 0.0, 0.0], [0.2, 0.3, 0.3, 0.15, 0.05]],
        [0.03, 0.07, 0.2, 0.4, 0.3],
    )
    score = _pick_rows(rng, np.cumsum(score_mix, axis=1)) + 1
    surveyed = ~is_open & (rng.random(n) < 0.55)
    modified = np.where(is_open, np.minimum(opened + np.timedelta64(3600, "s"), end_of_as_of),
                        closed)

    subjects = [s for t in CASE_TYPES for s in vocab.CASE_SUBJECTS[t]]
    offset = np.cumsum([0] + [len(vocab.CASE_SUBJECTS[t]) for t in CASE_TYPES])[:-1]
    count = np.array([len(vocab.CASE_SUBJECTS[t]) for t in CASE_TYPES])
    subject = offset[case_type] + rng.integers(0, 1 << 30, n) % count[case_type]
    account_ids = parties.accounts["account_id"].combine_chunks()
    return TABLES["crm"]["cases"].build({
        "case_id": record_ids(rng, "500", salesforce_pod(seed), n),
        "account_id": account_ids.take(pa.array(customer_rows[row])),
        "subject": text.pick(subjects, subject),
        "case_type": text.pick(CASE_TYPES, case_type),
        "priority": text.pick(PRIORITIES, priority),
        "status": pc.if_else(pa.array(is_open), "Open", "Closed"),
        "opened_at": opened,
        "closed_at": to_arrow(closed, mask=is_open),
        "satisfaction_score": pa.array(score.astype(np.int32), mask=~surveyed),
        "last_modified": modified,
    })
