"""Pareto/NBD: the original model of "counting your customers" (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); it dies at an exponential
time with rate mu ~ Gamma(s, beta), at any moment rather than only after a purchase as in BG/NBD.
Offered beside BG/NBD for users who prefer it; its likelihood needs a Gauss hypergeometric function
per customer, so fitting is slower. The likelihood follows Fader & Hardie's note "A note on deriving
the Pareto/NBD model and related expressions" (2005), evaluated in log space.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from models.clv._data import rfm_arrays
from models.clv._fit import ConvergenceWarning

PARAMS = ("r", "alpha", "s", "beta")


def _log_a0(r, alpha, s, beta, x, t_x, T):
    """log A0 = log(F(t_x) - F(T)): the 'died between t_x and T' integral, for alpha >= beta or not."""
    rsx = r + s + x
    if alpha >= beta:
        b, big = s + 1, alpha
        z_tx, z_T = (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T)
    else:
        b, big = r + x, beta
        z_tx, z_T = (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T)
    log_tx = np.log(hyp2f1(rsx, b, rsx + 1, z_tx)) - rsx * np.log(big + t_x)
    log_T = np.log(hyp2f1(rsx, b, rsx + 1, z_T)) - rsx * np.log(big + T)
    # F(t_x) > F(T) because the integrand is positive; log1p keeps the difference accurate.
    return log_tx + np.log1p(-np.exp(np.minimum(log_T - log_tx, 0.0)))


def customer_log_likelihood(params, frequency, recency, T) -> np.ndarray:
    r, alpha, s, beta = params
    x, t_x, T = rfm_arrays(frequency, recency, T)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    with np.errstate(divide="ignore"):
        dead = np.log(s / (r + s + x)) + _log_a0(r, alpha, s, beta, x, t_x, T)
    dead = np.where(t_x < T, dead, -np.inf)  # bought at the very end: no room to have died since
    return head + np.logaddexp(alive, dead)


class ParetoNBDModel:
    """Pareto/NBD estimator with the same interface as BetaGeoModel."""

    def __init__(self, start: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)):
        self.start = start

    def fit(self, frequency, recency, T) -> ParetoNBDModel:
        x, t_x, T = rfm_arrays(frequency, recency, T)

        def negative(log_params):
            value = customer_log_likelihood(np.exp(log_params), x, t_x, T).sum()
            return -value if np.isfinite(value) else np.inf

        start = np.log(np.array(self.start, dtype=float))
        res = minimize(negative, start, method="Nelder-Mead",
                       options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 20_000, "maxfev": 40_000})
        res = minimize(negative, res.x, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-8})
        if not res.success and "ABNORMAL" not in str(res.message):
            warnings.warn(f"Pareto/NBD fit did not converge: {res.message}", ConvergenceWarning,
                          stacklevel=2)
        self.params_ = dict(zip(PARAMS, map(float, np.exp(res.x)), strict=True))
        self.log_likelihood_ = float(-res.fun)
        return self

    def _p(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("fit the model first")
        return tuple(self.params_[k] for k in PARAMS)

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        r, alpha, s, beta = self._p()
        x, t_x, T = rfm_arrays(frequency, recency, T)
        with np.errstate(divide="ignore"):
            log_ratio = (np.log(s / (r + s + x)) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                         + _log_a0(r, alpha, s, beta, x, t_x, T))
        log_ratio = np.where(t_x < T, log_ratio, -np.inf)
        return np.exp(-np.logaddexp(0.0, log_ratio))

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T+t] | history]
        = P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) (1 - ((beta+T)/(beta+T+t))^(s-1))."""
        r, alpha, s, beta = self._p()
        x, t_x, T = rfm_arrays(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        if np.isclose(s, 1.0):
            rate = (r + x) / (alpha + T) * (beta + T) * np.log1p(t / (beta + T))
        else:
            rate = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (
                1 - np.exp((s - 1) * np.log((beta + T) / (beta + T + t))))
        return rate * self.conditional_probability_alive(x, t_x, T)
