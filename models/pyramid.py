"""The customer pyramid and ABC (Pareto) classes, as plain array functions.

Tiers cut the *ranking* by share of customers (VIP = top 1% of customers), ABC cuts it by share of
*value* (A = the customers making the first 80% of revenue). Both need a total order that does not
depend on how rows arrived, so ties on the measure are broken by customer id: the same data gives
the same tiers on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rank_order(measure: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices that sort customers best first: measure descending, then id ascending."""
    measure = np.asarray(measure, dtype=float)
    measure = np.where(np.isnan(measure), -np.inf, measure)
    return np.lexsort((np.asarray(ids), -measure))


def tier_counts(n: int, shares: Sequence[float]) -> list[int]:
    """How many customers each tier gets: cumulative shares rounded, so counts sum to n exactly.

    Rounding the cumulative boundary (not each tier alone) keeps every tier within one customer of
    its share and never loses or double-counts a customer.
    """
    bounds = np.rint(np.cumsum(shares) * n).astype(int)
    bounds[-1] = n
    return list(np.diff(np.concatenate([[0], bounds])))


def assign_tiers(measure: np.ndarray, ids: np.ndarray, names: Sequence[str],
                 shares: Sequence[float], order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tier name and 1-based rank per customer (input order), from the top of the ranking down.

    `order` is `rank_order(measure, ids)` when the caller has it already (sorting a million text
    ids takes 0.4 s)."""
    n = len(measure)
    order = rank_order(measure, ids) if order is None else order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    labels = np.repeat(np.asarray(names, dtype=object), tier_counts(n, shares))
    tiers = np.empty(n, dtype=object)
    tiers[order] = labels
    return tiers, rank


def abc_classes(measure: np.ndarray, ids: np.ndarray, a: float = 0.80, b: float = 0.95,
                order: np.ndarray | None = None) -> np.ndarray:
    """A while the value ranked above a customer is under `a` of the total, B under `b`, else C.

    Customers with nothing (or less than nothing) to show are C whatever the cut-offs. `order`,
    when given, is `rank_order` of the measure with NaN as 0 (as `assign_tiers` takes it after
    `np.nan_to_num`)."""
    values = np.nan_to_num(np.asarray(measure, dtype=float), nan=0.0)
    order = rank_order(values, ids) if order is None else order
    positive = np.clip(values[order], 0, None)
    total = positive.sum()
    classes = np.full(len(values), "C", dtype=object)
    if total <= 0:
        return classes
    before = (np.cumsum(positive) - positive) / total
    ranked = np.where(before < a, "A", np.where(before < b, "B", "C"))
    ranked = np.where(positive > 0, ranked, "C")
    classes[order] = ranked
    return classes
