"""From a transaction table to the (frequency, recency, T, monetary) summary the CLV models fit.

The conventions are those of the BG/NBD literature, so KAM's figures can be checked against it:
purchases on the same day count as one purchase (an order split into two invoices is not a repeat
purchase), the first purchase is not a repeat, time is measured in weeks from the customer's first
purchase, and the monetary value is the mean spend of the repeat purchases only (the first one is
often atypical, e.g. a welcome offer). Everything is relative to a given period end, never to today.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

DAYS_PER_WEEK = 7.0


def customer_summary(transactions: pd.DataFrame, period_end: date | str, *, customer: str = "customer_id",
                     when: str = "date", amount: str | None = "amount",
                     period_start: date | str | None = None) -> pd.DataFrame:
    """One row per customer who bought in [period_start, period_end], indexed by customer id.

    Columns: frequency (repeat purchase days), recency and T (weeks from the first purchase to the
    last one, and to period_end), monetary (mean spend per repeat purchase day, 0 without repeats),
    first_purchase and last_purchase.
    """
    end = pd.Timestamp(period_end)
    dates = pd.to_datetime(transactions[when]).dt.normalize()
    keep = dates <= end
    if period_start is not None:
        keep &= dates >= pd.Timestamp(period_start)
    frame = pd.DataFrame({
        "customer": transactions.loc[keep, customer].to_numpy(),
        "day": dates[keep].to_numpy(),
        "amount": (transactions.loc[keep, amount].to_numpy(dtype=float) if amount
                   else np.zeros(int(keep.sum()))),
    })
    days = frame.groupby(["customer", "day"], sort=True, observed=True)["amount"].sum().reset_index()
    first = days.groupby("customer", sort=True)["day"].transform("min")
    is_repeat = days["day"] > first
    grouped = days.assign(repeat_amount=days["amount"].where(is_repeat, 0.0), is_repeat=is_repeat)
    per = grouped.groupby("customer", sort=True).agg(
        frequency=("is_repeat", "sum"), first_purchase=("day", "min"), last_purchase=("day", "max"),
        repeat_spend=("repeat_amount", "sum"),
    )
    week = pd.Timedelta(days=DAYS_PER_WEEK)
    out = pd.DataFrame({
        "frequency": per["frequency"].astype("int64"),
        "recency": (per["last_purchase"] - per["first_purchase"]) / week,
        "T": (end - per["first_purchase"]) / week,
        "monetary": np.where(per["frequency"] > 0, per["repeat_spend"] / per["frequency"].clip(lower=1), 0.0),
        "first_purchase": per["first_purchase"],
        "last_purchase": per["last_purchase"],
    }, index=per.index.rename(customer))
    return out


def purchases_between(transactions: pd.DataFrame, start_after: date | str, end: date | str, *,
                      customer: str = "customer_id", when: str = "date") -> pd.Series:
    """Distinct purchase days per customer in (start_after, end]: the holdout's "actual" count."""
    dates = pd.to_datetime(transactions[when]).dt.normalize()
    keep = (dates > pd.Timestamp(start_after)) & (dates <= pd.Timestamp(end))
    frame = pd.DataFrame({"customer": transactions.loc[keep, customer].to_numpy(),
                          "day": dates[keep].to_numpy()}).drop_duplicates()
    return frame.groupby("customer").size().rename("purchases").rename_axis(customer)
