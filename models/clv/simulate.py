"""Draw customer summaries from known BG/NBD and Gamma-Gamma parameters.

Used to check that the estimators recover what generated the data, and to benchmark them on a
million customers without needing a million real ones. Seeded, so a test sees the same sample on
every run.
"""

from __future__ import annotations

import numpy as np


def simulate_bgnbd(n: int, T, r: float, alpha: float, a: float, b: float, *, seed: int = 0):
    """(frequency, recency, T) for `n` customers observed for T time units each (scalar or array).

    Vectorised: every customer's purchase times are drawn as exponential gaps at its own rate, and
    it dies after each purchase with its own probability, so the number of purchases until death is
    geometric; alive-at-T customers are cut at T.
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    # Purchases (after the first at time 0) until death: death comes after repeat purchase number k,
    # k ~ Geometric(p) counting from 1; the number of repeats made before T is capped by that.
    lives = rng.geometric(p)  # repeat purchases a customer makes before dropping out, if time allows
    # Given the rate, the repeat purchases in (0, T] of an immortal customer are Poisson(lam T) with
    # uniform times; the mortal one keeps only the first `lives` of them.
    poisson = rng.poisson(lam * T)
    x = np.minimum(poisson, lives)
    # Recency: the x-th order statistic of `poisson` uniforms on (0, T) = T * Beta(x, poisson - x + 1).
    recency = np.zeros(n)
    has = x > 0
    recency[has] = T[has] * rng.beta(x[has], poisson[has] - x[has] + 1)
    return x.astype(float), recency, T


def simulate_spend(frequency, p: float, q: float, v: float, *, seed: int = 0) -> np.ndarray:
    """Mean spend of each customer's repeat purchases under Gamma-Gamma (0 without repeats).

    The mean of x Gamma(p, nu) values is Gamma(p x, nu x), so no per-purchase draws are needed.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / v, len(x))
    out = np.zeros(len(x))
    has = x > 0
    out[has] = rng.gamma(p * x[has], 1.0 / (nu[has] * x[has]))
    return out
