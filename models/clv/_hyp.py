"""The Gauss hypergeometric function where SciPy's hyp2f1 gives up.

SciPy's hyp2f1 returns inf or NaN for a large third parameter c with z close to 1 (exactly the
very active, long-lived customers of the BG/NBD prediction), although the function is then close
to 1 and its power series converges fast: term k shrinks like k^(a+b-c-1) z^k. So wherever
c - a - b is large enough the series is summed directly, elsewhere SciPy is used.
"""

from __future__ import annotations

import numpy as np
from scipy.special import hyp2f1

SERIES_FROM = 15.0  # c - a - b from which the series is used (fast and exact there)
MAX_TERMS = 20_000


def hyp2f1_safe(a, b, c, z) -> np.ndarray:
    """2F1(a, b; c; z) for 0 <= z < 1, finite wherever the true value is."""
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c, z)))
    out = np.empty(a.shape)
    series = (c - a - b) >= SERIES_FROM
    if np.any(~series):
        out[~series] = hyp2f1(a[~series], b[~series], c[~series], z[~series])
    if np.any(series):
        out[series] = _series(a[series], b[series], c[series], z[series])
    return out


def _series(a, b, c, z) -> np.ndarray:
    term = np.ones_like(a)
    total = np.ones_like(a)
    active = np.ones(a.shape, dtype=bool)
    for k in range(MAX_TERMS):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        term[idx] *= (a[idx] + k) * (b[idx] + k) / ((c[idx] + k) * (k + 1)) * z[idx]
        total[idx] += term[idx]
        done = np.abs(term[idx]) <= 1e-17 * np.abs(total[idx])
        active[idx[done]] = False
    return total
