"""Gamma-Gamma: how much a customer spends per purchase (Fader, Hardie & Lee 2005, "RFM and CLV").

Each purchase's value is Gamma(p, nu) around the customer's own mean, and nu ~ Gamma(q, gamma) across
customers. Fitted on repeat buyers only (x >= 1 repeat purchases with mean value m), it shrinks each
customer's observed average towards the population mean in proportion to how little we have seen
of it: one purchase of 500 says less than twenty purchases averaging 500. The model assumes spend
is independent of purchase frequency; check that before trusting it on new data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from models.clv._data import unique_counts
from models.clv._fit import fit_into, standard_errors

PARAMS = ("p", "q", "v")


def _spend_arrays(frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary differ in shape: {x.shape}, {m.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise ValueError("frequency or monetary contains NaN or infinite values")
    return x, m


@dataclass(frozen=True)
class _Data:
    """Repeat buyers' spends with every parameter-free sum computed once, before the optimiser starts."""

    x: np.ndarray
    m: np.ndarray
    xm: np.ndarray  # x * m
    xs: np.ndarray
    counts: np.ndarray
    sum_x_log_x: float
    sum_x_log_m: float
    sum_log_m: float
    work: np.ndarray


def _prepare(x: np.ndarray, m: np.ndarray) -> _Data:
    xs, inv = unique_counts(x)
    return _Data(x, m, x * m, xs, np.bincount(inv, minlength=len(xs)).astype(float),
                 float(np.sum(x * np.log(x))), float(np.sum(x * np.log(m))), float(np.sum(np.log(m))),
                 np.empty(len(x)))


def customer_log_likelihood(params, frequency, monetary) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of the mean spend m over x repeat purchases.

    f(m | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) v^q x^(px) m^(px-1) / (v + x m)^(px+q).
    """
    p, q, v = params
    x, m = _spend_arrays(frequency, monetary)
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + p * x * np.log(x)
            + (p * x - 1) * np.log(m) - (p * x + q) * np.log(v + x * m))


def log_likelihood(params, data: _Data) -> tuple[float, np.ndarray]:
    """Summed Gamma-Gamma log-likelihood with its gradient in (p, q, v), for fitting.

    Only log(v + x m) and 1 / (v + x m) need a pass over the customers per evaluation; gamma
    functions go per distinct frequency and the rest was summed once in `_prepare`.
    """
    p, q, v = params
    x, xs, counts, w = data.x, data.xs, data.counts, data.work
    n = len(x)
    px = p * xs
    log_vxm = np.log(np.add(data.xm, v, out=w), out=w)
    sum_log = log_vxm.sum()
    sum_x_log = float(np.multiply(x, log_vxm, out=w).sum())
    value = (np.sum(counts * (gammaln(px + q) - gammaln(px))) - n * gammaln(q) + n * q * np.log(v)
             + p * data.sum_x_log_x + p * data.sum_x_log_m - data.sum_log_m
             - p * sum_x_log - q * sum_log)
    inv = np.reciprocal(np.add(data.xm, v, out=w), out=w)
    sum_inv = inv.sum()
    sum_x_inv = float(np.multiply(x, inv, out=w).sum())
    d_p = (np.sum(counts * xs * (digamma(px + q) - digamma(px))) + data.sum_x_log_x + data.sum_x_log_m
           - sum_x_log)
    d_q = np.sum(counts * (digamma(px + q) - digamma(q))) + n * np.log(v) - sum_log
    d_v = n * q / v - p * sum_x_inv - q * sum_inv
    return float(value), np.array([d_p, d_q, d_v])


class GammaGammaModel:
    """Gamma-Gamma spend estimator: `fit(frequency, monetary)` on repeat buyers, then predict.

    Customers with no repeat purchase (or a non-positive mean) are left out of the fit rather than
    rejected: the KAM summary includes everyone, and the model is defined on repeat buyers only.
    """

    def __init__(self, start: tuple[float, float, float] = (1.0, 1.0, 1.0)):
        self.start = start

    def fit(self, frequency, monetary) -> GammaGammaModel:
        x, m = _spend_arrays(frequency, monetary)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if len(x) < 2:
            raise ValueError("Gamma-Gamma needs at least two customers with repeat purchases")
        data = _prepare(x, m)
        start = np.array(self.start, dtype=float)
        if self.start == (1.0, 1.0, 1.0):
            start[2] = float(np.mean(m))  # v is on the money scale; start there
        result = fit_into(self, "Gamma-Gamma", PARAMS, lambda p: log_likelihood(p, data), start, len(x))
        self.converged_ = result.converged
        self.standard_errors_ = dict(zip(
            PARAMS, map(float, standard_errors(lambda p: log_likelihood(p, data), result.params)),
            strict=True))
        return self

    @property
    def population_mean_spend(self) -> float:
        """E[spend per purchase] for a customer we know nothing about: p v / (q - 1), needs q > 1."""
        p, q, v = self._p()
        return p * v / (q - 1) if q > 1 else float("nan")

    def _p(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("fit the model first")
        return self.params_["p"], self.params_["q"], self.params_["v"]

    def conditional_expected_average_profit(self, frequency, monetary) -> np.ndarray:
        """E[spend per purchase | x, m]: a weighted mean of the population mean and the customer's own.

        Customers without repeat purchases get the population mean (weight 0 on their own average).
        The name follows lifetimes; the value is spend, to be multiplied by a margin for profit.
        """
        p, q, v = self._p()
        x, m = _spend_arrays(frequency, monetary)
        x = np.where(m > 0, x, 0.0)
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * self.population_mean_spend + weight * np.where(m > 0, m, 0.0)
