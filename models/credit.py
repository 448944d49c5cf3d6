"""The 100-point customer credit scorecard: indicators -> points -> grade, every point kept.

A grade sets credit limits and payment terms, so whoever disputes one must be able to see where
every point came from. Each indicator has a maximum number of points, belongs to one of five groups
(character, payment record, operating capacity: non-financial; solvency, profitability: financial)
and is banded: the first band the value reaches gives that share of the points. A missing value
(no financial statements, no invoices due) gets the indicator's configured `missing` share rather
than zero or full marks, so absent data neither sinks nor flatters a customer. Weights, bands and
grade cut-offs come from configuration; nothing here knows the default numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import numpy as np
import pandas as pd

from models.scorecard import FINANCIAL_GROUPS, GROUPS, Indicator, Override, Scorecard

__all__ = ["FINANCIAL_GROUPS", "GROUPS", "Indicator", "Override", "Scorecard", "apply_overrides", "grade_of",
           "indicator_points", "point_lines", "rate_customers", "score_customers"]


def indicator_points(values: np.ndarray, indicator: Indicator) -> tuple[np.ndarray, np.ndarray]:
    """Points and band label per customer for one indicator."""
    v = np.asarray(values, dtype=float)
    missing = np.isnan(v)
    reached = [(v >= t) if indicator.higher_is_better else (v <= t) for t, _ in indicator.bands]
    reached = [r & ~missing for r in reached]
    sign = ">=" if indicator.higher_is_better else "<="
    share = np.select(reached, [s for _, s in indicator.bands], default=0.0)
    band = np.select(reached, [f"{sign} {t:g}" for t, _ in indicator.bands], default="below every band")
    share = np.where(missing, indicator.missing, share)
    band = np.where(missing, "no data", band)
    return share * indicator.points, band.astype(object)


def grade_of(score: np.ndarray, grades: Sequence[tuple[str, float]]) -> np.ndarray:
    """The best grade whose minimum the score reaches (the last grade catches everything else)."""
    s = np.asarray(score, dtype=float)
    names = [g for g, _ in grades]
    return np.select([s >= m for _, m in grades[:-1]], names[:-1], default=names[-1]).astype(object)


def _indicator_values(indicators: pd.DataFrame, ind: Indicator) -> np.ndarray:
    if ind.name in indicators:
        return indicators[ind.name].to_numpy(dtype=float, na_value=np.nan)
    return np.full(len(indicators), np.nan)


def rate_customers(indicators: pd.DataFrame, card: Scorecard) -> pd.DataFrame:
    """One row per row of `indicators` (customer_id + one column per indicator): score, financial
    and non-financial points, points per group and the computed grade."""
    ids = indicators["customer_id"].to_numpy()
    total = np.zeros(len(ids))
    by_group = {g: np.zeros(len(ids)) for g in GROUPS}
    financial = np.zeros(len(ids))
    for ind in card.indicators:
        points, _ = indicator_points(_indicator_values(indicators, ind), ind)
        total += points
        by_group[ind.group] += points
        if ind.financial:
            financial += points
    total = np.round(total, 6)
    rating = pd.DataFrame({"customer_id": ids, "score": total, "financial_points": np.round(financial, 6),
                           "non_financial_points": np.round(total - financial, 6)})
    for group, points in by_group.items():
        rating[f"{group}_points"] = np.round(points, 6)
    rating["computed_grade"] = grade_of(total, card.grades)
    return rating


def point_lines(indicators: pd.DataFrame, card: Scorecard) -> Iterator[pd.DataFrame]:
    """The explanation of every grade, one indicator at a time: per customer the value, band,
    points and maximum points. One frame per indicator, so a million customers' twenty lines each
    are written as they are made instead of being held at once."""
    ids = indicators["customer_id"].to_numpy()
    for ind in card.indicators:
        values = _indicator_values(indicators, ind)
        points, band = indicator_points(values, ind)
        yield pd.DataFrame({
            "customer_id": ids, "group": ind.group, "indicator": ind.name, "label": ind.label or ind.name,
            "financial": ind.financial, "value": values, "band": band, "points": points,
            "max_points": float(ind.points),
        })


def score_customers(indicators: pd.DataFrame, card: Scorecard) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`rate_customers` and every `point_lines` frame in one: (rating, points), the points adding
    up to each customer's score."""
    parts = list(point_lines(indicators, card))
    points = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return rate_customers(indicators, card), points


def apply_overrides(rating: pd.DataFrame, overrides: Sequence[Override], as_of: date) -> pd.DataFrame:
    """Final grade: a manual override while it has not expired (as_of <= expires), else the computed one.

    The computed grade stays beside it, with the reason and expiry, so an override is never silent
    and lapses on its own instead of outliving the situation that justified it.
    """
    out = rating.copy()
    active = {o.customer_id: o for o in overrides if as_of <= o.expires}
    ids = out["customer_id"].astype(str)
    out["grade"] = [active[c].grade if c in active else g for c, g in zip(ids, out["computed_grade"],
                                                                          strict=True)]
    out["override_reason"] = [active[c].reason if c in active else None for c in ids]
    out["override_expires"] = [active[c].expires if c in active else None for c in ids]
    return out
