"""BG/NBD: the beta-geometric / negative-binomial model of repeat buying (Fader, Hardie & Lee 2005).

While alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase it drops
out with probability p ~ Beta(a, b). Fitted on (frequency, recency, T) alone, it predicts how many
purchases each customer will make next and how likely it is still a customer, which is what CLV and
the "at risk" alert need. The interface mirrors `lifetimes.BetaGeoFitter` so its users feel at home,
but the likelihood is evaluated in closed form on arrays, in log space, with an analytic gradient.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from models.clv._data import rfm_arrays, unique_counts
from models.clv._fit import ConvergenceWarning, maximise, standard_errors
from models.clv._hyp import hyp2f1_safe

PARAMS = ("r", "alpha", "a", "b")


def _prepare(frequency, recency, T):
    x, t_x, T = rfm_arrays(frequency, recency, T)
    xs, inv = unique_counts(x)
    return x, t_x, T, xs, inv


def log_likelihood(params, data, *, per_customer: bool = False):
    """Summed BG/NBD log-likelihood and its gradient in (r, alpha, a, b).

    Per customer, L = A * (B(a, b+x) / (alpha+T)^(r+x) + [x>0] B(a+1, b+x-1) / (alpha+t_x)^(r+x)) with
    A = Gamma(r+x) alpha^r / (Gamma(r) B(a, b)); the two terms are combined with logaddexp so a
    customer with 1,000 purchases over 20 years neither overflows nor underflows.
    """
    r, alpha, a, b = params
    x, t_x, T, xs, inv = data
    # Terms depending on the frequency only: once per distinct frequency.
    lg = gammaln(r + xs) - gammaln(r) - betaln(a, b)
    l1 = betaln(a, b + xs)
    repeat = xs > 0
    l2 = np.where(repeat, betaln(a + 1, np.where(repeat, b + xs - 1, 1.0)), -np.inf)
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    rx = r + x
    u = l1[inv] - rx * log_at
    w = l2[inv] - rx * log_atx
    total = np.logaddexp(u, w)
    ll = lg[inv] + r * np.log(alpha) + total
    if per_customer:
        return ll
    pi = np.exp(u - total)  # share of the likelihood from "still alive at T"
    pi_w = 1.0 - pi
    # Gradient, again splitting frequency-only pieces from per-customer ones.
    d_r = (np.sum(np.bincount(inv, minlength=len(xs)) * (digamma(r + xs) - digamma(r)))
           + len(x) * np.log(alpha) - np.sum(pi * log_at + pi_w * log_atx))
    d_alpha = len(x) * r / alpha - np.sum(rx * (pi / (alpha + T) + pi_w / (alpha + t_x)))
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xs)
    dl1_da = digamma(a) - psi_abx
    dl1_db = digamma(b + xs) - psi_abx
    dl2_da = np.where(repeat, digamma(a + 1) - psi_abx, 0.0)
    dl2_db = np.where(repeat, digamma(np.where(repeat, b + xs - 1, 1.0)) - psi_abx, 0.0)
    pi_by_x = np.bincount(inv, weights=pi, minlength=len(xs))
    piw_by_x = np.bincount(inv, weights=pi_w, minlength=len(xs))
    n = len(x)
    d_a = np.sum(pi_by_x * dl1_da + piw_by_x * dl2_da) - n * (digamma(a) - psi_ab)
    d_b = np.sum(pi_by_x * dl1_db + piw_by_x * dl2_db) - n * (digamma(b) - psi_ab)
    return float(np.sum(ll)), np.array([d_r, d_alpha, d_a, d_b])


class BetaGeoModel:
    """BG/NBD estimator: `fit(frequency, recency, T)` then predict per customer.

    Time is in whatever unit the summary uses (KAM uses weeks); horizons `t` use the same unit.
    """

    def __init__(self, start: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)):
        self.start = start

    def fit(self, frequency, recency, T) -> BetaGeoModel:
        data = _prepare(frequency, recency, T)
        if len(data[0]) == 0:
            raise ValueError("no customers to fit")
        # Start alpha near the typical customer age so the first steps are sensible.
        start = np.array(self.start, dtype=float)
        if self.start == (1.0, 1.0, 1.0, 1.0):
            start[1] = max(float(np.mean(data[2])), 1e-3) / 4
        result = maximise(lambda p: log_likelihood(p, data), start)
        if not result.converged:
            warnings.warn(f"BG/NBD fit did not converge: {result.message}", ConvergenceWarning,
                          stacklevel=2)
        self.params_ = dict(zip(PARAMS, map(float, result.params), strict=True))
        self.log_likelihood_ = result.log_likelihood
        self.n_customers_ = len(data[0])
        self.converged_ = result.converged
        self.standard_errors_ = dict(zip(
            PARAMS, map(float, standard_errors(lambda p: log_likelihood(p, data), result.params)),
            strict=True))
        return self

    def _p(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("fit the model first")
        return self.params_["r"], self.params_["alpha"], self.params_["a"], self.params_["b"]

    def _log_dropout_odds(self, x, t_x, T):
        """log(1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)): minus log P(alive)."""
        r, alpha, a, b = self._p()
        repeat = x > 0
        safe = np.where(repeat, b + x - 1, 1.0)
        z = np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(repeat, np.logaddexp(0.0, z), 0.0)

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(the customer has not dropped out by T | its history)."""
        x, t_x, T = rfm_arrays(frequency, recency, T)
        return np.exp(-self._log_dropout_odds(x, t_x, T))

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in (T, T+t] given the customer's history (FHL 2005, eq. 10).

        The Gauss hypergeometric term is taken through Euler's transformation,
        ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
        whose parameters no longer grow with x: the direct form overflows for very active customers
        (lifetimes returns NaN there), this one tends calmly to its limit (see _hyp.py for where
        SciPy's own hyp2f1 still fails and a direct series takes over).
        """
        r, alpha, a, b = self._p()
        x, t_x, T = rfm_arrays(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        if np.isclose(a, 1.0):
            a = 1.0 + 1e-9  # the closed form has a removable singularity at a = 1
        z = t / (alpha + T + t)
        tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1_safe(a + b - 1 - r, a - 1, a + b + x - 1, z)
        expected = np.maximum((a + b + x - 1) / (a - 1) * (1.0 - tail), 0.0)
        return expected * np.exp(-self._log_dropout_odds(x, t_x, T))

    def expected_number_of_purchases_up_to_time(self, t) -> np.ndarray:
        """Expected purchases in (0, t] for a new customer (FHL 2005, eq. 7)."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        hyp = hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp)
