"""Stable segment ids across nights, new and vanished segments, and names from profiles."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from models.segment_identity import (
    first_ids,
    match_segments,
    previous_centroids,
    segment_names,
)
from models.segments import SampledKMeans
from tests.planted_mining import planted_segments


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def _night(X: np.ndarray, seed: int, previous: np.ndarray | None):
    model = SampledKMeans(k_range=(2, 8), random_state=seed).fit(X)
    if previous is None:
        return first_ids(model.cluster_centers_)[model.labels_], None
    old_ids, old_centers = previous_centroids(X, previous)
    matching = match_segments(model.cluster_centers_, old_ids, old_centers, max_distance=1.5)
    return matching.ids[model.labels_], matching


def test_small_changes_keep_95_percent_of_customers_in_the_same_segment_id():
    X, _ = planted_segments(60_000, seed=1)
    first, _ = _night(X, seed=1, previous=None)
    # Next night: members drift a little, 2% leave, 2% join, and the sample seed differs.
    rng = np.random.default_rng(2)
    tonight = X + rng.normal(0, 0.15, X.shape).astype(np.float32)
    stay = rng.random(len(X)) >= 0.02
    joined, _ = planted_segments(1_200, seed=9)
    tonight = np.vstack([tonight[stay], joined])
    previous = np.concatenate([first[stay], np.full(len(joined), -1)])
    second, matching = _night(tonight, seed=2, previous=previous)
    same = (second[: stay.sum()] == first[stay]).mean()
    assert same >= 0.95, same
    assert matching.new == [] and matching.vanished == []


def test_a_new_segment_gets_a_fresh_id_and_a_dropped_one_is_reported_vanished():
    centers = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    old_ids = np.array([4, 7, 9])
    tonight = np.array([[0.1, 0.0], [0.0, 5.2], [9.0, 9.0]])  # id 7 gone, one far-away newcomer
    m = match_segments(tonight, old_ids, centers, max_distance=1.0)
    assert list(m.ids) == [4, 9, 10]
    assert m.new == [10] and m.vanished == [7]
    assert m.distance[0] == pytest.approx(0.1) and np.isnan(m.distance[2])


def test_previous_centroids_average_tonight_features_of_last_night_members():
    X = np.array([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0], [5.0, 5.0]])
    ids, centers = previous_centroids(X, np.array([3, 3, 8, -1]))
    assert list(ids) == [3, 8]
    assert np.allclose(centers, [[1.0, 2.0], [10.0, 10.0]])


def test_first_night_ids_follow_the_centroids_not_kmeans_numbering():
    centers = np.array([[2.0, 0.0], [-1.0, 5.0], [0.0, 1.0]])
    assert list(first_ids(centers)) == [3, 1, 2]
    assert list(first_ids(centers[[2, 0, 1]])) == [2, 3, 1]


def test_names_come_from_the_most_distinctive_features():
    features = ["monetary_12m", "orders_12m", "payment_delay_days", "tenure_years"]
    centers = np.array([[1.8, 1.1, 2.5, 0.1], [-1.0, -0.2, -0.1, -1.5], [0.1, 0.2, 0.1, 0.0],
                        [-1.1, -0.1, 0.0, -1.4]])
    names = segment_names(centers, features)
    assert names[0] == "late payers, large, frequent"
    assert names[1] == "new, small"
    assert names[2] == "typical"
    assert names[3] == "new, small (2)"
