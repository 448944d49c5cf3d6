"""Keeping a segment's id and name from one night to the next, and naming new segments.

k-means numbers its clusters arbitrarily: rerun it on slightly different data and "segment 3" can
come back as segment 0. Sales cannot work with a label that changes meaning overnight, so each
night's clusters are matched to last night's by the Hungarian method on the distance between
centroids, both measured in tonight's scaled feature space (last night's centroid is the mean of
tonight's features over last night's members, so no old scaler is needed). A match farther than
`max_distance` is no match: that cluster is new and gets a fresh id; an old id left without a
partner has vanished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Matching:
    """`ids[j]` is the stable id of tonight's cluster j; `new` and `vanished` list stable ids."""

    ids: np.ndarray
    distance: np.ndarray  # to the matched old centroid (nan for new segments)
    new: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)


def previous_centroids(X: np.ndarray, previous_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, centroids) of last night's segments, from tonight's rows of their members.

    `previous_ids` holds last night's id per row of X, negative where the customer had none.
    """
    known = previous_ids >= 0
    ids = np.unique(previous_ids[known])
    sums = np.zeros((len(ids), X.shape[1]))
    index = np.searchsorted(ids, previous_ids[known])
    np.add.at(sums, index, X[known])
    counts = np.bincount(index, minlength=len(ids))
    return ids, sums / counts[:, None]


def match_segments(centers: np.ndarray, old_ids: np.ndarray, old_centers: np.ndarray,
                   max_distance: float) -> Matching:
    """Give each of tonight's centroids the id of its Hungarian partner among last night's."""
    k = len(centers)
    ids = np.full(k, -1, dtype=np.int64)
    distance = np.full(k, np.nan)
    if len(old_ids):
        cost = np.sqrt(((centers[:, None, :] - old_centers[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] <= max_distance:
                ids[r] = int(old_ids[c])
                distance[r] = cost[r, c]
    new = []
    next_id = int(old_ids.max()) + 1 if len(old_ids) else 1
    for j in np.flatnonzero(ids < 0):
        ids[j] = next_id
        new.append(next_id)
        next_id += 1
    vanished = sorted(set(int(i) for i in old_ids) - set(int(i) for i in ids))
    return Matching(ids=ids, distance=distance, new=new if len(old_ids) else [], vanished=vanished)


def first_ids(centers: np.ndarray) -> np.ndarray:
    """Ids for the very first night: 1.. in order of the first scaled feature, then the second.

    Ordering by centroid (not by k-means' arbitrary numbering) makes the first night reproducible.
    """
    order = np.lexsort(centers.T[::-1])
    ids = np.empty(len(centers), dtype=np.int64)
    ids[order] = np.arange(1, len(centers) + 1)
    return ids


# Words for a feature well above (+) or below (-) the customer base. Features missing here are
# still used for clustering, just never in a name.
WORDS: dict[str, tuple[str, str]] = {
    "monetary_12m": ("large", "small"),
    "orders_12m": ("frequent", "occasional"),
    "recency_days": ("lapsed", "recently active"),
    "margin_pct": ("high-margin", "low-margin"),
    "growth": ("growing", "shrinking"),
    "product_lines": ("broad-range", "single-line"),
    "service_cases_12m": ("service-heavy", "low-touch"),
    "return_rate": ("high-return", "low-return"),
    "payment_delay_days": ("late payers", "prompt payers"),
    "on_time_rate": ("well served", "poorly served"),
    "tenure_years": ("long-standing", "new"),
    "employees": ("big-company", "small-company"),
}


def segment_names(centers: np.ndarray, features: list[str], *, words: int = 3,
                  min_z: float = 0.5) -> list[str]:
    """Plain-words name per segment from its most distinctive scaled centroid coordinates.

    Centroids are in standardised units, so a coordinate is how many standard deviations the
    segment's typical member sits from the whole base; the `words` largest beyond `min_z` name it
    ("large, frequent, late payers"). Duplicate names get " (2)", " (3)" so each stays unique.
    """
    names = []
    for center in centers:
        order = np.argsort(-np.abs(center), kind="stable")
        picked = []
        for j in order:
            if len(picked) == words or abs(center[j]) < min_z:
                break
            if features[j] in WORDS:
                picked.append(WORDS[features[j]][0 if center[j] > 0 else 1])
        names.append(", ".join(picked) if picked else "typical")
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique
