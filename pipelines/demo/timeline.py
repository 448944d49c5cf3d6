"""The calendar the demo business lives in: its history window, seasons and weekdays.

Order dates are drawn from one day-weight curve (month, weekday, Christmas), and customer trends
from periods that end exactly at the as-of date, so "the last 12 months" of a planted pattern
means the same 12 months a later job will compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import pyarrow as pa

from pipelines.demo.text import yyyymmdd

# Order-rate multiplier by calendar month: Q4 peak, a summer lull with an August trough.
MONTH_FACTOR = np.array([0.95, 1.0, 1.1, 1.0, 1.0, 1.0, 0.9, 0.62, 1.05, 1.18, 1.28, 1.05])
# Monday .. Sunday: B2B buyers order early in the week; web shop and EDI keep weekends non-zero.
WEEKDAY_FACTOR = np.array([1.18, 1.12, 1.06, 1.0, 0.86, 0.3, 0.15])
CHRISTMAS_FACTOR = 0.25  # 23 December .. 1 January


def epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class Timeline:
    """`years` of history ending on (and including) `as_of`, split into 12 periods a year."""

    as_of: date
    years: int = 3

    @property
    def start(self) -> date:
        return years_before(self.as_of, self.years) + timedelta(days=1)

    @property
    def start_day(self) -> int:
        """First day of the window, in days since 1970-01-01."""
        return epoch_day(self.start)

    @property
    def end_day(self) -> int:
        """The as-of date, in days since 1970-01-01."""
        return epoch_day(self.as_of)

    @property
    def n_days(self) -> int:
        return self.end_day - self.start_day + 1

    @property
    def n_periods(self) -> int:
        return 12 * self.years

    @cached_property
    def day_weight(self) -> np.ndarray:
        """Relative order intensity of each day of the window (mean 1)."""
        days = np.arange(self.start_day, self.end_day + 1).astype("datetime64[D]")
        month = days.astype("datetime64[M]").astype(np.int64) % 12
        day_of_month = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        weight = MONTH_FACTOR[month] * WEEKDAY_FACTOR[weekday]
        christmas = ((month == 11) & (day_of_month >= 23)) | ((month == 0) & (day_of_month == 1))
        weight = np.where(christmas, weight * CHRISTMAS_FACTOR, weight)
        return weight / weight.mean()

    @cached_property
    def cumulative_weight(self) -> np.ndarray:
        """cumulative_weight[i] = total day weight of window days before day i (length n_days+1)."""
        return np.concatenate([[0.0], np.cumsum(self.day_weight)])

    @cached_property
    def period_bounds(self) -> np.ndarray:
        """Window day index where each period starts, plus n_days at the end (length n_periods+1).

        Periods are ~30.4 days long and aligned to the as-of date, so the last 12 are exactly the
        last 12 months (to the day, bar leap years).
        """
        return np.round(np.linspace(0, self.n_days, self.n_periods + 1)).astype(np.int64)

    @property
    def period_years(self) -> np.ndarray:
        """Middle of each period in years before the as-of date (negative, -years .. 0)."""
        middle = (self.period_bounds[:-1] + self.period_bounds[1:]) / 2
        return (middle - self.n_days) / 365.25

    def weight_between(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Total day weight of window days lo .. hi-1 (clipped to the window; 0 if empty)."""
        lo = np.clip(lo, 0, self.n_days)
        hi = np.clip(hi, 0, self.n_days)
        g = self.cumulative_weight
        return np.where(hi > lo, g[hi] - g[np.minimum(lo, hi)], 0.0)

    def draw_days(self, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One window day per row in lo .. hi-1, drawn in proportion to the day weight."""
        g = self.cumulative_weight
        u = g[lo] + rng.random(len(lo)) * (g[hi] - g[lo])
        day = np.searchsorted(g, u, side="right") - 1
        return np.clip(day, lo, hi - 1)

    def dates(self, day: np.ndarray) -> np.ndarray:
        """Window day indexes as datetime64[D]."""
        return (np.asarray(day, dtype=np.int64) + self.start_day).astype("datetime64[D]")

    def text_dates(self, day: np.ndarray) -> pa.StringArray:
        """Window day indexes as ERP 'YYYYMMDD' text."""
        return yyyymmdd(np.asarray(day, dtype=np.int64) + self.start_day)

    def timestamps(self, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A time during business hours (07:00-18:00) on each window day, as datetime64[s]."""
        day = np.asarray(day, dtype=np.int64)
        seconds = 7 * 3600 + rng.integers(0, 11 * 3600, len(day))
        return ((day + self.start_day) * 86_400 + seconds).astype("datetime64[s]")
