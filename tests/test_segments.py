"""Clustering on planted segments: k found, best inertia reached, same answer from any seed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from threadpoolctl import threadpool_limits

from models.segments import SampledKMeans, SkewScaler, inertia, nearest, quality, silhouette
from tests.planted_mining import PLANTED_K, planted_segments


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(1):  # the machine is shared: keep BLAS/OpenMP to one core
        yield


@pytest.fixture(scope="module")
def planted():
    return planted_segments(100_000, seed=3)


@pytest.mark.parametrize("seed", range(5))
def test_k_chosen_on_a_sample_is_the_planted_one(planted, seed):
    X, _ = planted
    choice = SampledKMeans(k_range=(2, 8), random_state=seed).choose_k(X)
    assert choice.k == PLANTED_K, choice.scores
    assert set(choice.scores) == set(range(2, 9))


def test_inertia_within_half_a_percent_of_the_best_of_ten_full_restarts(planted):
    X, truth = planted
    ours = SampledKMeans(k_range=(2, 8), random_state=0).fit(X)
    best = min(
        inertia(X, km.labels_, km.cluster_centers_.astype(float))
        for km in (KMeans(PLANTED_K, n_init=1, random_state=s).fit(X) for s in range(10))
    )
    assert inertia(X, ours.labels_, ours.cluster_centers_) <= 1.005 * best
    assert adjusted_rand_score(truth, ours.labels_) >= 0.99


def test_seed_to_seed_agreement(planted):
    X, _ = planted
    labels = [SampledKMeans(k_range=(2, 8), random_state=s).fit(X).labels_ for s in (11, 12, 13)]
    for other in labels[1:]:
        assert adjusted_rand_score(labels[0], other) >= 0.99


def test_predict_matches_the_fitted_labels(planted):
    X, _ = planted
    model = SampledKMeans(k_range=(4, 6), random_state=0).fit(X[:20_000])
    assert (model.predict(X[:20_000]) == model.labels_).mean() >= 0.999
    assert np.array_equal(nearest(X[:5], model.cluster_centers_), model.predict(X[:5]))


def test_quality_prefers_the_planted_labels_to_shuffled_ones(planted):
    X, truth = planted
    good = quality(X[:20_000], truth[:20_000], sample_size=3_000)
    bad = quality(X[:20_000], np.random.default_rng(0).permutation(truth[:20_000]), sample_size=3_000)
    assert -1 <= bad["silhouette"] < good["silhouette"] <= 1
    assert good["davies_bouldin"] < bad["davies_bouldin"]


def test_skew_scaler_compresses_the_tail_and_standardises():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.lognormal(8, 2, 5000), rng.normal(0, 3, 5000), np.full(5000, 7.0)])
    X[:10, 0] *= -1  # a few negative margins stay negative
    Z = SkewScaler(log_columns=(0,)).fit_transform(X)
    assert np.allclose(Z[:, :2].mean(axis=0), 0, atol=1e-9)
    assert np.allclose(Z[:, :2].std(axis=0), 1)
    assert np.all(Z[:, 2] == 0)  # a constant column is centred, not divided by zero
    assert np.all(Z[:10, 0] < Z[10:, 0].min())
    outlier = SkewScaler(clip=0.01).fit(np.r_[rng.normal(size=(999, 1)), [[1e6]]])
    assert outlier.transform([[1e6]])[0, 0] < 4  # clipped to the 99th percentile
    # The largest value is no longer dozens of standard deviations out.
    assert Z[:, 0].max() < 5 < (X[:, 0].max() - X[:, 0].mean()) / X[:, 0].std()


@pytest.mark.parametrize("k", [2, 3, 7])
def test_fast_silhouette_equals_sklearn(k):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(1500, 6))
    labels = rng.integers(0, k, 1500)
    labels[:3] = k  # a singleton cluster scores 0 in both
    labels[3:5] = k + 1
    X[labels == 0] += 2
    assert silhouette(X, labels) == pytest.approx(silhouette_score(X, labels), abs=1e-9)
