"""BG/NBD: the beta-geometric / negative-binomial model of repeat buying (Fader, Hardie & Lee 2005).

While alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase it drops
out with probability p ~ Beta(a, b). Fitted on (frequency, recency, T) alone, it predicts how many
purchases each customer will make next and how likely it is still a customer, which is what CLV and
the "at risk" alert need. The interface mirrors `lifetimes.BetaGeoFitter` so its users feel at home,
but the likelihood is evaluated in closed form on arrays, in log space, with an analytic gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from models.clv._data import rfm_arrays, unique_counts
from models.clv._fit import fit_into, standard_errors
from models.clv._hyp import hyp2f1_safe

PARAMS = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class _Data:
    """A summary split the way the likelihood is cheapest to evaluate.

    Customers without repeat purchases (often most of them) contribute through log(alpha+T) alone;
    repeat buyers need both terms. Frequency-only pieces are evaluated once per distinct frequency
    (`xs`, with `inv` mapping each repeat buyer to its frequency and `counts` the customers per value).
    """

    n: int
    T0: np.ndarray  # ages of customers without repeat purchases
    x: np.ndarray  # repeat buyers' frequency, recency and age
    t_x: np.ndarray
    T: np.ndarray
    xs: np.ndarray
    inv: np.ndarray
    counts: np.ndarray
    work: tuple[np.ndarray, ...]  # scratch buffers the size of `x`, reused by every evaluation
    work0: np.ndarray  # one the size of `T0`


def _prepare(frequency, recency, T) -> _Data:
    x, t_x, T = rfm_arrays(frequency, recency, T)
    repeat = x > 0
    xr = x[repeat]
    xs, inv = unique_counts(xr)
    return _Data(len(x), T[~repeat], xr, t_x[repeat], T[repeat], xs, inv,
                 np.bincount(inv, minlength=len(xs)).astype(float),
                 tuple(np.empty(len(xr)) for _ in range(6)), np.empty(int((~repeat).sum())))


def customer_log_likelihood(params, frequency, recency, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood, written as in the paper (the reference for the fast sum).

    L = A * (B(a, b+x) / (alpha+T)^(r+x) + [x>0] B(a+1, b+x-1) / (alpha+t_x)^(r+x)) with
    A = Gamma(r+x) alpha^r / (Gamma(r) B(a, b)); the two terms are combined with logaddexp so a
    customer with 1,000 purchases over 20 years neither overflows nor underflows.
    """
    r, alpha, a, b = params
    x, t_x, T = rfm_arrays(frequency, recency, T)
    repeat = x > 0
    head = gammaln(r + x) - gammaln(r) - betaln(a, b) + r * np.log(alpha)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dead = np.where(repeat, betaln(a + 1, np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
                    -np.inf)
    return head + np.logaddexp(alive, dead)


def log_likelihood(params, data: _Data) -> tuple[float, np.ndarray]:
    """Summed BG/NBD log-likelihood and its gradient in (r, alpha, a, b), for fitting.

    The same sum as `customer_log_likelihood`, rearranged so each pass over the customers does the
    least work (this is where a million-customer fit spends its time). For a repeat buyer, with
    e = log(dropped-out term / alive term), LL = head + alive term + log1p(exp(e)), and the share of
    the likelihood coming from "dropped out" is exp(e) / (1 + exp(e)).
    """
    r, alpha, a, b = params
    n, xs, counts = data.n, data.xs, data.counts
    psi_ab = digamma(a + b)
    common = n * (r * np.log(alpha) - betaln(a, b))
    d_common = np.array([n * np.log(alpha), n * r / alpha,
                         -n * (digamma(a) - psi_ab), -n * (digamma(b) - psi_ab)])
    # Customers without repeat purchases: LL = r log(alpha) - r log(alpha + T) (the betas cancel).
    w0 = data.work0
    n0 = len(data.T0)
    sum_log0 = np.log(np.add(data.T0, alpha, out=w0), out=w0).sum()
    sum_inv0 = np.reciprocal(np.add(data.T0, alpha, out=w0), out=w0).sum()
    ll0 = n0 * betaln(a, b) - r * sum_log0
    d0 = np.array([-sum_log0, -r * sum_inv0, n0 * (digamma(a) - psi_ab), n0 * (digamma(b) - psi_ab)])
    if len(data.x) == 0:
        return float(common + ll0), d_common + d0
    # Repeat buyers, in place in preallocated buffers: on a million customers, allocating fresh
    # temporaries costs as much as the arithmetic itself.
    x, inv = data.x, data.inv
    rx, w1, w2, w3, w4, w5 = data.work
    np.add(x, r, out=rx)
    shift_T = np.add(data.T, alpha, out=w1)
    log_T = np.log(shift_T, out=w2)
    sum_log_T = log_T.sum()
    sum_rx_log_T = np.multiply(rx, log_T, out=w5).sum()
    inv_T = np.reciprocal(shift_T, out=w1)
    delta = np.log(np.add(data.t_x, alpha, out=w3), out=w3)
    np.subtract(log_T, delta, out=delta)  # log((alpha+T)/(alpha+t_x)) >= 0
    l1 = betaln(a, b + xs)
    l2 = betaln(a + 1, b + xs - 1)
    e = np.take(l2 - l1, inv, out=w4)
    e += np.multiply(rx, delta, out=w5)  # e = log(dropped-out term / alive term)
    # softplus(e) and sigmoid(e) from one exp(-|e|): never overflows, far cheaper than logaddexp.
    small = np.exp(np.negative(np.abs(e, out=w5), out=w5), out=w5)
    positive = e >= 0
    sum_soft = np.maximum(e, 0.0, out=w2).sum() + np.log1p(small, out=w2).sum()
    pi_dead = np.divide(small, np.add(small, 1.0, out=w2), out=w4)
    np.reciprocal(w2, out=w2)
    np.copyto(pi_dead, w2, where=positive)
    ll1 = np.sum(counts * (gammaln(r + xs) - gammaln(r) + l1)) - sum_rx_log_T + sum_soft
    # d/dr: digamma terms per distinct frequency; -log(alpha+T) + pi_dead * delta per customer.
    d_r = (np.sum(counts * (digamma(r + xs) - digamma(r))) - sum_log_T
           + np.multiply(pi_dead, delta, out=w5).sum())
    # d/dalpha = -sum (r+x) (1/(alpha+T) - pi_dead (1/(alpha+T) - 1/(alpha+t_x))); delta is done with.
    inv_t = np.reciprocal(np.add(data.t_x, alpha, out=w3), out=w3)
    np.subtract(inv_T, inv_t, out=inv_t)
    inv_t *= pi_dead
    np.subtract(inv_T, inv_t, out=inv_t)
    d_alpha = -np.multiply(rx, inv_t, out=w5).sum()
    psi_abx = digamma(a + b + xs)
    dl1_da = digamma(a) - psi_abx
    dl1_db = digamma(b + xs) - psi_abx
    dl2_da = digamma(a + 1) - psi_abx
    dl2_db = digamma(b + xs - 1) - psi_abx
    dead_by_x = np.bincount(inv, weights=pi_dead, minlength=len(xs))
    alive_by_x = counts - dead_by_x
    d_a = np.sum(alive_by_x * dl1_da + dead_by_x * dl2_da)
    d_b = np.sum(alive_by_x * dl1_db + dead_by_x * dl2_db)
    value = common + ll0 + ll1
    grad = d_common + d0 + np.array([d_r, d_alpha, d_a, d_b])
    return float(value), grad


class BetaGeoModel:
    """BG/NBD estimator: `fit(frequency, recency, T)` then predict per customer.

    Time is in whatever unit the summary uses (KAM uses weeks); horizons `t` use the same unit.
    """

    def __init__(self, start: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)):
        self.start = start

    def fit(self, frequency, recency, T) -> BetaGeoModel:
        data = _prepare(frequency, recency, T)
        if data.n == 0:
            raise ValueError("no customers to fit")
        # Start alpha near the typical customer age so the first steps are sensible.
        start = np.array(self.start, dtype=float)
        if self.start == (1.0, 1.0, 1.0, 1.0):
            start[1] = max(float(np.mean(np.asarray(T, dtype=float))), 1e-3) / 4
        result = fit_into(self, "BG/NBD", PARAMS, lambda p: log_likelihood(p, data), start, data.n)
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
        """Expected purchases in (T, T+t] given the customer's history (FHL 2005, eq. 10)."""
        x, t_x, T = rfm_arrays(frequency, recency, T)
        return self._expected_if_alive(t, x, T) * np.exp(-self._log_dropout_odds(x, t_x, T))

    def conditional_expected_purchases_by_horizon(self, horizons, frequency, recency, T) -> np.ndarray:
        """The same expectation at several horizons at once (rows: horizons), e.g. for CLV by month.

        Checking the inputs and the probability alive are shared by all horizons. The expectation
        if alive depends on (x, T) alone, which a million customers share in a few ten thousand
        combinations (whole purchase counts, ages in days): the hypergeometric function is taken
        once per combination and horizon (at 1M customers and 12 horizons, 1.8 s became 0.3 s).
        """
        x, t_x, T = rfm_arrays(frequency, recency, T)
        alive = np.exp(-self._log_dropout_odds(x, t_x, T))
        pairs, inverse = np.unique(x + 1j * T, return_inverse=True)
        return np.stack([self._expected_if_alive(t, pairs.real, pairs.imag)[inverse.reshape(x.shape)] * alive
                         for t in horizons])

    def _expected_if_alive(self, t, x, T) -> np.ndarray:
        """Expected purchases in (T, T+t] for a customer known to be alive at T.

        The Gauss hypergeometric term is taken through Euler's transformation,
        ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
        whose parameters no longer grow with x: the direct form overflows for very active customers
        (lifetimes returns NaN there), this one tends calmly to its limit (see _hyp.py for where
        SciPy's own hyp2f1 still fails and a direct series takes over).
        """
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        if np.isclose(a, 1.0):
            a = 1.0 + 1e-9  # the closed form has a removable singularity at a = 1
        z = t / (alpha + T + t)
        tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1_safe(a + b - 1 - r, a - 1, a + b + x - 1, z)
        return np.maximum((a + b + x - 1) / (a - 1) * (1.0 - tail), 0.0)

    def expected_number_of_purchases_up_to_time(self, t) -> np.ndarray:
        """Expected purchases in (0, t] for a new customer (FHL 2005, eq. 7)."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        hyp = hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp)
