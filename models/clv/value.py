"""Customer lifetime value: expected purchases x expected spend x margin, discounted period by period.

CLV here is the present value of the gross margin a customer is expected to bring over a finite
horizon, as in Fader, Hardie & Lee (2005) and `lifetimes.customer_lifetime_value`: the horizon is cut
into periods, the BG/NBD model gives the expected purchases in each, the Gamma-Gamma model the spend
per purchase, and each period's margin is discounted at the per-period rate. A finite horizon keeps
the figure about decisions a manager can act on; the discount rate is the company's cost of capital.
"""

from __future__ import annotations

import numpy as np

from models.clv.bgnbd import BetaGeoModel
from models.clv.gamma_gamma import GammaGammaModel


def customer_lifetime_value(bgnbd: BetaGeoModel, spend: GammaGammaModel | None, frequency, recency, T,
                            monetary, *, periods: int = 12, period_length: float = 52 / 12, margin=1.0,
                            discount_rate: float = 0.01, order_value=None) -> np.ndarray:
    """Present value of margin over `periods` periods of `period_length` (model time units) each.

    `margin` turns spend into gross margin (1.0 = spend itself); `discount_rate` is per period
    (default 1% a month with monthly periods in weeks). `margin` may be one share per customer.
    `order_value`, when given, replaces the Gamma-Gamma expectation of spend per purchase (for data
    where that model does not hold); `spend` may then be None.
    """
    if periods < 1 or period_length <= 0:
        raise ValueError("need at least one period of positive length")
    if order_value is None:
        order_value = spend.conditional_expected_average_profit(frequency, monetary)
    value_per_purchase = np.asarray(order_value, dtype=float) * margin
    cumulative = bgnbd.conditional_expected_purchases_by_horizon(
        period_length * np.arange(1, periods + 1), frequency, recency, T)
    per_period = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1 + discount_rate) ** -np.arange(1, periods + 1)
    total = np.zeros(per_period.shape[1:])
    for factor, purchases in zip(discount, per_period, strict=True):  # periods, not customers
        total += factor * purchases
    return total * value_per_purchase


def history_flags(frequency, T, *, min_weeks: float = 4.0) -> np.ndarray:
    """Why a customer's estimate deserves less trust: 'new', 'no_repeat' or '' (ordinary).

    The models give every customer a number, even one who bought for the first time yesterday; that
    number is mostly the population average. Managers should see that rather than a missing value or
    an error, hence a flag next to the estimate instead of a refusal to estimate.
    """
    x = np.asarray(frequency, dtype=float)
    age = np.asarray(T, dtype=float)
    return np.where(age < min_weeks, "new", np.where(x == 0, "no_repeat", "")).astype(object)
