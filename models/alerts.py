"""Alerts: the short list of accounts that need a call today, each with the reason in words.

Every rule reads one row per customer and names the figures that triggered it, so the reason is
checkable ("revenue 12 months: 41,200 vs 160,300 the year before, -74%") rather than a score.
A rule whose threshold is not configured (None) does not run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

ALERTS = ("declining", "at_risk", "repeat_complainer", "late_payer", "costs_more_than_it_earns",
          "narrow_buyer")


def _money(x: float) -> str:
    return f"{x:,.0f}"


def customer_alerts(frame: pd.DataFrame, *, top_tiers: Sequence[str],
                    declining_drop: float | None = None, declining_tiers: Sequence[str] | None = None,
                    declining_min_orders: int = 1,
                    at_risk_probability: float | None = None, at_risk_tiers: Sequence[str] | None = None,
                    complaints: int | None = None, days_late: float | None = None,
                    costs_more_than_it_earns: bool = False, narrow_max_lines: int | None = None,
                    narrow_tiers: Sequence[str] | None = None) -> pd.DataFrame:
    """(customer_id, alert, reason) rows for every customer and rule that fires.

    `frame` columns: customer_id, tier, baseline_tier (tier by the revenue of the 12 months before
    the last 12), revenue_12m, revenue_prior_12m, orders_12m, orders_prior_12m, probability_alive, clv,
    complaints_12m, median_days_late (recent invoices), gross_margin_12m, cost_to_serve_12m, profit_12m,
    product_lines_12m.
    Tier lists default to `top_tiers` (every tier but the lowest).
    """
    f = frame.reset_index(drop=True)
    out: list[pd.DataFrame] = []

    def emit(alert: str, mask, reasons) -> None:
        """`reasons(rows)` words the alert for the flagged row positions only: formatting a sentence
        for each of a million customers to keep a few thousand took most of a build at 1M."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            out.append(pd.DataFrame({"customer_id": col("customer_id", rows),
                                     "alert": alert, "reason": np.asarray(reasons(rows), dtype=object)}))

    def col(name, rows):
        """The column at the row positions `rows` (a text column of a million rows made into
        Python strings whole took 0.15 s per rule)."""
        return f[name].iloc[rows].to_numpy()

    def num(name):
        return f[name].to_numpy(dtype=float, na_value=np.nan)

    if declining_drop is not None:
        # Revenue or order count, whichever fell more: a customer buying a few large orders a year
        # shows a falling order rate before its revenue, one buying many small ones the other way.
        tiers = list(declining_tiers or top_tiers)
        now, before = num("revenue_12m"), num("revenue_prior_12m")
        orders_now, orders_before = num("orders_12m"), num("orders_prior_12m")
        with np.errstate(divide="ignore", invalid="ignore"):
            revenue_change = np.where(before > 0, now / before - 1.0, np.nan)
            orders_change = np.where(orders_before > 0, orders_now / orders_before - 1.0, np.nan)
        change = np.fmin(revenue_change, orders_change)
        regular = orders_before >= declining_min_orders
        mask = f["baseline_tier"].isin(tiers).to_numpy() & regular & (change <= -declining_drop)
        emit("declining", mask, lambda r: [
            f"was {t} on the 12 months before; last 12 months revenue {_money(a)} vs {_money(b)} "
            f"({rc:+.0%}), orders {oa:.0f} vs {ob:.0f} ({oc:+.0%})"
            for t, a, b, rc, oa, ob, oc in zip(col("baseline_tier", r), now[r], before[r],
                                               revenue_change[r], orders_now[r], orders_before[r],
                                               orders_change[r], strict=True)])
    if at_risk_probability is not None:
        tiers = list(at_risk_tiers or top_tiers)
        alive = num("probability_alive")
        mask = f["tier"].isin(tiers).to_numpy() & (alive < at_risk_probability)
        emit("at_risk", mask, lambda r: [
            f"{t} customer, probability still active {p:.0%} (below {at_risk_probability:.0%})"
            for t, p in zip(col("tier", r), alive[r], strict=True)])
    if complaints is not None:
        n = num("complaints_12m")
        emit("repeat_complainer", n >= complaints,
             lambda r: [f"{k:.0f} complaints in the last 12 months" for k in np.nan_to_num(n[r])])
    if days_late is not None:
        late = num("median_days_late")
        emit("late_payer", late >= days_late,
             lambda r: [f"pays a median {d:.0f} days after the due date (most recent invoices)"
                        for d in np.nan_to_num(late[r])])
    if costs_more_than_it_earns:
        profit, margin, cost = num("profit_12m"), num("gross_margin_12m"), num("cost_to_serve_12m")
        emit("costs_more_than_it_earns", profit < 0, lambda r: [
            f"cost to serve {_money(c)} exceeds gross margin {_money(m)}: profit {_money(p)}"
            for c, m, p in zip(*(np.nan_to_num(a[r]) for a in (cost, margin, profit)), strict=True)])
    if narrow_max_lines is not None:
        tiers = list(narrow_tiers or top_tiers)
        lines = num("product_lines_12m")
        mask = f["tier"].isin(tiers).to_numpy() & (lines >= 1) & (lines <= narrow_max_lines)
        emit("narrow_buyer", mask, lambda r: [
            f"{t} customer buying from only {k:.0f} product line(s) in the last 12 months"
            for t, k in zip(col("tier", r), np.nan_to_num(lines[r]), strict=True)])
    if not out:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "alert": pd.Series(dtype=object),
                             "reason": pd.Series(dtype=object)})
    alerts = pd.concat(out, ignore_index=True)
    alerts["order"] = alerts["alert"].map(ALERTS.index)
    return alerts.sort_values(["customer_id", "order"]).drop(columns="order").reset_index(drop=True)
