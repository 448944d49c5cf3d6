"""Input checks shared by the CLV models: one place that says what a customer summary must look like."""

from __future__ import annotations

import numpy as np


def rfm_arrays(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float arrays of (frequency, recency, T), checked, so a bad summary fails loudly up front.

    Repeat purchases are whole numbers, and recency (the time of the last repeat purchase since the
    first one) can neither be negative nor exceed the customer's age T. A summary breaking these is
    a bug upstream; fitting it anyway would give plausible-looking nonsense.
    """
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError(f"frequency, recency and T differ in shape: {x.shape}, {t_x.shape}, {T.shape}")
    for name, arr in (("frequency", x), ("recency", t_x), ("T", T)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if np.any(arr < 0):
            raise ValueError(f"{name} contains negative values")
    if np.any(x != np.round(x)):
        raise ValueError("frequency must count whole repeat purchases")
    if np.any(t_x > T * (1 + 1e-12)):
        raise ValueError("recency exceeds T for some customers (last purchase after the end of the period)")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("customers without repeat purchases must have recency 0")
    return x, t_x, T


def unique_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct frequencies and, per customer, the index of its frequency among them.

    Terms depending only on the frequency (gamma and beta functions) are then evaluated once per
    distinct value rather than once per customer: a few hundred instead of a million.
    """
    values, inverse = np.unique(x, return_inverse=True)
    return values, inverse.reshape(x.shape)
