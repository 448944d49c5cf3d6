"""Synthetic customers with planted structure, for the mining models' tests and benchmarks.

Each generator plants something a model must find (segments, a churn rule, product-line
affinities) and returns the truth beside the data, so a test can score the model against it.
"""

from __future__ import annotations

import numpy as np

PLANTED_K = 5
SEGMENT_SHARES = np.array([0.34, 0.26, 0.18, 0.13, 0.09])


def planted_segments(n: int, seed: int = 0, features: int = 12,
                     spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(X, truth): PLANTED_K Gaussian segments of unequal size in `features` dimensions.

    Centres sit on random directions 4.5 standard deviations from the origin (fixed by a seed of
    their own, so every `seed` samples the same segments); `spread` scales the noise.
    """
    centres = np.random.default_rng(12345).normal(size=(PLANTED_K, features))
    centres *= 4.5 / np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    truth = rng.choice(PLANTED_K, size=n, p=SEGMENT_SHARES)
    X = centres[truth] + spread * rng.normal(size=(n, features)) / np.sqrt(features / 4)
    return X.astype(np.float32), truth


CHURN_FEATURES = ["recency_days", "service_cases_12m", "payment_delay_days", "on_time_rate",
                  "orders_12m", "monetary_12m"]


def planted_churn(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, churn, part_a, part_b): churn = (recency > 140 days AND cases >= 5)
    OR (payment delay > 25 days AND on-time rate < 0.85), with enough customers near every
    threshold that a loose rule would be caught out."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(0, 400, n).astype(float)
    cases = rng.poisson(np.where(rng.random(n) < 0.3, 6.0, 1.5))
    delay = np.round(np.where(rng.random(n) < 0.3, rng.uniform(10, 60, n), rng.normal(2, 5, n)), 1)
    on_time = np.round(np.clip(np.where(rng.random(n) < 0.3, rng.uniform(0.5, 1.0, n),
                                        rng.normal(0.95, 0.03, n)), 0, 1), 3)
    orders = rng.poisson(12, n).astype(float)
    monetary = np.round(rng.lognormal(9, 1.2, n), 2)
    part_a = (recency > 140) & (cases >= 5)
    part_b = (delay > 25) & (on_time < 0.85)
    X = np.column_stack([recency, cases, delay, on_time, orders, monetary])
    return X, part_a | part_b, part_a, part_b


LINES = ["Fasteners", "Tools", "Bearings", "Electrical", "Hydraulics", "Pneumatics", "Sensors",
         "Safety", "Lubricants", "Packaging"]
PLANTED_PAIRS = [("Hydraulics", "Pneumatics", 0.8), ("Fasteners", "Tools", 0.8),
                 ("Electrical", "Sensors", 0.75)]


def planted_baskets(n: int, seed: int = 0) -> np.ndarray:
    """(customers, lines) booleans: 1-4 lines by popularity, then each planted pair A -> B adds
    B to buyers of A with its probability (the demo generator's scheme)."""
    rng = np.random.default_rng(seed)
    popularity = np.array([0.16, 0.07, 0.10, 0.12, 0.08, 0.07, 0.09, 0.11, 0.1, 0.1])
    k = rng.choice([1, 2, 3, 4], size=n, p=[0.3, 0.33, 0.23, 0.14])
    keys = np.log(popularity)[None, :] + rng.gumbel(size=(n, len(LINES)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    basket = rank < k[:, None]
    for a, b, p in PLANTED_PAIRS:
        basket[:, LINES.index(b)] |= basket[:, LINES.index(a)] & (rng.random(n) < p)
    return basket
