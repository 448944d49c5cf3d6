"""Gamma-Gamma: how much a customer spends per purchase (Fader, Hardie & Lee 2005, "RFM and CLV").

Each purchase's value is Gamma(p, nu) around the customer's own mean, and nu ~ Gamma(q, gamma) across
customers. Fitted on repeat buyers only (x >= 1 repeat purchases with mean value m), it shrinks each
customer's observed average towards the population mean in proportion to how little we have seen
of it: one purchase of 500 says less than twenty purchases averaging 500. The model assumes spend
is independent of purchase frequency; check that before trusting it on new data.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import digamma, gammaln

from models.clv._data import unique_counts
from models.clv._fit import ConvergenceWarning, maximise, standard_errors

PARAMS = ("p", "q", "v")


def _spend_arrays(frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary differ in shape: {x.shape}, {m.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise ValueError("frequency or monetary contains NaN or infinite values")
    return x, m


def log_likelihood(params, data, *, per_customer: bool = False):
    """Summed Gamma-Gamma log-likelihood of the mean spends, with its gradient in (p, q, v).

    f(m | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) v^q x^(px) m^(px-1) / (v + x m)^(px+q).
    """
    p, q, v = params
    x, m, xs, inv = data
    px = p * xs
    lg = gammaln(px + q) - gammaln(px) - gammaln(q)
    log_x = np.log(xs)
    log_m = np.log(m)
    log_vxm = np.log(v + x * m)
    pxq = p * x + q
    ll = lg[inv] + q * np.log(v) + p * x * np.log(x) + (p * x - 1) * log_m - pxq * log_vxm
    if per_customer:
        return ll
    counts = np.bincount(inv, minlength=len(xs))
    d_p = (np.sum(counts * xs * (digamma(px + q) - digamma(px) + log_x))
           + np.sum(x * (log_m - log_vxm)))
    d_q = np.sum(counts * (digamma(px + q) - digamma(q))) + len(x) * np.log(v) - np.sum(log_vxm)
    d_v = len(x) * q / v - np.sum(pxq / (v + x * m))
    return float(np.sum(ll)), np.array([d_p, d_q, d_v])


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
        xs, inv = unique_counts(x)
        data = (x, m, xs, inv)
        start = np.array(self.start, dtype=float)
        if self.start == (1.0, 1.0, 1.0):
            start[2] = float(np.mean(m))  # v is on the money scale; start there
        result = maximise(lambda p: log_likelihood(p, data), start)
        if not result.converged:
            warnings.warn(f"Gamma-Gamma fit did not converge: {result.message}", ConvergenceWarning,
                          stacklevel=2)
        self.params_ = dict(zip(PARAMS, map(float, result.params), strict=True))
        self.log_likelihood_ = result.log_likelihood
        self.n_customers_ = len(x)
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
