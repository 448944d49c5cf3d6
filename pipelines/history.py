"""Retention of the per-night slices, so the tables that keep one slice per night stay bounded.

Mining's marts (customer_features, customer_segment, segment_profile, segment_rule, cross_sell_rule,
account_next_best) keep each night's rows beside the earlier nights', so BI can compare a customer's
segment with last month's; the tier state (`kam_tier_state`) keeps them so the next night's stability
rule can read the last one. Kept for ever they grow by the customer base every night (at 1M customers
3.5M rows a night, 1.3 billion a year), and the nightly reads of "the latest earlier slice" and of the
tier changes scan them all. On maintenance nights:

- every night of the last `warehouse.history.nightly_days` stays;
- before that, each month's last night stays for `month_end_months` (month-over-month trends);
- the tier state keeps, before the window, only the rows where a tier changed: `tier_history` is
  rebuilt from exactly those every night, so it loses nothing.

Everything is relative to the as-of date, never the clock, and each table's deletion is one Delta
commit: a reader sees the table before or after it, and a run killed between two tables leaves the
rest for the next maintenance night.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import pyarrow.compute as pc

from pipelines.config import HistoryConfig
from pipelines.mining import MARTS as MINING_MARTS
from pipelines.value import TIER_HISTORY
from pipelines.warehouse import Warehouse

NIGHT = "as_of_date"
# Rows of the tier state that record a change: tier_history is made of them, so they stay.
TIER_CHANGE = "previous_tier IS NOT NULL AND tier <> previous_tier"


def expired_nights(nights: Iterable[date], as_of: date, policy: HistoryConfig,
                   *, month_ends: bool = True) -> list[date]:
    """The nights whose slices the policy no longer keeps on `as_of`, oldest first.

    A month's last night is the last one present in the table (a month whose last nightly run
    failed keeps the night before it), counted only for months before the as-of date's: the
    current month's is not known yet. Nights after `as_of` (a replayed earlier night) are kept."""
    nights = sorted(set(nights))
    cutoff = as_of - timedelta(days=policy.nightly_days)
    last_of_month: dict[tuple[int, int], date] = {}
    for night in nights:
        last_of_month[(night.year, night.month)] = night
    this_month = as_of.year * 12 + as_of.month
    months = policy.month_end_months
    first_month = None if months is None else this_month - months

    def month_end_kept(night: date) -> bool:
        month = night.year * 12 + night.month
        if not month_ends or month >= this_month or last_of_month[(night.year, night.month)] != night:
            return False
        return first_month is None or month >= first_month

    return [n for n in nights if n < cutoff and not month_end_kept(n)]


def prune(warehouse: Warehouse, as_of: date, policy: HistoryConfig) -> dict[str, int]:
    """Delete the expired slices of every sliced table; returns the rows deleted per table."""
    deleted = {}
    for table, month_ends, keep in [*((m, True, None) for m in MINING_MARTS),
                                    (TIER_HISTORY, False, TIER_CHANGE)]:
        if not warehouse.exists(table):
            continue
        column = warehouse.dataset(table).to_table(columns=[NIGHT]).column(NIGHT)
        expired = expired_nights(pc.unique(column).to_pylist(), as_of, policy, month_ends=month_ends)
        if not expired:
            continue
        nights = ", ".join(f"'{night.isoformat()}'" for night in expired)
        predicate = f"{NIGHT} IN ({nights})" + (f" AND NOT ({keep})" if keep else "")
        metrics = warehouse.table(table).delete(predicate)
        if metrics.get("num_deleted_rows"):
            deleted[table] = metrics["num_deleted_rows"]
    return deleted
